"""The in-process network wakes a receiver only with the message it waits for, and never loses one."""

from __future__ import annotations

import threading

from mpc.inprocess import InProcessNetwork


def test_receivers_waiting_on_one_mailbox_each_get_their_message_in_any_order() -> None:
    net = InProcessNetwork(3, timeout=10.0)
    got: dict[tuple[int, str], bytes] = {}
    waiting = threading.Barrier(4)

    def receive(src: int, tag: str) -> None:
        waiting.wait()
        got[src, tag] = net.take(0, src, tag)

    threads = [threading.Thread(target=receive, args=(src, tag)) for src, tag in ((1, "a"), (2, "a"), (1, "b"))]
    for t in threads:
        t.start()
    waiting.wait()
    for src, tag in ((1, "b"), (2, "x"), (2, "a"), (1, "a")):  # one message nobody waits for, the rest reversed
        net.deliver(src, 0, tag, f"{src}{tag}".encode())
    for t in threads:
        t.join(10.0)
    assert got == {(1, "a"): b"1a", (2, "a"): b"2a", (1, "b"): b"1b"} and not any(t.is_alive() for t in threads)
    assert net.take(0, 2, "x") == b"2x"  # the unawaited message waited in the box
    assert not net._awaited[0]  # no receiver is left recorded as waiting


def test_a_delivery_nobody_waits_for_wakes_nobody() -> None:
    net = InProcessNetwork(2, timeout=10.0)
    wakes = 0
    real = net._arrived[0].notify_all

    def counted() -> None:
        nonlocal wakes
        wakes += 1
        real()

    net._arrived[0].notify_all = counted  # type: ignore[method-assign]
    net.deliver(1, 0, "early", b"e")  # nobody waits yet
    assert wakes == 0 and net.take(0, 1, "early") == b"e"
    receiver = threading.Thread(target=lambda: net.take(0, 1, "late"))
    receiver.start()
    for _ in range(10_000):  # until the receiver waits (it records the message it waits for)
        if net._awaited[0]:
            break
        threading.Event().wait(0.001)
    assert net._awaited[0] == {(1, "late"): 1}
    net.deliver(1, 0, "other", b"o")
    assert wakes == 0
    net.deliver(1, 0, "late", b"l")
    receiver.join(10.0)
    assert wakes == 1 and not receiver.is_alive()
