"""Released values as (mantissa, exponent): full relative precision at any magnitude.

A fixed-point value with 40 fractional bits has the absolute resolution 2^-40, so a small
variance would reach the analyst with few significant bits, and scaling one back from a
column's public scale 2^s (s < 0) would shift its low bits away. Instead the parties
normalise such values on shares, as the divisions do for their divisors
(`protocols.normalize`), and release two shares per value, nothing being opened to them:

1. The leading one p of each value's raw integer y (2^p <= y < 2^(p+1)), secretly, for
   every value of every group in one call (`protocols.normalize.exponent`).
2. The public table S(p) = 2^(K - p) (local: the exponent is one block, its one-hot converted)
   and (y 2^F + u) S (one round of products,
   S opened once): read with K + 1 + F fractional bits it is the mantissa y 2^-(p+1) in
   [1/2, 1), every bit of y kept (no truncation), followed by F bits of u, the parties' sum
   of uniform draws below 2^F (`NOISE_BITS`): below the value's last place they are uniform,
   so the mantissa's length does not show how many bits y has at its (secret) scale. S is 0
   where y is, and so is u S: a zero stays exactly zero.
3. The exponent E = p + 1 - 40 + k as an integer share (local: `protocols.normalize.offsets`),
   k the value's public power of two (the column's scale, applied exactly here); a zero
   value keeps mantissa 0 and exponent 0, so no scale is ever shown to the analyst.
4. Each party adds a uniform addend below 2^-(F + 1) of the mantissa, where the value is
   nonzero (`releases`): with the F bits of u, every bit below y's last place is uniform.

Means (AVG) may be negative: their leading one is that of |y|, the sign bit XORed into the
others before the search (`exponent(signed=True)`, no extra round). With a standard
deviation among the values, the square root's own normalisation serves the variances
(`releases`), so STDDEV and VAR cost no round beyond the square root.

The analyst reconstructs mantissa · 2^E in float64 (`queries.engine.finish_result`). The
exponent tells the analyst nothing beyond the value itself.
Rounds: the exponent's (the opening, 4 + 1 levels of interval tests at the queries' bound,
`protocols.leading`; the one-hot converted, so the tables are local), 1 product: 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.normalize import Blur, exponent, offsets, tables
from protocols.products import products
from protocols.roots import sqrt_normalised_nonzero
from queries.aggregates import STAGES

NOISE_BITS = 42
"""F: every mantissa carries F uniform bits below the value's last place, and a uniform addend
below 2^-(F + 1) of it (a relative change below n_sites 2^-43); the mantissa, of K + 1 ~ 80 bits
for the queries' bound, must fit the ring with F + 6 bits to spare."""


@dataclass(frozen=True)
class Floating:
    """A value released as (mantissa, exponent), with products still to add before the release:
    each (a, b, to_exponent) adds a b to the exponent (True) or to the mantissa (False)."""

    mantissa: Share
    exponent: Share
    pending: tuple[tuple[Share, Share, bool], ...] = ()


def settle(value: Floating, products: list[Share]) -> Floating:
    """`value` with its pending products (in order) added."""
    mantissa, exp = value.mantissa, value.exponent
    for (_, _, to_exponent), prod in zip(value.pending, products):
        if to_exponent:
            exp = exp + prod
        else:
            mantissa = mantissa + prod
    return Floating(mantissa, exp)


def normalise(
    ctx: PartyContext, items: list[tuple[Share, int]], bound: float, signed: bool = False,
    floor: Sequence[bool] | None = None, shifts: Sequence[Share] | None = None,
) -> list[tuple[Share, Share, Share]]:
    """(mantissa, exponent, [v != 0]) shares of v 2^k for each (v, k): v at the precise scale,
    0 <= v < bound (|v| < bound if `signed`), k a public integer; mantissa in [1/2, 1) ((-1, -1/2]
    for negative v, 0 for v = 0; up to n_sites 2^-p beyond, p y's leading one, from the noise)
    with K + 1 + F ~ 122 fractional bits, F uniform below y's last place; exponent an integer
    share. All values batched; see the module docstring, steps 1-3. `floor`, per item: a negative
    value (|v| < bound) is released as 0, mantissa and exponent (`protocols.normalize.exponent`),
    in the same rounds. `shifts`, per item: an integer share c (of v's shape) added to the exponent
    where v is nonzero, c [v != 0], its product in the round of the mantissa's."""
    if not items:
        return []
    values = [v for v, _ in items]
    flat = concat(values)
    ring, f = flat.ring, flat.frac
    marks = [mark for (v, _), mark in zip(items, floor or [False] * len(items)) for _ in range(v.data.size)]
    e = exponent(ctx, flat, bound, signed=signed, floor=marks, by_intervals=True, single_block=True)
    blur = Blur(NOISE_BITS)
    blur.check(e)
    k_top = e.top - 1
    s_tab, gate = tables(ctx, e, [lambda p: 1 << (k_top - p), blur.gate(e)])
    # (y 2^F + u) 2^(K - p) / 2^(K + 1 + F): y's bits, shifted, none lost, then uniform ones
    nonzero = e.linear(ctx, lambda p: 1)
    pairs = blur.pairs(ctx, e, Share(flat.data.ravel(), ring, 0), s_tab, gate)
    if shifts is not None:
        pairs.append((concat(list(shifts)), nonzero))
    prods = products(ctx, pairs)
    raw = blur.mantissa(prods[:4])
    mantissa = raw.with_frac(k_top + 1 + NOISE_BITS)
    extra = [k for v, k in items for _ in range(v.data.size)]
    powers = offsets(ctx, e, lambda p: p + 1 - f, extra)  # a zero keeps exponent 0: no scale shown
    if shifts is not None:
        powers = powers + prods[4]
    parts = [split_like(x.reshape(*flat.shape), values) for x in (mantissa, powers, nonzero)]
    return list(zip(*parts))


def releases(
    ctx: PartyContext,
    means: list[tuple[Share, int, Share]],
    variances: list[tuple[Share, int, Share]],
    roots: list[bool],
    bound: float,
) -> tuple[list[Floating], list[Floating]]:
    """(mantissa, exponent) of each mean m 2^(k - c) (any sign) and of each variance v 4^(k - c)
    (roots[j] False) or its square root sqrt(v) 2^(k - c); every |value| below `bound` before
    the scale, k public, c a secret integer share per element (`queries.group_scales`).

    With a root among them, one normalised square root of all the variances gives the
    variances and roots (`protocols.roots.sqrt_normalised`: the rounds of a square root) and
    the means are normalised on their own; otherwise one signed normalisation takes all.
    The secret c enters as the product -c [v != 0] (-2c for a variance), so that a zero keeps
    exponent 0: without a root in the round of the mantissas' products (`normalise`), with one as
    a pending product. A mean's or variance's mantissa (the fixed-point value's bits,
    shifted) would show by its trailing zeros how many bits that has, i.e. the group's scale
    2^c: it carries NOISE_BITS uniform bits below the value's last place (`normalise`; for the
    variances, `sqrt_normalised_nonzero`'s `noise`), and each party adds a uniform addend below
    2^-(NOISE_BITS + 1) of it where it is nonzero (another pending product), so that every bit
    below the value's own is uniform, however few bits the value has at its group's scale.
    A root's mantissa is computed (`protocols.roots`), not shifted, and needs neither.
    """
    mean_items = [(v, k) for v, k, _ in means]
    shifts = [c.scale_int(-1) for _, _, c in means] + [c.scale_int(-1 if root else -2) for (_, _, c), root in
                                                       zip(variances, roots)]
    if not any(roots):
        floor = [False] * len(means) + [True] * len(variances)  # a variance a hair below 0 is released as 0
        out = normalise(ctx, mean_items + [(v, 2 * k) for v, k, _ in variances], bound, signed=bool(means),
                        floor=floor, shifts=shifts)
        settled = [Floating(m, e) for m, e, _ in out]
        return settled[: len(means)], settled[len(means) :]
    shares = [v for v, _, _ in variances]
    flat = concat(shares)
    scales = [k for v, k, _ in variances for _ in range(v.data.size)]
    (vm, ve), (rm, re), nz = sqrt_normalised_nonzero(ctx, flat, bound, scales, blur=Blur(NOISE_BITS))
    parts = zip(*(split_like(x, shares) for x in (vm, ve, rm, re, nz)))
    spread = [(r_m, r_e, n, True) if root else (v_m, v_e, n, False) for (v_m, v_e, r_m, r_e, n), root in
              zip(parts, roots)]
    firsts = [(m, e, nz, False) for m, e, nz in normalise(ctx, mean_items, bound, signed=True)]
    released = []
    for (m, e, nz, _), c in zip(firsts + spread, shifts):
        released.append(Floating(m, e, ((c, nz, True),)))
    return released[: len(means)], released[len(means) :]


def floated(func: str) -> bool:
    """Whether an aggregate is released as (mantissa, exponent) (`queries.aggregates.STAGES`)."""
    return STAGES[func].release is not None
