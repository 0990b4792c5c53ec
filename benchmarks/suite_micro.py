"""The `micro` suite of `python -m benchmarks`: Pooled's core operations over real processes, peers interleaved.

For each party count: multiply (1e6 elements), comparison, sigmoid and reciprocal (1e5)
and sum (1e6); `--quick` runs 1e4 elements once, every party link through a 0-ms relay.
Pooled runs on one `LocalConsortium` (dealer + one process per party, gRPC with mutual
TLS on 127.0.0.1) per party count, reused by all its operations (`benchmarks.consortia`);
time is the median over repetitions, after a warm-up, of the slowest party's compute
phase; the counters are the parties' own `CommStats`. With `--peers`, each Pooled operation is followed by the same
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
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from benchmarks.consortia import ConsortiumSession, guarded_tasks, party_names
from benchmarks.framework import BenchOptions, Row, Task, timed_runs
from benchmarks.rows import ERROR_KINDS, peer_row, pooled_row
from parties.bench_jobs import OPS, op_inputs
from parties.jobs import bench_inputs, private_vector
from parties.local import data_front

SUITE = "micro"
QUICK_SIZE = 10_000
RING_BYTES = 8
"""Bytes of one element of Z_2^64, the ring every benchmark job computes in."""


# -- Pooled ------------------------------------------------------------------------------------------
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
        return bench_inputs(self.seed, self.size) * bench_inputs(self.seed + 1, self.size)  # bench_mul


def micro_ops(quick: bool) -> list[MicroOp]:
    """The suite's operations: 1e6 elements for multiply and sum, 1e5 for the others (QUICK_SIZE with --quick)."""
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


def wire_bytes_per_party(names: Sequence[str], params: dict[str, Any],
                         relayed: ConsortiumSession | None = None) -> dict[str, Any]:
    """Bytes on the wire of one `bench_mul` between the parties, counted by a 0-ms `DelayRelay`.

    `CommStats` counts payload only, so this untimed extra run routes every party-to-party
    connection through the benchmarks' relay (`benchmarks.wan`, here with no delay), which
    counts the TCP bytes it forwards in both directions: TLS records, frame headers,
    gRPC pings and acknowledgements included. Dealer links go through
    their own front and are left out. The total over the parties' fronts, divided by the
    number of parties, is the wire bytes per party (the protocol is symmetric). `relayed`: a
    consortium already behind such a relay (`--quick` runs every operation on one); without
    it, one is started for this run.
    """
    with contextlib.ExitStack() as stack:
        session = relayed or stack.enter_context(ConsortiumSession(names, relay_rtt_ms=0.0))
        client = session.client()
        client.run("bench_mul", params)  # warm-up: connections and TLS handshakes are not counted

        def sent() -> int:
            fronts = session.relay.stats()["fronts"]
            links = [f for n in names for f in (n, data_front(n)) if f in fronts]  # gRPC and data sockets
            return sum(fronts[f]["bytes_to_target"] + fronts[f]["bytes_to_client"] for f in links)

        before = sent()
        result = client.run("bench_mul", params)
        total = sent() - before
    payload = sum(o.stats.bytes_sent for o in result.outcomes.values())
    return {"wire_bytes_per_party": total // len(names), "wire_over_payload": total / payload if payload else None}


def measure_pooled(session: ConsortiumSession, op: MicroOp, repeat: int, warmup: int) -> list[Row]:
    """Pooled's row for `op`: timed jobs over the session's consortium, checked against numpy."""
    client = session.client()
    n = len(session.names)
    _, runs = timed_runs(lambda: client.run(op.job, op.params()), repeat, warmup)
    got = runs[-1].outputs()[0]
    want = op.expected(session.names)
    extra: dict[str, Any] = {"job": op.job, "error_kind": ERROR_KINDS[op.error],
                             "max_abs_error": measure_error("abs", got, want)}
    if op.job == "bench_op":
        extra["input_range"] = list(OPS[op.case][2])
    if op.case == "multiply":
        extra["min_bytes_per_party"] = min_mul_bytes_per_party(n, op.size)
        relayed = session if session.relay_rtt_ms == 0.0 else None
        extra.update(wire_bytes_per_party(session.names, op.params(), relayed))
    return [pooled_row(SUITE, op.case, n, op.size, runs, measure_error(op.error, got, want), **extra)]


# -- peers ---------------------------------------------------------------------------------------------
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
    With `quick`, its links run through a 0-ms relay, which also counts the wire bytes
    (`wire_bytes_per_party`), so no second consortium is started for them.
    """
    from benchmarks.peers import run_peer

    session = ConsortiumSession(party_names(parties), relay_rtt_ms=0.0 if quick else None)
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
    return guarded_tasks(session.close, group)


def tasks(options: BenchOptions) -> list[Task]:
    """Per party count: for each operation, Pooled then (with --peers) CrypTen-TTP then MPyC."""
    ops = micro_ops(options.quick)
    repeat = 1 if options.quick else options.repeat
    if any(options.wan_rtt_ms):
        _note("runs at RTT 0 only (the WAN options apply to the queries suite)")
    peers = usable_peers([op.peer_op for op in ops], _note) if options.peers else {}
    return [task for n in options.parties for task in party_tasks(n, ops, repeat, peers, options.quick)]
