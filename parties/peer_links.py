"""A node's links to the other parties, shared by all its sessions for the node's lifetime.

Per peer: one mutual-TLS gRPC channel (HTTP/2 keepalive on) for the control calls (Ping,
Abort, GetDataPort), an `Outbox` that writes this node's messages on the data socket it
dials to the peer, and an `Inlet` reading the data socket the peer dialled to this node
(accepted on the node's data port, `listen`). So each ordered pair of parties has one
long-lived socket, dialled by the sender, and a round costs one TLS write and one read at
each end (parties/peer_socket.py has the checks on both ends).

Sessions `join` with their roster and a failure hook and `leave` when they end. The links
route what goes wrong on a socket to the sessions it concerns:
* our socket to a peer broke: each open session that wrote to it may have lost messages,
  and is told so (`on_failure`, raised by its next `recv` or its `close`);
* the peer's socket to us ended: each open session that involves the peer may have lost
  messages from it, and is told so.
Either way the peer's next message travels on a new socket (the sender dials again; a new
socket from a peer replaces its old one, which counts as ended).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from mpc.errors import PeerFailure
from parties import messages, peer_socket
from parties.certs import Identity
from parties.inlet import Inlet
from parties.mailbox import Mailbox
from parties.outbox import Outbox
from parties.proto import pooled_pb2_grpc as rpc
from parties.tls import DEFAULT_KEEPALIVE, Keepalive, TlsMaterial

FailureHook = Callable[[PeerFailure, bool], None]
"""(the failure, whether it concerns this party's outgoing messages) -> None."""


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
    """A node's channels, data sockets and sessions (thread-safe).

    `stall_s` bounds a dial (the GetDataPort call, TCP connect, TLS handshake each), an
    accepted socket's handshake, and a write that makes no progress.
    """

    def __init__(
        self, tls: TlsMaterial, resolve: Callable[[str], str], mailbox: Mailbox,
        keepalive: Keepalive = DEFAULT_KEEPALIVE, stall_s: float = 4.0,
    ) -> None:
        self._tls = tls
        self._resolve = resolve
        self._mailbox = mailbox
        self._keepalive = keepalive
        self._stall_s = stall_s
        self._client_ctx = peer_socket.client_context(tls)
        self._server_ctx = peer_socket.server_context(tls)
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, rpc.PeerExchangeStub] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._inlets: dict[str, Inlet] = {}
        self._sessions: dict[str, _Member] = {}
        self._listener: socket.socket | None = None
        self._bound = self._advertised = 0
        self._closed = False

    @property
    def me(self) -> str:
        return self._tls.identity.name

    # -- the data port -----------------------------------------------------------------------------
    def listen(self, host: str, port: int = 0, advertise_port: int | None = None) -> int:
        """Accept peers' data sockets on `host:port` (0: any free port); returns the bound port.

        `advertise_port` is what GetDataPort tells peers to dial (default: the bound port), for a
        node reached through a port forward or a relay.
        """
        listener = peer_socket.listen(host, port)
        bound = int(listener.getsockname()[1])
        with self._lock:
            self._listener = listener
            self._bound, self._advertised = bound, advertise_port or bound
        threading.Thread(target=self._accept_loop, args=(listener,), name="data-accept", daemon=True).start()
        return bound

    @property
    def data_port(self) -> int:
        """The port peers are told to dial (0 before `listen`)."""
        with self._lock:
            return self._advertised

    @property
    def bound_data_port(self) -> int:
        """The port the data sockets are accepted on (0 before `listen`)."""
        with self._lock:
            return self._bound

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return  # closed: the node is stopping
            threading.Thread(target=self._serve, args=(raw,), name="data-inlet", daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        """Handshake with a peer's socket and read it until it ends (in a thread of its own)."""
        try:
            who, sock = peer_socket.accept(self._server_ctx, raw, self._stall_s)
        except (OSError, peer_socket.RefusedPeer):
            return  # not a party of this consortium: refused before any data was read
        inlet = Inlet(self.me, who.name, sock, self._mailbox, self._inlet_ended)
        with self._lock:
            if self._closed:
                inlet.stop()
                old = None
            else:
                old, self._inlets[who.name] = self._inlets.get(who.name), inlet
        if old is not None:
            old.stop(report=True)  # replaced: what it carried may be lost
        inlet.run()

    def _inlet_ended(self, inlet: Inlet, reason: str) -> None:
        with self._lock:
            if self._inlets.get(inlet.peer) is inlet:
                del self._inlets[inlet.peer]
            hooks = [m.on_failure for m in self._sessions.values() if inlet.peer in m.peers]
        for hook in hooks:
            hook(PeerFailure(inlet.peer, f"its connection to us ended ({reason}): its messages may be lost"), False)

    def _dial(self, party: str) -> ssl.SSLSocket:
        """A data socket to `party`, at the port it gives over gRPC (asked afresh on every dial: a
        restarted node has a new one). A channel that fails the question is dialled afresh once,
        as it may still be waiting out its reconnect backoff from before the party came back."""
        host = self._resolve(party).rsplit(":", 1)[0]
        for attempt in (1, 2):
            try:
                reply = self.stub(party).GetDataPort(messages.empty(), timeout=self._stall_s)
                break
            except grpc.RpcError as exc:
                self.forget(party)
                if attempt == 2 or exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise ConnectionError(f"no data port: {describe(exc)}") from None
        return peer_socket.dial(self._client_ctx, host, int(reply.port), Identity.party(party), self._stall_s)

    # -- channels ----------------------------------------------------------------------------
    def _channel(self, party: str) -> grpc.Channel:
        with self._lock:
            if self._closed:
                raise RuntimeError("the node is stopping")
            if party in self._channels:
                return self._channels[party]
        address = self._resolve(party)  # may ask the dealer: not under the lock
        channel = self._tls.channel(address, Identity.party(party), self._keepalive)
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
        """Stub for Abort, Ping and GetDataPort (protobuf messages built by `parties.messages`)."""
        self._channel(party)
        with self._lock:
            return self._stubs[party]

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
        """A session starts here with `peers`."""
        with self._lock:
            self._sessions[session] = _Member(frozenset(peers), on_failure)

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
                self._outboxes[peer] = Outbox(peer, lambda: self._dial(peer), self._lost, self._stall_s)
                if self._closed:
                    self._outboxes[peer].close()
            return self._outboxes[peer]

    def inlet_up(self, peer: str) -> bool:
        """A data socket from `peer` is open here (for tests and status)."""
        with self._lock:
            return peer in self._inlets

    def _lost(self, peer: str, sessions: set[str], reason: str) -> None:
        with self._lock:
            hooks = [self._sessions[s].on_failure for s in sessions if s in self._sessions]
        for hook in hooks:
            hook(PeerFailure(peer, f"{reason}: our messages to it may be lost"), True)

    def close(self) -> None:
        """Close the data port, every data socket and the channels (the node is stopping)."""
        with self._lock:
            self._closed = True
            outboxes, inlets = list(self._outboxes.values()), list(self._inlets.values())
            channels = list(self._channels.values())
            listener, self._listener = self._listener, None
            self._channels.clear()
            self._stubs.clear()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (closing alone may not)
            except OSError:
                pass
            listener.close()
        for outbox in outboxes:
            outbox.close()
        for inlet in inlets:
            inlet.stop()
        for channel in channels:
            channel.close()
