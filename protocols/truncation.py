"""Fixed-point truncation: divide a shared value by 2^m after a multiplication.

The protocol opens x masked by a dealer-supplied random r, after shifting x so its top
bit is known to be zero; that knowledge makes the wrap-around of x + r computable from
the public top bit of the opened value and a shared top bit of r, so the result is exact
up to one unit in the last place — there is no probability of a large error, unlike the
local truncation of SecureML or CrypTen's, as long as |x| < 2^(k-2).

Reference: Escudero, Ghosh, Keller, Rachuri, Scholl, "Improved Primitives for MPC over
Mixed Arithmetic-Binary Circuits", CRYPTO 2020, Section 5 (truncation with a known-zero
most significant bit); Dalskov, Escudero, Keller, "Secure Evaluation of Quantized Neural
Networks", PETS 2020.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.share import Share, concat, split_like
from protocols.opening import open_arith


def truncate(ctx: PartyContext, x: Share, m: int) -> Share:
    """[x / 2^m] for |x| < 2^(k-2); error at most one unit in the last place. One round.

    With k the ring's bits, r uniform, r' = r mod 2^(k-1) and b = msb(r) from the dealer:
    1. y = x + 2^(k-2): now 0 <= y < 2^(k-1) (party 0 adds the constant).
    2. Open c = y + r.
    3. The addition wrapped exactly when b = 1 and msb(c) = 0, so [w] = (1 - msb(c)) [b].
    4. [y >> m] = (c' >> m) - [r' >> m] - [b] 2^(k-1-m) + [w] 2^(k-m), with c' = c mod 2^(k-1)
       and the msb(c) part added back as msb(c) 2^(k-1-m) (off by at most one ulp).
    5. Return [y >> m] - 2^(k-2-m).
    """
    if m == 0:
        return x
    (out,) = truncate_many(ctx, [x], m)
    return out


def truncate_many(ctx: PartyContext, xs: Sequence[Share], m: int) -> list[Share]:
    """`truncate` of several shares of one ring in a single round."""
    return truncate_each(ctx, [(x, m) for x in xs])


def truncate_each(ctx: PartyContext, items: Sequence[tuple[Share, int]]) -> list[Share]:
    """Truncate each share by its own number of bits; all openings share one round.

    Shares are grouped by (ring, bits); each group takes one piece of dealer material, and
    the masked values of every group travel in the same message.
    """
    out: list[Share | None] = [x if m == 0 else None for x, m in items]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (x, m) in enumerate(items):
        if m:
            groups.setdefault((x.ring.bits, m), []).append(i)
    prepared = []
    for (_, m), idx in groups.items():
        flat = _flat([items[i][0] for i in idx])
        ring, k = flat.ring, flat.ring.bits
        if not 0 < m < k - 2:
            raise ValueError(f"cannot truncate {m} bits in Z_2^{k}")
        if flat.frac < m:
            raise ValueError(f"cannot truncate {m} bits from a value with {flat.frac} fractional bits")
        mat = ctx.dealer(MaterialRequest("trunc", {"shape": [flat.size], "f": m, "ring": k}))
        masked = ring.add(flat.data, mat["r"])  # a new array: the caller's x is left as it was
        if ctx.is_leader:  # y = x + 2^(k-2), added to the new array
            shift = ring.constant(1 << (k - 2))
            if ring.native:
                masked += shift
            else:
                masked = ring.add(masked, shift)
        prepared.append((idx, m, flat, mat, Share(masked, ring, flat.frac)))
    if not prepared:
        return [o for o in out if o is not None]
    opened = open_arith(ctx, [p[4] for p in prepared], "trunc")
    for (idx, m, flat, mat, _), c in zip(prepared, opened):
        for i, piece in zip(idx, split_like(_finish(ctx, flat, m, c, mat), [items[i][0] for i in idx])):
            out[i] = piece
    return [o for o in out if o is not None]


def _flat(shares: list[Share]) -> Share:
    """The shares as one flat vector: a view of a single share's data, else a new array."""
    if len(shares) == 1:
        return Share(shares[0].data.reshape(-1), shares[0].ring, shares[0].frac)
    return concat(shares)


def _finish(ctx: PartyContext, flat: Share, m: int, c: np.ndarray, mat: Mapping[str, np.ndarray]) -> Share:
    """Steps 3-5 of `truncate` for an opened c (which this overwrites: it is the opening's fresh array)."""
    ring = flat.ring
    if ring.native:
        return Share(_finish_u64(ctx.is_leader, m, c, mat["r_shift"], mat["r_msb"]), ring, flat.frac - m)
    k = ring.bits
    r_shift, r_msb = mat["r_shift"], mat["r_msb"]
    c_msb = ring.msb(c)
    c_low = ring.sub(c, ring.lshift(ring.reduce(c_msb), k - 1))
    not_c_msb = ring.reduce((np.uint64(1) - c_msb).astype(np.uint64) if ring.native else 1 - c_msb.astype(np.int64))
    w = ring.mul(r_msb, not_c_msb)
    out = ring.neg(r_shift)
    out = ring.sub(out, ring.lshift(r_msb, k - 1 - m))
    out = ring.add(out, ring.lshift(w, k - m))
    if ctx.is_leader:
        public_part = ring.add(ring.rshift_logical(c_low, m), ring.lshift(ring.reduce(c_msb), k - 1 - m))
        out = ring.add(out, public_part)
        out = ring.sub(out, ring.constant(1 << (k - 2 - m)))
    return Share(out, ring, flat.frac - m)


def _finish_u64(leader: bool, m: int, c: np.ndarray, r_shift: np.ndarray, r_msb: np.ndarray) -> np.ndarray:
    """Steps 3-5 in Z_2^64 in six passes over the data, with one new array.

    The terms of step 4 that hold [b] combine into one product with a public factor:
    -[b] 2^(63-m) + (1 - msb(c)) [b] 2^(64-m) = [b] (1 - 2 msb(c)) 2^(63-m), and the public
    part (c' >> m) + msb(c) 2^(63-m) is c >> m. So every party computes
    [b] (2^(63-m) - msb(c) 2^(64-m)) - [r' >> m], and party 0 adds c >> m - 2^(62-m).
    """
    out = np.right_shift(c, np.uint64(63))  # msb(c)
    np.left_shift(out, np.uint64(64 - m), out=out)
    np.subtract(np.uint64(1 << (63 - m)), out, out=out)  # 2^(63-m) (1 - 2 msb(c)), modulo 2^64
    np.multiply(out, r_msb, out=out)
    np.subtract(out, r_shift, out=out)
    if leader:
        out += np.right_shift(c, np.uint64(m), out=c)
        out -= np.uint64(1 << (62 - m))
    return out
