"""The dealer's bookkeeping: seeds only to their owners, corrections only to the last party."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.dealer import SeededMaterial
from mpc.material import MaterialRequest
from mpc.ring import RING64
from parties import array_stream
from parties.dealer_service import DealerDesk, UnknownSession
from protocols.material import KINDS

ROSTER = ["a", "b", "c"]


def _material(desk: DealerDesk, session: str) -> list[SeededMaterial]:
    def fetch(counter: int, request: MaterialRequest) -> dict[str, np.ndarray]:
        return array_stream.wire_to_secrets(desk.correction(session, "c", counter, request.to_json()))

    out = []
    for rank, name in enumerate(ROSTER):
        grant = desk.seed_for(session, name)
        assert (grant.rank, grant.n) == (rank, 3)
        out.append(SeededMaterial(rank, 3, grant.seed, session, KINDS, fetch if rank == 2 else None))
    return out


def test_seeded_shares_and_corrections_make_valid_triples() -> None:
    desk = DealerDesk(KINDS)
    desk.open_session("s", ROSTER)
    parts = [m.get(MaterialRequest("triple", {"shape": [1000], "ring": 64})) for m in _material(desk, "s")]
    total = {k: RING64.sum(np.stack([p[k] for p in parts]), axis=0) for k in "abc"}
    assert np.array_equal(total["c"], RING64.mul(total["a"], total["b"]))
    stats = desk.stats()
    assert stats["corrections"] == 1 and stats["correction_bytes"] == 8000 and stats["seeds_handed_out"] == 3


def test_seeds_are_fresh_per_session_and_only_for_the_roster() -> None:
    desk = DealerDesk(KINDS)
    desk.open_session("s1", ROSTER)
    desk.open_session("s2", ROSTER)
    assert desk.seed_for("s1", "a").seed != desk.seed_for("s2", "a").seed
    assert desk.seed_for("s1", "a").seed != desk.seed_for("s1", "b").seed
    with pytest.raises(PermissionError, match="not in session"):
        desk.seed_for("s1", "mallory")
    with pytest.raises(UnknownSession):
        desk.seed_for("nope", "a")


def test_corrections_go_to_the_last_party_only() -> None:
    desk = DealerDesk(KINDS)
    desk.open_session("s", ROSTER)
    request = MaterialRequest("triple", {"shape": [4], "ring": 64}).to_json()
    for name in ("a", "b"):
        with pytest.raises(PermissionError, match="last party"):
            desk.correction("s", name, 0, request)
    assert [a.name for a in desk.correction("s", "c", 0, request)] == ["c"]


def test_reopening_needs_the_same_roster() -> None:
    desk = DealerDesk(KINDS)
    desk.open_session("s", ROSTER)
    seed = desk.seed_for("s", "a").seed
    desk.open_session("s", ROSTER)  # idempotent: every node opens the session
    assert desk.seed_for("s", "a").seed == seed
    with pytest.raises(ValueError, match="already open"):
        desk.open_session("s", ["c", "b", "a"])
    for bad in (["a"], ["a", "a"], ["a", "B"]):
        with pytest.raises(ValueError):
            desk.open_session("t", bad)


def test_idle_sessions_expire() -> None:
    now = [0.0]
    desk = DealerDesk(KINDS, ttl_s=10.0, clock=lambda: now[0])
    desk.open_session("s", ROSTER)
    now[0] = 5.0
    desk.seed_for("s", "a")  # use keeps it alive
    now[0] = 14.0
    assert desk.stats()["open_sessions"] == 1
    now[0] = 30.0
    with pytest.raises(UnknownSession):
        desk.seed_for("s", "a")


def test_address_registry() -> None:
    desk = DealerDesk(KINDS)
    desk.announce("a", "127.0.0.1:5000")
    desk.announce("a", "127.0.0.1:5001")
    assert desk.directory() == {"a": "127.0.0.1:5001"}
    with pytest.raises(ValueError):
        desk.announce("b", "no-port")
