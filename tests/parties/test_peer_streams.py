"""The gRPC transport between in-process nodes: mutual-TLS servers on 127.0.0.1, one stream per ordered pair.

Each `_Node` is what a party node holds for its peers (Mailbox, PeerLinks, the PeerExchange
server); sessions run their rounds in threads, as jobs do on a node.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest

from mpc.errors import PeerFailure
from parties import peer_service, peer_wire
from parties.certs import CertFiles, Identity, create_consortium
from parties.grpc_transport import GrpcTransport, LinkSettings, PeerLinks
from parties.mailbox import Mailbox
from parties.node import RULES
from parties.tls import TlsMaterial, bind, make_server

NAMES = ["a", "b", "c"]
FAST = LinkSettings(recv_timeout_s=10.0, send_timeout_s=10.0)


class _Node:
    def __init__(self, tls: TlsMaterial, addresses: dict[str, str]) -> None:
        self.mailbox = Mailbox()
        self.links = PeerLinks(tls, addresses.__getitem__, self.mailbox)
        self.server = make_server(tls, RULES, max_workers=16)
        peer_service.add_to_server(peer_service.PeerExchangeServicer(self.mailbox, self.links), self.server)
        self.port = bind(self.server, tls, "127.0.0.1:0")
        self.server.start()

    def transport(self, session: str, roster: list[str], name: str) -> GrpcTransport:
        self.mailbox.open_session(session)
        return GrpcTransport(session, roster, roster.index(name), self.links, self.mailbox, FAST)

    def stop(self) -> None:
        self.links.close()
        self.server.stop(0).wait(5)


def _tls(certs: Path, identity: Identity) -> TlsMaterial:
    return TlsMaterial.load(CertFiles.in_dir(certs, identity))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    create_consortium(out, NAMES, dealer=False, analysts=["analyst"])
    return out


@pytest.fixture()
def nodes(certs: Path) -> Iterator[dict[str, _Node]]:
    addresses: dict[str, str] = {}
    started = {name: _Node(_tls(certs, Identity.party(name)), addresses) for name in NAMES}
    addresses.update({name: f"127.0.0.1:{node.port}" for name, node in started.items()})
    try:
        yield started
    finally:
        for node in started.values():
            node.stop()


def _in_threads(bodies: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run each body in a thread; {name: its result or the exception it raised}."""
    out: dict[str, Any] = {}

    def run(name: str, body: Callable[[], Any]) -> None:
        try:
            out[name] = body()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            out[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in bodies.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _rounds(t: GrpcTransport, rank: int, rounds: int, size: int = 16) -> list[bytes]:
    """Each round r: send (receiver's rank, r) * size/2 to every peer, then take every peer's message.

    Returns the last round's messages; closes the session."""
    peers = [p for p in range(len(t.party_names)) if p != rank]
    got: list[bytes] = []
    for r in range(rounds):
        for p in peers:
            t.send(p, f"r{r}", bytes([p, r % 256]) * (size // 2))
        got = [t.recv(p, f"r{r}") for p in peers]
    t.close()
    return got


def test_rounds_of_concurrent_sessions_arrive_whole_and_apart(nodes: dict[str, _Node]) -> None:
    cases = {"s-small": (30, 16), "s-large": (3, 3_000_000)}  # session: rounds, bytes per message
    bodies: dict[str, Callable[[], Any]] = {}
    for session, (rounds, size) in cases.items():
        for rank, name in enumerate(NAMES):
            t = nodes[name].transport(session, NAMES, name)
            bodies[f"{session}/{name}"] = partial(_rounds, t, rank, rounds, size)
    results = _in_threads(bodies)
    for key, got in results.items():
        session, name = key.split("/")
        rounds, size = cases[session]
        assert got == [bytes([NAMES.index(name), rounds - 1]) * (size // 2)] * 2, (key, got)


def test_an_abort_reaches_the_peers(nodes: dict[str, _Node]) -> None:
    ts = {name: nodes[name].transport("s", NAMES, name) for name in NAMES}
    ts["a"].abort("a refuses", culprit=None)
    for name in ("b", "c"):
        with pytest.raises(PeerFailure) as err:
            ts[name].recv(1 if name == "c" else 2, "never")
        assert err.value.party == "a" and "a refuses" in str(err.value)


def test_a_stream_that_breaks_fails_its_sessions_at_both_ends_and_later_sessions_use_a_new_one(
    nodes: dict[str, _Node], certs: Path
) -> None:
    roster = ["a", "b"]
    a, b = nodes["a"].transport("s1", roster, "a"), nodes["b"].transport("s1", roster, "b")
    a.send(1, "t", b"first")
    assert b.recv(0, "t") == b"first"  # a's stream to b is up
    a.send(1, "u", b"second")
    # Someone with b's certificate opens a new stream at a: a's stream to node b ends.
    with _tls(certs, Identity.party("b")).channel(f"127.0.0.1:{nodes['a'].port}", Identity.party("a")) as channel:
        other = channel.unary_stream(peer_wire.PEER_STREAM_METHOD)(peer_wire.STREAM_REQUEST, timeout=10)
        assert next(other) == b""
        with pytest.raises(PeerFailure) as at_a:
            a.recv(1, "never")
        assert at_a.value.party == "b" and "our messages to it may be lost" in str(at_a.value)
        with pytest.raises(PeerFailure) as at_b:
            b.recv(0, "never")
        assert at_b.value.party == "a" and "its stream to us ended" in str(at_b.value)
        other.cancel()
    a.abort("lost")
    b.abort("lost")
    a2, b2 = nodes["a"].transport("s2", roster, "a"), nodes["b"].transport("s2", roster, "b")
    results = _in_threads({"a": lambda: _rounds(a2, 0, 5), "b": lambda: _rounds(b2, 1, 5)})
    assert results == {"a": [bytes([0, 4]) * 8], "b": [bytes([1, 4]) * 8]}


def test_a_peer_that_stops_is_named_by_the_next_recv(nodes: dict[str, _Node]) -> None:
    roster = ["a", "b"]
    a, b = nodes["a"].transport("s", roster, "a"), nodes["b"].transport("s", roster, "b")
    a.send(1, "t", b"x")
    assert b.recv(0, "t") == b"x"
    nodes["b"].stop()
    with pytest.raises(PeerFailure) as err:
        a.recv(1, "never")
    assert err.value.party == "b"


def test_close_waits_until_the_messages_are_sent_and_a_session_ends_cleanly(nodes: dict[str, _Node]) -> None:
    roster = ["a", "b"]
    a, b = nodes["a"].transport("s", roster, "a"), nodes["b"].transport("s", roster, "b")
    a.send(1, "big", bytes(5_000_000))
    a.close()
    assert nodes["a"].links.outbox("b").drained("s")
    assert len(b.recv(0, "big")) == 5_000_000
    b.close()


def test_a_foreign_certificate_cannot_open_a_stream(nodes: dict[str, _Node], certs: Path, tmp_path: Path) -> None:
    create_consortium(tmp_path, ["b"], dealer=False)  # same name, another CA
    foreign = _tls(tmp_path, Identity.party("b"))
    creds = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), foreign.key, foreign.cert)
    options = [("grpc.ssl_target_name_override", Identity.party("a").dns_name)]
    with grpc.secure_channel(f"127.0.0.1:{nodes['a'].port}", creds, options=options) as channel:
        stream = channel.unary_stream(peer_wire.PEER_STREAM_METHOD)(peer_wire.STREAM_REQUEST, timeout=5)
        with pytest.raises(grpc.RpcError) as err:
            next(stream)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_an_analyst_cannot_open_a_stream(nodes: dict[str, _Node], certs: Path) -> None:
    with _tls(certs, Identity.analyst("analyst")).channel(f"127.0.0.1:{nodes['a'].port}", Identity.party("a")) as ch:
        stream = ch.unary_stream(peer_wire.PEER_STREAM_METHOD)(peer_wire.STREAM_REQUEST, timeout=5)
        with pytest.raises(grpc.RpcError) as err:
            next(stream)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
