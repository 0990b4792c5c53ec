"""The data sockets between parties: mutual TLS over TCP, one socket per ordered pair of parties.

Each node listens on a data port of its own (ephemeral unless configured; its peers ask for
it over gRPC, `PeerExchange.GetDataPort`, and dial it on the host they reach the node's gRPC
port at). Each node dials each peer for the messages it sends that peer, and accepts the
peer's dial for the messages it receives: a socket carries one direction only, the dialer
only writes and the acceptor only reads, so no TLS connection is ever used by two threads
at once (OpenSSL does not allow that).

Both ends check what gRPC's links check, and a little more:
1. TLS 1.3 only (`minimum_version`), certificates chained to the consortium CA, on both sides;
2. the dialer insists that the server's certificate is the party it meant to reach: its DNS
   name (`<name>.party.pooled`, checked by OpenSSL) and its single `pooled://party/<name>`
   URI (`dial`);
3. the acceptor takes the source of every message from the client's certificate, which must
   name exactly one party (`accept`): an analyst's, the dealer's or a foreign certificate is
   refused during the handshake or right after it, before a byte of data is read.
The server sends no session tickets, so after the handshake nothing ever travels towards
the dialer: its socket turns readable only when the peer closes or refuses the connection,
which `parties.outbox` watches for without touching the TLS object.

Framing (`write_frame`, `FrameReader`): a 4-byte big-endian length, then one serialized
`PeerFrames` (parties/peer_wire.py) of at most `MAX_FRAME_BYTES`.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from parties.certs import Identity, identity_of
from parties.tls import TlsMaterial

MAX_FRAME_BYTES = 4 << 20
"""Largest frame accepted: a frame holds at most one 1 MiB chunk per message waiting."""
READ_BYTES = 1 << 16
"""Most bytes read at once while frames are small."""
DIRECT_BYTES = 1 << 16
"""Parts of a frame this large are written without being joined to the rest (one more TLS record)."""


class RefusedPeer(ConnectionError):
    """The other end's certificate is not the party expected (or not a party at all)."""


@contextmanager
def _pem_paths(tls: TlsMaterial) -> Iterator[tuple[str, str]]:
    """Paths of this member's certificate and key for `load_cert_chain`, which reads files only.

    On Linux they are anonymous in-memory files (the key never touches a disk); elsewhere
    they live for a moment in a private temporary directory.
    """
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create(name) for name in ("cert", "key")]
        try:
            for fd, data in zip(fds, (tls.cert, tls.key), strict=True):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(tls.cert)
        key.touch(mode=0o600)
        key.write_bytes(tls.key)
        yield str(cert), str(key)


def _context(tls: TlsMaterial, server: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=tls.ca.decode())
    with _pem_paths(tls) as (cert, key):
        ctx.load_cert_chain(cert, key)
    if server:
        ctx.num_tickets = 0  # nothing travels back to the dialer after the handshake
    return ctx


def server_context(tls: TlsMaterial) -> ssl.SSLContext:
    """The acceptor's context: TLS 1.3, a client certificate from the consortium CA required."""
    return _context(tls, server=True)


def client_context(tls: TlsMaterial) -> ssl.SSLContext:
    """The dialer's context: TLS 1.3, the server's certificate checked against the CA and its name."""
    return _context(tls, server=False)


def peer_identity(sock: ssl.SSLSocket) -> Identity:
    """The identity in the other end's verified certificate; RefusedPeer if it names none or several."""
    der = sock.getpeercert(binary_form=True)
    if der is None:
        raise RefusedPeer("no certificate")
    try:
        return identity_of(ssl.DER_cert_to_PEM_cert(der).encode())
    except ValueError as exc:
        raise RefusedPeer(str(exc)) from None


def _tcp(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def dial(ctx: ssl.SSLContext, host: str, port: int, target: Identity, timeout_s: float) -> ssl.SSLSocket:
    """A TLS socket to `target`'s data port (connect and handshake within `timeout_s` each).

    OSError if it cannot be reached; RefusedPeer (or ssl.SSLError) if the server is not `target`.
    """
    raw = socket.create_connection((host.strip("[]"), port), timeout=timeout_s)
    try:
        _tcp(raw)
        sock = ctx.wrap_socket(raw, server_hostname=target.dns_name)
    except BaseException:
        raw.close()
        raise
    who = peer_identity(sock)
    if who != target:
        sock.close()
        raise RefusedPeer(f"the server at {host}:{port} is {who}, not {target}")
    return sock


def listen(host: str, port: int = 0) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: any free port)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=64)


def accept(ctx: ssl.SSLContext, raw: socket.socket, timeout_s: float) -> tuple[Identity, ssl.SSLSocket]:
    """The handshake of an accepted connection (within `timeout_s`), and the party it comes from.

    ssl.SSLError or OSError if the handshake fails (a foreign CA, no certificate, TLS < 1.3);
    RefusedPeer if the certificate does not name one party. The socket is closed on failure.
    """
    raw.settimeout(timeout_s)
    try:
        _tcp(raw)
        sock = ctx.wrap_socket(raw, server_side=True)
    except BaseException:
        raw.close()
        raise
    try:
        who = peer_identity(sock)
        if who.role != "party":
            raise RefusedPeer(f"{who} is not a party")
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return who, sock


# -- frames ------------------------------------------------------------------------------------------
def write_frame(sock: ssl.SSLSocket, parts: list[bytes | memoryview]) -> None:
    """Send one frame made of `parts` (a serialized `PeerFrames`).

    Small parts are joined with the length prefix; a part of `DIRECT_BYTES` or more (a chunk's
    payload) is handed to TLS as it is, so the payload is not copied on its way to encryption.
    """
    size = sum(len(p) for p in parts)
    pending: list[bytes | memoryview] = [size.to_bytes(4, "big")]
    for part in parts:
        if len(part) < DIRECT_BYTES:
            pending.append(part)
            continue
        if pending:
            sock.sendall(b"".join(pending))
            pending = []
        sock.sendall(part)
    if pending:
        sock.sendall(b"".join(pending))


class FrameReader:
    """The frames arriving on one socket, in order (one reading thread)."""

    def __init__(self, sock: ssl.SSLSocket, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._sock = sock
        self._max = max_bytes
        self._buf = bytearray()

    def next(self) -> bytes | memoryview | None:
        """The next frame; None when the other end closed the connection between frames.

        ValueError for a frame over the limit or a connection closed inside a frame.
        """
        head = self._exact(4)
        if head is None:
            return None
        size = int.from_bytes(head, "big")
        if size > self._max:
            raise ValueError(f"a frame of {size} bytes, over the limit of {self._max}")
        body = self._exact(size)
        if body is None:
            raise ValueError("the connection ended inside a frame")
        return body

    def _exact(self, n: int) -> bytes | memoryview | None:
        buf = self._buf
        if len(buf) < n and n > READ_BYTES:  # a large frame: read straight into its own buffer
            # numpy's empty buffer, not a bytearray: TLS writes every byte, so zero-filling it first is waste
            view = np.empty(n, dtype=np.uint8).data
            have = len(buf)
            view[:have] = buf
            buf.clear()
            while have < n:
                got = self._sock.recv_into(view[have:])
                if not got:
                    return None
                have += got
            return view
        while len(buf) < n:
            data = self._sock.recv(READ_BYTES)
            if not data:
                return None
            buf += data
        out_bytes = bytes(buf[:n])
        del buf[:n]
        return out_bytes
