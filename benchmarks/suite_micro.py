"""The `micro` suite of `python -m benchmarks`: Pooled's core operations over real processes, peers interleaved.

For each party count: multiply (1e6 elements), comparison, sigmoid and reciprocal (1e5)
and sum (1e6); `--quick` runs 1e4 elements once. Pooled runs as in `benchmarks.core` and
`benchmarks.nonlinear`: one `LocalConsortium` (dealer + one process per party, gRPC with
mutual TLS on 127.0.0.1) per party count, reused by all its operations; time is the median
over repetitions, after a warm-up, of the slowest party's compute phase; the counters are
the parties' own `CommStats`. With `--peers`, each Pooled operation is followed by the same
operation in CrypTen (with its trusted third party) and then MPyC, so that the systems are
measured next to each other under the same load rather than in separate blocks.

Which inputs: Pooled's jobs draw public inputs that every party can regenerate (`bench_mul`,
`bench_op`: party 0 holds the encoded vector, the others zeros, a valid sharing; the
protocol cannot tell) and `secure_sum` sums each party's private vector. The peers share
private inputs of the same size (see `benchmarks.peers`). Errors are measured per case in
one unit for every system: max absolute error (multiply, sigmoid, sum), count of wrong
outputs (comparison), max relative error (reciprocal).

MPyC computes on Python integers and is far slower here, so it runs at the sizes its
harness recommends (`mpyc_bench.DEFAULT_SIZES`, a tenth of them with `--quick`); its row
says the size it measured and the report compares time per element.

This module also holds what the regression suite shares with it: `ConsortiumSession` (one
consortium started lazily and always stopped), `guarded_tasks`, `pooled_row`, `peer_row`.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import core
from benchmarks.framework import BenchOptions, Row, Task, median_spread
from parties.bench_jobs import OPS, op_inputs
from parties.client import ConsortiumClient, JobResult
from parties.jobs import private_vector
from parties.local import FAST_MALLOC_ENV, LocalConsortium

SUITE = "micro"
QUICK_SIZE = 10_000
RING_BYTES = 8
"""Bytes of one element of Z_2^64, the ring every benchmark job computes in."""
BYTES_COUNTED = "payload"
"""What `CommStats.bytes_sent` counts: `PartyContext.exchange` adds len(payload) of each message before it
reaches the transport, so protobuf headers, gRPC/HTTP2 framing and TLS records are not included."""
NODE_ENV = {**FAST_MALLOC_ENV, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1"}
"""The nodes' environment: LocalConsortium's malloc tuning, and one compute thread per process as the peers'
processes have (`benchmarks.peers._procs.single_thread_env`), so the comparison is thread for thread."""
ERROR_KINDS = {"abs": "max absolute error", "mismatch": "wrong outputs (count)", "rel": "max relative error"}


# -- one consortium per party count -------------------------------------------------------------------
def party_names(n: int) -> list[str]:
    """The parties' names: `benchmarks.core`'s "a".."e" for up to five, "p0".. beyond."""
    return core.NAMES[:n] if n <= len(core.NAMES) else [f"p{i}" for i in range(n)]


class ConsortiumSession:
    """One `LocalConsortium` and its analyst client, shared by the tasks of one party count.

    Starting dealer and nodes costs seconds, so the first task that needs them starts them
    and the others reuse them; `close` stops every process (by PID, in `LocalConsortium.stop`).
    `guarded_tasks` closes the session after the group's last task and whenever a task
    raises; an atexit hook covers an interrupted run. `setup`, if given, writes the nodes'
    data files into a fresh directory before the start and returns {party: path}.
    """

    def __init__(self, names: Sequence[str], setup: Callable[[Path], dict[str, Path]] | None = None) -> None:
        self.names = list(names)
        self._setup = setup
        self._consortium: LocalConsortium | None = None
        self._client: ConsortiumClient | None = None
        self._datadir: Path | None = None

    @property
    def started(self) -> bool:
        return self._consortium is not None

    def client(self) -> ConsortiumClient:
        """The analyst client, starting the consortium on first use."""
        if self._client is None:
            atexit.register(self.close)
            try:
                data = None
                if self._setup is not None:
                    self._datadir = Path(tempfile.mkdtemp(prefix="pooled-bench-data-"))
                    data = self._setup(self._datadir)
                self._consortium = LocalConsortium(self.names, data=data, env=NODE_ENV, bench_jobs=True)
                self._consortium.start()
                self._client = self._consortium.client()
            except BaseException:
                self.close()
                raise
        return self._client

    def close(self) -> None:
        """Stop the processes and remove the data files (idempotent)."""
        atexit.unregister(self.close)
        client, consortium, datadir = self._client, self._consortium, self._datadir
        self._client, self._consortium, self._datadir = None, None, None
        try:
            if client is not None:
                client.close()
        finally:
            if consortium is not None:
                consortium.stop()
            if datadir is not None:
                shutil.rmtree(datadir, ignore_errors=True)


def guarded_tasks(session: ConsortiumSession, tasks: Sequence[Task]) -> list[Task]:
    """`tasks` such that `session` is closed after the last one, and at once if any of them raises.

    The benchmark command stops at a task's exception, so the group's last task would never
    run: closing on the error is what guarantees the teardown.
    """

    def run(task: Task, last: bool) -> list[Row]:
        try:
            rows = task.run()
        except BaseException:
            session.close()
            raise
        if last:
            session.close()
        return rows

    return [Task(t.label, partial(run, t, i == len(tasks) - 1)) for i, t in enumerate(tasks)]


# -- Pooled ------------------------------------------------------------------------------------------
def run_jobs(run: Callable[[], JobResult], repeat: int, warmup: int = 1) -> list[JobResult]:
    """`warmup` untimed calls (connections, buffers, caches), then the `repeat` results to report."""
    for _ in range(warmup):
        run()
    return [run() for _ in range(repeat)]


def pooled_row(suite: str, case: str, parties: int, size: int | None, runs: Sequence[JobResult],
               error: float | None = None, **extra: Any) -> Row:
    """A Pooled row from timed jobs: median and spread of the slowest party's compute phase, the last run's
    counters (max over parties; dealer bytes summed over parties, as `benchmarks.core` reports them)."""
    seconds, spread = median_spread([r.compute_seconds for r in runs])
    stats = [o.stats for o in runs[-1].outcomes.values()]
    return Row(
        suite=suite,
        case=case,
        system="pooled",
        parties=parties,
        size=size,
        seconds=seconds,
        spread=spread,
        runs=len(runs),
        bytes_per_party=max(s.bytes_sent for s in stats),
        messages_per_party=max(s.messages_sent for s in stats),
        rounds=max(s.rounds for s in stats),
        dealer_bytes=sum(s.dealer_bytes for s in stats),
        error=error,
        extra={
            "end_to_end_seconds": median_spread([r.seconds for r in runs])[0],
            "bytes_counted": BYTES_COUNTED,
            **extra,
        },
    )


@dataclass(frozen=True)
class MicroOp:
    """One operation of the suite: Pooled's job and parameters, the peers' op name, how errors are measured."""

    case: str
    job: str
    size: int
    peer_op: str
    error: str
    """Key of ERROR_KINDS."""
    seed: int

    def params(self) -> dict[str, Any]:
        if self.job == "bench_op":
            return {"op": self.case, "size": self.size, "seed": self.seed}
        return {"size": self.size, "seed": self.seed}

    def expected(self, names: Sequence[str]) -> np.ndarray:
        """The plaintext answer (numpy, float64)."""
        if self.job == "bench_op":
            return OPS[self.case][1](op_inputs(self.case, self.size, self.seed))
        if self.job == "secure_sum":
            return np.sum([private_vector(self.seed, name, self.size) for name in names], axis=0)
        return core._expected(self.job, self.params())


def micro_ops(quick: bool) -> list[MicroOp]:
    """The suite's operations at the issue's sizes (or QUICK_SIZE)."""
    big, small = (QUICK_SIZE, QUICK_SIZE) if quick else (1_000_000, 100_000)
    return [
        MicroOp("multiply", "bench_mul", big, "mul", "abs", 1),
        MicroOp("comparison", "bench_op", small, "lt", "mismatch", 5),
        MicroOp("sigmoid", "bench_op", small, "sigmoid", "abs", 5),
        MicroOp("reciprocal", "bench_op", small, "reciprocal", "rel", 5),
        MicroOp("sum", "secure_sum", big, "sum", "abs", 3),
    ]


def measure_error(kind: str, got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if kind == "mismatch":
        return float(np.count_nonzero(np.abs(got - want) > 0.5))
    if kind == "rel":
        return float(np.max(np.abs(got / want - 1)))
    return float(np.max(np.abs(got - want)))


def min_mul_bytes_per_party(parties: int, size: int) -> int:
    """The least payload one party must send for `protocols.beaver.fixed_mul` of `size` elements.

    fixed_mul is a Beaver product followed by a truncation, and each step opens masked values
    with an additive sharing: a secret is only known once every party's share has reached
    every other party, so per element and per opened value a party sends one ring element
    (8 bytes in Z_2^64) to each of its n - 1 peers:
      * Beaver: e = x - a and d = y - b  -> 2 elements to each peer;
      * truncation: c = x*y + 2^(k-2) + r -> 1 element to each peer.
    Total 3 x 8 x (n - 1) bytes per element. The dealer's material (seeded PRG streams plus
    one correction share) is dealer traffic, counted apart. Opening through one "king"
    party instead would cut the others' bytes but add a round per opening; this is the
    minimum for the protocol as specified (2 rounds). It is a bound on payload: what
    goes on the wire adds protobuf, gRPC/HTTP2 and TLS framing (see `wire_bytes_per_party`).
    """
    return 3 * RING_BYTES * (parties - 1) * size


def wire_bytes_per_party(names: Sequence[str], params: dict[str, Any]) -> dict[str, Any]:
    """Bytes on the wire of one `bench_mul` between the parties, counted by a 0-ms `DelayRelay`.

    `CommStats` counts payload only, so this untimed extra run routes every party-to-party
    connection through the benchmarks' relay (`benchmarks.wan`, here with no delay), which
    counts the TCP bytes it forwards in both directions: TLS records, HTTP/2 and gRPC
    framing, protobuf headers, acknowledgements and pings included. Dealer links go through
    their own front and are left out. The total over the parties' fronts, divided by the
    number of parties, is the wire bytes per party (the protocol is symmetric).
    """
    from benchmarks.wan import DelayRelay

    with (
        DelayRelay(0) as relay,
        LocalConsortium(names, relay=relay, env=NODE_ENV, bench_jobs=True) as consortium,
        consortium.client() as client,
    ):
        client.run("bench_mul", params)  # warm-up: connections and TLS handshakes are not counted

        def sent() -> int:
            fronts = relay.stats()["fronts"]
            return sum(fronts[n]["bytes_to_target"] + fronts[n]["bytes_to_client"] for n in names if n in fronts)

        before = sent()
        result = client.run("bench_mul", params)
        total = sent() - before
    payload = sum(o.stats.bytes_sent for o in result.outcomes.values())
    return {"wire_bytes_per_party": total // len(names), "wire_over_payload": total / payload if payload else None}


def measure_pooled(session: ConsortiumSession, op: MicroOp, repeat: int, warmup: int) -> list[Row]:
    """Pooled's row for `op`: timed jobs over the session's consortium, checked against numpy."""
    client = session.client()
    n = len(session.names)
    runs = run_jobs(lambda: client.run(op.job, op.params()), repeat, warmup)
    got = runs[-1].outputs()[0]
    want = op.expected(session.names)
    extra: dict[str, Any] = {"job": op.job, "error_kind": ERROR_KINDS[op.error],
                             "max_abs_error": measure_error("abs", got, want)}
    if op.job == "bench_op":
        extra["input_range"] = list(OPS[op.case][2])
    if op.case == "multiply":
        extra["min_bytes_per_party"] = min_mul_bytes_per_party(n, op.size)
        extra.update(wire_bytes_per_party(session.names, op.params()))
    return [pooled_row(SUITE, op.case, n, op.size, runs, measure_error(op.error, got, want), **extra)]


# -- peers ---------------------------------------------------------------------------------------------
PEER_ERROR_KEYS = {"abs": "max_abs_error", "mismatch": "mismatches", "rel": "max_rel_error"}


def peer_row(suite: str, case: str, peer: str, parties: int, size: int | None, error: str | None,
             call: Callable[[], dict[str, Any]]) -> Row:
    """A peer's row from `call()` (a `run_peer` result); a `PeerRunError` becomes a row with extra["failed"].

    The peer's whole result dict is kept in `extra`. CrypTen's "rounds" are communication calls,
    not rounds in Pooled's sense, and MPyC has none, so `rounds` stays empty for peers. For
    "sum" the harnesses time the inputs' sharing (it is the protocol), so its bytes and
    messages are added to the operation's, as Pooled's `secure_sum` counts its sharing round.
    """
    from benchmarks.peers._procs import PeerRunError

    try:
        result = call()
    except PeerRunError as exc:
        text = str(exc)
        return Row(suite=suite, case=case, system=peer, parties=parties, size=size,
                   extra={"failed": text if len(text) <= 2000 else text[:1000] + " ... " + text[-1000:]})
    per_party = result.get("bytes_per_party")
    messages = result.get("messages_per_party")
    extra = dict(result)
    if result.get("op") == "sum":
        per_party = _plus(per_party, result.get("input_bytes_per_party"))
        messages = _plus(messages, result.get("input_messages_per_party"))
        extra["counters_include_input"] = True
    value = None
    if error is not None:
        extra["error_kind"] = ERROR_KINDS[error]
        value = result.get(PEER_ERROR_KEYS[error])
    return Row(
        suite=suite,
        case=case,
        system=peer,
        parties=parties,
        size=int(result.get("size", size or 0)) or size,
        seconds=result.get("seconds_median"),
        spread=result.get("seconds_spread"),
        runs=int(result.get("repeats", 0)),
        bytes_per_party=max(per_party) if per_party else None,
        messages_per_party=max(messages) if messages else None,
        error=None if value is None else float(value),
        extra=extra,
    )


def _plus(a: Sequence[int] | None, b: Sequence[int] | None) -> list[int] | None:
    """Elementwise sum of two per-party counter lists (either may be missing)."""
    if a is None or b is None:
        return list(a) if a is not None else (list(b) if b is not None else None)
    return [x + y for x, y in zip(a, b)]


def peer_rows(suite: str, case: str, peer: str, parties: int, size: int | None, error: str | None,
              call: Callable[[], dict[str, Any]]) -> list[Row]:
    """`peer_row` as a task's list of rows."""
    return [peer_row(suite, case, peer, parties, size, error, call)]


def peer_size(peer: str, op: str, size: int, quick: bool) -> int:
    """CrypTen runs Pooled's size; MPyC at most its harness's recommended size (a tenth with --quick)."""
    if peer != "mpyc":
        return size
    from benchmarks.peers import mpyc_bench

    cap = mpyc_bench.DEFAULT_SIZES[op]
    return min(size, max(100, cap // 10) if quick else cap)


def usable_peers(ops: Sequence[str], note: Callable[[str], None]) -> dict[str, set[str]]:
    """peer -> the `ops` it can run here; a note for every peer not installed or op it lacks."""
    from benchmarks.peers import PEERS, available, peer_ops

    found: dict[str, set[str]] = {}
    for peer in PEERS:
        if not available(peer):
            note(f"{peer} is not installed here: its rows are skipped")
            continue
        have = set(peer_ops(peer))
        found[peer] = {op for op in ops if op in have}
        for op in ops:
            if op not in have:
                note(f"{peer} has no {op!r}: that row is skipped")
    return found


def _note(text: str) -> None:
    print(f"[{SUITE}] {text}", file=sys.stderr)


# -- the suite ---------------------------------------------------------------------------------------
def party_tasks(parties: int, ops: Sequence[MicroOp], repeat: int, peers: dict[str, set[str]],
                quick: bool = False) -> list[Task]:
    """One party count's tasks, interleaved: for each op, Pooled, then each peer in `peers` that has it.

    The tasks share one consortium, started by the first and stopped by the last (or on an error).
    """
    from benchmarks.peers import run_peer

    session = ConsortiumSession(party_names(parties))
    group: list[Task] = []
    for op in ops:
        group.append(Task(f"micro {parties}p {op.case} pooled", partial(measure_pooled, session, op, repeat, 1)))
        for peer, have in peers.items():
            if op.peer_op not in have:
                continue
            size = peer_size(peer, op.peer_op, op.size, quick)
            call = partial(run_peer, peer, op.peer_op, parties, size, repeat)
            group.append(Task(f"micro {parties}p {op.case} {peer}",
                              partial(peer_rows, SUITE, op.case, peer, parties, size, op.error, call)))
    return guarded_tasks(session, group)


def tasks(options: BenchOptions) -> list[Task]:
    """Per party count: for each operation, Pooled then (with --peers) CrypTen-TTP then MPyC."""
    ops = micro_ops(options.quick)
    repeat = 1 if options.quick else options.repeat
    if any(options.wan_rtt_ms):
        _note("runs at RTT 0 only (the WAN options apply to the queries suite)")
    peers = usable_peers([op.peer_op for op in ops], _note) if options.peers else {}
    return [task for n in options.parties for task in party_tasks(n, ops, repeat, peers, options.quick)]
