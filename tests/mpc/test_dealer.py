"""Seeded dealer material reconstructs to valid correlations; parties only draw their share."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from mpc.dealer import DealerEngine, PhaseTraces, SeededMaterial, mark, phase
from mpc.material import CORE_KINDS, MaterialRequest
from mpc.prg import fresh_seed
from mpc.ring import RING64, RING128, Ring


def _all_shares(n: int, request: MaterialRequest, repeat: int = 1) -> list[list[dict[str, np.ndarray]]]:
    seeds = [fresh_seed() for _ in range(n)]
    engine = DealerEngine(seeds, "sess", CORE_KINDS)
    sources = [
        SeededMaterial(r, n, seeds[r], "sess", CORE_KINDS, engine.correction if r == n - 1 else None) for r in range(n)
    ]
    return [[src.get(request) for src in sources] for _ in range(repeat)]


def _sum(ring: Ring, parts: list[np.ndarray]) -> np.ndarray:
    total = parts[0]
    for p in parts[1:]:
        total = ring.add(total, p)
    return total


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("ring", [RING64, RING128], ids=["z64", "z128"])
def test_beaver_triples_multiply(n: int, ring: Ring) -> None:
    (shares,) = _all_shares(n, MaterialRequest("triple", {"shape": [50], "ring": ring.bits}))
    a, b, c = (_sum(ring, [s[k] for s in shares]) for k in "abc")
    assert [int(v) for v in c] == [int(v) for v in ring.mul(a, b)]


@pytest.mark.parametrize("n", [2, 3])
def test_matrix_triples(n: int) -> None:
    (shares,) = _all_shares(n, MaterialRequest("matmul_triple", {"shape_a": [4, 6], "shape_b": [6, 3]}))
    a, b, c = (_sum(RING64, [s[k] for s in shares]) for k in "abc")
    assert np.array_equal(c, RING64.matmul(a, b))


@pytest.mark.parametrize("ring", [RING64, RING128], ids=["z64", "z128"])
def test_truncation_material(ring: Ring) -> None:
    (shares,) = _all_shares(3, MaterialRequest("trunc", {"shape": [40], "f": 7, "ring": ring.bits}))
    r, r_shift, r_msb = (_sum(ring, [s[k] for s in shares]) for k in ("r", "r_shift", "r_msb"))
    k = ring.bits
    assert [int(v) for v in r_msb] == [int(v) >> (k - 1) for v in r]
    assert [int(v) for v in r_shift] == [(int(v) % 2 ** (k - 1)) >> 7 for v in r]


def test_boolean_triples() -> None:
    (shares,) = _all_shares(4, MaterialRequest("bool_triple", {"shape": [30]}))
    a = np.bitwise_xor.reduce([s["a"] for s in shares])
    b = np.bitwise_xor.reduce([s["b"] for s in shares])
    c = np.bitwise_xor.reduce([s["c"] for s in shares])
    assert np.array_equal(c, a & b)


def test_fresh_material_each_request_and_no_party_holds_a_triple() -> None:
    first, second = _all_shares(3, MaterialRequest("triple", {"shape": [20]}), repeat=2)
    for party in range(3):
        assert not np.array_equal(first[party]["a"], second[party]["a"])
        # A party's own share is not the secret (the secret needs everyone's share).
        a = _sum(RING64, [s["a"] for s in first])
        assert not np.array_equal(first[party]["a"], a)


def test_only_the_last_party_talks_to_the_dealer() -> None:
    seeds = [fresh_seed() for _ in range(3)]
    engine = DealerEngine(seeds, "s", CORE_KINDS)
    calls: list[int] = []

    def fetch(counter: int, req: MaterialRequest) -> dict[str, np.ndarray]:
        calls.append(counter)
        return engine.correction(counter, req)

    with pytest.raises(ValueError, match="reach the dealer"):
        SeededMaterial(2, 3, seeds[2], "s", CORE_KINDS, None)
    last = SeededMaterial(2, 3, seeds[2], "s", CORE_KINDS, fetch)
    first = SeededMaterial(0, 3, seeds[0], "s", CORE_KINDS, None)
    req = MaterialRequest("triple", {"shape": [1000]})
    first.get(req)
    got = [last.get(req), last.get(req)]
    assert [g["c"].shape for g in got] == [(1000,), (1000,)]  # reading c waits for the dealer
    assert sorted(calls) == [0, 1]
    assert last.bytes_from_dealer == 2 * 8000  # only c, never a or b
    assert first.bytes_from_dealer == 0
    last.close()


def test_the_dealers_part_arrives_in_the_background_and_its_failure_surfaces_on_reading() -> None:
    seeds = [fresh_seed() for _ in range(2)]
    engine = DealerEngine(seeds, "s", CORE_KINDS)
    release = threading.Event()

    def slow(counter: int, req: MaterialRequest) -> dict[str, np.ndarray]:
        assert release.wait(10)
        if counter == 1:
            raise ConnectionError("dealer gone")
        if counter == 2:
            return {"c": np.zeros(3, np.uint64)}
        return engine.correction(counter, req)

    last = SeededMaterial(1, 2, seeds[1], "s", CORE_KINDS, slow)
    first = SeededMaterial(0, 2, seeds[0], "s", CORE_KINDS, None)
    req = MaterialRequest("triple", {"shape": [1000]})
    mine, theirs = last.get(req), first.get(req)
    assert mine["a"].shape == (1000,) and sorted(mine) == ["a", "b", "c"]  # free parts at once, c pending
    failing, wrong = last.get(req), last.get(req)
    release.set()
    a = RING64.add(mine["a"], theirs["a"])
    b = RING64.add(mine["b"], theirs["b"])
    assert np.array_equal(RING64.add(mine["c"], theirs["c"]), RING64.mul(a, b))
    with pytest.raises(ConnectionError, match="dealer gone"):
        failing["c"]
    with pytest.raises(ValueError, match="shape"):
        wrong["c"]
    last.close()


def test_a_deferred_fetch_asks_at_once_and_is_taken_in_the_reading_thread() -> None:
    seeds = [fresh_seed() for _ in range(2)]
    engine = DealerEngine(seeds, "s", CORE_KINDS)
    asked: list[int] = []
    taken: list[str] = []

    def defer(counter: int, req: MaterialRequest) -> Callable[[], dict[str, np.ndarray]]:
        asked.append(counter)

        def take() -> dict[str, np.ndarray]:
            taken.append(threading.current_thread().name)
            return engine.correction(counter, req)

        return take

    last = SeededMaterial(1, 2, seeds[1], "s", CORE_KINDS, None, defer)
    first = SeededMaterial(0, 2, seeds[0], "s", CORE_KINDS, None)
    req = MaterialRequest("triple", {"shape": [10]})
    mine, theirs = last.get(req), first.get(req)
    assert asked == [0] and taken == []  # asked for at once, nothing waited for yet
    a = RING64.add(mine["a"], theirs["a"])
    b = RING64.add(mine["b"], theirs["b"])
    assert np.array_equal(RING64.add(mine["c"], theirs["c"]), RING64.mul(a, b))
    assert taken == [threading.current_thread().name]  # no fetching thread in between
    last.close()


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        _all_shares(2, MaterialRequest("nope", {}))


@pytest.mark.parametrize("transpose", [False, True])
def test_owned_matrix_products_reuse_the_same_mask(transpose: bool) -> None:
    params = {"owner": 1, "name": "X1", "shape_a": [6, 3], "transpose": transpose}
    first, second = _all_shares(3, MaterialRequest("owned_matvec", params), repeat=2)
    for shares in (first, second):
        assert "a" in shares[1] and "a" not in shares[0] and "a" not in shares[2]
        a = shares[1]["a"]
        b = _sum(RING64, [s["b"] for s in shares])
        c = _sum(RING64, [s["c"] for s in shares])
        expected = RING64.matmul(a.T if transpose else a, b)
        assert np.array_equal(c, expected)
    assert np.array_equal(first[1]["a"], second[1]["a"])  # persistent mask
    assert not np.array_equal(first[0]["b"], second[0]["b"])  # fresh vector each time


def test_a_known_phase_is_told_ahead_and_only_the_last_party_plans() -> None:
    seeds = [fresh_seed() for _ in range(2)]
    engine = DealerEngine(seeds, "s", CORE_KINDS)
    told: list[tuple[int, list[str]]] = []

    def ahead(start: int, requests: list[MaterialRequest]) -> int:
        told.append((start, [r.to_json() for r in requests]))
        return len(requests)

    traces = PhaseTraces()
    reqs = [MaterialRequest("triple", {"shape": [3]}), MaterialRequest("trunc", {"shape": [2], "f": 4})]
    for session in ("s1", "s2"):
        last = SeededMaterial(1, 2, seeds[1], session, CORE_KINDS, engine.correction, None, ahead, traces)
        first = SeededMaterial(0, 2, seeds[0], session, CORE_KINDS, None, None, ahead, traces)
        assert first.planner() is None
        last.get(reqs[0])  # outside the phase: not part of it
        for source in (first, last):
            with phase(source, "p"):
                for r in reqs:
                    source.get(r)
        tell = last.planner()
        assert tell is not None and tell(reqs[:1]) == 1
        last.close()
    expected = [r.to_json() for r in reqs]
    assert told == [(3, expected[:1]), (1, expected), (3, expected[:1])]  # the phase told ahead the second time only
    with phase(object(), "p"):  # a source without phases: nothing happens
        pass


def test_a_marked_pass_is_remembered_at_the_next_mark_and_told_when_it_recurs() -> None:
    seeds = [fresh_seed() for _ in range(2)]
    engine = DealerEngine(seeds, "s", CORE_KINDS)
    told: list[tuple[int, int]] = []
    last = SeededMaterial(1, 2, seeds[1], "s", CORE_KINDS, engine.correction, None,
                          lambda start, requests: told.append((start, len(requests))) or len(requests), PhaseTraces())
    pass_ = [MaterialRequest("triple", {"shape": [3]}), MaterialRequest("trunc", {"shape": [2], "f": 4})]
    for _ in range(3):
        mark(last, "pass")
        for r in pass_:
            last.get(r)
    mark(last, None)
    last.get(pass_[0])  # after the last pass: in no phase
    mark(last, "pass")
    assert told == [(2, 2), (4, 2), (7, 2)]  # each pass is remembered at the next mark, which then tells it
    mark(object(), "pass")  # a source without phases: nothing happens
    last.close()
