"""Persistent masks are drawn (and split into limbs) once a session, with the material's bits unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.dealer import DealerEngine, SeededMaterial, _combine, _difference, _draw
from mpc.dealer_cache import PersistentDraws
from mpc.material import CORE_KINDS, MaterialRequest, Secrets, lookup
from mpc.prg import Prg, fresh_seed
from mpc.ring import Ring
from parties.dealer_service import DealerDesk
from protocols.material import KINDS


def _uncached_correction(seeds: list[bytes], session: str, counter: int, request: MaterialRequest) -> Secrets:
    """The dealer's correction as computed without any cache: every secret drawn afresh, c = A b by `Ring.matmul`."""
    prgs = [Prg(s) for s in seeds]
    kind = lookup(KINDS, request.kind)
    free: Secrets = {}
    for comp in kind.free(request.params):
        if comp.owner is not None:
            free[comp.name] = _draw(prgs[comp.owner], session, counter, kind.name, comp)
        else:
            free[comp.name] = _combine(comp, (_draw(p, session, counter, kind.name, comp) for p in prgs))
    ring = Ring(int(request.params.get("ring", 64)))
    a = free["a"].T if request.params.get("transpose") else free["a"]
    c = ring.matmul(a, free["b"])
    (comp,) = kind.derived(request.params)
    parts = (_draw(p, session, counter, kind.name, comp) for p in prgs[:-1])
    return {"c": _difference(comp, c, _combine(comp, parts))}


def _requests(bits: int) -> list[MaterialRequest]:
    base = {"owner": 1, "name": "X/1", "shape_a": [40, 5], "ring": bits}
    return [
        MaterialRequest("owned_mask", base),
        MaterialRequest("owned_matvec", base),
        MaterialRequest("owned_matvec", {**base, "transpose": True}),
        MaterialRequest("owned_columns", {**base, "columns": 3}),
        MaterialRequest("owned_columns", {**base, "columns": 2, "transpose": True}),
        MaterialRequest("owned_matvec", {**base, "owner": 0, "name": "X/0"}),
        MaterialRequest("owned_matvec", base),
    ]


@pytest.mark.parametrize("bits", [64, 128])
@pytest.mark.parametrize("budget", [PersistentDraws.DEFAULT_BUDGET, 0, 3000], ids=["kept", "none-kept", "evicting"])
def test_corrections_are_the_uncached_bits(bits: int, budget: int) -> None:
    seeds = [fresh_seed() for _ in range(3)]
    engine = DealerEngine(seeds, "sess", KINDS, PersistentDraws(budget))
    for counter, request in enumerate(_requests(bits) * 2):
        got = engine.correction(counter, request)
        if request.kind == "owned_mask":
            assert got == {}
            continue
        expected = _uncached_correction(seeds, "sess", counter, request)
        assert got.keys() == expected.keys()
        ring = Ring(bits)
        assert got["c"].dtype == expected["c"].dtype and ring.to_bytes(got["c"]) == ring.to_bytes(expected["c"])
    held, nbytes = engine.persistent.held
    assert nbytes <= budget
    assert held == (2 if budget == PersistentDraws.DEFAULT_BUDGET else held)


def test_the_owner_draws_its_mask_once_a_session_and_cannot_change_it() -> None:
    seeds = [fresh_seed() for _ in range(3)]
    engine = DealerEngine(seeds, "sess", KINDS)
    owner = SeededMaterial(1, 3, seeds[1], "sess", KINDS, None)
    other = SeededMaterial(0, 3, seeds[0], "sess", KINDS, None)
    request = _requests(64)[1]
    first, second = owner.get(request), owner.get(request)
    assert first["a"] is second["a"]  # drawn once
    comp = lookup(KINDS, "owned_matvec").free(request.params)[0]
    assert np.array_equal(first["a"], _draw(Prg(seeds[1]), "sess", 0, "owned_matvec", comp))  # a fresh draw's values
    with pytest.raises(ValueError):
        first["a"][0, 0] = 1  # read-only: no caller can change what later requests see
    assert "a" not in other.get(request) and other.persistent.held == (0, 0)
    assert owner.persistent.held[0] == 1
    engine.correction(0, request)
    assert engine.persistent.held[0] == 1


def test_the_cache_is_dropped_when_the_session_ends() -> None:
    seeds = [fresh_seed() for _ in range(2)]
    engine = DealerEngine(seeds, "s", KINDS)
    owner = SeededMaterial(0, 2, seeds[0], "s", KINDS, None)
    request = MaterialRequest("owned_matvec", {"owner": 0, "name": "X/0", "shape_a": [8, 2]})
    engine.correction(0, request)
    owner.get(request)
    assert engine.persistent.held[1] > 0 and owner.persistent.held[1] > 0
    engine.close()
    owner.close()
    assert engine.persistent.held == (0, 0) and owner.persistent.held == (0, 0)


@pytest.mark.parametrize("expire", [False, True], ids=["closed", "expired"])
def test_the_dealer_desk_drops_a_session_s_masks(expire: bool) -> None:
    now = [0.0]
    desk = DealerDesk(KINDS, ttl_s=10.0, clock=lambda: now[0])
    desk.open_session("sess", ["p1", "p2"])
    engine = desk._sessions["sess"].engine
    request = MaterialRequest("owned_matvec", {"owner": 0, "name": "X/0", "shape_a": [8, 2]})
    engine.correction(0, request)
    assert engine.persistent.held[0] == 1
    if expire:
        now[0] = 11.0
        desk.open_session("other", ["p1", "p2"])  # any call past the time to live expires the idle session
    else:
        desk.close_session("sess")
    assert engine.persistent.held == (0, 0)


def test_memory_is_bounded_and_an_evicted_draw_is_drawn_again() -> None:
    cache = PersistentDraws(budget=3 * 800)
    made: list[str] = []

    def make(key: str) -> np.ndarray:
        made.append(key)
        return np.full(100, ord(key[0]), dtype=np.uint64)  # 800 bytes

    arrays = {k: cache.draw(k, lambda k=k: make(k)) for k in "abcd"}
    assert cache.held == (3, 2400)  # "a" dropped first
    assert cache.draw("d", lambda: make("d")) is arrays["d"]
    again = cache.draw("a", lambda: make("a"))
    assert made == ["a", "b", "c", "d", "a"] and np.array_equal(again, arrays["a"])
    cache.limbs("a", again)  # with its limbs (4x its size) "a" no longer fits: not kept, still returned
    assert cache.held[1] <= 2400
    big = PersistentDraws(budget=100)
    big.draw("x", lambda: np.zeros(100, dtype=np.uint64))
    assert big.held == (0, 0)  # larger than the budget: never kept


def test_core_kinds_owned_products_use_the_kept_limbs() -> None:
    seeds = [fresh_seed() for _ in range(2)]
    engine = DealerEngine(seeds, "s", CORE_KINDS)
    request = MaterialRequest("owned_matvec", {"owner": 1, "name": "X/1", "shape_a": [30, 4]})
    for t in range(3):
        assert np.array_equal(engine.correction(t, request)["c"], _uncached_correction(seeds, "s", t, request)["c"])
    assert engine.persistent.held == (1, 30 * 4 * 8 * 4)  # the mask and its three limbs, kept once
