"""The last party's correction stream: framing, and an in-process dealer on 127.0.0.1 with mutual TLS.

The corrections a `CorrectionStream` hands over must be exactly what the dealer's engine
computes for each request number, whether planned, past the plan, or against a wrong plan;
a stopped dealer must fail every later fetch naming the dealer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from mpc.errors import PeerFailure
from mpc.material import MaterialRequest, Secrets
from parties import dealer_wire
from parties.array_stream import CHUNK_BYTES, WireArray
from parties.certs import CertFiles, Identity, create_consortium
from parties.dealer_client import CorrectionStream, DealerClient
from parties.dealer_service import DealerDesk, serve_dealer
from parties.proto import pooled_pb2_grpc as rpc
from parties.tls import TlsMaterial
from protocols.material import KINDS

NAMES = ["a", "b", "c"]


def _triple(size: int) -> MaterialRequest:
    return MaterialRequest("triple", {"shape": [size], "ring": 64})


def _trunc(size: int) -> MaterialRequest:
    return MaterialRequest("trunc", {"shape": [size], "f": 20, "ring": 64})


# -- framing --------------------------------------------------------------------------------------
def test_asks_split_into_messages_and_read_back_in_order() -> None:
    asks = [(i, "x" * 1000) for i in range(3000)]
    msgs = list(dealer_wire.asks_to_pb("s", asks))
    assert len(msgs) > 1
    read = [dealer_wire.asks_from_pb(m) for m in msgs]
    assert {session for session, _ in read} == {"s"}
    assert [a for _, got in read for a in got] == asks
    assert [dealer_wire.asks_from_pb(m) for m in dealer_wire.asks_to_pb("s", [])] == [("s", [])]


def test_many_small_corrections_share_a_frame_and_large_ones_are_cut() -> None:
    small = [(i, [WireArray("c", np.arange(3, dtype=np.uint64) + i)]) for i in range(100)]
    big = (100, [WireArray("c", np.arange(300_000, dtype=np.uint64)), WireArray("d", np.ones(5, np.uint64), 64, "xor")])
    pieces = [p for counter, arrays in [*small, big] for p in dealer_wire.pieces(counter, arrays)]
    frames = list(dealer_wire.frames(pieces))
    assert len(frames) == 1 + -(-big[1][0].nbytes // CHUNK_BYTES)  # every small one in the first frame
    assembler = dealer_wire.Assembler()
    done = [item for frame in frames for item in assembler.add(frame)]
    assert [counter for counter, _ in done] == list(range(101))
    for (counter, arrays), (want_counter, want) in zip(done, [*small, big], strict=True):
        assert counter == want_counter
        assert [(a.name, a.domain) for a in arrays] == [(w.name, w.domain) for w in want]
        for a, w in zip(arrays, want, strict=True):
            np.testing.assert_array_equal(a.data, w.data)


# -- against an in-process dealer -------------------------------------------------------------------
@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    create_consortium(out, NAMES, dealer=True)
    return out


def _tls(certs: Path, identity: Identity) -> TlsMaterial:
    return TlsMaterial.load(CertFiles.in_dir(certs, identity))


class _Dealer:
    def __init__(self, certs: Path) -> None:
        self.server, port, self.desk = serve_dealer(_tls(certs, Identity.dealer()), "127.0.0.1:0", KINDS)
        self.address = f"127.0.0.1:{port}"
        self.clients: list[DealerClient] = []

    def client(self, certs: Path, party: str, timeout_s: float = 10.0) -> DealerClient:
        client = DealerClient(_tls(certs, Identity.party(party)), self.address, timeout_s=timeout_s)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.server.stop(0).wait(5)


@pytest.fixture()
def dealer(certs: Path) -> Iterator[_Dealer]:
    found = _Dealer(certs)
    yield found
    found.stop()


def _want(desk: DealerDesk, session: str, counter: int, request: MaterialRequest) -> Secrets:
    return {a.name: a.data for a in desk.correction(session, "c", counter, request.to_json())}


def _same(got: Secrets, want: Secrets) -> None:
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_planned_past_plan_and_mismatched_requests_get_the_engines_corrections(certs: Path, dealer: _Dealer) -> None:
    client = dealer.client(certs, "c")
    client.open_session("s1", NAMES)
    plan = [_triple(4), _trunc(4), _triple(4), _triple(200_000)]
    asked = [_triple(4), _trunc(4), _triple(7), _triple(200_000), _trunc(3), _triple(2)]  # #2 differs; #4, #5 unplanned
    stream = CorrectionStream(client, "s1", KINDS, plan)
    try:
        got = [stream.fetch(counter, request) for counter, request in enumerate(asked)]
    finally:
        stream.close()
    assert (stream.hits, stream.misses, stream.wrong) == (3, 3, 1)
    for counter, request in enumerate(asked):
        _same(got[counter], _want(dealer.desk, "s1", counter, request))


def test_deferred_requests_past_the_plan_are_asked_before_anything_is_taken(certs: Path, dealer: _Dealer) -> None:
    client = dealer.client(certs, "c")
    client.open_session("s5", NAMES)
    plan = [_triple(4)]
    asked = [_triple(4), _trunc(3), _triple(2)]  # #1 and #2 past the plan: on the stream at once
    stream = CorrectionStream(client, "s5", KINDS, plan)
    try:
        takes = [stream.defer(counter, request) for counter, request in enumerate(asked)]
        got = [take() for take in reversed(takes)][::-1]  # the last asked is there before the first is read
    finally:
        stream.close()
    assert (stream.hits, stream.misses) == (1, 2)
    for counter, request in enumerate(asked):
        _same(got[counter], _want(dealer.desk, "s5", counter, request))


def test_a_small_buffer_still_delivers_every_planned_correction(certs: Path, dealer: _Dealer) -> None:
    client = dealer.client(certs, "c")
    client.open_session("s2", NAMES)
    plan = [_triple(50_000)] * 12
    stream = CorrectionStream(client, "s2", KINDS, plan, max_bytes=1 << 20)
    try:
        got = [stream.fetch(counter, request) for counter, request in enumerate(plan)]
    finally:
        stream.close()
    for counter, request in enumerate(plan):
        _same(got[counter], _want(dealer.desk, "s2", counter, request))


def test_only_the_last_party_gets_a_stream_and_the_failure_names_the_dealer(certs: Path, dealer: _Dealer) -> None:
    client = dealer.client(certs, "a")
    client.open_session("s3", NAMES)
    stream = CorrectionStream(client, "s3", KINDS, [_triple(2)])
    try:
        with pytest.raises(PeerFailure) as err:
            stream.fetch(0, _triple(2))
    finally:
        stream.close()
    assert err.value.party == "dealer"
    assert "PERMISSION_DENIED" in str(err.value) and "only the last party" in str(err.value)


def test_a_stream_serves_one_session(certs: Path, dealer: _Dealer) -> None:
    for session in ("s4", "s5"):
        dealer.client(certs, "c").open_session(session, NAMES)
    with _tls(certs, Identity.party("c")).channel(dealer.address, Identity.dealer()) as channel:
        asks = [next(dealer_wire.asks_to_pb(s, [(0, _triple(1).to_json())])) for s in ("s4", "s5")]
        with pytest.raises(grpc.RpcError) as err:
            list(rpc.DealerStub(channel).Corrections(iter(asks), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "one session" in (err.value.details() or "")


def test_an_unknown_session_fails_naming_the_dealer(certs: Path, dealer: _Dealer) -> None:
    stream = CorrectionStream(dealer.client(certs, "c"), "never-opened", KINDS, [])
    try:
        with pytest.raises(PeerFailure) as err:
            stream.fetch(0, _triple(2))
    finally:
        stream.close()
    assert err.value.party == "dealer" and "NOT_FOUND" in str(err.value)


def test_a_stopped_dealer_fails_even_corrections_already_received(certs: Path) -> None:
    dealer = _Dealer(certs)
    try:
        client = dealer.client(certs, "c")
        client.open_session("s6", NAMES)
        plan = [_triple(3)] * 4
        stream = CorrectionStream(client, "s6", KINDS, plan)
        stream.fetch(0, plan[0])
        dealer.server.stop(0).wait(5)
        deadline = time.monotonic() + 10
        while stream.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(PeerFailure) as err:
            stream.fetch(1, plan[1])  # received before the stop, most likely: refused all the same
        stream.close()
    finally:
        dealer.stop()
    assert err.value.party == "dealer"


def test_an_extended_plan_is_asked_at_once_and_skips_what_the_protocol_already_asked(
    certs: Path, dealer: _Dealer
) -> None:
    client = dealer.client(certs, "c")
    client.open_session("s7", NAMES)
    asked = [_triple(4), _trunc(4), _triple(5), _triple(6), _trunc(2)]
    owned_mask = MaterialRequest("owned_mask", {"shape_a": [2, 2], "owner": 0, "name": "m"})  # nothing to correct
    stream = CorrectionStream(client, "s7", KINDS, [])
    try:
        first = stream.fetch(0, asked[0])  # asked on demand, before any plan
        assert stream.extend(0, [asked[0], asked[1], owned_mask, asked[2]]) == 2  # #0 asked already, #2 nothing
        assert stream.extend(4, [asked[3], asked[4]]) == 2
        got = [first] + [stream.fetch(c, r) for c, r in [(1, asked[1]), (3, asked[2]), (4, asked[3]), (5, asked[4])]]
    finally:
        stream.close()
    assert (stream.hits, stream.misses) == (4, 1)
    for (counter, request), secrets in zip([(0, asked[0]), (1, asked[1]), (3, asked[2]), (4, asked[3]), (5, asked[4])],
                                           got, strict=True):
        _same(secrets, _want(dealer.desk, "s7", counter, request))
    assert stream.extend(6, [_triple(1)]) == 0  # a closed stream asks for nothing
