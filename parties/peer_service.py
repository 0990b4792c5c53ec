"""The PeerExchange service: a thin adapter from gRPC calls to a node's `Mailbox`.

A party may only speak for itself: a message or an abort whose claimed source is not
the party named in the caller's certificate is refused with PERMISSION_DENIED.
Message chunks arrive as raw bytes and are parsed by `peer_wire.message_from_wire`, which
saves a copy of every payload byte compared with protobuf objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from parties import messages, peer_wire
from parties.mailbox import DuplicateMessage, Mailbox
from parties.tls import caller_identity, require

SERVICE = "pooled.v1.PeerExchange"


class PeerExchangeServicer:
    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    def Send(self, request_iterator: Iterator[bytes], context: grpc.ServicerContext) -> int:  # noqa: N802
        who = caller_identity(context)
        try:
            message = peer_wire.message_from_wire(request_iterator)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        require(context, message.src == who.name, f"{who} may not send as party {message.src!r}")
        try:
            self._mailbox.put(message)
        except DuplicateMessage as exc:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        return len(message.payload)

    def SendOne(self, request: bytes, context: grpc.ServicerContext) -> int:  # noqa: N802
        return self.Send(iter((request,)), context)

    def Abort(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        who = caller_identity(context)
        info = messages.abort_from_pb(request)
        require(context, info.src == who.name, f"{who} may not abort as party {info.src!r}")
        self._mailbox.abort(info)
        return messages.empty()

    def Ping(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return messages.ping_reply(self._mailbox.aborted(messages.ping_session(request)))


def add_to_server(servicer: PeerExchangeServicer, server: grpc.Server) -> None:
    wire = peer_wire.peer_exchange_wire()
    handlers = {
        "Send": grpc.stream_unary_rpc_method_handler(servicer.Send, *wire["Send"]),
        "SendOne": grpc.unary_unary_rpc_method_handler(servicer.SendOne, *wire["SendOne"]),
        "Abort": grpc.unary_unary_rpc_method_handler(servicer.Abort, *wire["Abort"]),
        "Ping": grpc.unary_unary_rpc_method_handler(servicer.Ping, *wire["Ping"]),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
