"""The WAN relay (benchmarks/wan.py) delays each direction by rtt/2, pipelines, stays bounded.

An echo server on 127.0.0.1 (ephemeral port) stands behind the relay for the timing and
throughput tests (threads in this process: no child process); the last test runs a real
3-party consortium through it. Lower bounds on delays are asserted strictly (the relay
must never be early). Upper bounds only tell a right relay from a wrong one, with the
margin between them as wide as the test allows, on the fastest of several tries: the
machine is shared, and load only ever adds time.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from benchmarks.wan import CHUNK_BYTES, DelayRelay, loopback_target
from parties.client import JobResult
from parties.jobs import bench_inputs
from parties.local import LocalConsortium


class EchoServer:
    """Echoes every byte back on each connection; half-closes when the client does."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := conn.recv(1 << 16):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def _dial(address: str) -> socket.socket:
    host, port = loopback_target(address)
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = sock.recv(min(1 << 20, n - got))
        assert data, f"connection closed after {got} of {n} bytes"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _round_trips(sock: socket.socket, count: int) -> list[float]:
    """Seconds of `count` one-byte round trips, one after the other."""
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        sock.sendall(bytes([i]))
        assert _recv_exactly(sock, 1) == bytes([i])
        times.append(time.perf_counter() - t0)
    return times


def test_each_round_trip_takes_the_rtt(echo: EchoServer) -> None:
    rtt = 0.200
    with DelayRelay(rtt * 1000) as relay:
        address = relay.front("echo")
        assert relay.front("echo") == address and address.startswith("127.0.0.1:")
        relay.connect("echo", echo.address)
        with _dial(address) as sock:
            times = _round_trips(sock, 4)
            sock.shutdown(socket.SHUT_WR)  # half-close: the EOF comes back through the relay
            assert sock.recv(1) == b""
        stats = relay.stats()
    assert min(times) >= rtt, times  # rtt/2 each way, never early
    assert min(times) < 2 * rtt, times  # not a whole rtt each way (that would be >= 2 rtt every time)
    assert stats["accepted"] == 1 and stats["refused"] == 0
    assert stats["bytes_to_target"] == stats["bytes_to_client"] == 4
    assert stats["fronts"]["echo"]["target"] == echo.address


def test_connections_before_connect_wait_for_it(echo: EchoServer) -> None:
    with DelayRelay(0) as relay, _dial(relay.front("later")) as sock:
        sock.sendall(b"early")
        time.sleep(0.2)
        relay.connect("later", echo.address)
        assert _recv_exactly(sock, 5) == b"early"


def test_throughput_is_not_bound_by_the_rtt(echo: EchoServer) -> None:
    payload, rtt = os.urandom(8 << 20), 0.5
    with DelayRelay(rtt * 1000) as relay:
        address = relay.front("echo")
        relay.connect("echo", echo.address)
        with _dial(address) as sock:
            t0 = time.perf_counter()
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            back = _recv_exactly(sock, len(payload))
            seconds = time.perf_counter() - t0
            sender.join()
        stats = relay.stats()
    assert back == payload
    assert stats["bytes_to_target"] == stats["bytes_to_client"] == len(payload)
    # A delay line pays the rtt about once (rtt/2 each way). Stop-and-wait would pay rtt/2 per
    # chunk of at most CHUNK_BYTES in each direction: 64 chunks, 16 s at least. Half of that
    # leaves the copying 7.5 s on a loaded machine.
    stop_and_wait = 2 * (len(payload) // CHUNK_BYTES) * rtt / 2
    assert rtt <= seconds < stop_and_wait / 2, seconds


def test_no_delay_forwards_at_once(echo: EchoServer) -> None:
    with DelayRelay(0) as relay:
        address = relay.front("echo")
        relay.connect("echo", echo.address)
        with _dial(address) as sock:
            times = _round_trips(sock, 5)
    # A loopback round trip takes well under a millisecond; a relay that held bytes back
    # (Nagle's algorithm against delayed ACKs: 40 ms, or a polling loop) would pay it every time.
    assert min(times) < 0.030, times


@pytest.mark.parametrize("address", ["10.0.0.1:80", "192.168.1.2:9000", "example.org:443", "[::1]:80", "127.0.0.1"])
def test_connect_refuses_anything_but_loopback(address: str) -> None:
    with DelayRelay(10) as relay:
        relay.front("x")
        with pytest.raises(ValueError):
            relay.connect("x", address)
        relay.connect("x", "localhost:80")  # loopback by name is fine
        relay.connect("x", "127.0.0.2:80")


def test_connections_beyond_the_bound_are_refused_and_close_stops_the_thread(echo: EchoServer) -> None:
    relay = DelayRelay(0, max_connections=2)
    before = set(threading.enumerate())
    with relay:
        (thread,) = set(threading.enumerate()) - before  # the relay's one event-loop thread
        address = relay.front("echo")
        relay.connect("echo", echo.address)
        first, second = _dial(address), _dial(address)
        for sock in (first, second):
            sock.sendall(b"ok")
            assert _recv_exactly(sock, 2) == b"ok"
        with _dial(address) as third:  # TCP accepts; the relay then closes it at once
            third.settimeout(5)
            try:
                assert third.recv(1) == b""
            except ConnectionResetError:
                pass
        stats = relay.stats()
        assert stats["accepted"] == 2 and stats["refused"] == 1 and stats["open"] == 2
        assert thread.is_alive() and relay.running
    assert not thread.is_alive() and not relay.running
    for sock in (first, second):  # close() ended the open connections too
        sock.settimeout(5)
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
        sock.close()
    with pytest.raises(RuntimeError):
        relay.front("other")


def test_the_relay_stops_after_its_lifetime() -> None:
    lifetime = 0.3
    relay = DelayRelay(0, lifetime_s=lifetime)
    with relay:
        t0 = time.monotonic()
        relay.front("x")
        assert relay.running
        while relay.running and time.monotonic() - t0 < lifetime + 30:
            time.sleep(0.05)
        assert not relay.running
        assert time.monotonic() - t0 >= lifetime  # not before its time
        with pytest.raises(RuntimeError):
            relay.front("y")


def _open(lc: LocalConsortium, size: int) -> JobResult:
    with lc.client() as client:
        client.run("bench_open", {"size": size, "seed": 3})  # warm-up: TLS and HTTP/2 set up through the relay
        return client.run("bench_open", {"size": size, "seed": 3})


@pytest.mark.network
def test_a_consortium_through_a_40ms_relay_pays_the_delay_per_round() -> None:
    size, rtt = 1000, 0.040
    with DelayRelay(rtt * 1000) as relay:
        with LocalConsortium(("a", "b", "c"), relay=relay, bench_jobs=True) as lc:
            slow = _open(lc, size)
        stats = relay.stats()
    assert np.abs(slow.outputs()[0] - bench_inputs(3, size)).max() < 1e-6
    rounds = max(slow.stats(p).rounds for p in ("a", "b", "c"))
    assert rounds == 1
    # Every round waits for at least one message to cross a link: a one-way delay, rtt/2.
    # (The slowest party usually pays the whole RTT: it leaves the barrier before the
    # compute phase first and then waits for the others' messages, which start rtt/2 later.)
    assert slow.compute_seconds >= rounds * rtt / 2, slow.compute_seconds
    # Every link went through the relay: the dealer, and each party's gRPC port and data port.
    fronts = stats["fronts"]
    assert set(fronts) == {"dealer", "a", "b", "c", "a/data", "b/data", "c/data"}
    assert all(f["accepted"] >= 1 and f["bytes_to_target"] > 0 for f in fronts.values())
