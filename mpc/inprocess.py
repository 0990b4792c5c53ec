"""All parties in one process: an in-memory transport and a runner for tests.

The in-process transport delivers messages through per-party mailboxes, one condition
variable each (a message wakes only the party it is for). Protocols run through exactly the
same `PartyContext` code as on a real node; only the bytes' route differs. `run_parties`
starts one thread per party (numpy releases the GIL in its kernels) with a dealer engine
wired in directly: the last party's corrections are computed by the engine in that party's
own thread when first read, with no fetching thread to hand them over, and the engine and each
party share that party's PRG (`SharedPrg`), so a stream both draw is generated once.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from mpc.context import PartyContext
from mpc.dealer import DealerEngine, DeferredFetcher, SeededMaterial
from mpc.errors import PeerFailure
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.material import CORE_KINDS, MaterialKind, MaterialRequest, Secrets
from mpc.pairs import fresh_pair_seeds, pair_prgs_from_seeds
from mpc.prg import Prg, fresh_seed
from mpc.ring import Ring
from mpc.transport import Transport

T = TypeVar("T")


class InProcessNetwork:
    """Shared mailboxes of n parties living in one process.

    A receiver that finds its message absent records what it waits for and sleeps; a delivery wakes
    it only with that message (a message it is not waiting for yet only waits in the box). A wake-up
    is a thread switch and a fight for the GIL, and in a round a party receives from every peer, in
    rank order, while the peers send in any order."""

    def __init__(self, n: int, timeout: float = 60.0) -> None:
        self.n = n
        self.timeout = timeout
        self._boxes: list[dict[tuple[int, str], bytes]] = [{} for _ in range(n)]
        self._lock = threading.Lock()
        self._arrived = [threading.Condition(self._lock) for _ in range(n)]  # per receiver, one lock for all
        self._awaited: list[dict[tuple[int, str], int]] = [{} for _ in range(n)]  # per receiver: keys, waiters
        self._aborted: tuple[int, str] | None = None

    def transport(self, rank: int) -> InProcessTransport:
        return InProcessTransport(self, rank)

    def deliver(self, src: int, dst: int, tag: str, payload: bytes) -> None:
        key = (src, tag)
        with self._lock:
            self._boxes[dst][key] = payload
            if key in self._awaited[dst]:
                self._arrived[dst].notify_all()

    def take(self, dst: int, src: int, tag: str) -> bytes:
        key = (src, tag)
        box, awaited = self._boxes[dst], self._awaited[dst]
        with self._lock:
            if key in box:
                return box.pop(key)
            deadline = time.monotonic() + self.timeout
            awaited[key] = awaited.get(key, 0) + 1
            try:
                while True:
                    if key in box:
                        return box.pop(key)
                    if self._aborted is not None:
                        who, why = self._aborted
                        raise PeerFailure(f"P{who}", f"aborted the computation ({why})")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise PeerFailure(f"P{src}", f"sent nothing for {self.timeout:.0f} s (tag {tag})")
                    self._arrived[dst].wait(left)
            finally:
                awaited[key] -= 1
                if not awaited[key]:
                    del awaited[key]

    def abort(self, rank: int, reason: str) -> None:
        with self._lock:
            if self._aborted is None:
                self._aborted = (rank, reason)
            for arrived in self._arrived:
                arrived.notify_all()


class InProcessTransport(Transport):
    """One party's end of an `InProcessNetwork`."""

    def __init__(self, network: InProcessNetwork, rank: int) -> None:
        self._net = network
        self._rank = rank

    @property
    def party_names(self) -> list[str]:
        return [f"P{i}" for i in range(self._net.n)]

    def send(self, dst: int, tag: str, payload: bytes | memoryview) -> None:
        self._net.deliver(self._rank, dst, tag, bytes(payload))

    def recv(self, src: int, tag: str) -> bytes:
        return self._net.take(self._rank, src, tag)

    def abort(self, reason: str) -> None:
        self._net.abort(self._rank, reason)


class SharedPrg(Prg):
    """One party's PRG, used by that party and by the in-process dealer engine.

    The engine redraws every party's shares of a piece of material to derive the last party's
    corrections, so each of the party's streams is drawn twice, by two threads in either order.
    The first draw is kept (a copy: the first drawer may write to its array) and the second takes
    it instead of running AES again. A draw never repeated (material with no correction, a
    correction never read) waits among the last `KEEP` draws, at most `KEEP_BYTES`, then is dropped;
    a draw dropped before its repeat is simply drawn again. Values are those of `Prg`'s.
    """

    __slots__ = ("_kept", "_kept_bytes", "_lock")
    KEEP = 256
    KEEP_BYTES = 64 << 20

    def __init__(self, seed: bytes) -> None:
        super().__init__(seed)
        self._kept: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._kept_bytes = 0
        self._lock = threading.Lock()

    @property
    def waiting(self) -> tuple[int, int]:
        """The draws kept for a repeat: how many, and their bytes."""
        with self._lock:
            return len(self._kept), self._kept_bytes

    def ring_elements(self, ring: Ring, label: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._once((ring.bits, label, shape), ring, label, shape)

    def words(self, label: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._once(("words", label, shape), None, label, shape)

    def _once(self, key: Hashable, ring: Ring | None, label: str, shape: tuple[int, ...]) -> np.ndarray:
        """The draw of `label` (ring elements, or words for no ring): the kept one, else drawn now and a copy kept."""
        with self._lock:
            kept = self._kept.pop(key, None)
            if kept is not None:
                self._kept_bytes -= kept.nbytes
                return kept
        out = Prg.words(self, label, shape) if ring is None else Prg.ring_elements(self, ring, label, shape)
        with self._lock:
            self._kept[key] = out.copy()
            self._kept_bytes += out.nbytes
            while len(self._kept) > self.KEEP or self._kept_bytes > self.KEEP_BYTES:
                self._kept_bytes -= self._kept.popitem(last=False)[1].nbytes
        return out


def make_contexts(
    n: int,
    *,
    kinds: Mapping[str, MaterialKind] = CORE_KINDS,
    fixed: FixedPoint = FAST,
    precise: FixedPoint = PRECISE,
    timeout: float = 60.0,
) -> list[PartyContext]:
    """n wired-up contexts sharing one in-memory network and one dealer engine."""
    session = uuid.uuid4().hex[:12]
    prgs = [SharedPrg(fresh_seed()) for _ in range(n)]
    engine = DealerEngine(prgs, session, kinds)
    net = InProcessNetwork(n, timeout)
    pair_seeds = fresh_pair_seeds(n)
    contexts = []
    for rank in range(n):
        last = rank == n - 1
        material = SeededMaterial(rank, n, prgs[rank], session, kinds, None, _lazy(engine) if last else None)
        pairs = pair_prgs_from_seeds(rank, pair_seeds)
        contexts.append(PartyContext(rank, n, net.transport(rank), material, session, fixed, precise, pairs=pairs))
    return contexts


def _lazy(engine: DealerEngine) -> DeferredFetcher:
    """Corrections computed by `engine` when first read, in the reading party's thread (same values as
    a fetch; a correction never read is never computed)."""

    def defer(counter: int, request: MaterialRequest) -> Callable[[], Secrets]:
        return functools.partial(engine.correction, counter, request)

    return defer


def run_parties(
    n: int,
    program: Callable[..., T],
    *,
    args: Sequence[Any] | None = None,
    kinds: Mapping[str, MaterialKind] = CORE_KINDS,
    fixed: FixedPoint = FAST,
    timeout: float = 60.0,
    contexts: list[PartyContext] | None = None,
) -> list[T]:
    """Run `program(ctx)` (or `program(ctx, args[rank])`) for n parties in threads.

    Returns each party's result by rank. If any party raises, the others are aborted and
    the first original error is re-raised (not the failures it caused downstream).
    """
    ctxs = contexts if contexts is not None else make_contexts(n, kinds=kinds, fixed=fixed, timeout=timeout)
    results: list[Any] = [None] * n
    errors: list[BaseException | None] = [None] * n

    def body(rank: int) -> None:
        ctx = ctxs[rank]
        try:
            results[rank] = program(ctx) if args is None else program(ctx, args[rank])
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors[rank] = exc
            ctx.transport.abort(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=body, args=(r,), name=f"party-{r}") for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    primary = [e for e in errors if e is not None and not isinstance(e, PeerFailure)]
    secondary = [e for e in errors if e is not None]
    if primary or secondary:
        raise (primary or secondary)[0]
    return results
