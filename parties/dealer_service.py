"""The dealer: a separate, non-colluding process that hands out correlated randomness.

`DealerDesk` is the domain side. For each session it draws one fresh seed per party
(`mpc.prg.fresh_seed`), gives each seed only to the party it belongs to (identity from
the caller's certificate, never from the request), and answers correction requests
(`mpc.dealer.DealerEngine`, kinds from `protocols.material.KINDS`) only to the last
party of the session's roster. Sessions expire after `ttl_s` without use. The desk also
keeps the address registry through which nodes started on ephemeral ports find each
other, and counts what it hands out.

`DealerServicer` is the thin gRPC adapter; `serve_dealer` runs it with mutual TLS. Its
`Corrections` stream serves one session's last party for the whole session: the party
sends the numbers of the requests it will need (its material plan up front, so the dealer
computes ahead of the protocol) and the dealer streams the corrections back in order,
packing whatever is ready into one message (`parties.dealer_wire`).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from mpc.dealer import DealerEngine
from mpc.material import MaterialKind, MaterialRequest, Secrets, lookup
from mpc.prg import fresh_seed
from parties import array_stream, dealer_wire, messages
from parties.array_stream import CHUNK_BYTES
from parties.certs import Identity
from parties.proto import pooled_pb2_grpc as rpc
from parties.records import SeedGrant
from parties.tls import DEFAULT_KEEPALIVE, Keepalive, Rules, TlsMaterial, bind, caller_identity, make_server

SERVICE = "/pooled.v1.Dealer/"
RULES: Rules = {
    SERVICE + "OpenSession": frozenset({"party"}),
    SERVICE + "CloseSession": frozenset({"party"}),
    SERVICE + "GetSeed": frozenset({"party"}),
    SERVICE + "Correction": frozenset({"party"}),
    SERVICE + "Corrections": frozenset({"party"}),
    SERVICE + "Announce": frozenset({"party"}),
    SERVICE + "Lookup": frozenset({"party"}),
    SERVICE + "Stats": frozenset({"party", "dealer"}),
}
DEALER_WORKERS = 128
"""Server threads: every running query's last party holds one for its correction stream."""


class UnknownSession(KeyError):
    """No such session (never opened, closed, or expired)."""


@dataclass
class _Session:
    roster: list[str]
    seeds: list[bytes]
    engine: DealerEngine
    last_used: float


class DealerDesk:
    """Sessions, seeds, corrections and the address registry (thread-safe)."""

    def __init__(
        self, kinds: Mapping[str, MaterialKind], ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._kinds = kinds
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._addresses: dict[str, str] = {}
        self._counts = {"sessions_opened": 0, "seeds_handed_out": 0, "corrections": 0, "correction_bytes": 0}

    def open_session(self, session: str, roster: list[str]) -> None:
        """Create a session with fresh seeds; opening it again with the same roster is a no-op."""
        if not session:
            raise ValueError("a session needs an id")
        if len(roster) < 2 or len(set(roster)) != len(roster):
            raise ValueError(f"a roster needs at least two distinct parties, got {roster}")
        for name in roster:
            Identity.party(name)  # validates the name
        with self._lock:
            self._expire()
            existing = self._sessions.get(session)
            if existing is not None:
                if existing.roster != roster:
                    raise ValueError(f"session {session!r} is already open with roster {existing.roster}")
                existing.last_used = self._clock()
                return
            seeds = [fresh_seed() for _ in roster]
            engine = DealerEngine(seeds, session, self._kinds)
            self._sessions[session] = _Session(list(roster), seeds, engine, self._clock())
            self._counts["sessions_opened"] += 1

    def close_session(self, session: str) -> None:
        with self._lock:
            closed = self._sessions.pop(session, None)
        if closed is not None:
            closed.engine.close()  # its persistent masks go with it

    def _get(self, session: str) -> _Session:
        with self._lock:
            self._expire()
            found = self._sessions.get(session)
            if found is None:
                raise UnknownSession(session)
            found.last_used = self._clock()
            return found

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s for s, v in self._sessions.items() if now - v.last_used > self._ttl_s]:
            self._sessions.pop(sid).engine.close()

    def seed_for(self, session: str, party: str) -> SeedGrant:
        """`party`'s seed and rank; PermissionError if it is not in the session's roster."""
        s = self._get(session)
        if party not in s.roster:
            raise PermissionError(f"party {party} is not in session {session}'s roster {s.roster}")
        rank = s.roster.index(party)
        with self._lock:
            self._counts["seeds_handed_out"] += 1
        return SeedGrant(s.seeds[rank], rank, len(s.roster))

    def correction(self, session: str, party: str, counter: int, request_json: str) -> list[array_stream.WireArray]:
        """The last party's derived shares of request `counter` (refused to anyone else)."""
        s = self._get(session)
        if party != s.roster[-1]:
            raise PermissionError(f"only the last party of the roster ({s.roster[-1]}) receives corrections")
        request = MaterialRequest.from_json(request_json)
        components = lookup(self._kinds, request.kind).derived(request.params)
        secrets: Secrets = s.engine.correction(counter, request)
        arrays = array_stream.secrets_to_wire(secrets, components)
        with self._lock:
            self._counts["corrections"] += 1
            self._counts["correction_bytes"] += sum(a.nbytes for a in arrays)
        return arrays

    def announce(self, party: str, address: str) -> None:
        if not address or ":" not in address:
            raise ValueError(f"not a host:port address: {address!r}")
        with self._lock:
            self._addresses[party] = address

    def directory(self) -> dict[str, str]:
        with self._lock:
            return dict(self._addresses)

    def stats(self) -> dict[str, int]:
        with self._lock:
            self._expire()
            return {"open_sessions": len(self._sessions), **self._counts}


class DealerServicer(rpc.DealerServicer):
    """gRPC adapter: caller identity from the certificate, errors mapped to status codes."""

    def __init__(self, desk: DealerDesk) -> None:
        self._desk = desk

    def _call(self, context: grpc.ServicerContext, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except UnknownSession as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown or expired session {exc.args[0]!r}")
        except PermissionError as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def OpenSession(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        session, roster = messages.session_spec_from_pb(request)
        self._call(context, lambda: self._desk.open_session(session, roster))
        return messages.empty()

    def CloseSession(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._desk.close_session(messages.session_of(request))
        return messages.empty()

    def GetSeed(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        who = caller_identity(context)
        grant = self._call(context, lambda: self._desk.seed_for(messages.session_of(request), who.name))
        return messages.seed_to_pb(grant)

    def Correction(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        who = caller_identity(context)
        session, counter, request_json = messages.correction_request_from_pb(request)
        arrays = self._call(context, lambda: self._desk.correction(session, who.name, counter, request_json))
        yield from array_stream.arrays_to_chunks(arrays)

    def Corrections(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        """Corrections in the order asked, each frame packing what is ready (see the module docstring)."""
        who = caller_identity(context)
        asks = _AskReader(request_iterator, context)
        while True:
            ask = asks.next(block=True)
            if ask is None:
                if asks.failure is not None:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, asks.failure)
                return
            batch: list[Any] = []
            size = 0
            while ask is not None:
                session, counter, request_json = ask
                answer = functools.partial(self._desk.correction, session, who.name, counter, request_json)
                arrays = self._call(context, answer)
                batch.extend(dealer_wire.pieces(counter, arrays))
                size += sum(a.nbytes for a in arrays)
                ask = asks.next(block=False) if size < CHUNK_BYTES else None
            yield from dealer_wire.frames(batch)

    def Announce(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        who = caller_identity(context)
        self._call(context, lambda: self._desk.announce(who.name, messages.announced_address(request)))
        return messages.empty()

    def Lookup(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return messages.directory_to_pb(self._desk.directory())

    def Stats(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return messages.dealer_stats_to_pb(self._desk.stats())


class _AskReader:
    """Reads a correction stream's asks in a thread of its own, so answers flow while asks arrive."""

    def __init__(self, requests: Iterator[Any], context: grpc.ServicerContext) -> None:
        self._queue: queue.SimpleQueue[tuple[str, int, str] | None] = queue.SimpleQueue()
        self._session: str | None = None
        self.failure: str | None = None
        self.ended = False
        context.add_callback(lambda: self._queue.put(None))  # the call ended: stop answering
        threading.Thread(target=self._read, args=(requests,), name="dealer-asks", daemon=True).start()

    def _read(self, requests: Iterator[Any]) -> None:
        try:
            for msg in requests:
                session, asks = dealer_wire.asks_from_pb(msg)
                if self._session is None:
                    self._session = session
                elif session and session != self._session:
                    self.failure = f"a correction stream serves one session ({self._session!r}), not {session!r}"
                    return
                for counter, request_json in asks:
                    self._queue.put((self._session, counter, request_json))
        except grpc.RpcError:
            pass  # the call ended; the callback stops the answers
        finally:
            self._queue.put(None)

    def next(self, block: bool) -> tuple[str, int, str] | None:
        """The next ask; None at the end of the asks (`ended`) or, with block=False, when none is waiting."""
        if self.ended:
            return None
        try:
            got = self._queue.get(block=block)
        except queue.Empty:
            return None
        if got is None:
            self.ended = True
        return got


def serve_dealer(
    tls: TlsMaterial,
    listen: str,
    kinds: Mapping[str, MaterialKind],
    ttl_s: float = 3600.0,
    keepalive: Keepalive = DEFAULT_KEEPALIVE,
) -> tuple[grpc.Server, int, DealerDesk]:
    """Start the dealer's gRPC server on `listen`; returns (server, bound port, desk)."""
    if tls.identity.role != "dealer":
        raise ValueError(f"the dealer must run with the dealer's certificate, not {tls.identity}")
    desk = DealerDesk(kinds, ttl_s)
    server = make_server(tls, RULES, max_workers=DEALER_WORKERS, keepalive=keepalive)
    rpc.add_DealerServicer_to_server(DealerServicer(desk), server)
    port = bind(server, tls, listen)
    server.start()
    return server, port, desk
