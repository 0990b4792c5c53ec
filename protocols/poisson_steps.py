"""The steps of `protocols.poisson`'s fit that cost rounds and are worth saving them on: a Newton step
with its products riding in Newton-Schulz's rounds, a cold inversion's power-of-two scaling, the
coefficients' truncations in one round, and the bits opened at the end by one circuit each.

Each is the composition of existing protocols (`protocols.newton_schulz`, `protocols.normalize`,
`protocols.truncation`, `protocols.compare`'s and `protocols.circuits`' gates); what it saves is
said in its docstring and measured by the POISSON round snapshots (`tests/queries/snapshots`).
"""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share, concat
from protocols.arith import add_public, rescale_up
from protocols.bits import masked, rows_of
from protocols.boolean import unpack_lanes
from protocols.circuits import Circuit, all_ones, all_ones_gates, run_circuits
from protocols.compare import sign_gates
from protocols.logistic import symmetric
from protocols.newton_schulz import newton_schulz_times
from protocols.normalize import exponent, tables
from protocols.opening import open_xor
from protocols.poisson_parts import LOG2E
from protocols.regression import RECIPROCAL_SHIFT, rescale
from protocols.truncation import truncate_each

DIAGONAL_BOUND = 2.0**24
"""Above every diagonal entry of an information matrix (Z'mu' <= N C = 2^21) and of X'W0X (<= N)."""


def identity_start(ctx: PartyContext, p: int) -> Share:
    precise = ctx.precise
    start = precise.encode(np.eye(p) / p) if ctx.is_leader else precise.ring.zeros((p, p))
    return Share(start, precise.ring, precise.frac)


def fused_step(
    ctx: PartyContext, g: Share, h: Share, p: int, inv_a: Share | None, steps: int, d: Share | None = None
) -> tuple[Share, Share, Share, Share]:
    """`protocols.poisson.newton_step` in fewer rounds: D (`power_scaling`) from a table rather than a
    reciprocal, D g riding with D H and A^-1 (D g) with Newton-Schulz's last round. Returns the step
    untruncated (at twice the precise scale: `advance`), A^-1, d and A."""
    hmat = symmetric(h, p)
    if d is None:
        d = power_scaling(ctx, hmat)
    a, scaled = rescale(ctx, d, hmat, g)
    inv_a, raw = newton_schulz_times(ctx, a, identity_start(ctx, p) if inv_a is None else inv_a, steps, scaled)
    return raw, inv_a, d, a


def power_scaling(ctx: PartyContext, m: Share) -> Share:
    """[d] with d_j = 2^-e_j, 2^(e_j - 1) <= M_jj < 2^e_j (held at frac + RECIPROCAL_SHIFT bits): Jacobi's
    scaling to within a factor two, from M_jj's leading one and a table (`protocols.normalize`), in a
    third of the reciprocal's rounds. d_j M_jj lies in [1/2, 1), so A = D M keeps its eigenvalues in
    (0, p] and I/p stays a safe Newton-Schulz start; A's condition number is at most twice Jacobi's,
    one more step (`protocols.poisson.CONDITION`). M_jj must be below DIAGONAL_BOUND."""
    p = m.shape[0]
    diag = Share(np.array([m.data[j, j] for j in range(p)], dtype=m.data.dtype), m.ring, m.frac)
    frac = m.frac + RECIPROCAL_SHIFT
    # M_jj's raw encoding lies in [2^q, 2^(q+1)) for q its leading one: d_j = 2^(m.frac - 1 - q)
    (d,) = tables(ctx, exponent(ctx, diag, DIAGONAL_BOUND), [lambda q: 1 << (frac + m.frac - 1 - q)])
    return d.with_frac(frac)


def open_zero_bits(ctx: PartyContext, x: Share) -> list[bool]:
    """Open [x == 0] for each element of x: `protocols.compare.is_zero`'s circuit, its XOR-shared
    bits opened directly (one round rather than a conversion and an opening)."""
    c, mat = masked(ctx, x, "cmp-open")
    same = mat["r_bits"] ^ ~rows_of(x.ring, c) if ctx.is_leader else mat["r_bits"]
    (word,) = open_xor(ctx, [all_ones(ctx, same, "eqz-level")], "eqz-open")
    return [bool(v) for v in unpack_lanes(word, x.size)]


def open_final_bits(ctx: PartyContext, gaps: Share, residual: Share, tolerance: float) -> tuple[list[bool], bool]:
    """Open [gap < 0] for each of `gaps` and [every |residual| < tolerance] (`protocols.open_sign`'s
    `open_less_than_public` and `all_within` side by side): one masked opening, the comparator over
    all of them, the AND tree over the residual's signs, one opening of the XOR-shared bits: the
    same bits in 7 rounds fewer than `less_than_public`, `reveal_int` and `all_within` in turn."""
    ring = residual.ring
    flat = residual.reshape(residual.size)
    bounds = add_public(ctx, concat([flat, -flat]), -float(tolerance))
    values = Share(np.concatenate([gaps.data, bounds.data]), ring, 0)
    opened, mat = masked(ctx, values, "cmp-open")
    (word,) = run_circuits(ctx, [_final_gates(ctx, ring, gaps.size, opened, mat["r_bits"])], "final-level")
    (bits,) = open_xor(ctx, [word], "final-open")
    out = unpack_lanes(bits, 64 * bits.shape[0]).astype(bool)
    return [bool(v) for v in out[: gaps.size]], bool(out[64 * (bits.shape[0] - 1)])


def _final_gates(ctx: PartyContext, ring: Ring, k: int, opened: np.ndarray, r_bits: np.ndarray) -> Circuit:
    """The sign bits of the opened values, then the AND tree over all but the first k: words whose
    first ones hold the k signs and whose last one holds the AND (in its lowest bit)."""
    msb = yield from sign_gates(ctx, ring, [opened], r_bits)
    row = msb[0]
    idx = np.arange(k, opened.size)
    bits = (row[idx // 64] >> (idx % 64).astype(np.uint64)) & np.uint64(1)  # one element per row
    every = yield from all_ones_gates(bits.reshape(-1, 1))
    return np.concatenate([row[: (k + 63) // 64], every.reshape(-1)])


def advance(ctx: PartyContext, beta: Share, raw: Share) -> tuple[Share, Share]:
    """beta + delta in Z_2^128, and (beta + delta) log2(e) in Z_2^64 at the fast scale (what `eta_fast`
    multiplies), from the untruncated step `raw`: both truncations in one round, the second of
    (beta 2^m + raw) log2(e) with log2(e) on the fast grid (m: the step's extra bits)."""
    extra = raw.frac - beta.frac
    f = ctx.fixed.frac
    scaled = (rescale_up(beta, extra) + raw).scale_int(int(round(LOG2E * 2**f)))
    delta, down = truncate_each(ctx, [(raw, extra), (scaled.with_frac(raw.frac + f), raw.frac)])
    return beta + delta, Share(ctx.fixed.ring.reduce(down.data), ctx.fixed.ring, f)
