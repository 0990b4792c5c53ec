"""Cox proportional hazards in MPC: Newton-Raphson on Breslow's partial likelihood over a public time grid.

Every time lies on a public grid of G points (`queries.cox`: j = ceil(t / w)), so Breslow's
partial likelihood is exact there. At grid point j, with e_i = exp(x_i' beta), the risk set
R_j = {i: t_i >= j} and d_j the events at j,
    S0_j = sum_{R_j} e_i,   S1_j = sum_{R_j} e_i x_i,   a_j = S1_j / S0_j,
    g = sum_{events} x_i - sum_j d_j a_j,
    H = sum_j d_j (S2_j / S0_j - a_j a_j')          (the information: minus the Hessian),
with S2_j = sum_{R_j} e_i x_i x_i'. Its first term is a sum over rows: sum_j d_j S2_j / S0_j =
sum_i e_i L_i x_i x_i' with L_i = sum_{j <= t_i} d_j / S0_j, Breslow's cumulative baseline hazard
at row i's time; so no per-point S2 is needed (p + 1 risk-set sums, not 1 + p + p(p+1)/2).

Who holds what. Party r holds its rows: x_i in the clear and its at-risk matrix R_r
(rows x G, R_ij = [t_i >= j]), which holds its times. [x | its mean x_r / n_parties], x x' and
R_r are published once, masked by a persistent mask only the owner and the dealer know
(`protocols.owned`); the covariates are also secret-shared once (local: pairwise seeds). beta, e,
L, S0, S1, g and H stay shared; nothing is opened before the end. Every row-level value is in
Z_2^64; only the G-long and p x p values are in Z_2^128.

Schedule (fixed, so its cost does not depend on the data):
0. Shared once: sum_{events} x, d_j and the numbers at risk n_j (local sums), [n_j == 0].
1. `iterations` Newton steps from beta = 0, each:
   a. The coefficients are held as u = beta log2(e), cut to X_FRAC bits (the step starts from that
      point, so the cut adds no error); eta log2(e) = (x - m)' u per row (owned products, Z_2^64,
      X_FRAC bits), centred at m, the mean of the parties' mean covariates (its row of the published
      matrix gives m' u in the same round): adding a constant to every eta leaves a_j, g and H
      unchanged, and keeps eta in exp's range; padding rows get PAD_OFFSET. e = min(2^(eta log2(e)), C)
      (`exp2_capped`, lean, degree 5: relative error ~1e-7 plus E_FRAC's resolution; no product by
      log2(e) to truncate), C = min(2^37 / N, CAP) (N: all parties' padded rows), so that every sum
      below fits.
   b. e x_k by one round of products, e opened once (`protocols.products`); each row's [e | e x]
      at 24 fractional bits (the sums are below 2^37).
   c. [S0 | S1] = sum_r R_r' [e | e x]_r: owned transposed products (one round, Z_2^64; R is
      0/1 so no scale is added), lifted to Z_2^128 with the count of rows at the cap.
   d. S0 prepared once as a divisor (G values; 1 where nobody is at risk), S1 and d normalised in
      its rounds (`protocols.reciprocal.prepare`); a_j = S1_j / S0_j and h_j = d_j / S0_j by one round
      of products and one of truncations; L = R_r h per party (owned products in Z_2^64, 40 fractional bits);
      d_j a_j a_j', d_j a_j and mu = e L, with L as two 20-bit halves (`HALF_BITS`) so that mu keeps
      L's 40 bits; sum_r Z_r' mu_r by owned transposed products (Z_2^64), lifted.
   e. The step (`protocols.cox_steps`): H's diagonal scaling D by powers of two from a table (d and
      log2(e) d from one lookup, cold steps), D H and log2(e) D g in one product, A^-1 (A = D H) by
      Newton-Schulz (from I/p in the first COLD_ITERATIONS steps, warm with LOOP_STEPS afterwards) with
      A^-1 (log2(e) D g) in its last round, untruncated; u + that step cut to X_FRAC bits in one
      truncation. The last step moves beta itself (D g, WARM_STEPS): beta = u ln 2 + delta and g o
      delta in one round (`protocols.trunc_mul.truncate_times`).
   The only error left in e is the polynomial's and the fixed point's, random from row to row, so it
   barely moves a_j = S1_j / S0_j (a ratio: a common factor cancels): the tests hold coefficients and
   standard errors to 1e-4 of statsmodels' (`tests/queries/test_cox.py`).
2. Opened at the end: [some e reached C] (refused: a hazard ratio beyond range, separation; its
   XOR-shared bit opened directly, `open_zero_bits`), [last decrement g.delta < tol] (converged) and
   [I - A A^-1 small] (not singular), these two by one comparator circuit (`open_final_bits`).
   Released, in shares: beta, diag H^-1 (from the last step's information), and the events.

Reference: D. R. Cox, J. R. Stat. Soc. B 34 (1972); N. Breslow, Biometrics 30 (1974) (ties);
lifelines' CoxPHFitter (Breslow ties, Newton-Raphson) is the oracle of the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols.arith import add_public, rescale_up
from protocols.beaver import PendingMul, fixed_matmul, mul, mul_many
from protocols.compare import is_zero
from protocols.convert import extend_ring
from protocols.cox_owned import Limbs, cached, owned_products
from protocols.cox_steps import last, next_point, scalings, step
from protocols.exp_log import exp2_capped
from protocols.linalg import iterations_for
from protocols.logistic import (
    COLD_ITERATIONS,
    LOOP_STEPS,
    WARM_STEPS,
    X_FRAC,
    pair_index,
    pairwise_products,
    symmetric,
)
from protocols.opening import open_arith
from protocols.owned import OwnedMatrix, owned_matvec_many, publish_masked
from protocols.poisson import FAST_DEGREE
from protocols.poisson_steps import open_final_bits, open_zero_bits
from protocols.products import products
from protocols.reciprocal import Prepared, divide_by, prepare
from protocols.sharing import share_inputs
from protocols.truncation import truncate, truncate_each

SUM_BITS = 37
"""Sums of e over all rows stay below 2^SUM_BITS (the cap C = 2^SUM_BITS / N)."""

HAZARD_FRAC = 40
"""Fractional bits of d_j / S0_j in the Z_2^64 product R h (Breslow's cumulative hazard L_i < 2^21)."""

HALF_BITS = 20
"""L = L_hi + 2^-HALF_BITS L_lo, both at HALF_BITS bits: e L_hi and e L_lo at 44 bits fit Z_2^64 (mu < 2^18;
sum mu = the events), and mu keeps L's 40 bits."""

PAD_OFFSET = -64.0
"""Added to a padding row's centred eta: its e is 0 (below Z_2^64's exp range) and never at the cap."""

CAP = 2.0**16
"""Cap on e (Z_2^64's exp holds exp(x) for x < 11.8, at 40 fractional bits)."""

E_FRAC = 24
"""Fractional bits of e (e x at 44 bits stays below 2^63 for e < 2^18)."""

SUM_FRAC = 24
"""Fractional bits of the row terms e W in the Z_2^64 at-risk products: 2^(SUM_BITS + SUM_FRAC) < 2^62,
the bound of the lift to Z_2^128."""

CONDITION = 1e7
"""Condition number the cold Newton-Schulz inversions are sized for (as LOGISTIC's); twice it with the
power-of-two scaling (`protocols.cox_steps.scalings`), which may double a Jacobi-scaled one."""


@dataclass(frozen=True)
class CoxData:
    """The consortium's rows as this party sees them, and the shared constants."""

    x_fast: list[OwnedMatrix]  # every party's published covariates and centre row (Z_2^64, X_FRAC bits)
    z: list[OwnedMatrix]  # every party's published x x' (Z_2^64, X_FRAC fractional bits)
    risk: list[OwnedMatrix]  # every party's published at-risk matrix (Z_2^64, integers)
    limbs: dict[str, tuple[Limbs, Limbs | None]]  # E and A of `z` and `risk`, as limbs
    w_fast: Share  # the covariates of all rows, shared, one row per covariate (Z_2^64, X_FRAC bits)
    event_sum: Share  # sum of x over the events (p)
    events: Share  # d_j (integers, G)
    empty: Share  # [n_j == 0] at the fixed-point scale (G)
    rows: list[int]
    cap: float
    padding: Share  # PAD_OFFSET on every padding row (X_FRAC bits; the owner's share, the others' 0)


@dataclass(frozen=True)
class CoxShares:
    """This party's shares of the released values, and the bits the fit opened."""

    coef: Share
    inverse_diag: Share
    events: Share
    converged: bool
    singular: bool
    over_cap: bool


def local_constants(x: np.ndarray, points: np.ndarray, event: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """This party's sum of x over its events, and per grid point [events, patients at risk] (integers)."""
    dead = event == 1
    counts = np.zeros((2, grid), dtype=np.int64)
    np.add.at(counts[0], points[dead], 1)
    np.add.at(counts[1], points, 1)
    counts[1] = np.cumsum(counts[1][::-1])[::-1]
    return x[dead].sum(axis=0), counts


def at_risk(points: np.ndarray, rows: int, grid: int) -> np.ndarray:
    """R (rows x grid): R_ij = 1 when row i's time point is at or after j; padding rows are never at risk."""
    out = np.zeros((rows, grid), dtype=np.uint64)
    out[: len(points)] = (np.arange(grid)[None, :] <= points[:, None]).astype(np.uint64)
    return out


def setup(
    ctx: PartyContext, x: np.ndarray, points: np.ndarray, event: np.ndarray, rows: Sequence[int], grid: int
) -> CoxData:
    """Publish every party's masked covariates and at-risk matrix, share [x | x x'] and the constants.

    `x`: this party's scaled design (|x| <= 1), `points` its rows' grid points (0 .. grid - 1),
    `event` 0/1, `rows` every party's padded row count (padding rows at the end)."""
    fixed, precise = ctx.fixed, ctx.precise
    ring, f = precise.ring, precise.frac
    n_real, p = x.shape
    padded = np.zeros((rows[ctx.rank], p))
    padded[:n_real] = np.round(x * 2.0**X_FRAC) / 2.0**X_FRAC  # the fit's covariates: X_FRAC bits
    everyone = list(range(ctx.n))
    q = p * (p + 1) // 2
    z = np.round(pairwise_products(padded) * 2.0**X_FRAC) / 2.0**X_FRAC
    centre = padded.sum(axis=0) / max(n_real, 1) / ctx.n  # this party's part of m: the parties' mean x, averaged
    xs_fast = publish_masked(ctx, everyone, {ctx.rank: fixed.encode(np.vstack([padded, centre]), X_FRAC)},
                             {r: (rows[r] + 1, p) for r in everyone}, "cox-X-fast", fixed.ring, X_FRAC)
    zs = publish_masked(ctx, everyone, {ctx.rank: fixed.encode(z, X_FRAC)}, {r: (rows[r], q) for r in everyone},
                        "cox-Z", fixed.ring, X_FRAC)
    risk = publish_masked(ctx, everyone, {ctx.rank: at_risk(points, rows[ctx.rank], grid)},
                          {r: (rows[r], grid) for r in everyone}, "cox-R", fixed.ring, 0)
    start = sum(rows[: ctx.rank])
    full = np.zeros((p, sum(rows)))
    full[:, start : start + rows[ctx.rank]] = padded.T
    w_fast = _summed(share_inputs(ctx, fixed.encode(full, X_FRAC), fixed.ring, X_FRAC, "cox-X-fast"))
    offsets = np.zeros(sum(rows))
    offsets[start + n_real : start + rows[ctx.rank]] = PAD_OFFSET
    event_sum, counts = local_constants(padded[:n_real], points, event, grid)
    mine = np.concatenate([precise.encode(event_sum), counts.ravel().astype(object)])
    consts = _summed(share_inputs(ctx, mine, ring, 0, "cox-constants"))
    events = consts[p : p + grid]
    empty = is_zero(ctx, consts[p + grid :])
    return CoxData(xs_fast, zs, risk, cached([*zs, *risk]), w_fast, consts[:p].with_frac(f), events,
                   rescale_up(empty, f), list(rows), min(2.0**SUM_BITS / sum(rows), CAP),
                   Share(fixed.ring.reduce(fixed.encode(offsets, X_FRAC)), fixed.ring, X_FRAC))


def _summed(shares: list[Share]) -> Share:
    total = shares[0]
    for s in shares[1:]:
        total = total + s
    return total


def derivatives(ctx: PartyContext, data: CoxData, u: Share) -> tuple[Share, Share, Share]:
    """g, the pairs of H (Z_2^128, 40 bits) at beta = u ln 2 (u = beta log2(e): Z_2^64, X_FRAC bits), and the
    number of rows whose e reached the cap (Z_2^128, integer): step 1a-d, the rows in Z_2^64."""
    precise, fast = ctx.precise, ctx.fixed.ring
    f = precise.frac
    p = u.size
    q = p * (p + 1) // 2
    ring = precise.ring
    parts = owned_matvec_many(ctx, [(om, u, False) for om in data.x_fast], "cox-eta")
    centre = _summed([v[-1:] for v in parts])  # m' u
    eta_u = truncate(ctx, concat([v[:-1] for v in parts]) - centre, X_FRAC) + data.padding  # eta log2(e)
    e, above, low = _fast_rows(ctx, data, eta_u)
    sums = _transposed(ctx, data, data.risk, low, "cox-risk-sets")
    count = Share(fast.sum(above.data).reshape(1), fast, 0)
    grid = sums[0].size
    lifted = extend_ring(ctx, Share(np.concatenate([*(s.data for s in sums), count.data]), fast, SUM_FRAC))
    big = rescale_up(Share(lifted.data[:-1].reshape(p + 1, grid), ring, SUM_FRAC), f - SUM_FRAC)
    s0 = big[0] + data.empty
    a, h = _over_s0(ctx, s0, [big[k] for k in range(1, p + 1)] + [data.events])  # a_j = S1_j / S0_j, d_j / S0_j
    # Breslow's cumulative baseline hazard at each row's time: L_i = sum_{j <= t_i} d_j / S0_j = (R h)_i
    h_fast = _to_fast(ctx, h.reshape(1, grid), HAZARD_FRAC)[0]
    hazard = concat(owned_products(ctx, data.limbs, [(om, h_fast) for om in data.risk], False, "cox-hazard"))
    hazard_hi, hazard_lo = _halves(ctx, hazard)
    index = pair_index(p)
    left = Share(np.stack([a.data[j] for j, _ in index]), ring, f)
    right = Share(np.stack([a.data[m] for _, m in index]), ring, f)
    d = Share(np.broadcast_to(data.events.data, (p, grid)).copy(), ring, 0)
    grid_products = PendingMul.begin(ctx, [(left, right), (d, a)])
    row_products = PendingMul.begin(ctx, [(e, hazard_hi), (e, hazard_lo)])
    opened = open_arith(ctx, grid_products.shares() + row_products.shares(), "cox-products")
    aa, da = grid_products.finish(ctx, opened[:2])
    mu_hi, mu_lo = row_products.finish(ctx, opened[2:])
    # mu = e L at SUM_FRAC bits (sum_i mu_i is the number of events)
    aa, mu_hi, mu_lo = truncate_each(ctx, [(aa, f), (mu_hi, mu_hi.frac - SUM_FRAC),
                                           (mu_lo, mu_lo.frac + HALF_BITS - SUM_FRAC)])
    mu = Share(fast.add(mu_hi.data, mu_lo.data), fast, SUM_FRAC).reshape(1, mu_hi.size)
    (daa,) = mul_many(ctx, [(Share(np.broadcast_to(data.events.data, (q, grid)).copy(), ring, 0), aa)])
    # sum_j d_j S2_j / S0_j = sum_i e_i L_i x_i x_i' = Z' mu: owned transposed products with the published x x'
    zmu = _transposed(ctx, data, data.z, mu, "cox-information")[0]
    zmu = extend_ring(ctx, zmu)
    zmu = truncate(ctx, zmu, zmu.frac - f)
    g = data.event_sum - Share(ring.sum(da.data, axis=1), ring, f)
    h_pairs = zmu - Share(ring.sum(daa.data, axis=1), ring, f)
    return g, h_pairs, Share(lifted.data[-1:], ring, 0)


def _over_s0(ctx: PartyContext, s0: Share, numerators: list[Share]) -> tuple[Share, Share]:
    """[S1_j / S0_j] (p x G) and [d_j / S0_j] from the numerators [S1 rows..., d], at the ring's frac: S0
    prepared once (`protocols.reciprocal.prepare`, the numerators normalised in its rounds), then one
    product round and one truncation round for all of them (`divide_by` on the divisor repeated)."""
    k = len(numerators)
    prep, nums = prepare(ctx, s0, numerators=numerators)

    def tiled(x: Share) -> Share:
        return Share(np.tile(x.data, k), x.ring, x.frac)

    every = Prepared(prep.y_frac, tiled(prep.s_tab), prep.shift, tiled(prep.m), tiled(prep.w), tiled(prep.c))
    q = divide_by(ctx, concat(nums), every)
    grid = s0.size
    return q[: (k - 1) * grid].reshape(k - 1, grid), q[(k - 1) * grid :]


def _halves(ctx: PartyContext, x: Share) -> tuple[Share, Share]:
    """A Z_2^64 share at 2 HALF_BITS bits as hi + 2^-HALF_BITS lo, both at HALF_BITS bits (|lo| < 2)."""
    hi = truncate(ctx, x, x.frac - HALF_BITS)
    lo = x.ring.sub(x.data, x.ring.lshift(hi.data, x.frac - HALF_BITS))
    return hi, Share(lo, x.ring, HALF_BITS)


def _fast_rows(ctx: PartyContext, data: CoxData, eta_u: Share) -> tuple[Share, Share, Share]:
    """From eta log2(e) in Z_2^64 at X_FRAC bits: (e at E_FRAC bits, the cap bits, [e | e x] at SUM_FRAC
    bits), all in Z_2^64: e = 2^(eta log2(e)) capped at C (`exp2_capped`, degree FAST_DEGREE, lean) at
    E_FRAC bits, and e x by one round of products."""
    fast = ctx.fixed.ring
    e, above = exp2_capped(ctx, eta_u, data.cap, out_frac=E_FRAC, degree=FAST_DEGREE, lean=True)
    ex = products(ctx, [(e, data.w_fast[j]) for j in range(data.w_fast.shape[0])])
    cut = truncate(ctx, Share(np.stack([v.data for v in ex]), fast, ex[0].frac), ex[0].frac - SUM_FRAC)
    low = Share(np.concatenate([fast.lshift(e.data, SUM_FRAC - E_FRAC)[None, :], cut.data]), fast, SUM_FRAC)
    return e, above, low


def _to_fast(ctx: PartyContext, x: Share, frac: int) -> Share:
    """A Z_2^128 share cut to `frac` fractional bits and read in Z_2^64 (its value must fit)."""
    cut = truncate(ctx, x, x.frac - frac)
    return Share(ctx.fixed.ring.reduce(cut.data), ctx.fixed.ring, frac)


def _transposed(ctx: PartyContext, data: CoxData, matrices: list[OwnedMatrix], columns: Share,
                label: str) -> list[Share]:
    """For each row c of `columns` (c, all parties' rows): sum_r M_r' columns[c]_r, in one round."""
    items = []
    start = 0
    for om, r in zip(matrices, data.rows):
        items.append((om, Share(columns.data[:, start : start + r].T.copy(), columns.ring, columns.frac)))
        start += r
    parts = owned_products(ctx, data.limbs, items, True, label)
    total = _summed(parts)
    return [total[:, c] for c in range(columns.shape[0])]


def fit(ctx: PartyContext, data: CoxData, iterations: int, tol: float) -> CoxShares:
    """The fixed schedule of the module docstring."""
    precise = ctx.precise
    ring = precise.ring
    p = data.w_fast.shape[0]
    ns_steps = iterations_for(2 * CONDITION, p, precise.frac)
    u = Share(ring.zeros((p,)), ring, X_FRAC)  # beta log2(e), on the X_FRAC grid
    u_fast = Share(ctx.fixed.ring.zeros((p,)), ctx.fixed.ring, X_FRAC)
    inv_a: Share | None = None
    d = d_u = None
    for i in range(iterations):
        g, h, above = derivatives(ctx, data, u_fast)
        if i < COLD_ITERATIONS or d is None or d_u is None:
            d, d_u = scalings(ctx, symmetric(h, p))
            inv_a, steps = None, ns_steps
        else:
            steps = LOOP_STEPS if i < iterations - 1 else WARM_STEPS
        if i < iterations - 1:
            raw, inv_a, _ = step(ctx, g, h, p, inv_a, steps, d, d_u)  # the step in u
            u_fast, u = next_point(ctx, u, raw)
        else:
            raw, inv_a, a = step(ctx, g, h, p, inv_a, steps, d, d)  # the step in beta
            beta, by_g = last(ctx, u, raw, g)
    assert inv_a is not None and d is not None and iterations > 0
    decrement = Share(ring.sum(by_g.data).reshape(1), ring, by_g.frac)
    (inside,) = open_zero_bits(ctx, above)
    residual = add_public(ctx, -fixed_matmul(ctx, a, inv_a), np.eye(p))  # I - A A^-1
    (small,), within = open_final_bits(ctx, add_public(ctx, decrement, -float(tol)), residual, 1e-6)
    diag = Share(np.array([inv_a.data[j, j] for j in range(p)], dtype=object), ring, inv_a.frac)
    inv_diag = truncate(ctx, mul(ctx, diag, d), precise.frac)
    total = Share(ring.sum(data.events.data).reshape(1), ring, 0)
    return CoxShares(beta, inv_diag, total, small, not within, not inside)
