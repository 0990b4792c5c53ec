"""AND gates of fan-in 2 to 4 on XOR-shared words, a whole level of them in one round.

A log-depth circuit built from two-input ANDs spends ceil(log2 w) rounds on w inputs; with
four-input ANDs (and the three-input ones a combine of spans needs) it spends ceil(log4 w),
half as many. The dealer makes that possible. A *family* is a few XOR-shared variables x_1..x_v
(word arrays of one shape) and the monomials wanted of them, each the AND of 2 to 4 variables;
for it the dealer hands out masks a_1..a_v and XOR shares of A_T = AND_{i in T} a_i for every
subset T (two or more members) of a wanted monomial, and one opening per variable gives every
monomial:

1. Open d_i = x_i XOR a_i for every variable of every family of the level (one word per variable
   and peer, all families in one message).
2. For a monomial S: AND_{i in S} x_i = AND_{i in S} (d_i XOR a_i) = XOR over T subset of S of
   (AND_{i in S - T} d_i) AND [A_T], with A_{} the all-ones word (party 0 alone adds the public
   AND_{i in S} d_i) and A_{i} = a_i.
Each d_i is x_i under a fresh uniform mask, so the opening shows nothing; a family of two
variables and their product is a boolean Beaver triple. A variable shared by several monomials
(the P of a span in G = G_3 XOR P_3 G_2 XOR P_3 P_2 G_1 XOR ..., `protocols.circuits`) is
opened once. The dealer's part is one word per subset A_T (11 for one monomial of 4).

Reference: Beaver, CRYPTO 1991 (circuit randomisation); multi-input multiplication gates
as in Patra, Schneider, Suresh, Yalame, "ABY2.0", USENIX Security 2021, Section 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets
from protocols.opening import open_xor

MAX_FANIN = 4
"""The widest monomial: 11 dealer words; wider ones would grow the dealer's part as 2^t."""


@dataclass(frozen=True)
class Family:
    """XOR-shared `variables` (word arrays of one shape) and the `monomials` wanted of them, each
    a bitmask over the variables (bit i: variable i) with 2 to MAX_FANIN members."""

    variables: tuple[np.ndarray, ...]
    monomials: tuple[int, ...]

    @staticmethod
    def gate(*inputs: np.ndarray) -> Family:
        """One AND of all `inputs`."""
        return Family(tuple(inputs), ((1 << len(inputs)) - 1,))

    def layout(self) -> tuple[int, tuple[int, ...]]:
        """What the dealer's material depends on: the number of variables and the monomials."""
        return len(self.variables), self.monomials


def _subsets(monomials: tuple[int, ...]) -> list[int]:
    """Every subset, with two or more members, of a wanted monomial, in a fixed order."""
    out: set[int] = set()
    for mono in monomials:
        members = [i for i in range(mono.bit_length()) if mono >> i & 1]
        out |= {sum(1 << i for i in c) for size in range(2, len(members) + 1) for c in combinations(members, size)}
    return sorted(out)


def _free(p: dict[str, Any]) -> list[Component]:
    return [Component(f"a{i}", "xor", (int(p["n"]),)) for i in range(int(p["vars"]))]


def _derived(p: dict[str, Any]) -> list[Component]:
    return [Component(f"p{mask}", "xor", (int(p["n"]),)) for mask in _subsets(tuple(p["monomials"]))]


def _derive(p: dict[str, Any], s: Secrets) -> Secrets:
    out = {}
    for mask in _subsets(tuple(p["monomials"])):
        members = [i for i in range(mask.bit_length()) if mask >> i & 1]
        word = s[f"a{members[0]}"].copy()
        for i in members[1:]:
            word &= s[f"a{i}"]
        out[f"p{mask}"] = word
    return out


AND_MONOMIALS = MaterialKind("and_monomials", _free, _derived, _derive)
"""Masks a_i for a family's variables, and XOR shares of the AND of every subset of a wanted monomial."""


def dealer_words(family: Family) -> int:
    """Dealer words per element of a family (its derived products)."""
    return len(_subsets(family.monomials))


class PendingFamilies:
    """One level's families in two halves, for protocols that open other values in the same round:
    `begin` takes the dealer material (one request per layout), `words` are what to open, `finish`
    takes their openings."""

    def __init__(self, families: Sequence[Family], groups: dict[tuple[int, tuple[int, ...]], list[int]],
                 mats: dict[tuple[int, tuple[int, ...]], Mapping[str, np.ndarray]],
                 inputs: dict[tuple[int, tuple[int, ...]], list[np.ndarray]]) -> None:
        self._families, self._groups, self._mats, self._inputs = list(families), groups, mats, inputs

    @staticmethod
    def begin(ctx: PartyContext, families: Sequence[Family]) -> PendingFamilies:
        groups: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        for j, fam in enumerate(families):
            shapes = {v.shape for v in fam.variables}
            if len(shapes) != 1 or any(not 2 <= bin(m).count("1") <= MAX_FANIN or m >> len(fam.variables)
                                       for m in fam.monomials):
                raise ValueError(f"monomials of 2 to {MAX_FANIN} variables of one shape")
            groups.setdefault(fam.layout(), []).append(j)
        mats, inputs = {}, {}
        for key, idx in groups.items():
            v, monomials = key
            inputs[key] = [np.concatenate([families[j].variables[i] for j in idx], axis=None) for i in range(v)]
            params = {"n": int(inputs[key][0].size), "vars": v, "monomials": list(monomials)}
            mats[key] = ctx.dealer(MaterialRequest("and_monomials", params))
        return PendingFamilies(families, groups, mats, inputs)

    def words(self) -> list[np.ndarray]:
        """The masked variables to open: x_i XOR a_i, layout by layout."""
        return [x ^ self._mats[key][f"a{i}"] for key in self._groups for i, x in enumerate(self._inputs[key])]

    def finish(self, ctx: PartyContext, opened: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Per family, its monomials (in order), shaped like its variables (step 2)."""
        out: list[list[np.ndarray]] = [[] for _ in self._families]
        pos = 0
        for key, idx in self._groups.items():
            v, monomials = key
            d, mat = list(opened[pos : pos + v]), self._mats[key]
            pos += v
            values = [_monomial(ctx, d, mat, mono) for mono in monomials]
            at = 0
            for j in idx:
                shape = self._families[j].variables[0].shape
                size = int(np.prod(shape, dtype=np.int64))
                out[j] = [z[at : at + size].reshape(shape) for z in values]
                at += size
        return out


def _monomial(ctx: PartyContext, d: list[np.ndarray], mat: Mapping[str, np.ndarray], mono: int) -> np.ndarray:
    """XOR over the subsets T of the monomial S of (AND of d_i over S - T) AND [A_T] (step 2).

    The public ANDs of d over every non-empty subset of S are built once, each from a smaller one."""
    subsets, sub = [], mono
    while sub:
        subsets.append(sub)
        sub = (sub - 1) & mono
    public: dict[int, np.ndarray] = {}
    for mask in reversed(subsets):  # increasing: a mask's rest (without its lowest member) comes first
        low = (mask & -mask).bit_length() - 1
        rest = mask & (mask - 1)
        public[mask] = public[rest] & d[low] if rest else d[low]
    z = np.zeros_like(d[0])
    for chosen in public:
        share = mat[f"a{chosen.bit_length() - 1}"] if chosen & (chosen - 1) == 0 else mat[f"p{chosen}"]
        rest = mono ^ chosen
        z ^= public[rest] & share if rest else share
    if ctx.is_leader:
        z ^= public[mono]
    return z


def and_families(ctx: PartyContext, families: Sequence[Family], label: str = "and") -> list[list[np.ndarray]]:
    """Every family's monomials, in one round (see the module docstring)."""
    if not families:
        return []
    pending = PendingFamilies.begin(ctx, families)
    return pending.finish(ctx, open_xor(ctx, pending.words(), label))
