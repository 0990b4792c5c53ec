"""Mutual TLS on every link: credentials, channel/server options, and who is calling.

Servers require a client certificate signed by the consortium CA. `AuthInterceptor`
wraps every handler so that, before any request is read, the caller's identity is taken
from the verified certificate in gRPC's auth context and checked against the roles the
method admits; a handler that needs the identity (a party claiming to be `src`, the
dealer handing out a seed) calls `caller_identity` itself.

TLS version: Python gRPC cannot set a minimum TLS version (gRPC core accepts TLS 1.2
and 1.3, and `GRPC_SSL_CIPHER_SUITES` limited to TLS 1.3 suites makes the server fail
to bind under BoringSSL). What it does expose is the negotiated version in the auth
context (`ssl_tls_version`), so every call on a connection older than TLS 1.3 is
refused with UNAUTHENTICATED; the handshake itself still completes at 1.2. Clients
verify the server's certificate against the CA and, through the target-name override,
that it is the member they meant to reach (`<name>.party.pooled`, `dealer.pooled`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from parties.certs import CertFiles, Identity, Role, check_key_pair, identity_of

MAX_MESSAGE_BYTES = 16 << 20
"""Message size limit on both ends (streams use 1 MiB chunks; this is headroom)."""

REQUIRED_TLS_VERSION = b"TLSv1.3"


@dataclass(frozen=True)
class Keepalive:
    """HTTP/2 keepalive: a silent or frozen peer's connection is dropped after time + timeout."""

    time_ms: int = 2000
    timeout_ms: int = 2000


DEFAULT_KEEPALIVE = Keepalive()


def channel_options(target: Identity, keepalive: Keepalive = DEFAULT_KEEPALIVE) -> list[tuple[str, Any]]:
    return [
        ("grpc.ssl_target_name_override", target.dns_name),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive.time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 0),
        # A member that restarts is dialled again within ~2 s (gRPC's default backoff grows to
        # 120 s, so the first queries after a node came back would fail against a channel
        # still waiting to retry).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
        # gRPC gives each connection attempt (TCP and the TLS handshake) at least this long: at
        # 200 ms, a handshake with a peer slowed by a loaded machine was cut off (UNAVAILABLE).
        ("grpc.min_reconnect_backoff_ms", 20_000),
    ]


def server_options(keepalive: Keepalive = DEFAULT_KEEPALIVE) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive.time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", min(keepalive.time_ms, 1000) // 2),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


@dataclass(frozen=True)
class TlsMaterial:
    """One member's certificate, key and the consortium CA, with its identity."""

    identity: Identity
    cert: bytes
    key: bytes
    ca: bytes

    @staticmethod
    def load(files: CertFiles) -> TlsMaterial:
        """Read a member's files; `parties.certs.KeyFileError` if the key is not the certificate's."""
        cert, key, ca = files.read()
        check_key_pair(cert, key, files.cert, files.key)
        return TlsMaterial(identity_of(cert), cert, key, ca)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True)

    def channel(
        self, address: str, target: Identity, keepalive: Keepalive = DEFAULT_KEEPALIVE,
        extra_options: Sequence[tuple[str, Any]] = (),
    ) -> grpc.Channel:
        """A mutual-TLS channel to `address`, which must present `target`'s certificate."""
        creds = grpc.ssl_channel_credentials(self.ca, private_key=self.key, certificate_chain=self.cert)
        return grpc.secure_channel(address, creds, options=channel_options(target, keepalive) + list(extra_options))


def _prop(context: grpc.ServicerContext, name: str) -> list[bytes]:
    return list(context.auth_context().get(name, []))


def caller_identity(context: grpc.ServicerContext) -> Identity:
    """The caller's identity from its verified certificate; aborts the call if there is none.

    Refuses (UNAUTHENTICATED) a connection that is not TLS 1.3 with privacy and integrity,
    or whose certificate does not name exactly one pooled:// identity.
    """
    if _prop(context, "transport_security_type") != [b"ssl"]:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "mutual TLS required")
    if _prop(context, "security_level") != [b"TSI_PRIVACY_AND_INTEGRITY"]:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "the connection lacks privacy and integrity protection")
    version = _prop(context, "ssl_tls_version")
    if version != [REQUIRED_TLS_VERSION]:
        got = version[0].decode() if version else "an unknown TLS version"
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"TLS 1.3 required, connection uses {got}")
    uris = [u.decode() for u in _prop(context, "peer_uri") if u.startswith(b"pooled://")]
    if not uris:
        pem = _prop(context, "x509_pem_cert")
        if pem:
            try:
                return identity_of(pem[0])
            except ValueError as exc:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, f"client certificate: {exc}")
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate names no pooled:// identity")
    if len(uris) != 1:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"client certificate names several identities: {uris}")
    try:
        return Identity.parse(uris[0])
    except ValueError as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    raise AssertionError("unreachable")  # context.abort raises


def require(context: grpc.ServicerContext, ok: bool, message: str) -> None:
    """Refuse the call with PERMISSION_DENIED unless `ok`."""
    if not ok:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, message)


Rules = Mapping[str, frozenset[Role]]
"""Full method name (`/pooled.v1.Dealer/GetSeed`) -> roles allowed to call it."""


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks the caller's certificate and role before any handler runs; unknown methods are refused."""

    def __init__(self, rules: Rules) -> None:
        self._rules = dict(rules)

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], handler_call_details: Any
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        allowed = self._rules.get(method, frozenset())

        def check(context: grpc.ServicerContext) -> None:
            who = caller_identity(context)
            if who.role not in allowed:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{who} may not call {method}")

        return _wrap(handler, check)


def _wrap(handler: grpc.RpcMethodHandler, check: Callable[[grpc.ServicerContext], None]) -> grpc.RpcMethodHandler:
    def guard(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            check(context)
            return behaviour(request, context)

        return guarded

    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(guard(handler.unary_stream), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary), **kw)
    return grpc.stream_stream_rpc_method_handler(guard(handler.stream_stream), **kw)


def make_server(
    tls: TlsMaterial, rules: Rules, max_workers: int = 32, keepalive: Keepalive = DEFAULT_KEEPALIVE
) -> grpc.Server:
    """A gRPC server whose every method goes through `AuthInterceptor(rules)` (add ports with `bind`)."""
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[AuthInterceptor(rules)],
        options=server_options(keepalive),
    )


def bind(server: grpc.Server, tls: TlsMaterial, address: str) -> int:
    """Listen on `address` (port 0 picks a free port) with mutual TLS; returns the bound port."""
    return server.add_secure_port(address, tls.server_credentials())
