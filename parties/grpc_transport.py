"""The MPC transport between real party nodes: mutual-TLS data sockets, watched over gRPC.

`GrpcTransport` is one session's view of the node's `PeerLinks` (parties/peer_links.py):
`send` writes the message on the data socket this node keeps to that peer (its `Outbox`),
from the calling thread; `recv` takes the message from the node's `Mailbox`, which the
`Inlet` reading each peer's socket to this node fills. A round therefore costs one TLS
write per peer and a wake-up, and no gRPC call; gRPC carries only the calls that watch
the peers (Ping, Abort) and find their data ports.

While `recv` waits it watches, in short slices, everything that means the message will
never come, and raises `PeerFailure` naming the party:
1. the session was aborted (by a peer's Abort, or found by a probe);
2. a socket failed: ours to some peer broke with this session's messages on it, or could not
   be dialled, or took nothing for `liveness_s` (also raised by `close`); or a peer's socket
   to us ended (`PeerLinks` calls `_fail`);
3. the awaited peer stops answering liveness pings: refused twice in a row (process
   gone), or no answer for `liveness_s` (frozen, or its connection dropped by keepalive);
4. nothing arrived within `recv_timeout_s`.
`abort` tells every peer the session is over so they fail fast instead of timing out.
`close` raises the session's failure, if any: once `send` has returned, the message's bytes
are with the kernel, so there is nothing left to wait for.

Design notes. Measured on this machine with 3 processes that each send 16 bytes to both
others and wait for theirs, over mutual TLS, per party and round: a unary gRPC call per
message 1.4-1.8 ms of CPU; one long-lived gRPC stream per ordered pair 0.39-0.46 ms through
this transport; a TLS socket per ordered pair written by the sending thread 0.05-0.11 ms
(`benchmarks/` has the `repeat_mul` job that measures a whole round). A peer's channel state
is observed through the pings: a channel in TRANSIENT_FAILURE or SHUTDOWN fails them at
once, and a connection that keepalive dropped fails or stalls them, so one mechanism covers
death, a frozen process and a cut connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from mpc.errors import PeerFailure
from mpc.transport import Transport
from parties import messages
from parties.mailbox import Mailbox
from parties.outbox import LinkError
from parties.peer_links import PeerLinks, describe
from parties.records import AbortInfo
from parties.tls import Keepalive

__all__ = ["GrpcTransport", "LinkSettings", "PeerLinks"]


@dataclass(frozen=True)
class LinkSettings:
    """Deadlines and failure detection of party-to-party links."""

    recv_timeout_s: float = 30.0  # longest wait for one message
    slice_s: float = 0.1  # how often a waiting recv re-checks failures
    probe_after_s: float = 0.5  # start pinging a peer after waiting this long for it
    probe_timeout_s: float = 1.0  # deadline of one ping
    liveness_s: float = 4.0  # a peer unanswering (or not reading its data socket) this long is declared dead
    abort_timeout_s: float = 2.0
    keepalive: Keepalive = field(default_factory=Keepalive)


def _wait_all(calls: Iterable[grpc.Future], timeout_s: float) -> None:
    """Wait until every call has finished (successfully or not), at most `timeout_s` in all."""
    deadline = time.monotonic() + timeout_s
    for call in calls:
        try:
            call.exception(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001,S110 - timed out or cancelled: nothing more to wait for
            pass


class _Probe:
    """Liveness pings of one peer while a receiver waits for it."""

    def __init__(self) -> None:
        self.pending: grpc.Future | None = None
        self.last_ok = time.monotonic()
        self.refusals = 0


class GrpcTransport(Transport):
    """One session's messages between this party and its peers, over `PeerLinks`."""

    def __init__(
        self,
        session: str,
        roster: list[str],
        rank: int,
        links: PeerLinks,
        mailbox: Mailbox,
        settings: LinkSettings = LinkSettings(),
    ) -> None:
        if roster[rank] != links.me:
            raise ValueError(f"rank {rank} of {roster} is not this node ({links.me})")
        self._session = session
        self._roster = list(roster)
        self._rank = rank
        self._links = links
        self._mailbox = mailbox
        self._settings = settings
        self._lock = threading.Lock()
        self._send_failure: PeerFailure | None = None  # our messages may be lost
        self._recv_failure: PeerFailure | None = None  # messages to us may be lost
        self._probes: dict[int, _Probe] = {}
        self._peers = [name for p, name in enumerate(self._roster) if p != rank]
        links.join(session, self._peers, self._fail)

    @property
    def party_names(self) -> list[str]:
        return list(self._roster)

    @property
    def session(self) -> str:
        return self._session

    # -- sending -----------------------------------------------------------------------------
    def send(self, dst: int, tag: str, payload: bytes | memoryview) -> None:
        if dst == self._rank or not 0 <= dst < len(self._roster):
            raise ValueError(f"cannot send to rank {dst}")
        name = self._roster[dst]
        try:
            self._links.outbox(name).put(self._session, tag, payload)
        except LinkError as exc:
            self._fail(PeerFailure(name, str(exc)), True)
        except RuntimeError as exc:  # the node is stopping
            self._fail(PeerFailure(self._links.me, str(exc)), True)

    def _fail(self, failure: PeerFailure, outgoing: bool) -> None:
        with self._lock:
            if outgoing and self._send_failure is None:
                self._send_failure = failure
            if not outgoing and self._recv_failure is None:
                self._recv_failure = failure
        self._mailbox.wake()

    # -- receiving -------------------------------------------------------------------------------
    def recv(self, src: int, tag: str) -> bytes:
        name = self._roster[src]
        s = self._settings
        start = time.monotonic()
        probe = self._fresh_probe(src, start)
        while True:
            data = self._mailbox.take(self._session, name, tag, s.slice_s)
            if data is not None:
                return data
            self._raise_if_failed()
            now = time.monotonic()
            if now - start >= s.probe_after_s:
                self._check_liveness(src, probe, now)
            if now - start >= s.recv_timeout_s:
                raise PeerFailure(name, f"sent nothing for {s.recv_timeout_s:.0f} s (waiting for {tag})")

    def _fresh_probe(self, src: int, now: float) -> _Probe:
        probe = self._probes.setdefault(src, _Probe())
        probe.last_ok = now
        probe.refusals = 0
        return probe

    def _raise_if_failed(self, receiving: bool = True) -> None:
        info = self._mailbox.aborted(self._session)
        if info is not None:
            if info.src == self._links.me:
                raise PeerFailure(info.culprit, f"this party gave up: {info.reason}")
            via = "" if info.culprit == info.src else f" (reported by {info.src})"
            raise PeerFailure(info.culprit, f"{info.reason}{via}")
        with self._lock:
            failure = self._send_failure or (self._recv_failure if receiving else None)
        if failure is not None:
            raise failure

    def _check_liveness(self, src: int, probe: _Probe, now: float) -> None:
        name, s = self._roster[src], self._settings
        if probe.pending is not None and probe.pending.done():
            call, probe.pending = probe.pending, None
            err = call.exception()
            if err is None:
                probe.last_ok, probe.refusals = now, 0
                found = messages.ping_abort(call.result(), self._session, name)
                if found is not None:
                    self._mailbox.abort(found)
                    self._raise_if_failed()
            else:
                code = err.code() if isinstance(err, grpc.Call) else None
                probe.refusals = probe.refusals + 1 if code == grpc.StatusCode.UNAVAILABLE else 0
                if probe.refusals:
                    # the next ping dials afresh: a channel still in its reconnect backoff refuses at
                    # once even when the party is back (a restarted node), so only a fresh refusal counts
                    self._links.forget(name)
                if probe.refusals >= 2:
                    raise PeerFailure(name, f"unreachable ({describe(err)})")
        if now - probe.last_ok >= s.liveness_s:
            raise PeerFailure(name, f"stopped answering (no reply to pings for {s.liveness_s:.0f} s)")
        if probe.pending is None:
            ping = self._links.stub(name).Ping.future(messages.ping_request(self._session), timeout=s.probe_timeout_s)
            probe.pending = ping

    # -- ending ------------------------------------------------------------------------------------
    def abort(self, reason: str, culprit: str | None = None) -> None:
        """Give up the session here and tell every peer (best effort, bounded wait)."""
        info = AbortInfo(self._session, self._links.me, culprit or self._links.me, reason)
        self._mailbox.abort(info)
        self._links.leave(self._session)
        notices = []
        for name in self._peers:
            if name == info.culprit:
                continue
            try:
                stub = self._links.stub(name)
                notices.append(stub.Abort.future(messages.abort_to_pb(info), timeout=self._settings.abort_timeout_s))
            except Exception:  # noqa: BLE001,S112 - a peer we cannot reach cannot be told
                continue
        _wait_all(notices, self._settings.abort_timeout_s + 0.5)

    def close(self) -> None:
        """Leave the links; raises the session's failure (a socket that lost its messages, a peer
        that could not be reached) unless the session was aborted."""
        try:
            self._raise_if_failed(receiving=False)
        except PeerFailure:
            if self._mailbox.aborted(self._session) is None:
                raise
        finally:
            self._links.leave(self._session)
