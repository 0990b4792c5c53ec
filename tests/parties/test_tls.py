"""Who is calling: identity from the verified certificate, TLS 1.3 or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from parties.certs import CertFiles, Identity, create_consortium
from parties.tls import AuthInterceptor, caller_identity


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code


class _Context:
    """The parts of grpc.ServicerContext the checks use."""

    def __init__(self, props: dict[str, list[bytes]]) -> None:
        self._props = props

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._props

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


def _props(uri: bytes = b"pooled://party/a", version: bytes = b"TLSv1.3") -> dict[str, list[bytes]]:
    return {
        "transport_security_type": [b"ssl"],
        "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
        "ssl_tls_version": [version],
        "peer_uri": [uri],
    }


def test_identity_comes_from_the_certificate_uri() -> None:
    assert caller_identity(_Context(_props())) == Identity.party("a")
    assert caller_identity(_Context(_props(b"pooled://analyst/alice"))) == Identity.analyst("alice")


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (_props(version=b"TLSv1.2"), "TLS 1.3 required, connection uses TLSv1.2"),
        ({**_props(), "ssl_tls_version": []}, "TLS 1.3 required"),
        ({**_props(), "transport_security_type": [b"insecure"]}, "mutual TLS required"),
        ({**_props(), "security_level": [b"TSI_INTEGRITY_ONLY"]}, "privacy"),
        ({**_props(), "peer_uri": [b"spiffe://x/y"]}, "no pooled:// identity"),
    ],
)
def test_weak_or_anonymous_connections_are_refused(props: dict[str, list[bytes]], message: str) -> None:
    with pytest.raises(_Aborted, match=message) as err:
        caller_identity(_Context(props))
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_identity_falls_back_to_the_pem_certificate(tmp_path: Path) -> None:
    create_consortium(tmp_path, ["b"], dealer=False)
    pem = CertFiles.in_dir(tmp_path, Identity.party("b")).cert.read_bytes()
    props = {**_props(), "peer_uri": [], "x509_pem_cert": [pem]}
    assert caller_identity(_Context(props)) == Identity.party("b")


def test_the_interceptor_checks_roles_before_the_handler_runs() -> None:
    calls: list[Any] = []

    def behaviour(request: bytes, context: Any) -> bytes:
        calls.append(request)
        return b"ok"

    handler = grpc.unary_unary_rpc_method_handler(behaviour)

    class Details:
        method = "/pooled.v1.Node/RunJob"

    interceptor = AuthInterceptor({"/pooled.v1.Node/RunJob": frozenset({"analyst"})})
    wrapped = interceptor.intercept_service(lambda d: handler, Details())
    assert wrapped is not None
    assert wrapped.unary_unary(b"req", _Context(_props(b"pooled://analyst/alice"))) == b"ok"
    with pytest.raises(_Aborted, match="may not call") as err:
        wrapped.unary_unary(b"req", _Context(_props(b"pooled://party/a")))
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert calls == [b"req"]

    class Unknown:
        method = "/pooled.v1.Node/Secret"

    unknown = interceptor.intercept_service(lambda d: handler, Unknown())
    assert unknown is not None
    with pytest.raises(_Aborted, match="may not call"):
        unknown.unary_unary(b"r", _Context(_props(b"pooled://analyst/x")))


def test_a_tls_handshake_slower_than_the_reconnect_backoff_still_connects(tmp_path: Path) -> None:
    """On a loaded machine a handshake can take longer than the 200 ms reconnect backoff: the
    connection attempt is not cut short by it (gRPC gives an attempt `grpc.min_reconnect_backoff_ms`
    at least). Here a relay in this process delays every byte by 300 ms each way."""
    from benchmarks.wan import DelayRelay
    from parties.dealer_client import DealerClient
    from parties.dealer_service import serve_dealer
    from parties.tls import TlsMaterial
    from protocols.material import KINDS

    create_consortium(tmp_path, ["a"], dealer=True, ca_key=tmp_path / "ca-private" / "ca.key")
    dealer = TlsMaterial.load(CertFiles.in_dir(tmp_path, Identity.dealer()))
    server, port, _ = serve_dealer(dealer, "127.0.0.1:0", KINDS)
    try:
        with DelayRelay(600.0) as relay:
            front = relay.front("dealer")
            relay.connect("dealer", f"127.0.0.1:{port}")
            client = DealerClient(TlsMaterial.load(CertFiles.in_dir(tmp_path, Identity.party("a"))), front,
                                  timeout_s=20.0)
            try:
                assert client.directory() == {}
            finally:
                client.close()
    finally:
        server.stop(0)
