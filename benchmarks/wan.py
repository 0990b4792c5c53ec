"""A latency-injecting TCP relay on loopback, to benchmark Pooled as if its sites were far apart.

Hospitals of a consortium are tens of milliseconds apart, and MPC pays for every round
with a network delay, so the benchmark must show times at a given round-trip time (RTT).
The usual tool, Linux netem (`tc qdisc ... netem delay`), is not available on this
kernel (and needs root), so `DelayRelay` emulates the delay in user space instead: a set
of TCP forwarders on 127.0.0.1, one per destination ("front"), each adding a one-way
delay of rtt/2 to everything it carries in each direction. Clients dial the front
instead of the real address; `parties.local.LocalConsortium(relay=...)` wires every
party-to-party and node-to-dealer link through one.

The relay only forwards bytes: TLS runs end to end between the real endpoints (the
relay sees ciphertext, and certificates are checked against identities, not against the
address dialled), so the processes under test run exactly as in production.

How the delay works. Each direction of a connection is a delay line, not a
stop-and-wait: a reader task stamps every chunk it reads with (arrival time + rtt/2) and
queues it; a writer task writes the chunks in order, each no earlier than its stamp, and
awaits `drain()` (backpressure from the receiver). Reading goes on while earlier chunks
wait, so throughput is not bounded by the RTT, only the first byte of each burst is
delayed, as on a real long link with a large TCP window. When the queued bytes of one
direction exceed `buffer_bytes`, reading pauses until the writer catches up (the relay's
memory is bounded). An EOF travels the same line (half-close: `write_eof` after rtt/2);
a reset or error on either side closes both.

What it does not emulate: bandwidth limits, loss, jitter, and the TCP handshake's own
round trip (the relay accepts at once; TLS and HTTP/2 handshakes do pay the delay, being
data). It is bounded: at most `max_connections` connections over its life (later ones
are refused and counted), connections waiting for their destination give up after
`connect_timeout_s`, and the relay closes itself after `lifetime_s`. Everything runs in
one asyncio event loop in one daemon thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from parties.lifecycle import Lifecycle

CHUNK_BYTES = 256 * 1024
"""Largest read from one socket at a time."""

_T = TypeVar("_T")


def loopback_target(address: str) -> tuple[str, int]:
    """(host, port) of "HOST:PORT" if HOST is 127.x.x.x or localhost; ValueError otherwise."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    if host != "localhost":
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"the relay forwards to loopback only (127.x.x.x or localhost), not {host!r}") from None
        if not ip.is_loopback:
            raise ValueError(f"the relay forwards to loopback only (127.x.x.x or localhost), not {host!r}")
    return host, int(port_text)


@dataclass
class _Front:
    """One listener, where it forwards to, and its counters (changed in the loop thread only)."""

    name: str
    address: str
    server: asyncio.AbstractServer
    target: tuple[str, int] | None = None
    target_set: asyncio.Event = field(default_factory=asyncio.Event)
    accepted: int = 0
    refused: int = 0
    bytes_to_target: int = 0
    bytes_to_client: int = 0

    def count_to_target(self, n: int) -> None:
        self.bytes_to_target += n

    def count_to_client(self, n: int) -> None:
        self.bytes_to_client += n


class _DelayLine:
    """One direction of one connection: read, stamp with arrival + delay, write in order at the stamp."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay_s: float,
        buffer_bytes: int,
        count: Callable[[int], None],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._delay_s = delay_s
        self._buffer_bytes = buffer_bytes
        self._count = count  # told of every chunk once written
        self._queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self._queued_bytes = 0
        self._queued = asyncio.Event()  # set when the queue is not empty
        self._room = asyncio.Event()  # set when queued bytes are under the bound
        self._room.set()

    async def run(self) -> None:
        """Carry bytes until the EOF has been passed on; raises at once if either side fails."""
        tasks = [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._write())]
        try:
            # Returns when both are done (the writer after passing the EOF on) or one has failed.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raises a failure
        finally:
            for task in tasks:
                task.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._room.wait()
            data = await self._reader.read(CHUNK_BYTES)
            self._queue.append((loop.time() + self._delay_s, data or None))
            self._queued.set()
            if not data:
                return
            self._queued_bytes += len(data)
            if self._queued_bytes >= self._buffer_bytes:
                self._room.clear()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
            due, data = self._queue.popleft()
            while (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if data is None:
                if self._writer.can_write_eof():
                    self._writer.write_eof()
                return
            self._writer.write(data)
            await self._writer.drain()
            self._count(len(data))
            self._queued_bytes -= len(data)
            if self._queued_bytes < self._buffer_bytes:
                self._room.set()


class DelayRelay(Lifecycle):
    """TCP forwarders on 127.0.0.1 adding rtt/2 of delay each way (a context manager; see the module docstring).

    `front(name)` opens (once) a listener and returns its "127.0.0.1:PORT"; `connect(name,
    address)` says where it forwards. Connections that arrive before `connect` wait for it
    up to `connect_timeout_s`. Thread-safe: the public methods may be called from any thread.
    """

    def __init__(
        self,
        rtt_ms: float,
        *,
        max_connections: int = 512,
        lifetime_s: float = 7200.0,
        connect_timeout_s: float = 30.0,
        buffer_bytes: int = 32 << 20,
    ) -> None:
        if rtt_ms < 0 or max_connections < 0 or lifetime_s <= 0 or buffer_bytes <= 0:
            raise ValueError("rtt_ms and max_connections must be >= 0, lifetime_s and buffer_bytes > 0")
        self.rtt_ms = float(rtt_ms)
        self._delay_s = self.rtt_ms / 2000.0
        self._max_connections = max_connections
        self._lifetime_s = lifetime_s
        self._connect_timeout_s = connect_timeout_s
        self._buffer_bytes = buffer_bytes
        self._lock = threading.Lock()  # guards _fronts, _accepted, _refused against stats() from other threads
        self._fronts: dict[str, _Front] = {}
        self._accepted = 0
        self._refused = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    # -- lifecycle (a `with` block starts and stops it: `parties.lifecycle`) ----------------------
    def start(self) -> None:
        """Start the event loop thread (once)."""
        if self._thread is not None:
            raise RuntimeError("the relay was started already")
        loop = asyncio.new_event_loop()
        running = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop, running), name=f"delay-relay-{self.rtt_ms:g}ms", daemon=True
        )
        self._thread.start()
        if not running.wait(timeout=10.0):
            raise RuntimeError("the relay's event loop did not start")

    def _run_loop(self, loop: asyncio.AbstractEventLoop, running: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(running.set)
        loop.call_later(self._lifetime_s, lambda: loop.create_task(self._shutdown()))
        try:
            loop.run_forever()
        finally:
            self._closed.set()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closed.is_set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close every listener and connection and stop the loop thread (joined with a timeout)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if not self._closed.is_set():
            with contextlib.suppress(RuntimeError, TimeoutError):  # loop stopped meanwhile (lifetime over)
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=timeout_s)
        thread.join(timeout=timeout_s)

    close = stop  # a relay is closed like a socket

    async def _shutdown(self) -> None:
        with self._lock:
            fronts = list(self._fronts.values())
        for front in fronts:
            front.server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        self._closed.set()
        asyncio.get_running_loop().stop()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout_s: float = 10.0) -> _T:
        if not self.running or self._loop is None:
            coro.close()
            raise RuntimeError("the relay is not running (not started, closed, or past its lifetime)")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout_s)

    # -- fronts -----------------------------------------------------------------------------------
    def front(self, name: str) -> str:
        """The "127.0.0.1:PORT" to dial instead of `name` (a listener is opened on first use)."""
        with self._lock:
            if name in self._fronts:
                return self._fronts[name].address
        front = self._call(self._open_front(name))
        return front.address

    async def _open_front(self, name: str) -> _Front:
        with self._lock:  # another thread may have opened it meanwhile
            if name in self._fronts:
                return self._fronts[name]
        holder: list[_Front] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A handler cancelled by close() ends normally: asyncio 3.11's stream callback
            # would otherwise log the cancellation as an error.
            with contextlib.suppress(asyncio.CancelledError):
                await self._handle(holder[0], reader, writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=CHUNK_BYTES)
        port = server.sockets[0].getsockname()[1]
        front = _Front(name, f"127.0.0.1:{port}", server)
        holder.append(front)
        with self._lock:
            self._fronts[name] = front
        return front

    def connect(self, name: str, address: str) -> None:
        """Forward `front(name)` to `address` (loopback only: ValueError otherwise; KeyError for an unknown name)."""
        target = loopback_target(address)
        with self._lock:
            if name not in self._fronts:
                raise KeyError(f"no front named {name!r}; call front({name!r}) first")
        self._call(self._set_target(name, target))

    async def _set_target(self, name: str, target: tuple[str, int]) -> None:
        front = self._fronts[name]
        front.target = target
        front.target_set.set()

    # -- forwarding ---------------------------------------------------------------------------------
    async def _handle(self, front: _Front, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        with self._lock:
            admit = self._accepted < self._max_connections
            if admit:
                self._accepted += 1
                front.accepted += 1
            else:
                self._refused += 1
                front.refused += 1
        if not admit:
            client_w.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        target_w: asyncio.StreamWriter | None = None
        try:
            await asyncio.wait_for(front.target_set.wait(), self._connect_timeout_s)
            assert front.target is not None
            target_r, target_w = await asyncio.open_connection(*front.target, limit=CHUNK_BYTES)
            up = _DelayLine(client_r, target_w, self._delay_s, self._buffer_bytes, front.count_to_target)
            down = _DelayLine(target_r, client_w, self._delay_s, self._buffer_bytes, front.count_to_client)
            lines = [asyncio.ensure_future(up.run()), asyncio.ensure_future(down.run())]
            try:
                # Both directions end normally after their EOF; the first failure ends both.
                done, _ = await asyncio.wait(lines, return_when=asyncio.FIRST_EXCEPTION)
                for line in done:
                    line.result()
            finally:
                for line in lines:
                    line.cancel()
        except (OSError, TimeoutError):
            pass  # a side went away or the destination never came: close both below
        finally:
            self._handlers.discard(task)
            for w in (client_w, target_w):
                if w is not None:
                    w.transport.abort()

    # -- numbers ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Connections accepted/refused/open and bytes forwarded per direction, in total and per front.

        "to_target" counts bytes written to the destination (client -> destination),
        "to_client" the answers; a chunk counts once it has been written.
        """
        with self._lock:
            fronts = {
                f.name: {
                    "address": f.address,
                    "target": None if f.target is None else f"{f.target[0]}:{f.target[1]}",
                    "accepted": f.accepted,
                    "refused": f.refused,
                    "bytes_to_target": f.bytes_to_target,
                    "bytes_to_client": f.bytes_to_client,
                }
                for f in self._fronts.values()
            }
            return {
                "rtt_ms": self.rtt_ms,
                "accepted": self._accepted,
                "refused": self._refused,
                "open": len(self._handlers),
                "bytes_to_target": sum(f["bytes_to_target"] for f in fronts.values()),
                "bytes_to_client": sum(f["bytes_to_client"] for f in fronts.values()),
                "fronts": fronts,
            }
