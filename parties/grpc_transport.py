"""The MPC transport over gRPC with mutual TLS, between real party nodes.

`PeerLinks` holds one channel per peer for the node's lifetime (HTTP/2 keepalive on);
`GrpcTransport` is one session's view: `send` passes a message that fits one chunk as
one asynchronous unary call (`SendOne`: most MPC rounds are a few KB, and a stream call
costs a request thread per call, measured at ~2 ms each on this machine), and streams a
larger payload to the peer in 1 MiB chunks as an asynchronous call (gRPC's own thread
feeds the stream, so sends to several peers overlap and the protocol carries on); `recv`
takes the message from the node's `Mailbox`, which the PeerExchange servicer fills.

While `recv` waits it watches, in short slices, everything that means the message will
never come, and raises `PeerFailure` naming the party:
1. the session was aborted (by a peer's Abort, or found by a probe);
2. an earlier send to some peer failed;
3. the awaited peer stops answering liveness pings: refused twice in a row (process
   gone), or no answer for `liveness_s` (frozen, or its connection dropped by keepalive);
4. nothing arrived within `recv_timeout_s`.
`abort` tells every peer the session is over so they fail fast instead of timing out.

Design notes. Sends use gRPC's future API rather than our own sender thread and queue:
gRPC already consumes each request stream in a thread of its own, so sends to several
peers overlap without a second layer of threads; a failed send is recorded and raised
by the next `recv` (or by `close`, which waits until every message was delivered). A
peer's channel state is observed through the pings: a channel in TRANSIENT_FAILURE or
SHUTDOWN fails them at once, and a connection that keepalive dropped fails or stalls
them, so one mechanism covers death, a frozen process and a cut connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc

from mpc.errors import PeerFailure
from mpc.transport import Transport
from parties import messages, peer_wire
from parties.certs import Identity
from parties.mailbox import Mailbox
from parties.proto import pooled_pb2_grpc as rpc
from parties.records import AbortInfo
from parties.tls import DEFAULT_KEEPALIVE, Keepalive, TlsMaterial


@dataclass(frozen=True)
class LinkSettings:
    """Deadlines and failure detection of party-to-party links."""

    recv_timeout_s: float = 30.0  # longest wait for one message
    send_timeout_s: float = 60.0  # deadline of one Send call
    slice_s: float = 0.1  # how often a waiting recv re-checks failures
    probe_after_s: float = 0.5  # start pinging a peer after waiting this long for it
    probe_timeout_s: float = 1.0  # deadline of one ping
    liveness_s: float = 4.0  # a peer unanswering for this long is declared dead
    abort_timeout_s: float = 2.0
    keepalive: Keepalive = field(default_factory=Keepalive)


class PeerLinks:
    """A node's channels and stubs to the other parties, shared by all its sessions."""

    def __init__(
        self, tls: TlsMaterial, resolve: Callable[[str], str], keepalive: Keepalive = DEFAULT_KEEPALIVE
    ) -> None:
        self._tls = tls
        self._resolve = resolve
        self._keepalive = keepalive
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, rpc.PeerExchangeStub] = {}
        self._senders: dict[str, grpc.StreamUnaryMultiCallable] = {}
        self._single: dict[str, grpc.UnaryUnaryMultiCallable] = {}

    @property
    def me(self) -> str:
        return self._tls.identity.name

    def _connect(self, party: str) -> None:
        channel = self._tls.channel(self._resolve(party), Identity.party(party), self._keepalive)
        self._channels[party] = channel
        self._stubs[party] = rpc.PeerExchangeStub(channel)
        self._senders[party] = channel.stream_unary(
            peer_wire.PEER_SEND_METHOD, request_serializer=None, response_deserializer=peer_wire.delivered_from_wire
        )
        self._single[party] = channel.unary_unary(
            peer_wire.PEER_SEND_ONE_METHOD, request_serializer=None, response_deserializer=peer_wire.delivered_from_wire
        )

    def stub(self, party: str) -> rpc.PeerExchangeStub:
        """Stub for Abort and Ping (protobuf messages built by `parties.messages`)."""
        with self._lock:
            if party not in self._stubs:
                self._connect(party)
            return self._stubs[party]

    def sender(self, party: str) -> grpc.StreamUnaryMultiCallable:
        """Send, fed with pre-serialized chunks from `peer_wire.message_to_wire`."""
        with self._lock:
            if party not in self._senders:
                self._connect(party)
            return self._senders[party]

    def single(self, party: str) -> grpc.UnaryUnaryMultiCallable:
        """SendOne, fed with one pre-serialized chunk from `peer_wire.message_to_wire_one`."""
        with self._lock:
            if party not in self._single:
                self._connect(party)
            return self._single[party]

    def forget(self, party: str) -> None:
        """Drop the channel to `party` (it failed to connect): the next use dials afresh at once,
        instead of waiting out a reconnect backoff while the party may already be back."""
        with self._lock:
            channel = self._channels.pop(party, None)
            self._stubs.pop(party, None)
            self._senders.pop(party, None)
            self._single.pop(party, None)
        if channel is not None:
            channel.close()

    def close(self) -> None:
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
            self._stubs.clear()
            self._senders.clear()
            self._single.clear()
        for channel in channels:
            channel.close()


def _describe(err: grpc.RpcError) -> str:
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    return f"{code.name if code else 'error'}: {details}"


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
        self._sends: list[tuple[int, grpc.Future]] = []
        self._send_failure: PeerFailure | None = None
        self._probes: dict[int, _Probe] = {}

    @property
    def party_names(self) -> list[str]:
        return list(self._roster)

    @property
    def session(self) -> str:
        return self._session

    # -- sending -----------------------------------------------------------------------------
    def send(self, dst: int, tag: str, payload: bytes) -> None:
        if dst == self._rank or not 0 <= dst < len(self._roster):
            raise ValueError(f"cannot send to rank {dst}")
        one = peer_wire.message_to_wire_one(self._session, self._links.me, tag, payload)
        try:
            if one is not None:  # most rounds: a unary call, no request-stream thread
                call = self._links.single(self._roster[dst]).future(one, timeout=self._settings.send_timeout_s)
            else:
                chunks = peer_wire.message_to_wire(self._session, self._links.me, tag, payload)
                call = self._links.sender(self._roster[dst]).future(chunks, timeout=self._settings.send_timeout_s)
        except Exception as exc:  # noqa: BLE001 - address lookup or channel creation failed
            self._fail_send(PeerFailure(self._roster[dst], f"cannot reach it: {exc}"))
            return
        with self._lock:
            self._sends = [(d, f) for d, f in self._sends if not f.done()]
            self._sends.append((dst, call))
        call.add_done_callback(lambda f, d=dst: self._on_sent(d, f))

    def _on_sent(self, dst: int, call: grpc.Future) -> None:
        if call.cancelled():
            return
        err = call.exception()
        if err is not None:
            if hasattr(err, "code") and err.code() == grpc.StatusCode.UNAVAILABLE:
                self._links.forget(self._roster[dst])
            self._fail_send(PeerFailure(self._roster[dst], f"did not take our message ({_describe(err)})"))

    def _fail_send(self, failure: PeerFailure) -> None:
        with self._lock:
            if self._send_failure is None:
                self._send_failure = failure
        self._mailbox.wake()

    # -- receiving -------------------------------------------------------------------------------
    def recv(self, src: int, tag: str) -> bytes:
        name = self._roster[src]
        s = self._settings
        start = time.monotonic()
        probe = self._probes.setdefault(src, _Probe())
        probe.last_ok = start
        probe.refusals = 0
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

    def _raise_if_failed(self) -> None:
        info = self._mailbox.aborted(self._session)
        if info is not None:
            if info.src == self._links.me:
                raise PeerFailure(info.culprit, f"this party gave up: {info.reason}")
            via = "" if info.culprit == info.src else f" (reported by {info.src})"
            raise PeerFailure(info.culprit, f"{info.reason}{via}")
        with self._lock:
            failure = self._send_failure
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
                code = err.code() if hasattr(err, "code") else None
                probe.refusals = probe.refusals + 1 if code == grpc.StatusCode.UNAVAILABLE else 0
                if probe.refusals >= 2:
                    self._links.forget(name)
                    raise PeerFailure(name, f"unreachable ({_describe(err)})")
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
        with self._lock:
            for _, call in self._sends:
                call.cancel()
        notices = []
        for p, name in enumerate(self._roster):
            if p == self._rank or name == info.culprit:
                continue
            try:
                stub = self._links.stub(name)
                notices.append(stub.Abort.future(messages.abort_to_pb(info), timeout=self._settings.abort_timeout_s))
            except Exception:  # noqa: BLE001,S112 - a peer we cannot reach cannot be told
                continue
        _wait_all(notices, self._settings.abort_timeout_s + 0.5)

    def close(self) -> None:
        """Wait until every message sent has been delivered (peers may still need them)."""
        with self._lock:
            pending = [call for _, call in self._sends]
        _wait_all(pending, self._settings.send_timeout_s)
        with self._lock:
            self._sends.clear()
            failure = self._send_failure
        if failure is not None and self._mailbox.aborted(self._session) is None:
            raise failure
