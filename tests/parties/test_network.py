"""A real consortium: dealer + 3 node processes on 127.0.0.1, gRPC over mutual TLS.

One consortium serves every test in this module; each test that starts anything else
stops it. Results are compared with numpy; refusals with the exact gRPC status.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from parties import messages, peer_socket
from parties.certs import CertFiles, Identity, create_consortium
from parties.client import ConsortiumClient, ConsortiumError
from parties.jobs import private_vector
from parties.local import LocalConsortium
from parties.proto import pooled_pb2_grpc as rpc
from parties.records import AbortInfo, JobCall
from parties.tls import TlsMaterial

pytestmark = pytest.mark.network
NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def consortium() -> Iterator[LocalConsortium]:
    with LocalConsortium(NAMES, bench_jobs=True) as lc:
        yield lc


@pytest.fixture(scope="module")
def client(consortium: LocalConsortium) -> Iterator[ConsortiumClient]:
    with consortium.client() as c:
        yield c


def _tls(lc: LocalConsortium, identity: Identity) -> TlsMaterial:
    return TlsMaterial.load(CertFiles.in_dir(lc.certs_dir, identity))


def test_product_of_a_million_elements_matches_numpy(client: ConsortiumClient) -> None:
    result = client.run("product", {"size": 1_000_000, "seed": 11})
    (z,) = result.outputs()
    expected = private_vector(11, "a", 1_000_000) * private_vector(11, "b", 1_000_000)
    assert np.abs(z - expected).max() < 1e-3
    for name in NAMES:
        stats = result.stats(name)
        assert stats.rounds == 2  # Beaver, truncation (x and y shared by pairwise seeds)
    assert result.stats("c").dealer_bytes == 24_000_000  # c of the triple; r_shift, r_msb of the truncation
    assert result.stats("a").dealer_bytes == 0 and result.stats("b").dealer_bytes == 0


def test_secure_sum_matches_numpy(client: ConsortiumClient) -> None:
    result = client.run("secure_sum", {"size": 1000, "seed": 5})
    assert np.abs(result.outputs()[0] - sum(private_vector(5, p, 1000) for p in NAMES)).max() < 1e-5
    assert all(result.stats(p).rounds == 0 for p in NAMES)  # shared by pairwise seeds, summed locally


def test_concurrent_sessions_do_not_mix(client: ConsortiumClient) -> None:
    results: dict[int, np.ndarray] = {}

    def run(seed: int) -> None:
        results[seed] = client.run("product", {"size": 20_000, "seed": seed}).outputs()[0]

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for seed in (1, 2, 3):
        expected = private_vector(seed, "a", 20_000) * private_vector(seed, "b", 20_000)
        assert np.abs(results[seed] - expected).max() < 1e-3


def test_a_job_no_node_knows_fails_with_a_clear_error(client: ConsortiumClient) -> None:
    with pytest.raises(ConsortiumError, match="unknown job 'nope'"):
        client.run("nope", {})


def test_the_dealer_counts_its_traffic(consortium: LocalConsortium, client: ConsortiumClient) -> None:
    tls = _tls(consortium, Identity.party("a"))
    with tls.channel(consortium.dealer_address, Identity.dealer()) as channel:
        stub = rpc.DealerStub(channel)
        before = messages.dealer_stats_from_pb(stub.Stats(messages.empty(), timeout=5))
        client.run("product", {"size": 1000, "seed": 1})
        after = messages.dealer_stats_from_pb(stub.Stats(messages.empty(), timeout=5))
    assert after["sessions_opened"] == before["sessions_opened"] + 1
    assert after["corrections"] == before["corrections"] + 2
    assert after["correction_bytes"] == before["correction_bytes"] + 24_000


# -- refusals ------------------------------------------------------------------------------------
def _node_stub(
    lc: LocalConsortium, creds: grpc.ChannelCredentials, party: str = "a"
) -> tuple[grpc.Channel, rpc.NodeStub]:
    channel = grpc.secure_channel(
        lc.addresses[party], creds, options=[("grpc.ssl_target_name_override", Identity.party(party).dns_name)]
    )
    return channel, rpc.NodeStub(channel)


def test_a_node_cannot_pass_for_another(consortium: LocalConsortium) -> None:
    tls = _tls(consortium, Identity.analyst("analyst"))
    with tls.channel(consortium.addresses["a"], Identity.party("b")) as channel, pytest.raises(grpc.RpcError) as err:
        rpc.NodeStub(channel).Status(messages.empty(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # a's certificate does not name b.party.pooled


def test_a_client_without_a_certificate_is_refused(consortium: LocalConsortium) -> None:
    ca = (consortium.certs_dir / "ca.pem").read_bytes()
    channel, stub = _node_stub(consortium, grpc.ssl_channel_credentials(root_certificates=ca))
    with channel, pytest.raises(grpc.RpcError) as err:
        stub.Status(messages.empty(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_is_refused(consortium: LocalConsortium, tmp_path: Path) -> None:
    create_consortium(tmp_path, [], dealer=False, analysts=["analyst"])  # same name, foreign CA
    cert, key, _ = CertFiles.in_dir(tmp_path, Identity.analyst("analyst")).read()
    ca = (consortium.certs_dir / "ca.pem").read_bytes()
    channel, stub = _node_stub(consortium, grpc.ssl_channel_credentials(ca, key, cert))
    with channel, pytest.raises(grpc.RpcError) as err:
        stub.Status(messages.empty(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def _dial_data(lc: LocalConsortium, client: ConsortiumClient, identity: Identity, at: str = "c") -> ssl.SSLSocket:
    """A data socket to node `at` with `identity`'s certificate, at the port its Status gives."""
    ctx = peer_socket.client_context(_tls(lc, identity))
    return peer_socket.dial(ctx, "127.0.0.1", client.status(at).data_port, Identity.party(at), 5.0)


def test_a_party_cannot_speak_for_another(consortium: LocalConsortium, client: ConsortiumClient) -> None:
    # Messages carry no source: what arrives on a data socket comes from the party its client
    # certificate names. A socket dialled with a's certificate replaces node a's socket to c.
    # c reads it only once a's own socket is gone, so the frame over the limit sent here ends it
    # when the replacement is done: a's next session must then notice its socket was closed.
    with _dial_data(consortium, client, Identity.party("a")) as forged:
        forged.settimeout(10.0)
        forged.sendall((peer_socket.MAX_FRAME_BYTES + 1).to_bytes(4, "big"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            if forged.recv(1) == b"":
                raise ConnectionError("closed by the node")
    tls = _tls(consortium, Identity.party("a"))
    with tls.channel(consortium.addresses["c"], Identity.party("c")) as channel:
        with pytest.raises(grpc.RpcError) as abort_err:
            rpc.PeerExchangeStub(channel).Abort(messages.abort_to_pb(AbortInfo("s", "b", "b", "x")), timeout=5)
    assert abort_err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "pooled://party/a may not abort as party 'b'" in abort_err.value.details()
    # node a dials c again for the next session
    result = client.run("product", {"size": 10, "seed": 4})
    expected = private_vector(4, "a", 10) * private_vector(4, "b", 10)
    assert np.abs(result.outputs()[0] - expected).max() < 1e-3


def test_an_analyst_cannot_pose_as_a_party_and_a_party_cannot_run_jobs(
    consortium: LocalConsortium, client: ConsortiumClient
) -> None:
    sock = _dial_data(consortium, client, Identity.analyst("analyst"))  # TLS 1.3: refused after the handshake
    sock.settimeout(5.0)
    with sock, pytest.raises((ssl.SSLError, ConnectionError)) as err:
        if sock.recv(1) == b"":
            raise ConnectionError("closed by the node")
    assert err.value is not None
    tls = _tls(consortium, Identity.analyst("analyst"))
    with tls.channel(consortium.addresses["c"], Identity.party("c")) as channel, pytest.raises(grpc.RpcError) as no:
        rpc.PeerExchangeStub(channel).GetDataPort(messages.empty(), timeout=5)
    assert no.value.code() == grpc.StatusCode.PERMISSION_DENIED
    tls = _tls(consortium, Identity.party("a"))
    with tls.channel(consortium.addresses["b"], Identity.party("b")) as channel:
        request = messages.job_call_to_pb(JobCall("s-x", "product", {"size": 3}, NAMES))
        with pytest.raises(grpc.RpcError) as job_err:
            list(rpc.NodeStub(channel).RunJob(request, timeout=5))
    assert job_err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_dealer_gives_seeds_and_corrections_only_to_their_owners(consortium: LocalConsortium) -> None:
    def dealer(identity: Identity) -> tuple[grpc.Channel, rpc.DealerStub]:
        channel = _tls(consortium, identity).channel(consortium.dealer_address, Identity.dealer())
        return channel, rpc.DealerStub(channel)

    ch_a, as_a = dealer(Identity.party("a"))
    ch_b, as_b = dealer(Identity.party("b"))
    ch_x, as_analyst = dealer(Identity.analyst("analyst"))
    with ch_a, ch_b, ch_x:
        with pytest.raises(grpc.RpcError) as err:  # the analyst never talks to the dealer
            as_analyst.OpenSession(messages.session_spec("abc", NAMES), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        as_b.OpenSession(messages.session_spec("only-bc", ["b", "c"]), timeout=5)
        as_b.OpenSession(messages.session_spec("abc", NAMES), timeout=5)
        for stub, request in ((as_a, messages.session_ref("only-bc")), (as_analyst, messages.session_ref("abc"))):
            with pytest.raises(grpc.RpcError) as err:
                stub.GetSeed(request, timeout=5)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert messages.seed_from_pb(as_a.GetSeed(messages.session_ref("abc"), timeout=5)).rank == 0
        triple = '{"kind": "triple", "params": {"ring": 64, "shape": [2]}}'
        with pytest.raises(grpc.RpcError) as err:
            list(as_a.Correction(messages.correction_request("abc", 0, triple), timeout=5))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "only the last party" in err.value.details()
