"""Public tables looked up by a small shared index: one opening, whatever the table.

An index i of b bits, XOR-shared bit by bit (the output of a circuit), selects entry T[i]
of public tables. The dealer gives a random b-bit rho, XOR-shared, and the additive
one-hot [delta_j] = [rho == j] for j < 2^b. The parties open i' = i XOR rho, which is
uniform and reveals nothing; then [i == j] = [rho == j XOR i'], so
[T[i]] = sum_j T[j XOR i'] [delta_j] — local, for any number of tables. daBit rows to
convert other bits can travel in the same opening.

Cost per element: b bits opened and 2^b ring elements of dealer material (the one-hot),
so b stays small (5 or 6 here).

Reference: the one-hot "random offset" lookup is folklore in dealer-aided MPC; see e.g.
Keller, "MP-SPDZ", CCS 2020 (lookup tables from a preprocessed one-hot), and Dessouky et
al., "Pushing the communication barrier in secure computation using lookup tables",
NDSS 2017.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets
from mpc.ring import Ring, ring_of
from mpc.share import Share
from protocols.boolean import from_opened_bit, lanes, unpack_lanes
from protocols.opening import open_xor


def _free(p: dict[str, Any]) -> list[Component]:
    return [Component("rho", "xor", (int(p["bits"]), lanes(int(p["n"]))))]


def _derived(p: dict[str, Any]) -> list[Component]:
    return [Component("onehot", "arith", (1 << int(p["bits"]), int(p["n"])), int(p.get("ring", 64)))]


def _index(rows: np.ndarray, n: int) -> np.ndarray:
    """Bit-sliced rows (bit i in row i) to the integers they spell, per element."""
    out = np.zeros(n, dtype=np.int64)
    for i, row in enumerate(rows):
        out |= unpack_lanes(row, n).astype(np.int64) << i
    return out


def _derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(int(p.get("ring", 64)))
    n = int(p["n"])
    rho = _index(s["rho"], n)
    onehot = (np.arange(1 << int(p["bits"]))[:, None] == rho[None, :]).astype(np.uint64)
    return {"onehot": ring.reduce(onehot if ring.native else onehot.astype(object))}


LUT_MASK = MaterialKind("lut_mask", _free, _derived, _derive)
"""A random b-bit rho per element, XOR-shared as rows, and its one-hot additively shared."""


def _permute(onehot: np.ndarray, shift_rows: np.ndarray, n: int) -> np.ndarray:
    """Rows j of the result: row j XOR s of `onehot`, per element (s spelt by `shift_rows`).

    One butterfly stage per bit u of s: where that bit is set, rows j and j XOR 2^u swap.
    A swap of additive shares is a swap of ring elements; it is done as an XOR swap under
    a per-element all-ones mask, on the raw words (uint64, or Python ints in Z_2^128).
    """
    out = onehot.copy()
    rows = np.arange(onehot.shape[0])
    for u, bit_row in enumerate(shift_rows):
        flip = unpack_lanes(bit_row, n).astype(bool)
        low = rows[(rows >> u) & 1 == 0]
        high = low | (1 << u)
        a, b = out[low], out[high]
        if out.dtype == np.uint64:
            d = (a ^ b) & (np.uint64(0) - flip.astype(np.uint64))[None, :]
            out[low], out[high] = a ^ d, b ^ d
        else:
            out[low], out[high] = np.where(flip[None, :], b, a), np.where(flip[None, :], a, b)
    return out


def lookup(
    ctx: PartyContext,
    index: np.ndarray,
    n: int,
    ring: Ring,
    tables: Sequence[Sequence[int]],
    convert: np.ndarray | None = None,
) -> tuple[list[Share], Share | None]:
    """[T[i]] for each public integer table T (length 2^b), i given as b XOR-shared rows. One round.

    1. Open i' = i XOR rho (and, in the same message, `convert` rows XOR daBits).
    2. [i == j] = [rho == j XOR i']: the one-hot's rows permuted per element (one butterfly
       stage per bit of i'), then [T[i]] = sum_j T[j] [i == j] for every table (local).
    Returns the integer shares (frac 0), and the converted rows as additive 0/1 shares,
    shape (rows, n), if any were given.
    """
    bits = int(index.shape[0])
    mat = ctx.dealer(MaterialRequest("lut_mask", {"n": n, "bits": bits, "ring": ring.bits}))
    words = [index ^ mat["rho"]]
    if convert is not None:
        dab = ctx.dealer(MaterialRequest("dabit_rows", {"n": n, "rows": int(convert.shape[0]), "ring": ring.bits}))
        words.append(convert ^ dab["s"])
    opened = open_xor(ctx, words, "lookup-open")
    selected = _permute(mat["onehot"], opened[0], n)
    sums = [ring.zeros((n,)) for _ in tables]
    for j in range(1 << bits):
        for t, table in enumerate(tables):
            if table[j]:
                sums[t] = ring.add(sums[t], ring.mul(selected[j], ring.constant(int(table[j]))))
    out = [Share(total, ring, 0) for total in sums]
    converted = None
    if convert is not None:
        e_bits = np.stack([unpack_lanes(row, n) for row in opened[1]])
        converted = Share(from_opened_bit(ctx, e_bits, ring, dab["s_arith"]), ring, 0)
    return out, converted
