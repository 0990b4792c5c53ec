"""A node's (or an analyst's) connection to the dealer.

Wraps the Dealer service in plain Python calls: open a session, fetch this party's seed,
fetch the last party's corrections (as a `mpc.dealer.CorrectionFetcher`), announce this
node's address and look up the others'. A dealer that cannot be reached during a
computation surfaces as `PeerFailure("dealer", ...)`, like any other failed party.

`CorrectionStream` takes the dealer off the critical path: the last party opens one stream
per session, sends the job's material plan (what it will ask for, when the job knows, and
more with `extend` once the job learns it, e.g. a query once its plan is bound), and the
dealer computes those corrections ahead and streams them back, batched, so they are
(mostly) ready by the time the protocol asks, at no per-request round trip.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc

from mpc.errors import PeerFailure
from mpc.material import MaterialKind, MaterialRequest, Secrets, lookup
from parties import array_stream, dealer_wire, messages
from parties.certs import Identity
from parties.proto import pooled_pb2_grpc as rpc
from parties.records import SeedGrant
from parties.tls import DEFAULT_KEEPALIVE, Keepalive, TlsMaterial


class DealerError(RuntimeError):
    """The dealer refused a request or could not be reached."""


class DealerClient:
    def __init__(
        self, tls: TlsMaterial, address: str, timeout_s: float = 30.0, keepalive: Keepalive = DEFAULT_KEEPALIVE
    ) -> None:
        self._channel = tls.channel(address, Identity.dealer(), keepalive)
        self._stub = rpc.DealerStub(self._channel)
        self.timeout_s = timeout_s
        self.address = address

    def close(self) -> None:
        self._channel.close()

    def _unary(self, method: str, request: object, timeout_s: float | None = None) -> object:
        try:
            return getattr(self._stub, method)(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as err:
            raise DealerError(f"dealer {method}: {err.code().name}: {err.details()}") from None

    def open_session(self, session: str, roster: list[str]) -> None:
        self._unary("OpenSession", messages.session_spec(session, roster))

    def close_session(self, session: str) -> None:
        self._unary("CloseSession", messages.session_ref(session))

    def seed(self, session: str) -> SeedGrant:
        return messages.seed_from_pb(self._unary("GetSeed", messages.session_ref(session)))  # type: ignore[arg-type]

    def announce(self, address: str) -> None:
        self._unary("Announce", messages.announcement(address))

    def directory(self) -> dict[str, str]:
        return messages.directory_from_pb(self._unary("Lookup", messages.empty()))  # type: ignore[arg-type]

    def stats(self) -> dict[str, int]:
        return messages.dealer_stats_from_pb(self._unary("Stats", messages.empty()))  # type: ignore[arg-type]

    def correction(
        self, session: str, counter: int, request: MaterialRequest, kinds: Mapping[str, MaterialKind]
    ) -> Secrets:
        """The last party's derived shares of request `counter`, streamed in chunks."""
        expected = {c.name: c for c in lookup(kinds, request.kind).derived(request.params)}
        try:
            stream = self._stub.Correction(
                messages.correction_request(session, counter, request.to_json()), timeout=self.timeout_s
            )
            arrays = array_stream.arrays_from_chunks(stream)
        except grpc.RpcError as err:
            why = f"{err.code().name}: {err.details()}"
            raise PeerFailure("dealer", f"no correction for request {counter}: {why}") from None
        secrets = array_stream.wire_to_secrets(arrays)
        if set(secrets) != set(expected):
            raise PeerFailure("dealer", f"sent components {sorted(secrets)}, expected {sorted(expected)}")
        return secrets

    def correction_stream(self, asks: Iterator[Any]) -> Any:
        """Open a `Corrections` stream sending `asks`; no deadline, it lasts the session (see `CorrectionStream`)."""
        return self._stub.Corrections(asks)


class CorrectionStream:
    """The last party's corrections for one session, over one long-lived stream from the dealer.

    Opening it sends the dealer the session's material plan (every request the job will make,
    in order); the dealer computes those corrections ahead of need and streams them back, many
    to a message, while a reader thread here files them by request number. A request past the
    plan is asked for on the same stream as it comes up. A request that differs from the plan
    at its number is fetched on its own (`DealerClient.correction`) and the planned one dropped,
    so a wrong plan costs time, never correctness.

    At most `max_bytes` of received-but-unused planned corrections are held (always at least
    one); past that the reader stops reading and gRPC's flow control holds the dealer back.
    Once the stream fails, every later `fetch` fails too, naming the dealer, even for
    corrections already received: a dead dealer ends the query at once. `defer` is the
    `DeferredFetcher` to give `mpc.dealer.SeededMaterial` (`fetch` the blocking form).
    """

    def __init__(
        self,
        dealer: DealerClient,
        session: str,
        kinds: Mapping[str, MaterialKind],
        plan: list[MaterialRequest],
        max_bytes: int = 256 << 20,
    ) -> None:
        self._dealer = dealer
        self._session = session
        self._kinds = kinds
        self._plan: dict[int, str] = {i: r.to_json() for i, r in enumerate(plan)}
        self._seen = 0  # requests numbered below this were asked for by the protocol: too late to plan
        self._max_bytes = max_bytes
        self._cond = threading.Condition()
        self._ready: dict[int, tuple[Secrets, int]] = {}
        self._unwanted: set[int] = set()
        self._asked: set[int] = set()  # requests past the plan, asked for and not yet taken
        self._held = 0
        self._failure: PeerFailure | None = None
        self._stopped = False
        self.hits = 0
        self.misses = 0
        self.wrong = 0  # of the misses: planned, but not what the protocol asked for at that number
        self._outgoing: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for msg in dealer_wire.asks_to_pb(session, sorted(self._plan.items())):
            self._outgoing.put(msg)
        self._call = dealer.correction_stream(self._asks())
        self._thread = threading.Thread(target=self._read, name=f"corrections-{session[:8]}", daemon=True)
        self._thread.start()

    def _asks(self) -> Iterator[Any]:
        while (msg := self._outgoing.get()) is not None:
            yield msg

    def _read(self) -> None:
        assembler = dealer_wire.Assembler()
        try:
            for frame in self._call:
                for counter, arrays in assembler.add(frame):
                    self._file(counter, array_stream.wire_to_secrets(arrays), sum(a.nbytes for a in arrays))
            why = "the dealer ended the correction stream"
        except grpc.RpcError as err:
            why = f"correction stream: {err.code().name}: {err.details()}"
        except ValueError as err:
            why = f"correction stream: {err}"
        with self._cond:
            if not self._stopped:
                self._failure = PeerFailure("dealer", why)
            self._cond.notify_all()

    def _file(self, counter: int, secrets: Secrets, size: int) -> None:
        with self._cond:
            if counter in self._unwanted:
                self._unwanted.discard(counter)
                return
            self._ready[counter] = (secrets, size)
            self._held += size
            self._cond.notify_all()
            while not self._stopped and not self._asked and len(self._ready) > 1 and self._held > self._max_bytes:
                self._cond.wait()

    @property
    def failure(self) -> PeerFailure | None:
        """Why the stream failed (None while it is up); every fetch raises it from then on."""
        with self._cond:
            return self._failure

    def fetch(self, counter: int, request: MaterialRequest) -> Secrets:
        """The `mpc.dealer.CorrectionFetcher`: request `counter`'s corrections, waiting for them."""
        return self.defer(counter, request)()

    def defer(self, counter: int, request: MaterialRequest) -> Callable[[], Secrets]:
        """The `mpc.dealer.DeferredFetcher`: ask now if the plan did not, and wait only when the result is called.

        The protocol thread takes a correction the reader thread filed, with no thread in between.
        """
        wanted = request.to_json()
        with self._cond:
            self._seen = max(self._seen, counter + 1)
            planned = self._plan.get(counter)
            if planned is None:
                self._asked.add(counter)
                self._outgoing.put(next(dealer_wire.asks_to_pb(self._session, [(counter, wanted)])))
                self.misses += 1
            elif planned != wanted:
                self._unwanted.add(counter)
                dropped = self._ready.pop(counter, None)
                if dropped is not None:
                    self._unwanted.discard(counter)
                    self._held -= dropped[1]
                self.misses += 1
                self.wrong += 1
            else:
                self.hits += 1
            self._cond.notify_all()
        if planned is not None and planned != wanted:
            return lambda: self._dealer.correction(self._session, counter, request, self._kinds)
        return lambda: self._checked(counter, request)

    def extend(self, start: int, plan: list[MaterialRequest]) -> int:
        """Plan `plan` as requests `start`, `start` + 1, ...: ask for them now, in one or a few messages.

        Requests the protocol has already asked for (numbered below the highest asked) and
        requests with nothing for the dealer to send are skipped; returns how many were asked.
        """
        with self._cond:
            if self._stopped or self._failure is not None:
                return 0
            asks = [(c, r.to_json()) for c, r in enumerate(plan, start)
                    if c >= self._seen and c not in self._plan and lookup(self._kinds, r.kind).derived(r.params)]
            self._plan.update(asks)
            if asks:
                for msg in dealer_wire.asks_to_pb(self._session, asks):
                    self._outgoing.put(msg)
            return len(asks)

    def _checked(self, counter: int, request: MaterialRequest) -> Secrets:
        secrets = self._take(counter)
        expected = {c.name for c in lookup(self._kinds, request.kind).derived(request.params)}
        if set(secrets) != expected:
            raise PeerFailure("dealer", f"sent components {sorted(secrets)}, expected {sorted(expected)}")
        return secrets

    def _take(self, counter: int) -> Secrets:
        deadline = time.monotonic() + self._dealer.timeout_s
        with self._cond:
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._stopped:
                    raise PeerFailure("dealer", f"the correction stream was closed before request {counter}")
                if counter in self._ready:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerFailure("dealer", f"no correction for request {counter} in {self._dealer.timeout_s:g} s")
                self._cond.wait(left)
            secrets, size = self._ready.pop(counter)
            self._held -= size
            self._asked.discard(counter)
            self._cond.notify_all()
            return secrets

    def close(self) -> None:
        """Stop the stream and drop what was not used."""
        with self._cond:
            self._stopped = True
            self._ready.clear()
            self._held = 0
            self._cond.notify_all()
        self._outgoing.put(None)
        self._call.cancel()
