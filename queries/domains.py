"""Group domains: the union of the values present at any party, revealing only the union.

A grouping column's domain (GROUP BY, CROSSTAB, C() terms) is either declared in
configuration or the union of the non-null values present at any party. `local_values`
is a party's own part; `private_union` forms the union in MPC so that every party learns
the sorted union and nothing about which party holds which value, nor how many values any
party holds.

What `private_union` reveals, to every party:
  * the union of the values (its purpose);
  * per attempt, which hash buckets the union occupies and whether two distinct values of
    the union share a bucket (then the next attempt uses a fresh salt and more buckets).
    Both are functions of the union and of public parameters (salt, bucket counts), so they
    add nothing to the union itself;
  * the public parameters: the number of grouping columns, the encoding cap.
It does not reveal any party's own set, its size, or how many parties hold a value. A value
longer than the encoding cap fails the query at the party holding it (a clear local error;
the others see that party abort) — declaring the domain avoids it.

Protocol (Z_2^64, all grouping columns batched; B buckets per column, L limbs per value):
  1. Each party encodes its distinct values canonically (`encode_value`: a type tag and
     UTF-8 text, at most 8L - 1 bytes), hashes each to a bucket h = SHA-256(salt, column,
     value) mod B, and builds its occupancy vector o_i (0/1 per bucket), the limbs E_i of
     its value in each occupied bucket, and lambda_i = how many of its values landed in a
     bucket it already occupies.
  2. All parties share o_i (no round with pairwise seeds, see `protocols.sharing`);
     C = sum_i o_i counts the parties per bucket.
  3. Open [C == 0] for every bucket (one batched equality test, one opening): the set of
     occupied buckets, a function of the union alone. Further steps touch only those m.
  4. Share o_i, E_i at the occupied buckets and lambda_i (no round with pairwise seeds).
  5. First-holder weights: w_0 = o_0; with p = 1 - o_0, w_i = o_i p and p <- p - w_i
     (n - 1 multiplication rounds); [E] = sum_i w_i E_i, the first holder's value (one round).
  6. Collision test: d_i = o_i (E_i - E) (one round); every d_i is zero exactly when all
     holders of a bucket hold the same value. Open only the bit
     [ (number of nonzero d_i) + sum_i lambda_i == 0 ] (two equality tests, one opening).
  7. If the bit is 1, open [E] (one round) and decode; otherwise retry with the next salt and
     bucket count. No value is opened in an attempt that had a collision.
Rounds per successful attempt: 3 equality tests (5 rounds each in Z_2^64) + n + 4 = 19 + n
(two more without pairwise seeds); an attempt that finds a collision stops one round earlier.

The weights in step 5 follow the usual "first one" prefix; the collision check replaces the
oblivious sort-and-deduplicate of a private set union (e.g. Blanton & Aguiar, "Private and
oblivious set and multiset operations", AsiaCCS 2012), which would cost O(N log^2 N)
comparisons; here the work is linear in the bucket count and the rounds are constant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mpc.context import PartyContext
from mpc.dealer import phase
from mpc.ring import Ring
from mpc.share import Share, concat
from protocols.beaver import mul_many
from protocols.compare import is_zero
from protocols.opening import open_arith
from protocols.sharing import public, share_inputs
from queries.errors import SchemaError
from queries.ir import Value

LIMBS = 8
"""Limbs of 8 bytes per encoded value: values of up to 8 * LIMBS - 2 bytes of text."""

BUCKET_BITS = (10, 12, 14, 16, 18)
"""log2 of the bucket count of each attempt; a union whose values still collide at the last
is refused (declare the domain instead). With u distinct values an attempt fails with
probability about u^2 / 2B."""

Domains = dict[str, tuple[Value, ...]]


# -- a party's own part ----------------------------------------------------------------------------
def _python(v: Any) -> Value:
    item = v.item() if isinstance(v, np.generic) else v
    if isinstance(item, bool):
        return int(item)
    if isinstance(item, float) and item.is_integer() and abs(item) < 2**63:
        return int(item)
    return item  # type: ignore[no-any-return]


def local_values(frame: pd.DataFrame, column: str) -> tuple[Value, ...]:
    """The distinct non-null values of `column` at this party, sorted (never leaves the party)."""
    if column not in frame.columns:
        raise SchemaError(f"unknown column {column!r}")
    return tuple(sorted({_python(v) for v in frame[column].dropna().unique()}))


def encode_value(value: Value, limbs: int = LIMBS) -> bytes:
    """Canonical bytes of a domain value: a type tag, then the text; whole floats count as integers."""
    v = _python(value)
    if isinstance(v, str):
        raw = b"s" + v.encode("utf-8")
    elif isinstance(v, int):
        raw = b"i" + str(v).encode()
    elif isinstance(v, float):
        raw = b"f" + repr(v).encode()
    else:
        raise SchemaError(f"a grouping value of type {type(v).__name__} is not supported")
    if len(raw) > 8 * limbs - 1:
        raise SchemaError(
            f"a grouping value is longer than {8 * limbs - 2} bytes; declare the column's domain in configuration"
        )
    return raw


def decode_value(raw: bytes) -> Value:
    tag, text = raw[:1], raw[1:].decode("utf-8")
    if tag == b"s":
        return text
    if tag == b"i":
        return int(text)
    if tag == b"f":
        return float(text)
    raise ValueError("not an encoded domain value")


def _to_limbs(raw: bytes, limbs: int) -> np.ndarray:
    padded = (bytes([len(raw)]) + raw).ljust(8 * limbs, b"\0")
    return np.frombuffer(padded, dtype=">u8").astype(np.uint64)


def _from_limbs(words: np.ndarray) -> bytes:
    padded = np.asarray(words, dtype=np.uint64).astype(">u8").tobytes()
    return padded[1 : 1 + padded[0]]


def bucket(salt: bytes, column: int, raw: bytes, bits: int) -> int:
    """The public hash bucket of an encoded value in one attempt."""
    digest = hashlib.sha256(len(salt).to_bytes(4, "big") + salt + column.to_bytes(4, "big") + raw).digest()
    return int.from_bytes(digest[:8], "big") % (1 << bits)


# -- the union in MPC --------------------------------------------------------------------------------
def _sum(shares: Iterable[Share]) -> Share:
    total: Share | None = None
    for s in shares:
        total = s if total is None else total + s
    assert total is not None
    return total


def _repeat(s: Share, times: int) -> Share:
    return Share(np.repeat(s.data, times), s.ring, s.frac)


def _attempt(
    ctx: PartyContext, encoded: list[list[bytes]], salt: bytes, bits: int, limbs: int
) -> list[list[bytes]] | None:
    """One attempt of steps 1-7: the union's encodings per column, or None after a collision."""
    ring: Ring = ctx.fixed.ring
    size = 1 << bits
    occ = np.zeros(len(encoded) * size, dtype=np.uint64)
    enc = np.zeros((len(encoded) * size, limbs), dtype=np.uint64)
    clashes = 0
    for c, values in enumerate(encoded):
        for raw in values:
            b = c * size + bucket(salt, c, raw, bits)
            if occ[b]:
                clashes += 1
                continue
            occ[b] = 1
            enc[b] = _to_limbs(raw, limbs)
    with phase(ctx.material, f"domain-buckets/{ctx.n}/{len(encoded)}/{bits}/{limbs}/{ring.bits}"):
        counts = _sum(share_inputs(ctx, occ, ring, 0, "domain-occupancy"))  # step 2
        (empty,) = open_arith(ctx, [is_zero(ctx, counts)], "domain-buckets")  # step 3
    live = np.flatnonzero(np.asarray(empty, dtype=np.uint64) == 0)
    m = len(live)
    if m == 0:
        return [[] for _ in encoded]
    with phase(ctx.material, f"domain-values/{ctx.n}/{m}/{limbs}/{ring.bits}"):
        mine = np.concatenate([occ[live], enc[live].ravel(), np.array([clashes], dtype=np.uint64)])
        inputs = share_inputs(ctx, mine, ring, 0, "domain-values")  # step 4
        o = [s[:m] for s in inputs]
        e = [s[m : m + m * limbs] for s in inputs]
        lam = _sum(s[m * (limbs + 1) :] for s in inputs)
        weights = [o[0]]  # step 5
        rest = public(ctx, np.ones(m, dtype=np.uint64), ring, 0) - o[0]
        for oi in o[1:]:
            (w,) = mul_many(ctx, [(oi, rest)])
            weights.append(w)
            rest = rest - w
        value = _sum(mul_many(ctx, [(_repeat(w, limbs), ei) for w, ei in zip(weights, e)]))
        diffs = mul_many(ctx, [(_repeat(oi, limbs), ei - value) for oi, ei in zip(o, e)])  # step 6
        same = is_zero(ctx, concat(diffs))
        differing = public(ctx, np.array([same.size], dtype=np.uint64), ring, 0) - Share(
            ring.sum(same.data).reshape(1), ring, 0
        )
        (clean,) = open_arith(ctx, [is_zero(ctx, differing + lam)], "domain-clean")
        if int(clean[0]) != 1:
            return None
    (opened,) = open_arith(ctx, [value], "domain-open")  # step 7
    words = np.asarray(opened, dtype=np.uint64).reshape(m, limbs)
    out: list[list[bytes]] = [[] for _ in encoded]
    for index, row in zip(live.tolist(), words):
        out[index // size].append(_from_limbs(row))
    return out


def private_union(
    ctx: PartyContext,
    mine: Mapping[str, Sequence[Value]],
    salt: bytes,
    limbs: int = LIMBS,
    bucket_bits: Sequence[int] = BUCKET_BITS,
) -> Domains:
    """The sorted union over all parties of each column's values; every party calls it with the
    same columns (in the same order), salt and parameters. See the module docstring."""
    columns = list(mine)
    encoded = [sorted({encode_value(v, limbs) for v in mine[c]}) for c in columns]
    for attempt, bits in enumerate(bucket_bits):
        got = _attempt(ctx, encoded, salt + b"/" + str(attempt).encode(), bits, limbs)
        if got is not None:
            return {c: tuple(sorted(decode_value(raw) for raw in vals)) for c, vals in zip(columns, got)}  # type: ignore[type-var]
    raise SchemaError(
        "the grouping columns have too many distinct values to form their union; declare their domains"
    )


def union_domains(
    ctx: PartyContext,
    frame: pd.DataFrame,
    columns: Sequence[str],
    declared: Mapping[str, Sequence[Value]] | None = None,
    salt: bytes | None = None,
) -> Domains:
    """Domains of `columns`: the declared ones as given, the others by `private_union` of this
    party's `local_values` (salt: the session by default, so every query draws fresh buckets)."""
    return union_values(ctx, {c: local_values(frame, c) for c in dict.fromkeys(columns)}, declared, salt)


def union_values(
    ctx: PartyContext,
    local: Mapping[str, Sequence[Value]],
    declared: Mapping[str, Sequence[Value]] | None = None,
    salt: bytes | None = None,
) -> Domains:
    """As `union_domains`, from this party's distinct values of each column (`local`, e.g. read
    by a data source: `queries.sources.Source.values`)."""
    declared = declared or {}
    wanted = [c for c in local if c not in declared]
    found = (
        private_union(ctx, {c: tuple(local[c]) for c in wanted}, ctx.session.encode() if salt is None else salt)
        if wanted
        else {}
    )
    return {c: tuple(declared[c]) if c in declared else found[c] for c in local}
