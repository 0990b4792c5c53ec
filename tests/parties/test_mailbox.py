"""The node's receive buffer: early messages wait, sessions never mix, aborts wake receivers."""

from __future__ import annotations

import threading
import time

import pytest

from parties.mailbox import DuplicateMessage, Mailbox
from parties.records import AbortInfo, PeerMessage


def test_messages_are_kept_per_session_source_and_tag() -> None:
    box = Mailbox()
    box.put(PeerMessage("s2", "a", "t", b"other session"))  # arrives before s2 starts here
    box.open_session("s1")
    box.put(PeerMessage("s1", "a", "t", b"mine"))
    assert box.take("s1", "b", "t", 0.01) is None
    assert box.take("s1", "a", "t", 0.01) == b"mine"
    box.open_session("s2")
    assert box.take("s2", "a", "t", 0.01) == b"other session"
    with pytest.raises(DuplicateMessage):
        box.put(PeerMessage("s1", "a", "u", b"x"))
        box.put(PeerMessage("s1", "a", "u", b"y"))


def test_a_closed_session_drops_late_messages_and_cannot_reopen() -> None:
    box = Mailbox()
    box.open_session("s")
    box.put(PeerMessage("s", "a", "t1", b"x"))
    box.close_session("s")
    assert box.put(PeerMessage("s", "a", "t2", b"late")) is False
    assert box.take("s", "a", "t1", 0.0) is None
    with pytest.raises(ValueError, match="already run"):
        box.open_session("s")


def test_an_abort_wakes_a_waiting_receiver_of_that_session_only() -> None:
    box = Mailbox()
    box.open_session("s")
    box.open_session("other")
    threading.Timer(0.05, lambda: box.abort(AbortInfo("s", "b", "b", "gave up"))).start()
    start = time.monotonic()
    assert box.take("s", "b", "t", 30.0) is None
    assert time.monotonic() - start < 15.0  # woken by the abort, not by the end of its 30 s wait
    assert box.aborted("s") == AbortInfo("s", "b", "b", "gave up")
    assert box.aborted("other") is None


def test_orphan_messages_expire() -> None:
    box = Mailbox(orphan_ttl_s=0.0)
    box.put(PeerMessage("ghost", "a", "t", b"x"))
    time.sleep(0.01)
    box.put(PeerMessage("ghost2", "a", "t", b"y"))  # any arrival sweeps expired orphans
    box.open_session("ghost")
    assert box.take("ghost", "a", "t", 0.0) is None


def test_only_the_awaited_message_wakes_a_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    waiting, notified = threading.Event(), []

    class Spy(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.set()
            return super().wait(timeout)

        def notify_all(self) -> None:
            notified.append(1)
            super().notify_all()

    monkeypatch.setattr("parties.mailbox.threading", type("Threading", (), {"Lock": threading.Lock, "Condition": Spy}))
    box = Mailbox()
    box.open_session("s")
    box.open_session("other")
    got: list[bytes | None] = []
    receiver = threading.Thread(target=lambda: got.append(box.take("s", "b", "t2", 30.0)))
    receiver.start()
    assert waiting.wait(10.0)
    box.put(PeerMessage("s", "c", "t2", b"another source"))
    box.put(PeerMessage("s", "b", "t1", b"another tag"))
    box.put(PeerMessage("other", "b", "t2", b"another session"))
    assert notified == []  # none of these is what the receiver waits for: it sleeps on
    box.put(PeerMessage("s", "b", "t2", b"awaited"))
    receiver.join(10.0)
    assert got == [b"awaited"] and notified == [1]
    assert box.take("s", "c", "t2", 0.0) == b"another source"
