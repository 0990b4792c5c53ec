"""Correlated randomness from a dealer that shares one seed with each party.

The dealer is a separate, non-colluding party (see docs/protocols.md). It shares a
32-byte seed with each computing party. For request number t of a session, party j
draws its share of every component from AES-CTR(seed_j, label(session, t, component)),
so parties 0..n-2 never talk to the dealer during a computation. The dealer draws the
same streams, reconstructs the free secrets, derives the rest (c = a*b, ...) and sends
the last party the one correction share that makes the derived shares add up. That
halves the dealer's traffic compared with sending every share of every component, and
no computing party ever sees more than its own shares.

`DealerEngine` is the dealer's side, `SeededMaterial` a party's side; the gRPC dealer
service in `parties/` wraps the engine, and the in-process runner calls it directly.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from mpc.dealer_cache import PersistentDraws
from mpc.material import Component, Drawn, MaterialKind, MaterialRequest, Secrets, lookup
from mpc.prg import Prg

CorrectionFetcher = Callable[[int, MaterialRequest], Secrets]
"""Asks the dealer for the last party's derived shares of request number t."""
PlanAhead = Callable[[int, list[MaterialRequest]], int]
"""Tells the dealer the requests numbered t, t + 1, ... before they are made, so it prepares them
ahead (`parties.dealer_client.CorrectionStream.extend`); returns how many it asked for."""
DeferredFetcher = Callable[[int, MaterialRequest], Callable[[], Secrets]]
"""Asks the dealer for request number t without waiting; calling the result waits for the answer.

For a source that already receives corrections in a thread of its own (a stream from the
dealer): the protocol thread takes each answer when it needs it, with no hand-off through
a fetching thread.
"""


def _draw(prg: Prg, session: str, counter: int, kind: str, comp: Component) -> np.ndarray:
    if comp.persistent is not None:
        label = f"{session}|persistent|{comp.persistent}|{comp.name}"
    else:
        label = f"{session}|{counter}|{kind}|{comp.name}"
    if comp.domain == "xor":
        return prg.words(label, comp.shape)
    return prg.ring_elements(comp.ring, label, comp.shape)


def _persistent_key(party: int, comp: Component) -> tuple[object, ...]:
    """What fixes a persistent draw's values within a session: whose seed, its stream, shape and ring."""
    return (party, comp.persistent, comp.name, comp.domain, comp.shape, comp.ring_bits)


def _combine(comp: Component, parts: Iterator[np.ndarray]) -> np.ndarray:
    """The sum (xor for bit-words) of freshly drawn arrays, accumulated into the first: no new array
    where numpy computes modulo 2^64 in place. In a wider ring (Python integers, exact) the parts are
    added as integers and reduced once, by the last addition."""
    total = next(parts)
    if comp.domain == "arith" and comp.ring_bits != 64:
        rest = list(parts)
        for p in rest[:-1]:
            total = total + p
        return comp.ring.add(total, rest[-1]) if rest else total
    for p in parts:
        if comp.domain == "xor":
            total ^= p
        else:
            total += p
    return total


def _difference(comp: Component, secret: np.ndarray, others: np.ndarray) -> np.ndarray:
    """secret - others (xor for bit-words), written over `others` (a fresh sum) where numpy can."""
    if comp.domain == "xor":
        return np.bitwise_xor(secret, others, out=others)
    if comp.ring_bits == 64:
        return np.subtract(secret, others, out=others)
    return comp.ring.sub(secret, others)


class DealerEngine:
    """The dealer's computation: corrections for the last party, from all parties' seeds."""

    def __init__(
        self, seeds: Sequence[bytes | Prg], session: str, kinds: Mapping[str, MaterialKind],
        persistent: PersistentDraws | None = None,
    ) -> None:
        if len(seeds) < 2:
            raise ValueError("a computation needs at least two parties")
        self._prgs = [s if isinstance(s, Prg) else Prg(s) for s in seeds]  # a Prg: one keyed already
        self._session = session
        self._kinds = kinds
        self.persistent = persistent if persistent is not None else PersistentDraws()
        """The owners' persistent masks (and their limbs) drawn so far this session (`close` drops them)."""

    @property
    def n(self) -> int:
        return len(self._prgs)

    def correction(self, counter: int, request: MaterialRequest) -> Secrets:
        """The last party's shares of the derived components of request `counter`."""
        kind = lookup(self._kinds, request.kind)
        free = Drawn()
        for comp in kind.free(request.params):
            if comp.owner is not None and comp.persistent is not None:  # the same A every request: drawn once
                key = _persistent_key(comp.owner, comp)
                prg = self._prgs[comp.owner]
                a = self.persistent.draw(key, functools.partial(_draw, prg, self._session, counter, kind.name, comp))
                free[comp.name] = a
                free.splitters[comp.name] = functools.partial(self.persistent.limbs, key, a)
                continue
            if comp.owner is not None:
                free[comp.name] = _draw(self._prgs[comp.owner], self._session, counter, kind.name, comp)
                continue
            parts = (_draw(p, self._session, counter, kind.name, comp) for p in self._prgs)
            free[comp.name] = _combine(comp, parts)
        derived = kind.derive(request.params, free)
        out: Secrets = {}
        for comp in kind.derived(request.params):
            parts = (_draw(p, self._session, counter, kind.name, comp) for p in self._prgs[:-1])
            out[comp.name] = _difference(comp, derived[comp.name], _combine(comp, parts))
        return out

    def close(self) -> None:
        """The session is over: drop the persistent draws kept for it."""
        self.persistent.clear()


class PendingMaterial(Mapping[str, np.ndarray]):
    """One request's shares, where the dealer's corrections may still be on their way.

    The free components are here at once; reading a derived component waits for the
    dealer's answer (and raises the fetch's error, if it failed). Protocols read derived
    components only after their opening round, so the dealer's round trip overlaps the
    parties' own instead of adding to it.
    """

    def __init__(
        self, ready: Secrets, derived: list[Component], pending: Future[Secrets] | Callable[[], Secrets]
    ) -> None:
        self._ready = ready
        self._derived = derived
        self._names = [c.name for c in derived]
        self._pending: Callable[[], Secrets] | None = pending.result if isinstance(pending, Future) else pending

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._ready and self._pending is not None and name in self._names:
            self._resolve()
        return self._ready[name]

    def _resolve(self) -> None:
        assert self._pending is not None
        corrections = self._pending()
        for comp in self._derived:
            got = corrections[comp.name]
            if tuple(got.shape) != comp.shape:
                raise ValueError(f"dealer sent {comp.name} of shape {got.shape}, expected {comp.shape}")
            self._ready[comp.name] = got
        self._pending = None

    def __iter__(self) -> Iterator[str]:
        yield from self._ready
        if self._pending is not None:
            yield from self._names

    def __len__(self) -> int:
        return len(self._ready) + (len(self._names) if self._pending is not None else 0)


class SeededMaterial:
    """One party's source of correlated randomness (its half of the seeded scheme).

    Every party must make the same requests in the same order — true for any protocol,
    since the program is the same everywhere — so request numbers agree. The last party's
    corrections are asked for in the background (`PendingMaterial`), a few requests at a
    time, or, given `defer`, asked for at once and taken when first read, by the protocol's
    own thread; `close` stops asking. Given `ahead`, the last party can also tell the dealer
    what it will ask for next (`planner`), so its corrections are on their way before they are
    asked for; given `traces` too, it remembers the requests of named phases (`phase`) and
    tells the dealer a known phase's requests as it enters it.
    """

    FETCH_THREADS = 4

    def __init__(
        self,
        rank: int,
        n: int,
        seed: bytes | Prg,
        session: str,
        kinds: Mapping[str, MaterialKind],
        fetch: CorrectionFetcher | None,
        defer: DeferredFetcher | None = None,
        ahead: PlanAhead | None = None,
        traces: PhaseTraces | None = None,
    ) -> None:
        if rank == n - 1 and fetch is None and defer is None:
            raise ValueError("the last party needs a way to reach the dealer")
        self._rank, self._n = rank, n
        self._prg = seed if isinstance(seed, Prg) else Prg(seed)
        self._session = session
        self._kinds = kinds
        self._fetch = fetch
        self._defer = defer
        self._ahead = ahead
        self._traces = traces if ahead is not None and rank == n - 1 else None
        self._made: list[MaterialRequest] = []  # this session's requests, kept only to trace phases
        self._marked: tuple[str, int] | None = None  # the phase the last `mark` began: key, first request
        self._counter = 0
        self._lock = threading.Lock()
        self._fetcher: ThreadPoolExecutor | None = None
        self.persistent = PersistentDraws()
        """This party's persistent masks drawn so far this session (`close` drops them)."""
        self.requests = 0
        self.bytes_from_dealer = 0
        self.dealer_rtt_s: float | None = None
        """A round trip to the dealer, as the caller measured it (None: not measured)."""

    @property
    def kinds(self) -> Mapping[str, MaterialKind]:
        return self._kinds

    def get(self, request: MaterialRequest) -> Mapping[str, np.ndarray]:
        """This party's shares of every component of one fresh piece of material."""
        with self._lock:
            counter = self._counter
            self._counter += 1
            if self._traces is not None:
                self._made.append(request)
        kind = lookup(self._kinds, request.kind)
        out: Secrets = {}
        for comp in kind.free(request.params):
            if comp.persistent is not None and (comp.owner is None or comp.owner == self._rank):
                draw = functools.partial(_draw, self._prg, self._session, counter, kind.name, comp)
                out[comp.name] = self.persistent.draw(_persistent_key(self._rank, comp), draw)  # once a session
            elif comp.owner is None or comp.owner == self._rank:
                out[comp.name] = _draw(self._prg, self._session, counter, kind.name, comp)
        derived = kind.derived(request.params)
        if self._rank == self._n - 1 and derived:
            self.requests += 1
            self.bytes_from_dealer += sum(comp.nbytes for comp in derived)
            if self._defer is not None:
                return PendingMaterial(out, derived, self._defer(counter, request))
            assert self._fetch is not None
            return PendingMaterial(out, derived, self._executor().submit(self._fetch, counter, request))
        for comp in derived:
            out[comp.name] = _draw(self._prg, self._session, counter, kind.name, comp)
        return out

    def planner(self) -> Callable[[list[MaterialRequest]], int] | None:
        """Where to send the requests this party will make next, in order, from this point on (None: no
        dealer to tell, as at parties 0..n-2). Call it before the requests are made; the function it
        returns may be called later, from any thread (requests made by then are skipped)."""
        if self._ahead is None or self._rank != self._n - 1:
            return None
        with self._lock:
            start = self._counter
        return functools.partial(self._ahead, start)

    @contextlib.contextmanager
    def phase(self, key: str) -> Iterator[bool]:
        """Remember the requests made inside under `key`, and tell the dealer those remembered for
        `key` as the phase starts; yields whether it did (no-op, yielding False, but at the last party
        with `traces`). `key` must name everything the phase's requests depend on; a phase that raises
        is not remembered."""
        if self._traces is None:
            yield False
            return
        start, told = self._begin(key)
        yield told
        self._end(key, start)

    def mark(self, key: str | None) -> None:
        """End the phase the last `mark` began (remembering it) and begin one under `key` (None: none).

        For a loop whose every pass asks for the same material: a mark at the top of the pass
        remembers the previous pass and tells the dealer this one's at once, without a block to
        indent. A pass that raises is never ended, so never remembered."""
        if self._traces is None:
            return
        if self._marked is not None:
            self._end(*self._marked)
        self._marked = None
        if key is not None:
            self._marked = (key, self._begin(key)[0])

    def _begin(self, key: str) -> tuple[int, bool]:
        assert self._traces is not None and self._ahead is not None
        with self._lock:
            start = self._counter
        known = self._traces.get(key)
        if known is not None:
            self._ahead(start, known)
        return start, known is not None

    def _end(self, key: str, start: int) -> None:
        assert self._traces is not None
        with self._lock:
            made = self._made[start : self._counter]
        self._traces.put(key, made)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._fetcher is None:
                self._fetcher = ThreadPoolExecutor(self.FETCH_THREADS, thread_name_prefix=f"dealer-{self._session[:8]}")
            return self._fetcher

    def close(self) -> None:
        """Stop fetching: corrections not yet asked for are dropped (the job is over), and so are the
        persistent masks kept for the session."""
        self.persistent.clear()
        with self._lock:
            fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            fetcher.shutdown(wait=False, cancel_futures=True)


class PhaseTraces:
    """The requests of named phases (`SeededMaterial.phase`), kept across sessions: the last `keep` keys."""

    def __init__(self, keep: int = 256) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, list[MaterialRequest]] = OrderedDict()

    def get(self, key: str) -> list[MaterialRequest] | None:
        with self._lock:
            found = self._traces.get(key)
            if found is not None:
                self._traces.move_to_end(key)
            return found

    def put(self, key: str, requests: list[MaterialRequest]) -> None:
        with self._lock:
            self._traces[key] = list(requests)
            self._traces.move_to_end(key)
            while len(self._traces) > self._keep:
                self._traces.popitem(last=False)


def phase(material: object, key: str) -> contextlib.AbstractContextManager[bool]:
    """`material`'s `SeededMaterial.phase(key)`, or nothing (yielding False) for a source without phases."""
    enter = getattr(material, "phase", None)
    return enter(key) if enter is not None else contextlib.nullcontext(False)


def mark(material: object, key: str | None) -> None:
    """`material`'s `SeededMaterial.mark(key)`, or nothing for a source without phases."""
    marker = getattr(material, "mark", None)
    if marker is not None:
        marker(key)
