"""MEDIAN and QUANTILE: exact order statistics that no party learns.

For each (column, q) and group, with n the pooled non-null count (pandas' 'linear' rule):

1. h = (n - 1) q as (n - 1) round(q 2^56) in Z_2^128, with no truncation; one bit
   decomposition gives lo = floor(h) exactly and w = h - lo to 40 fractional bits.
2. The order statistics at ranks lo + 1 and lo + 2, by `protocols.rank_select` over every
   party's order keys (`queries.order_keys`). Each party fills a public number of slots:
   its table's row count (before WHERE) rounded up to a power of two, at least 64.
3. The two keys back to fixed point (40 fractional bits), in MPC: an integer or fixed-point
   key by converting its bits; a float key by a lookup on (sign, exponent code) giving the signed
   power of two, times the mantissa, truncated once.
4. x_lo + w (x_hi - x_lo): the order statistics exact to 40 fractional bits, the
   interpolation within 2^-40 (|x_hi - x_lo| + 2).

Nothing is opened but uniformly masked values: no party learns a count, a rank, a
comparison or the result. Suppressed and empty groups run the same steps on meaningless
ranks (the caller multiplies their values by zero), so the search needs no hiding for
them. Where lo + 2 exceeds n (h = n - 1 exactly), w is exactly 0 and the bounded
meaningless x_hi is multiplied by 0.

Cost: 1 round to agree on the slot counts, none of their own for the ranks (their bit
decomposition's 6 rounds run beside the disclosure flags: `rank_input`), the search (5 rounds per
step of SEARCH_BITS bits: ceil((e + 2) / 2) steps for an integer column, ceil((e + 42) / 2) for a
fixed-point key (e <= 18), 30 for a float key, where e is the column's opened scale:
`queries.scaling.exponents`, 2 rounds before the flags, shared with other columns' scales), then
2 rounds with integer keys only, 3 with a fixed-point key, 5 with a float key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mpc.context import PartyContext
from mpc.ring import RING64, Ring
from mpc.share import Share, concat
from protocols.arith import add_public
from protocols.beaver import mul_many
from protocols.bits import rows_to_arith
from protocols.boolean import pack_lanes
from protocols.lookup import lookup
from protocols.rank_select import COUNT_BITS, Layout, owner_bits, select_ranks
from protocols.truncation import truncate_each
from queries.local import LocalData
from queries.order_keys import (
    FIXED_FRAC,
    check_range,
    fixed_keys,
    fixed_scale,
    float_keys,
    float_scale_tables,
    int_keys,
    int_scale,
    key_bits,
)
from queries.plan import SEARCH_BITS, Plan
from queries.table import numeric

MIN_SLOTS = 64
MAX_SLOTS = 1 << 26
_FLOAT_SHIFT = 54  # the float decoding's low powers are raised by 2^54, then truncated once
_Q_BITS = 56  # q's fractional bits: (n - 1) q is exact to far below the result's resolution


def slots_for(rows: int) -> int:
    """A party's public slot count: its row count rounded up to a power of two, at least 64."""
    return max(MIN_SLOTS, 1 << max(0, math.ceil(math.log2(max(rows, 1)))))


def quantiles(
    ctx: PartyContext, plan: Plan, local: LocalData, rank_bits: Share | None, hidden: dict[tuple[str, float], Share],
    scales: Mapping[tuple[str, str], int],
) -> dict[tuple[str, float], Share]:
    """Shares (precise ring, fixed point, one per group) of every (column, q) of the plan.

    `rank_bits`: the bits `rank_input` asks for, as additive 0/1 shares (the caller decomposes
    them beside other tests: `protocols.compare.signs_zeros_and_jobs`), None without quantiles.
    `hidden` is not needed: nothing in the search depends on it or reveals it. `scales` holds
    every integer quantile column's opened ("bound", col) = e, max |x| <= 2^e (`queries.scaling.exponents`),
    which sizes its order keys and so the number of search steps.
    """
    del hidden
    stats = list(dict.fromkeys(plan.quantiles))
    if not stats or rank_bits is None:
        return {}
    g = plan.groups
    slots = _agree_slots(ctx, slots_for(max(local.table_rows, len(local.frame))))
    lo, w = _ranks(ctx, rank_bits)
    bound = [scales[("bound", col)] for col, _ in stats for _ in range(2 * g)]
    integer = [col in plan.integer_columns for col, _ in stats for _ in range(2 * g)]
    layout = Layout(slots, tuple(key_bits(i, e) for i, e in zip(integer, bound)), SEARCH_BITS)
    keys, member = _slot_keys(plan, local, stats, slots[ctx.rank], scales)
    low = np.array([int(v) & ((1 << 64) - 1) for v in lo.data], dtype=np.uint64)  # a share mod 2^64
    one = np.uint64(1 if ctx.is_leader else 0)
    ranks = Share(np.concatenate([low[k * g : (k + 1) * g] + one * np.uint64(j) for k in range(len(stats))
                                  for j in (1, 2)]), RING64, 0)
    bits = select_ranks(ctx, layout, owner_bits(layout, keys, member), ranks)
    offsets = [_offset(i, e) for i, e in zip(integer, bound)]
    values = _decode(ctx, bits, offsets, layout.widths)
    out = _interpolate(ctx, values, w, [col in plan.integer_columns for col, _ in stats], g)
    return {key: out[stats.index(key)] for key in plan.quantiles}


def _agree_slots(ctx: PartyContext, mine: int) -> tuple[int, ...]:
    """Every party's slot count (one round); a count that is not a power of two in range fails."""
    got = [int(b.decode()) for b in ctx.all_to_all(str(mine).encode(), "quantile-slots")]
    for rank, s in enumerate(got):
        if not MIN_SLOTS <= s <= MAX_SLOTS or s & (s - 1):
            raise ValueError(f"party {rank} announced {s} quantile slots: not a power of two in [64, 2^26]")
    return tuple(got)


def rank_input(ctx: PartyContext, plan: Plan, counts: dict[str, Share]) -> tuple[Share, list[int]] | None:
    """Step 1's value, h 2^96 = (n - 1) 2^40 round(q 2^56) for every (column, q) and group
    concatenated (Z_2^128, exact), and which of its bits lo and w are read from; None without
    quantiles. `counts[col]`: the pooled non-null count per group (fixed point).

    h 2^96 is below 2^126 for counts below 2^30: lo is its bits 96..125 and w its bits 56..95.
    """
    stats = list(dict.fromkeys(plan.quantiles))
    if not stats:
        return None
    scaled = [add_public(ctx, counts[col], -1.0).scale_int(round(q * 2**_Q_BITS)) for col, q in stats]
    point = ctx.precise.frac + _Q_BITS
    return concat(scaled), list(range(point - ctx.precise.frac, point + COUNT_BITS))


def _ranks(ctx: PartyContext, bits: Share) -> tuple[Share, Share]:
    """lo = floor((n - 1) q) (integers) and w = (n - 1) q - lo to 40 fractional bits (floor),
    every (column, q) and group concatenated, in Z_2^128, from the bits `rank_input` asks for
    (local: the bit decomposition's 9 rounds run beside the disclosure flags)."""
    fp = ctx.precise
    f = fp.frac
    parts = bits.data.T
    weights = fp.ring.reduce(np.array([1 << j for j in range(parts.shape[1])], dtype=object))
    w = Share(fp.ring.matmul(parts[:, :f], weights[:f]), fp.ring, f)
    lo = Share(fp.ring.matmul(parts[:, f:], weights[:COUNT_BITS]), fp.ring, 0)
    return lo, w


def _slot_keys(
    plan: Plan, local: LocalData, stats: list[tuple[str, float]], slots: int, scales: Mapping[tuple[str, str], int]
) -> tuple[np.ndarray, np.ndarray]:
    """This party's keys and membership per search (stat, lo|hi, group), shape (S, slots)."""
    g = plan.groups
    by_column: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for col, _ in stats:
        if col in by_column:
            continue
        x = numeric(local.frame, col)
        present = ~np.isnan(x)
        values = x[present]
        check_range(values, col)
        keys = np.zeros(slots, dtype=np.uint64)
        groups = np.full(slots, -1, dtype=np.int64)
        e = scales[("bound", col)]
        if col in plan.integer_columns:
            keys[: values.size] = int_keys(values, e)
        else:
            keys[: values.size] = float_keys(values) if fixed_scale(e) is None else fixed_keys(values, e)
        groups[: values.size] = local.group[present]
        by_column[col] = keys, groups
    keys_out = np.zeros((len(stats) * 2 * g, slots), dtype=np.uint64)
    member = np.zeros(keys_out.shape, dtype=bool)
    for k, (col, _) in enumerate(stats):
        keys, groups = by_column[col]
        for j in range(2 * g):
            keys_out[2 * g * k + j] = keys
            member[2 * g * k + j] = groups == j % g
    return keys_out, member


def _offset(integer: bool, scale: int) -> int | None:
    """A key's public offset: 2^e for an integer key, 2^(e + 40) for a fixed-point key (its value is
    x 2^40), None for a floating-point key."""
    if integer:
        return 1 << int_scale(scale)
    e = fixed_scale(scale)
    return None if e is None else 1 << (e + FIXED_FRAC)


def _decode(ctx: PartyContext, bits: np.ndarray, offsets: list[int | None], widths: tuple[int, ...]) -> np.ndarray:
    """The searched keys' values in Z_2^128, per search: this party's share of the integer x
    for an integer key, of x 2^40 (fixed point) for a fixed-point or float key.

    Integer and fixed-point keys (offsets[s] = 2^e or 2^(e + 40)): the key's bits summed, less the
    offset (one round). Float keys (60 bits, sign s on top; offset None): the magnitude's bits are
    b_j XOR NOT s; one lookup on (s, exponent code) gives the signed powers `high` and `low`
    (`float_scale_tables`) and, in the same round, the mantissa M as an integer (and the other
    keys' bits); x = (2^52 + M) high + trunc((2^52 + M) low, 54): two more rounds.
    """
    fp = ctx.precise
    f, ring = fp.frac, fp.ring
    count = bits.shape[0]
    mag = bits.copy()
    floats = [s for s in range(count) if offsets[s] is None]
    for s in floats:
        mag[s, :59] ^= bits[s, 59] ^ (np.uint64(1) if ctx.is_leader else np.uint64(0))
    weights = ring.reduce(np.array([1 << j for j in range(64)], dtype=object))
    width = max((w for w, o in zip(widths, offsets) if o is not None), default=1)
    offset = ring.reduce(np.array([o or 0 for o in offsets], dtype=object))
    if not floats:
        rows = np.stack([pack_lanes(mag[:, j]) for j in range(width)])
        key = rows_to_arith(ctx, rows, count, ring)
        return _minus_offset(ctx, ring, ring.matmul(key.data.T, weights[:width]), offset)
    index = np.stack([pack_lanes(mag[:, 52 + j]) for j in range(7)] + [pack_lanes(bits[:, 59])])
    convert = np.stack([pack_lanes(mag[:, j]) for j in range(max(52, width))])
    high, low = float_scale_tables(f, _FLOAT_SHIFT)
    (t_high, t_low), conv = lookup(ctx, index, count, ring, [high, low], convert=convert)
    assert conv is not None
    mantissa = ring.matmul(conv.data[:52].T, weights[:52])
    direct = _minus_offset(ctx, ring, ring.matmul(conv.data[:width].T, weights[:width]), offset)
    if ctx.is_leader:
        mantissa = ring.add(mantissa, ring.constant(1 << 52))
    m = Share(mantissa, ring, 0)
    a, b = mul_many(ctx, [(m, t_high.with_frac(f)), (m, t_low.with_frac(f + _FLOAT_SHIFT))])
    (b,) = truncate_each(ctx, [(b, _FLOAT_SHIFT)])
    return np.where(np.array([o is not None for o in offsets]), direct, (a + b).data)


def _minus_offset(ctx: PartyContext, ring: Ring, value: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """value - offset per search (party 0 subtracts)."""
    return ring.sub(value, offset) if ctx.is_leader else value


def _interpolate(ctx: PartyContext, x: np.ndarray, w: Share, integer: list[bool], g: int) -> list[Share]:
    """x_lo + w (x_hi - x_lo) per stat, at 40 fractional bits (x from `_decode`, laid out
    stat by stat: g lo's, then g hi's). Two rounds; one for integer columns only, whose
    difference is an integer, so that w x diff needs no truncation."""
    f = ctx.precise.frac
    ring = w.ring
    pairs, lows = [], []
    for k, is_int in enumerate(integer):
        x_lo = Share(x[2 * g * k : 2 * g * k + g], ring, 0 if is_int else f)
        x_hi = Share(x[2 * g * k + g : 2 * g * (k + 1)], ring, 0 if is_int else f)
        pairs.append((w[k * g : (k + 1) * g], x_hi - x_lo))
        lows.append(Share(ring.lshift(x_lo.data, f), ring, f) if is_int else x_lo)
    products = mul_many(ctx, pairs)
    scaled = truncate_each(ctx, [(p, 0 if is_int else f) for p, is_int in zip(products, integer)])
    return [lo + s for lo, s in zip(lows, scaled)]
