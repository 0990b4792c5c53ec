"""Bit decomposition of shared values, and turning chosen bits back into arithmetic shares.

Normalising a value (for reciprocal, square root, log) and splitting it into integer and
fractional parts (for exp) need its bits. `bit_decompose` opens x masked by a dealer mask
r whose bits the parties hold XOR-shared, and recomputes x = c - r bit by bit with a
parallel-prefix borrow circuit on packed words: every bit of every element in six
rounds of word-wise ANDs (seven in Z_2^128). `lanes_to_arith` converts any chosen bit
positions to additive shares with one opening, using a word of daBits.

References: Damgard et al., TCC 2006 (bit decomposition from a bitwise-shared mask);
Kogge & Stone (1973) (parallel prefix); Rotaru & Wood, INDOCRYPT 2019 (daBits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets
from mpc.ring import Ring
from mpc.share import Share
from protocols.boolean import and_many, from_opened_bit
from protocols.masks import to_words
from protocols.opening import open_arith, open_xor

_ALL = np.uint64((1 << 64) - 1)
_LEVELS = (1, 2, 4, 8, 16, 32)


def _low_ones(s: int) -> np.uint64:
    return np.uint64((1 << s) - 1)


def or_public(ctx: PartyContext, x: np.ndarray, mask: np.uint64) -> np.ndarray:
    """[x OR m] for a public mask m: those bits become 1 (party 0 holds them, the others clear them)."""
    return (x | mask) if ctx.is_leader else (x & ~mask)


def broadcast_top(x: np.ndarray) -> np.ndarray:
    """Each word's top bit copied to all 64 lanes (local: linear over XOR shares)."""
    return (x >> np.uint64(63)) * _ALL


def bit_decompose(ctx: PartyContext, x: Share) -> np.ndarray:
    """XOR-shared bits of x (read unsigned), packed: shape (n, words), low word first.

    1. Open c = x + r (r from the dealer, with its bits XOR-shared).
    2. Borrow into each bit of c - r by a parallel prefix over (g, p) = (r AND NOT c,
       NOT (r XOR c)): G <- G XOR (P AND (G << s)), P <- P AND (P << s) for s = 1..32,
       shifting in the neutral (g, p) = (0, 1). In Z_2^128 one more AND carries the low
       word's borrow into the high word.
    3. x_i = c_i XOR r_i XOR borrow_i.
    Rounds: 7 in Z_2^64, 8 in Z_2^128.
    """
    ring = x.ring
    flat = x.data.ravel()
    mat = ctx.dealer(MaterialRequest("cmp_mask", {"shape": [int(flat.size)], "ring": ring.bits}))
    (c,) = open_arith(ctx, [Share(ring.add(flat, mat["r"]), ring)], "bits-open")
    cw, rb = to_words(ring, c), mat["r_bits"]
    not_c = ~cw
    g = rb & not_c
    p = rb ^ not_c if ctx.is_leader else rb.copy()
    for s in _LEVELS:
        sh = np.uint64(s)
        pg, pp = and_many(ctx, [(p, g << sh), (p, or_public(ctx, p << sh, _low_ones(s)))], "bits-level")
        g, p = g ^ pg, pp
    borrow_in = g << np.uint64(1)  # lane i: borrow out of lanes 0..i-1
    if rb.shape[1] == 2:
        carry = broadcast_top(g[:, 0])  # borrow out of the whole low word
        p_below = or_public(ctx, p[:, 1] << np.uint64(1), np.uint64(1))
        (extra,) = and_many(ctx, [(p_below, carry)], "bits-words")
        borrow_in[:, 1] ^= extra
    bits = rb ^ borrow_in
    if ctx.is_leader:
        bits ^= cw
    return bits


def _dabits_free(p: dict[str, Any]) -> list[Component]:
    return [Component("s", "xor", (int(p["n"]), int(p["words"])))]


def _dabits_derived(p: dict[str, Any]) -> list[Component]:
    return [Component("s_arith", "arith", (int(p["n"]), len(p["lanes"])), int(p.get("ring", 64)))]


def _dabits_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = Ring(int(p.get("ring", 64)))
    cols = [(s["s"][:, w] >> np.uint64(b)) & np.uint64(1) for w, b in p["lanes"]]
    bits = np.stack(cols, axis=1) if cols else np.zeros((int(p["n"]), 0), dtype=np.uint64)
    return {"s_arith": ring.reduce(bits if ring.native else bits.astype(object))}


DABIT_WORDS = MaterialKind("dabit_words", _dabits_free, _dabits_derived, _dabits_derive)
"""Random words XOR-shared, and additive shares of chosen bit positions of them."""


def lanes_to_arith(ctx: PartyContext, bits: np.ndarray, lanes: Sequence[tuple[int, int]], ring: Ring) -> Share:
    """Additive 0/1 shares of the chosen (word, bit) lanes of XOR-shared words; shape (n, lanes).

    With random words s (XOR-shared) and [s_lane] additive from the dealer:
    1. Open e = bits XOR s (one word per element and word).
    2. [b_lane] = e_lane + [s_lane] - 2 e_lane [s_lane].
    """
    n, words = bits.shape
    params = {"n": n, "words": words, "lanes": [list(lane) for lane in lanes], "ring": ring.bits}
    mat = ctx.dealer(MaterialRequest("dabit_words", params))
    (e,) = open_xor(ctx, [bits ^ mat["s"]], "lanes-open")
    e_lanes = np.stack([(e[:, w] >> np.uint64(b)) & np.uint64(1) for w, b in lanes], axis=1)
    return Share(from_opened_bit(ctx, e_lanes, ring, mat["s_arith"]), ring, 0)


def leading_one(ctx: PartyContext, bits: np.ndarray) -> np.ndarray:
    """XOR-shared one-hot words marking the highest set bit (all zero if none). 6-7 rounds.

    Suffix-OR from the top, m_i = OR_{j >= i} x_i, computed as NOT of a suffix-AND of NOT x;
    then the one-hot is m XOR (m >> 1).
    """
    z = ~bits if ctx.is_leader else bits.copy()  # NOT x: all lanes of the words
    for s in _LEVELS:
        sh = np.uint64(s)
        top_ones = np.uint64(((1 << s) - 1) << (64 - s))
        (z,) = and_many(ctx, [(z, or_public(ctx, z >> sh, top_ones))], "lead-level")
    if bits.shape[1] == 2:  # the low word also needs "no bit set in the high word"
        all_clear_hi = broadcast_top(_lane0_to_top(z[:, 1]))
        (low,) = and_many(ctx, [(z[:, 0], all_clear_hi)], "lead-words")
        z[:, 0] = low
    m = ~z if ctx.is_leader else z  # suffix-OR
    below = m >> np.uint64(1)
    if bits.shape[1] == 2:
        below[:, 0] |= (m[:, 1] & np.uint64(1)) << np.uint64(63)
    return m ^ below


def _lane0_to_top(x: np.ndarray) -> np.ndarray:
    return x << np.uint64(63)
