"""A node's (or an analyst's) connection to the dealer.

Wraps the Dealer service in plain Python calls: open a session, fetch this party's seed,
fetch the last party's corrections (as a `mpc.dealer.CorrectionFetcher`), announce this
node's address and look up the others'. A dealer that cannot be reached during a
computation surfaces as `PeerFailure("dealer", ...)`, like any other failed party.

`Prefetcher` takes the dealer off the critical path when a job knows in advance which
material it will ask for (its material plan): the last party fetches the planned
corrections in a background thread from the start of the session, so they are (mostly)
ready by the time the protocol asks. A request that differs from the plan is fetched
on demand as usual, so a wrong plan costs time, never correctness.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import grpc

from mpc.dealer import CorrectionFetcher
from mpc.errors import PeerFailure
from mpc.material import MaterialKind, MaterialRequest, Secrets, correction_bytes, lookup
from parties import array_stream, messages
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
        self._timeout_s = timeout_s
        self.address = address

    def close(self) -> None:
        self._channel.close()

    def _unary(self, method: str, request: object, timeout_s: float | None = None) -> object:
        try:
            return getattr(self._stub, method)(request, timeout=timeout_s or self._timeout_s)
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
                messages.correction_request(session, counter, request.to_json()), timeout=self._timeout_s
            )
            arrays = array_stream.arrays_from_chunks(stream)
        except grpc.RpcError as err:
            why = f"{err.code().name}: {err.details()}"
            raise PeerFailure("dealer", f"no correction for request {counter}: {why}") from None
        secrets = array_stream.wire_to_secrets(arrays)
        if set(secrets) != set(expected):
            raise PeerFailure("dealer", f"sent components {sorted(secrets)}, expected {sorted(expected)}")
        return secrets

    def fetcher(self, session: str, kinds: Mapping[str, MaterialKind]) -> CorrectionFetcher:
        """A `CorrectionFetcher` for `mpc.dealer.SeededMaterial` in `session`."""

        def fetch(counter: int, request: MaterialRequest) -> Secrets:
            return self.correction(session, counter, request, kinds)

        return fetch


class Prefetcher:
    """Fetches the last party's planned corrections ahead of need, in order, in one thread.

    At most `max_bytes` of fetched-but-unused corrections are held (always at least one).
    `fetch` is the `CorrectionFetcher` to give `mpc.dealer.SeededMaterial`.
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
        self._plan = [r.to_json() for r in plan]
        self._sizes = [correction_bytes(kinds, r) for r in plan]
        self._requests = list(plan)
        self._max_bytes = max_bytes
        self._cond = threading.Condition()
        self._ready: dict[int, Secrets | BaseException] = {}
        self._held = 0
        self._stopped = False
        self.hits = 0
        self.misses = 0
        self._thread = threading.Thread(target=self._run, name=f"prefetch-{session[:8]}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for counter, request in enumerate(self._requests):
            with self._cond:
                while not self._stopped and self._ready and self._held + self._sizes[counter] > self._max_bytes:
                    self._cond.wait()
                if self._stopped:
                    return
            got: Secrets | BaseException
            try:
                got = self._dealer.correction(self._session, counter, request, self._kinds)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for it
                got = exc
            with self._cond:
                if self._stopped:
                    return
                self._ready[counter] = got
                self._held += self._sizes[counter]
                self._cond.notify_all()

    def fetch(self, counter: int, request: MaterialRequest) -> Secrets:
        if counter < len(self._plan) and self._plan[counter] == request.to_json():
            with self._cond:
                while counter not in self._ready and not self._stopped:
                    self._cond.wait()
                got = self._ready.pop(counter, None)
                if got is not None:
                    self._held -= self._sizes[counter]
                    self._cond.notify_all()
            if isinstance(got, BaseException):
                raise got
            if got is not None:
                self.hits += 1
                return got
        self.misses += 1
        return self._dealer.correction(self._session, counter, request, self._kinds)

    def close(self) -> None:
        """Stop prefetching and drop what was not used."""
        with self._cond:
            self._stopped = True
            self._ready.clear()
            self._held = 0
            self._cond.notify_all()
