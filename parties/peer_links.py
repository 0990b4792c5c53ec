"""A node's links to the other parties, shared by all its sessions for the node's lifetime.

Per peer: one mutual-TLS channel (HTTP/2 keepalive on), an `Outbox` of the messages for
it (served on the stream the peer opens to this node) and an `Inlet` reading the stream
this node opens to it. So each ordered pair of parties has one long-lived stream, opened
by the receiver, and a round costs no call at all: a send queues bytes, a receive takes
them from the `Mailbox`.

Sessions `join` with their roster and a failure hook and `leave` when they end. The links
route what goes wrong on a stream to the sessions it concerns:
* our stream to a peer ended: each open session that wrote to it may have lost messages,
  and is told so (`on_failure`, raised by its next `recv` or its `close`);
* the peer's stream to us ended: each open session that involves the peer may have lost
  messages from it, and is told so.
Either way the stream is opened again for later sessions (an Outbox takes the peer's next
stream; an Inlet reopens its own while a session wants it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import grpc.experimental

from mpc.errors import PeerFailure
from parties import peer_wire
from parties.certs import Identity
from parties.inlet import Inlet, StreamCall
from parties.mailbox import Mailbox
from parties.outbox import Outbox
from parties.proto import pooled_pb2_grpc as rpc
from parties.tls import DEFAULT_KEEPALIVE, Keepalive, TlsMaterial

FailureHook = Callable[[PeerFailure, bool], None]
"""(the failure, whether it concerns this party's outgoing messages) -> None."""
STREAM_OPTIONS = [(grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)]
"""Peer channels read their stream in the calling thread (see `parties.inlet`)."""


def describe(err: BaseException) -> str:
    """A gRPC error as `CODE: details`."""
    code = err.code() if isinstance(err, grpc.Call) else None
    details = err.details() if isinstance(err, grpc.Call) else str(err)
    return f"{code.name if code else type(err).__name__}: {details}"


@dataclass(frozen=True)
class _Member:
    peers: frozenset[str]
    on_failure: FailureHook


class PeerLinks:
    """A node's channels, outboxes and inlets to the other parties (thread-safe)."""

    def __init__(
        self, tls: TlsMaterial, resolve: Callable[[str], str], mailbox: Mailbox,
        keepalive: Keepalive = DEFAULT_KEEPALIVE,
    ) -> None:
        self._tls = tls
        self._resolve = resolve
        self._mailbox = mailbox
        self._keepalive = keepalive
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, rpc.PeerExchangeStub] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._inlets: dict[str, Inlet] = {}
        self._sessions: dict[str, _Member] = {}
        self._closed = False

    @property
    def me(self) -> str:
        return self._tls.identity.name

    # -- channels ----------------------------------------------------------------------------
    def _channel(self, party: str) -> grpc.Channel:
        with self._lock:
            if self._closed:
                raise RuntimeError("the node is stopping")
            if party in self._channels:
                return self._channels[party]
        address = self._resolve(party)  # may ask the dealer: not under the lock every send takes
        channel = self._tls.channel(address, Identity.party(party), self._keepalive, STREAM_OPTIONS)
        with self._lock:
            if self._closed or party in self._channels:
                extra, channel = channel, self._channels.get(party)
                extra.close()
                if channel is None:
                    raise RuntimeError("the node is stopping")
                return channel
            self._channels[party] = channel
            self._stubs[party] = rpc.PeerExchangeStub(channel)
            return channel

    def stub(self, party: str) -> rpc.PeerExchangeStub:
        """Stub for Abort and Ping (protobuf messages built by `parties.messages`)."""
        self._channel(party)
        with self._lock:
            return self._stubs[party]

    def _open_stream(self, party: str) -> StreamCall:
        method = self._channel(party).unary_stream(peer_wire.PEER_STREAM_METHOD)
        call: StreamCall = method(peer_wire.STREAM_REQUEST)
        return call

    def forget(self, party: str) -> None:
        """Drop the channel to `party` (it failed to connect): the next use dials afresh at once,
        instead of waiting out a reconnect backoff while the party may already be back."""
        with self._lock:
            channel = self._channels.pop(party, None)
            self._stubs.pop(party, None)
        if channel is not None:
            channel.close()

    # -- sessions ------------------------------------------------------------------------------
    def join(self, session: str, peers: list[str], on_failure: FailureHook) -> None:
        """A session starts here with `peers`: their streams to us are opened if they are not."""
        with self._lock:
            self._sessions[session] = _Member(frozenset(peers), on_failure)
        for peer in peers:
            self._inlet(peer).want()

    def leave(self, session: str) -> None:
        """The session has ended here (idempotent)."""
        with self._lock:
            self._sessions.pop(session, None)
            outboxes = list(self._outboxes.values())
        for outbox in outboxes:
            outbox.forget(session)

    def outbox(self, peer: str) -> Outbox:
        with self._lock:
            if peer not in self._outboxes:
                self._outboxes[peer] = Outbox(peer, self._lost)
                if self._closed:
                    self._outboxes[peer].close()
            return self._outboxes[peer]

    def _inlet(self, peer: str) -> Inlet:
        with self._lock:
            if peer not in self._inlets:
                self._inlets[peer] = Inlet(self.me, peer, self._mailbox, lambda: self._open_stream(peer),
                                           lambda: self._wanted(peer), self._broken, describe)
            return self._inlets[peer]

    def _wanted(self, peer: str) -> bool:
        with self._lock:
            return not self._closed and any(peer in m.peers for m in self._sessions.values())

    def _lost(self, peer: str, sessions: set[str], reason: str) -> None:
        with self._lock:
            hooks = [self._sessions[s].on_failure for s in sessions if s in self._sessions]
        for hook in hooks:
            hook(PeerFailure(peer, f"{reason}: our messages to it may be lost"), True)

    def _broken(self, peer: str, reason: str) -> None:
        with self._lock:
            hooks = [m.on_failure for m in self._sessions.values() if peer in m.peers]
        for hook in hooks:
            hook(PeerFailure(peer, f"its stream to us ended ({reason}): its messages may be lost"), False)

    def close(self) -> None:
        """Stop every stream and close the channels (the node is stopping)."""
        with self._lock:
            self._closed = True
            outboxes, inlets = list(self._outboxes.values()), list(self._inlets.values())
            channels = list(self._channels.values())
            self._channels.clear()
            self._stubs.clear()
        for outbox in outboxes:
            outbox.close()
        for inlet in inlets:
            inlet.close()
        for channel in channels:
            channel.close()
