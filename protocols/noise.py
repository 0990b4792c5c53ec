"""Noise drawn inside MPC: discrete Laplace samples that no party and not the dealer know.

Differential privacy adds noise to every released number. Here the noise is sampled in
shares, so it is known to nobody: no coalition of up to n - 1 parties, not the dealer
(whose material only masks what is opened), not the analyst (who sees value + noise).
The mechanism is discrete — the two-sided geometric ("discrete Laplace") distribution on
the integers, P(z) = (1 - q) / (1 + q) q^|z| with q = exp(-1/t) — and the sampler uses
integer arithmetic only, so the floating-point attacks on textbook Laplace samplers
(Mironov, CCS 2012) do not apply. t is in the units of the integer the noise is added to:
for a fixed-point value with f fractional bits, sensitivity D and privacy parameter eps,
t = D 2^f / eps (`scale_for`).

The construction:

* Z = G1 - G2 for two independent geometric variables, P(G = k) = (1 - q) q^k.
* The binary digits of a geometric variable are independent: q^k = prod_i (q^(2^i))^(b_i)
  for k = sum_i 2^i b_i, so bit i is 1 with probability p_i = q^(2^i) / (1 + q^(2^i)).
* A coin of bias p_i is [u < T_i] for a uniform 64-bit u and the public integer
  T_i = round(p_i 2^64), computed exactly (`decimal`, 40 digits) — never in floats.
* u is the XOR of one uniform 64-bit word from every party, drawn from that party's own
  operating-system randomness (never from the seed it shares with the dealer). Each
  party's word *is* its XOR share of u, so making u costs nothing, and u is uniform to
  anyone who misses a single party's word.
* Bits i >= B, where T_B = 0 (p_B < 2^-65), are left out: `laplace_distance` bounds the
  total variation distance this and the rounding of T_i leave: at most (B + 1) 2^-64,
  below 2^-58 for every t accepted in Z_2^64 (t <= 2^48, B <= 54).

Every coin of every element of a call is decided in one comparator circuit (three levels:
`protocols.circuits.borrow_out_gates` on 64 rows) and converted to an additive bit with a
daBit (one round): 4 rounds in all, whatever the number of values. A party sends each peer
1184 bytes per 64 coins (`laplace_bytes`), i.e. about 37 B bytes per value with
B ~ log2(45 t) + 1.

References: Ghosh, Roughgarden, Sundararajan, "Universally Utility-Maximizing Privacy
Mechanisms", STOC 2009 (the geometric mechanism); Dwork, Kenthapadi, McSherry, Mironov,
Naor, "Our Data, Ourselves", EUROCRYPT 2006 (noise generated jointly by the parties);
Champion, shelat, Ullman, "Securely Sampling Biased Coins with Applications to
Differential Privacy", CCS 2019 (a coin of bias p by comparing a joint uniform value with p).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import lru_cache
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.prg import Prg, fresh_seed
from mpc.ring import Ring
from mpc.share import Share
from protocols.bits import rows_to_arith
from protocols.boolean import lanes, not_public, to_slices
from protocols.circuits import Circuit, borrow_out_gates, borrow_out_words, generate_propagate, levels, run_circuits

UNIFORM_BITS = 64
"""Bits of the uniform value each coin is decided by: its bias is exact to 2^-65."""
ROUNDS = levels(UNIFORM_BITS) + 1
"""Rounds of one call of `discrete_laplace`: the comparator's levels and the conversion."""
_CUTOFF = Decimal(100)  # exp(-100) < 2^-144: a coin this unlikely has T = 0 without computing exp
_DIGITS = 40

WordSource = Callable[[tuple[int, ...]], np.ndarray]
"""A party's supply of uniform uint64 words (its contribution), given the shape wanted."""


def fresh_words(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform words from a one-off seed of the operating system (what a node uses)."""
    return Prg(fresh_seed()).words("pooled-noise", shape)


def seeded_words(seed: bytes) -> WordSource:
    """Uniform words from a fixed seed: reproducible draws, for tests only."""
    prg = Prg(seed)
    return lambda shape: prg.words("pooled-noise", shape)


def scale_for(sensitivity: Any, epsilon: Any, frac: int = 0) -> np.ndarray:
    """t = sensitivity 2^frac / epsilon: the discrete Laplace scale for an eps-DP release of a
    value with f = frac fractional bits that one person changes by at most `sensitivity`."""
    s, e = np.asarray(sensitivity, dtype=np.float64), np.asarray(epsilon, dtype=np.float64)
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError("a sensitivity must be a positive number")
    if not (np.all(np.isfinite(e)) and np.all(e > 0)):
        raise ValueError("epsilon must be a positive number")
    return np.asarray(s * 2.0**frac / e)


def bit_thresholds(t: float) -> list[int]:
    """T_i = round(2^64 q^(2^i) / (1 + q^(2^i))) for i = 0 .. B-1, q = exp(-1/t); T_B = 0.

    Decimal arithmetic with 40 digits: p_i 2^64 is within 10^-18 of its true value, so T_i
    is the correctly rounded integer unless the true value is that close to a half-integer.
    A scale's thresholds are computed once per process (every draw and every sampler at that
    scale reads the same public table).
    """
    return list(_thresholds_of(float(t)))


@lru_cache(maxsize=1024)
def _thresholds_of(t: float) -> tuple[int, ...]:
    out: list[int] = []
    with localcontext() as dec:
        dec.prec = _DIGITS
        inv_t, one, top = 1 / Decimal(t), Decimal(1), Decimal(2**UNIFORM_BITS)
        while True:
            x = Decimal(2 ** len(out)) * inv_t  # -ln q^(2^i)
            if x > _CUTOFF:
                return tuple(out)
            threshold = int((top / (one + x.exp())).to_integral_value(ROUND_HALF_EVEN))
            if threshold == 0:
                return tuple(out)
            out.append(threshold)


def laplace_bits(t: float) -> int:
    """B: the binary digits a geometric variable of scale t is drawn with."""
    return len(bit_thresholds(t))


def laplace_distance(t: float) -> float:
    """An upper bound on the total variation distance between the sampled and the exact
    discrete Laplace distribution of scale t.

    Each geometric's bits are independent, so its distance is at most the sum over bits of
    |p_i - T_i 2^-64| (rounding) plus P(some bit i >= B is 1) <= sum_{i >= B} p_i <= x / (1 - x)
    with x = q^(2^B) (each later term is at most x times the one before); Z = G1 - G2 at most
    doubles it.
    """
    with localcontext() as dec:
        dec.prec = _DIGITS
        inv_t, one, top = 1 / Decimal(t), Decimal(1), Decimal(2**UNIFORM_BITS)
        thresholds = bit_thresholds(t)
        rounding = sum((abs(one / (one + (Decimal(2**i) * inv_t).exp()) - Decimal(c) / top)
                        for i, c in enumerate(thresholds)), Decimal(0))
        x_tail = Decimal(2 ** len(thresholds)) * inv_t
        tail = Decimal(0) if x_tail > _CUTOFF else (-x_tail).exp() / (one - (-x_tail).exp())
        return float(2 * (rounding + tail))


def _coins(t: Any, size: int) -> int:
    """Coins of one call: two geometrics of B bits per value, B the largest of the call."""
    if size == 0:
        return 0
    return 2 * max(laplace_bits(float(s)) for s in np.unique(_scales(t, size))) * size


_OPENED, _DEALT = borrow_out_words(UNIFORM_BITS)  # the comparator tree on 64 rows, per word of coins


def laplace_bytes(t: Any, size: int) -> int:
    """Bytes one party sends each peer for `discrete_laplace(ctx, t, size, ...)`.

    Per 64 coins (one word of every row): the opened words of the comparator tree's gates
    (`protocols.circuits.borrow_out_words`) and one word for the conversion.
    """
    coins = _coins(t, size)
    return (_OPENED + 1) * 8 * lanes(coins) if coins else 0


def laplace_dealer_bytes(t: Any, size: int, ring: Ring) -> int:
    """Bytes the dealer sends the last party for the same call: the gates' dealer words
    (`protocols.circuits.borrow_out_words`), one ring element per coin (the daBits' additive halves)."""
    coins = _coins(t, size)
    return _DEALT * 8 * lanes(coins) + coins * ring.element_bytes if coins else 0


def _scales(t: Any, size: int) -> np.ndarray:
    given = np.asarray(t, dtype=np.float64)
    if given.size not in (1, size):
        raise ValueError(f"{given.size} noise scales for {size} values: give one, or one per value")
    scales = np.broadcast_to(given.ravel(), (size,))
    if not (np.all(np.isfinite(scales)) and np.all(scales > 0)):
        raise ValueError("a noise scale t must be a positive, finite number")
    return scales


def _threshold_table(scales: np.ndarray, ring: Ring) -> np.ndarray:
    """T[i, e] for element e's scale, as uint64, shape (B, size), B the largest of them."""
    limit = 2.0 ** (ring.bits - 16)
    if np.any(scales > limit):
        raise ValueError(f"a noise scale t of {float(scales.max()):g} is too large for Z_2^{ring.bits} "
                         f"(at most 2^{ring.bits - 16})")
    unique, index = np.unique(scales, return_inverse=True)
    per_scale = [bit_thresholds(float(s)) for s in unique]
    width = max(1, max(len(th) for th in per_scale))
    table = np.zeros((len(unique), width), dtype=np.uint64)
    for row, th in zip(table, per_scale):
        row[: len(th)] = th
    return np.ascontiguousarray(table[index.ravel()].T)


def coin_gates(ctx: PartyContext, thresholds: np.ndarray, words: np.ndarray) -> Circuit:
    """XOR-shared coins [u < T] for public uint64 thresholds T (m of them) and the uniform u
    whose XOR shares are `words`, bit-sliced (64 rows of lanes(m) words). One row; 6 levels.

    [u < T] = [c < r] with c = 2^64 - 1 - T (public) and r = NOT u (shared): the borrow out
    of c - r, by the comparator tree on g = r AND NOT c, p = NOT (r XOR c).
    """
    m = int(thresholds.size)
    if words.shape != (UNIFORM_BITS, lanes(m)):
        raise ValueError(f"contribution of shape {words.shape}, expected {(UNIFORM_BITS, lanes(m))}")
    c_rows = to_slices(np.bitwise_not(np.ascontiguousarray(thresholds, dtype=np.uint64)).reshape(-1, 1))
    g, p = generate_propagate(ctx, c_rows, not_public(ctx, words))
    return (yield from borrow_out_gates(g, p))


def discrete_laplace(
    ctx: PartyContext, t: Any, size: int, ring: Ring, *, source: WordSource = fresh_words
) -> Share:
    """[Z] for `size` independent discrete Laplace draws, P(z) ~ exp(-|z| / t), integer
    shares (frac 0) in `ring`. `t` is a positive scale or one per element. 4 rounds.

    1. Public thresholds T[j, i, e] = round(2^64 p_i(t_e)) for the two geometrics j, bits
       i < B (`bit_thresholds`).
    2. Each party draws one uniform 64-bit word per coin from `source` (its own randomness):
       these words are its XOR shares of u, uniform and known to nobody.
    3. b[j, i, e] = [u < T] for every coin at once (`coin_gates`, 3 rounds).
    4. b to additive shares with daBits (`protocols.bits.rows_to_arith`, 1 round).
    5. [Z_e] = sum_i 2^i (b[0, i, e] - b[1, i, e]) (local).
    `source` is for tests: a node always uses `fresh_words`.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"the number of noise values must be a non-negative integer, got {size!r}")
    size = int(size)
    if size == 0:
        return Share(ring.zeros((0,)), ring, 0)
    table = _threshold_table(_scales(t, size), ring)  # (B, size)
    width = table.shape[0]
    thresholds = np.concatenate([table.ravel(), table.ravel()])  # geometric j, bit i, element e
    m = int(thresholds.size)
    words = np.ascontiguousarray(source((UNIFORM_BITS, lanes(m))), dtype=np.uint64)
    (coins,) = run_circuits(ctx, [coin_gates(ctx, thresholds, words)], "noise-level")
    bits = rows_to_arith(ctx, coins.reshape(1, -1), m, ring).data.reshape(2, width, size)
    weights = ring.reduce(np.array([1 << i for i in range(width)], dtype=object)).reshape(width, 1)
    g1 = ring.sum(ring.mul(bits[0], weights), axis=0)
    g2 = ring.sum(ring.mul(bits[1], weights), axis=0)
    return Share(ring.sub(g1, g2), ring, 0)


def add_laplace(ctx: PartyContext, x: Share, t: Any, *, source: WordSource = fresh_words) -> Share:
    """[x + Z]: x with discrete Laplace noise of scale t (in x's encoded units: one unit is
    2^-frac) added to every element, at x's scale. 4 rounds (`discrete_laplace`).

    The noise lands on x's own grid: to release x with noise on a coarser grid, truncate x
    to that grid first, or the bits below the grid are released exactly.
    """
    z = discrete_laplace(ctx, t, x.size, x.ring, source=source)
    return Share(x.ring.add(x.data, z.data.reshape(x.shape)), x.ring, x.frac)
