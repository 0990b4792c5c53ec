"""Comparisons of shared values: sign, less-than, equality — exact, in a constant number of rounds.

Both tests open the value masked by a dealer-made random r whose bits the parties also
hold (XOR-shared), then run a log-depth binary circuit on the public masked value and the
shared bits of r. Nothing is probabilistic: the sign test is exact for every x in
(-2^(k-1), 2^(k-1)), so a < b is exact whenever |a - b| < 2^(k-1) (for fixed point
in Z_2^64 with f = 20, |a - b| < 2^43 ~ 8.8e12).

Rounds: 5 in Z_2^64 (open, 3 circuit levels of gates of up to four inputs, bit conversion);
6 in Z_2^128. Bytes per element and peer: the masked ring element (k/8), a bit for each
variable of the circuit's gate families (`protocols.gates`: 147 per 64-bit comparator, the tree
shrinking fourfold every level), one bit for the conversion — 26 in Z_2^64.

References: Damgard, Fitzi, Kiltz, Nielsen, Toft, "Unconditionally Secure Constant-Rounds
Multi-Party Computation for Equality, Comparison, Bits and Exponentiation", TCC 2006
(comparison from the bits of a mask); Escudero et al., CRYPTO 2020 (edaBits: a mask in
both domains); the comparator tree is in protocols/circuits.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public
from protocols.bits import PendingRowsToArith, low_bits, masked, rows_of
from protocols.boolean import from_opened_bit, row_to_arith, unpack_lanes
from protocols.circuits import (
    Circuit,
    all_ones,
    all_ones_gates,
    borrow_out_gates,
    generate_propagate,
    run_circuits,
)
from protocols.opening import open_arith, open_xor


def _to_arith(ctx: PartyContext, bit: np.ndarray, x: Share, mat: Mapping[str, np.ndarray]) -> Share:
    out = row_to_arith(ctx, bit, x.size, x.ring, mat["s"], mat["s_arith"])
    return Share(out.data.reshape(x.shape), x.ring, 0)


def sign_gates(ctx: PartyContext, ring: Ring, cs: Sequence[np.ndarray], r_rows: np.ndarray) -> Circuit:
    """msb(c - r) for several public c against one shared r: one row each, side by side.

    With c', r' the low k-1 bits: msb(c - r) = msb(c) XOR msb(r) XOR [c' < r'], the last
    term by the comparator tree (`protocols.circuits.borrow_out_gates`) on g = r AND NOT c
    ("r wins here") and p = NOT (r XOR c) ("tie"); the trees for every c share each level.
    ceil(log4(k - 1)) levels.
    """
    k = ring.bits
    c_rows = [rows_of(ring, c) for c in cs]
    lanes_ = r_rows.shape[1]
    gp = [generate_propagate(ctx, c[: k - 1], r_rows[: k - 1]) for c in c_rows]
    g_all = np.concatenate([g for g, _ in gp], axis=1)
    p_all = np.concatenate([p for _, p in gp], axis=1)
    lt = yield from borrow_out_gates(g_all, p_all)
    out = []
    for i, c in enumerate(c_rows):
        msb = lt[i * lanes_ : (i + 1) * lanes_] ^ r_rows[k - 1]
        out.append(msb ^ c[k - 1] if ctx.is_leader else msb)
    return np.stack(out)


def ltz(ctx: PartyContext, x: Share) -> Share:
    """[x < 0] as a 0/1 integer share in x's ring (the sign bit of x).

    1. Open c = x + r, r a dealer mask with its bits XOR-shared.
    2. msb(x) = msb(c - r) by the comparator circuit of `sign_gates`
       (ceil(log4(k - 1)) levels of gates of up to four inputs, `protocols.gates`).
    3. Convert the XOR-shared result bit to an additive share with a daBit (one round).
    """
    c, mat = masked(ctx, x, "cmp-open")
    (msb,) = run_circuits(ctx, [sign_gates(ctx, x.ring, [c], mat["r_bits"])], "cmp-level")
    return _to_arith(ctx, msb[0], x, mat)


def is_zero(ctx: PartyContext, x: Share) -> Share:
    """[x == 0] as a 0/1 integer share. Exact for every ring element.

    1. Open c = x + r; x == 0 exactly when every bit of c XOR r is 0.
    2. AND tree over the k bits of NOT (c XOR r) (ceil(log4 k) levels).
    3. Convert the result bit with a daBit.
    """
    c, mat = masked(ctx, x, "cmp-open")
    same = mat["r_bits"] ^ ~rows_of(x.ring, c) if ctx.is_leader else mat["r_bits"]
    return _to_arith(ctx, all_ones(ctx, same, "eqz-level"), x, mat)


def is_zero_and_all(ctx: PartyContext, x: Share, rows: np.ndarray, count: int) -> tuple[Share, Share]:
    """[x == 0] (`is_zero`), and the AND of the XOR-shared bit-sliced `rows` (w rows of
    lanes(count) words: one bit of each of `count` elements per row) as additive 0/1 shares
    in x's ring, in the rounds of `is_zero` alone while ceil(log4 w) <= ceil(log4 k).

    1. Open c = x + r, as `is_zero`.
    2. The AND tree over NOT (c XOR r) and the AND tree over `rows`, their levels side by side.
    3. Both result rows to additive shares with daBits, in one opening.
    Each element of `rows` costs the peers 2 (w - 1) + 1 bits: no masked ring element is opened.
    """
    c, mat = masked(ctx, x, "cmp-open")
    same = mat["r_bits"] ^ ~rows_of(x.ring, c) if ctx.is_leader else mat["r_bits"]
    eq, every = run_circuits(ctx, [all_ones_gates(same), all_ones_gates(rows)], "eqz-level")
    pending = PendingRowsToArith.begin(ctx, every[None], count, x.ring)
    opened = open_xor(ctx, [eq ^ mat["s"], *pending.words()], "b2a")
    zero = from_opened_bit(ctx, unpack_lanes(opened[0], x.size), x.ring, mat["s_arith"])
    every_arith = pending.finish(ctx, opened[1:])
    return Share(zero.reshape(x.shape), x.ring, 0), Share(every_arith.data[0], x.ring, 0)


class MaskedJob(Protocol):
    """Another protocol of the same shape that can ride in `signs_zeros_and_jobs`' rounds: it opens
    `value` masked (a `cmp_mask`), runs a circuit on the opened value and the mask's bits, and
    converts the circuit's output rows to additive shares."""

    @property
    def value(self) -> Share:
        """The shared value opened masked."""
        ...

    def gates(self, ctx: PartyContext, opened: np.ndarray, r_bits: np.ndarray) -> Circuit:
        """The circuit, given the opened c = value + r (ring elements) and r's XOR-shared bit rows."""
        ...


def signs_and_zeros(ctx: PartyContext, x: Share, z: Share) -> tuple[Share, Share]:
    """[x < 0] and [z == 0] side by side, in the rounds of one (`signs_zeros_and_jobs` with
    nothing else beside them)."""
    lt, eq, _, _, _ = signs_zeros_and_jobs(ctx, x, z)
    return lt, eq


def signs_zeros_and_jobs(
    ctx: PartyContext,
    x: Share,
    z: Share,
    rows: np.ndarray | None = None,
    count: int = 0,
    bits_of: Share | None = None,
    wanted: Sequence[int] = (),
    jobs: Sequence[MaskedJob] = (),
) -> tuple[Share, Share, Share | None, Share | None, list[Share]]:
    """[x < 0] (`ltz`), [z == 0] (`is_zero`), given `rows` the AND of their `count` bit-sliced
    elements (as `is_zero_and_all`), and given `bits_of` the `wanted` bits of it as additive 0/1
    shares, shape (len(wanted), size) (`protocols.bits.decompose_rows` and `rows_to_arith`): the
    same protocols run side by side, in the rounds of the deepest alone (6 in Z_2^128 rather
    than 12, or 18 with the bits); and each of `jobs` (`MaskedJob`), whose converted rows come last,
    shape (rows, size of its value).

    1. Open c = x + r, c' = z + r' (and c'' = bits_of + r'', and each job's value + its mask), each
       with its own dealer mask, in one message.
    2. The comparator circuit on c, the AND tree over NOT (c' XOR r'), the AND tree over `rows`,
       the borrow prefix of c'' - r'' and the jobs' circuits, their levels side by side
       (`protocols.circuits.run_circuits`).
    3. Every result row to additive shares with daBits, in one opening.
    Bytes and dealer material are those of the separate calls (or fewer: the comparison and zero
    test rows of several calls share words).
    """
    ring = z.ring
    inputs = [x, z] + ([bits_of] if bits_of is not None else []) + [job.value for job in jobs]
    mats = [ctx.dealer(MaterialRequest("cmp_mask", {"shape": [int(v.size)], "ring": v.ring.bits})) for v in inputs]
    opened = open_arith(ctx, [Share(v.ring.add(v.data.ravel(), m["r"]), v.ring) for v, m in zip(inputs, mats)],
                        "cmp-open")
    mat_x, mat_z = mats[:2]
    others = len(inputs) - len(jobs)
    same = mat_z["r_bits"] ^ ~rows_of(ring, opened[1]) if ctx.is_leader else mat_z["r_bits"]
    circuits = [sign_gates(ctx, x.ring, [opened[0]], mat_x["r_bits"]), all_ones_gates(same)]
    if rows is not None:
        circuits.append(all_ones_gates(rows))
    if bits_of is not None:
        k = bits_of.ring.bits
        circuits.append(low_bits(ctx, rows_of(bits_of.ring, opened[2]), mats[2]["r_bits"], k))
    for job, c, mat in zip(jobs, opened[others:], mats[others:]):
        circuits.append(job.gates(ctx, c, mat["r_bits"]))
    out = run_circuits(ctx, circuits, "cmp-level")
    job_out = out[len(out) - len(jobs) :]
    out = out[: len(out) - len(jobs)]
    every_rows = PendingRowsToArith.begin(ctx, out[2][None], count, ring) if rows is not None else None
    chosen = PendingRowsToArith.begin(ctx, out[-1][list(wanted)], bits_of.size, bits_of.ring) if bits_of else None
    converted = [PendingRowsToArith.begin(ctx, o, job.value.size, job.value.ring) for job, o in zip(jobs, job_out)]
    words = [out[0][0] ^ mat_x["s"], out[1] ^ mat_z["s"]]
    words += [w for p in (every_rows, chosen, *converted) if p is not None for w in p.words()]
    got = open_xor(ctx, words, "b2a")
    below = from_opened_bit(ctx, unpack_lanes(got[0], x.size), x.ring, mat_x["s_arith"])
    zero = from_opened_bit(ctx, unpack_lanes(got[1], z.size), ring, mat_z["s_arith"])
    pos = 2
    every = None
    if every_rows:
        every, pos = Share(every_rows.finish(ctx, got[pos : pos + 1]).data[0], ring, 0), pos + 1
    bits = None
    if chosen:
        bits, pos = chosen.finish(ctx, got[pos : pos + 1]), pos + 1
    done = [p.finish(ctx, got[pos + j : pos + j + 1]) for j, p in enumerate(converted)]
    return Share(below.reshape(x.shape), x.ring, 0), Share(zero.reshape(z.shape), ring, 0), every, bits, done


def less_than(ctx: PartyContext, x: Share, y: Share) -> Share:
    """[x < y], exact while |x - y| < 2^(k-1) in encoded units."""
    return ltz(ctx, x - y)


def greater_equal(ctx: PartyContext, x: Share, y: Share) -> Share:
    """[x >= y] = 1 - [x < y]."""
    return not_bit(ctx, less_than(ctx, x, y))


def less_than_public(ctx: PartyContext, x: Share, c: Any) -> Share:
    """[x < c] for a public real (or array) c, read at x's scale."""
    return ltz(ctx, add_public(ctx, x, -np.asarray(c, dtype=np.float64)))


def greater_equal_public(ctx: PartyContext, x: Share, c: Any) -> Share:
    """[x >= c] for a public c."""
    return not_bit(ctx, less_than_public(ctx, x, c))


def equal_public(ctx: PartyContext, x: Share, c: Any) -> Share:
    """[x == c] for a public c (exact equality of the encodings)."""
    return is_zero(ctx, add_public(ctx, x, -np.asarray(c, dtype=np.float64)))


def not_bit(ctx: PartyContext, b: Share) -> Share:
    """[1 - b] for a shared bit (local)."""
    ring = b.ring
    out = ring.neg(b.data)
    if ctx.is_leader:
        out = ring.add(out, ring.constant(1))
    return Share(out, ring, 0)
