"""The PeerExchange service: thin adapters from gRPC calls to a node's `PeerLinks` and `Mailbox`.

The messages themselves travel on data sockets (parties/peer_socket.py); over gRPC go only
the calls that find a peer and watch it. `GetDataPort` says which port to dial for this
node's data socket. `Abort` is refused with PERMISSION_DENIED when its claimed source is not
the caller. `Ping` answers whether a session was aborted here.
"""

from __future__ import annotations

from typing import Any

import grpc

from parties import messages, peer_wire
from parties.mailbox import Mailbox
from parties.peer_links import PeerLinks
from parties.tls import caller_identity, require

SERVICE = "pooled.v1.PeerExchange"


class PeerExchangeServicer:
    def __init__(self, mailbox: Mailbox, links: PeerLinks) -> None:
        self._mailbox = mailbox
        self._links = links

    def GetDataPort(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return messages.data_port(self._links.data_port)

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
        "GetDataPort": grpc.unary_unary_rpc_method_handler(servicer.GetDataPort, *wire["GetDataPort"]),
        "Abort": grpc.unary_unary_rpc_method_handler(servicer.Abort, *wire["Abort"]),
        "Ping": grpc.unary_unary_rpc_method_handler(servicer.Ping, *wire["Ping"]),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
