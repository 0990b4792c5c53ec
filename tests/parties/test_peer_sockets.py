"""The transport between in-process nodes: mutual-TLS data sockets on 127.0.0.1, one per ordered pair.

Each `_Node` is what a party node holds for its peers (Mailbox, PeerLinks with its data port,
the PeerExchange server); sessions run their rounds in threads, as jobs do on a node.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from mpc.errors import PeerFailure
from parties import peer_service, peer_socket, peer_wire
from parties.certs import CertFiles, Identity, create_consortium
from parties.grpc_transport import GrpcTransport, LinkSettings, PeerLinks
from parties.mailbox import Mailbox
from parties.node import RULES
from parties.tls import TlsMaterial, bind, make_server
from tests.support import wait_until

NAMES = ["a", "b", "c"]
FAST = LinkSettings(recv_timeout_s=10.0)


class _Node:
    def __init__(self, tls: TlsMaterial, addresses: dict[str, str]) -> None:
        self.mailbox = Mailbox()
        self.links = PeerLinks(tls, addresses.__getitem__, self.mailbox)
        self.data_port = self.links.listen("127.0.0.1")
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


def _dial(certs: Path, who: Identity, node: _Node, target: str) -> ssl.SSLSocket:
    """A data socket to `node` (party `target`) with `who`'s certificate."""
    ctx = peer_socket.client_context(_tls(certs, who))
    return peer_socket.dial(ctx, "127.0.0.1", node.data_port, Identity.party(target), 5.0)


def _refused(sock: ssl.SSLSocket) -> bool:
    """The server ended the connection without a byte (a TLS 1.3 client learns of its refusal late)."""
    sock.settimeout(5.0)
    try:
        return sock.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        sock.close()




def test_a_socket_that_breaks_fails_its_sessions_at_both_ends_and_later_sessions_use_a_new_one(
    nodes: dict[str, _Node], certs: Path
) -> None:
    roster = ["a", "b"]
    a, b = nodes["a"].transport("s1", roster, "a"), nodes["b"].transport("s1", roster, "b")
    a.send(1, "t", b"first")
    assert b.recv(0, "t") == b"first"  # a's socket to b is up
    # Someone with a's certificate dials b: it replaces node a's socket, which b closes.
    other = _dial(certs, Identity.party("a"), nodes["b"], "b")
    with pytest.raises(PeerFailure) as at_b:
        b.recv(0, "never")
    assert at_b.value.party == "a" and "its connection to us ended" in str(at_b.value)
    with pytest.raises(PeerFailure) as at_a:
        a.recv(1, "never")
    assert at_a.value.party == "b" and "our messages to it may be lost" in str(at_a.value)
    other.close()
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


def test_a_large_message_arrives_whole_and_a_session_ends_cleanly(nodes: dict[str, _Node]) -> None:
    roster = ["a", "b"]
    a, b = nodes["a"].transport("s", roster, "a"), nodes["b"].transport("s", roster, "b")
    a.send(1, "big", bytes(range(256)) * 20_000)
    a.close()
    assert b.recv(0, "big") == bytes(range(256)) * 20_000
    b.close()


def test_a_message_to_a_party_that_is_gone_fails_the_session_naming_it(nodes: dict[str, _Node]) -> None:
    roster = ["a", "c"]
    nodes["c"].stop()
    a = nodes["a"].transport("s", roster, "a")
    a.send(1, "t", b"x")  # cannot be dialled: the failure is kept for the next recv or close
    with pytest.raises(PeerFailure) as err:
        a.close()
    assert err.value.party == "c" and "cannot connect" in str(err.value)


def test_a_foreign_certificate_is_refused_on_the_data_socket(
    nodes: dict[str, _Node], certs: Path, tmp_path: Path
) -> None:
    create_consortium(tmp_path, ["b"], dealer=False)  # same name, another CA
    foreign = _tls(tmp_path, Identity.party("b"))
    ctx = peer_socket.client_context(foreign)
    ctx.load_verify_locations(cadata=(certs / "ca.pem").read_text())  # it trusts a's CA: only a can refuse
    a = nodes["a"].transport("s", ["a", "b"], "a")
    sock = peer_socket.dial(ctx, "127.0.0.1", nodes["a"].data_port, Identity.party("a"), 5.0)
    frame = peer_wire.message_to_wire("s", "t", b"forged")[0]
    try:
        peer_socket.write_frame(sock, [frame])
    except (ssl.SSLError, ConnectionError):
        pass  # refused before the write
    assert _refused(sock)
    assert not nodes["a"].links.inlet_up("b")
    assert nodes["a"].mailbox.take("s", "b", "t", 0.2) is None
    a.abort("done")


@pytest.mark.parametrize("who", [Identity.analyst("analyst"), Identity.party("c")])
def test_only_the_party_named_is_dialled_and_only_parties_are_accepted(
    nodes: dict[str, _Node], certs: Path, who: Identity
) -> None:
    if who.role == "analyst":  # an analyst's certificate is accepted by TLS, then refused
        assert _refused(_dial(certs, who, nodes["a"], "a"))
        assert wait_until(lambda: not nodes["a"].links.inlet_up("analyst"))
    else:  # a dialer that meant to reach c but reached a's port refuses a
        with pytest.raises((peer_socket.RefusedPeer, ssl.SSLError)):
            _dial(certs, Identity.party("b"), nodes["a"], who.name)
