"""The benchmark command's `micro` and `regression` suites run end to end and measure what they claim.

The network tests run both suites in `--quick` mode over real processes (one 3-party
consortium each, ephemeral ports, mTLS) and check the rows: every operation present, times
and counters filled, errors against numpy/statsmodels small, Pooled's multiplication at the
protocol's minimum payload and close to it on the wire, and no process left behind. The
others check the pieces without a network: the plaintext Newton reference, the teardown of
a consortium when a task fails, the minimum-bytes formula. The peers test runs the
multiplication interleaved with CrypTen-TTP (and MPyC) at a tiny size.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import references, suite_micro, suite_regression
from benchmarks.consortia import ConsortiumSession, guarded_tasks
from benchmarks.framework import BenchOptions, Row, Task
from tests.launchers import SharedLaunchers


def _children(launchers: SharedLaunchers) -> set[int]:
    """PIDs of this process's live descendants (from /proc), but not the session's launchers
    (`tests.launchers`, which outlive every test): what a suite started and has not stopped, its
    consortium's processes included."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found - launchers.pids()


def _run(tasks: list[Task]) -> list[Row]:
    return [row for task in tasks for row in task.run()]


def _options(tmp_path: Path, suite: str, peers: bool = False) -> BenchOptions:
    return BenchOptions(suites=(suite,), parties=(3,), repeat=1, quick=True, peers=peers, out=tmp_path, doc=None)


@pytest.mark.network
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list child processes")
def test_micro_quick_measures_every_operation_and_stops_its_processes(tmp_path: Path,
                                                                     shared_launchers: SharedLaunchers) -> None:
    before = _children(shared_launchers)
    rows = _run(suite_micro.tasks(_options(tmp_path, "micro")))
    assert _children(shared_launchers) <= before  # the consortium (behind the relay that counts wire bytes) is stopped
    by_case = {r.case: r for r in rows}
    assert [r.case for r in rows] == ["multiply", "comparison", "sigmoid", "reciprocal", "sum"]
    for r in rows:
        assert (r.suite, r.system, r.parties, r.size, r.rtt_ms, r.runs) == ("micro", "pooled", 3, 10_000, 0.0, 1)
        assert r.seconds is not None and r.spread == 0.0 and "end_to_end_seconds" in r.extra
        assert r.error is not None and r.rounds is not None and r.bytes_per_party is not None
        assert r.messages_per_party == 2 * r.rounds  # one message to each of the 2 peers per round
        if r.case != "sum":  # the sum sends nothing: inputs shared by pairwise seeds, added locally
            assert r.bytes_per_party and r.rounds
        assert r.extra["bytes_counted"] == "payload"
    error = {r.case: r.error for r in rows if r.error is not None}
    assert error["multiply"] < 1e-3  # products of N(0, 10) inputs, 20 fractional bits
    assert error["comparison"] == 0  # wrong outputs
    assert error["sigmoid"] < 1e-4
    assert error["reciprocal"] < 1e-2  # relative, outputs down to 1e-3 at 2^-20 resolution
    assert error["sum"] < 1e-4
    mul = by_case["multiply"]
    assert (mul.rounds, mul.messages_per_party) == (2, 4)  # Beaver + truncation, one message per peer each
    low = mul.extra["min_bytes_per_party"]
    assert low == suite_micro.min_mul_bytes_per_party(3, 10_000) == 480_000
    assert mul.bytes_per_party is not None and low <= mul.bytes_per_party <= 1.1 * low
    assert mul.dealer_bytes and mul.dealer_bytes > 0
    assert 1.0 < mul.extra["wire_over_payload"] < 1.5  # TLS, HTTP/2 and gRPC framing on top of the payload
    assert mul.extra["wire_bytes_per_party"] > mul.bytes_per_party
    assert (by_case["sum"].rounds, by_case["sum"].bytes_per_party) == (0, 0)


@pytest.mark.network
def test_regression_quick_fits_breast_cancer_like_statsmodels(tmp_path: Path,
                                                              shared_launchers: SharedLaunchers) -> None:
    pytest.importorskip("sklearn")
    before = _children(shared_launchers)
    (row,) = _run(suite_regression.tasks(_options(tmp_path, "regression")))
    assert _children(shared_launchers) <= before
    assert (row.suite, row.case, row.system, row.parties, row.size, row.runs) == (
        "regression", "breast_cancer LOGISTIC", "pooled", 3, 10, 1)
    facts = row.extra
    assert facts["features"] == 10 and facts["rows"] == 569 and "refused" not in facts
    assert facts["converged"] and 3 <= facts["iterations"] <= 30
    assert facts["reference"].startswith(("statsmodels", "plaintext"))
    assert facts["coef_error"] < 5e-3 and facts["se_error"] < 5e-3 and row.error == facts["coef_error"]
    assert 0.9 < facts["accuracy"] <= 1.0
    assert row.seconds is not None and row.rounds and row.rounds > 100
    assert row.messages_per_party == 2 * row.rounds  # one message to each of the 2 peers per round
    assert row.bytes_per_party and row.bytes_per_party > 1e6 and row.dealer_bytes


def test_newton_reference_matches_statsmodels_and_is_used_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    sm = pytest.importorskip("statsmodels.api")
    frame = references.breast_cancer_frame()
    x = np.column_stack([np.ones(len(frame)), frame[references.columns(10)].to_numpy(np.float64)])
    y = frame["y"].to_numpy(np.float64)
    want = sm.Logit(y, x).fit(disp=0)
    coef, se = references.newton_logit(x, y)
    np.testing.assert_allclose(coef, want.params, rtol=1e-6)
    np.testing.assert_allclose(se, want.bse, rtol=1e-6)
    monkeypatch.setitem(sys.modules, "statsmodels.api", None)  # import statsmodels.api now raises ImportError
    coef2, se2, what = references.reference_fit(x, y)
    assert what.startswith("plaintext float64 Newton") and coef2 is not None and se2 is not None
    np.testing.assert_allclose(coef2, coef)
    x30 = np.column_stack([np.ones(len(frame)), frame[references.columns(30)].to_numpy(np.float64)])
    none, _, why = references.reference_fit(x30, y)  # separable: no MLE, the reason is recorded
    assert none is None and "failed" in why


class _FakeSession(ConsortiumSession):
    def __init__(self) -> None:
        super().__init__(["a", "b"])
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_guarded_tasks_stop_the_consortium_after_the_last_task_or_at_the_first_error() -> None:
    session = _FakeSession()
    ok = Task("ok", lambda: [])
    tasks = guarded_tasks(session.close, [ok, ok])
    tasks[0].run()
    assert session.closed == 0
    tasks[1].run()
    assert session.closed == 1

    def boom() -> list[Row]:
        raise RuntimeError("node died")

    session = _FakeSession()
    tasks = guarded_tasks(session.close, [Task("boom", boom), ok])
    with pytest.raises(RuntimeError, match="node died"):
        tasks[0].run()
    assert session.closed == 1


def test_minimum_multiplication_bytes_follow_the_protocol() -> None:
    # 2 ring elements (Beaver's e, d) + 1 (truncation's c), 8 bytes each, to each of n - 1 peers.
    assert [suite_micro.min_mul_bytes_per_party(n, 1_000_000) for n in (2, 3, 5)] == [24e6, 48e6, 96e6]


@pytest.mark.peers
@pytest.mark.network
def test_micro_multiply_with_peers_interleaved(tmp_path: Path) -> None:
    from benchmarks.peers import available

    if not available("crypten"):
        pytest.skip("crypten is not installed here (bash benchmarks/peers/setup.sh)")
    op = suite_micro.MicroOp("multiply", "bench_mul", 2000, "mul", "abs", 1)
    notes: list[str] = []
    peers = suite_micro.usable_peers(["mul"], notes.append)
    rows = _run(suite_micro.party_tasks(3, [op], 1, peers, quick=True))
    assert [r.system for r in rows] == ["pooled", *peers]  # interleaved: Pooled first, then each peer
    crypten = rows[1]
    if crypten.extra.get("failed"):
        pytest.fail(f"CrypTen failed: {crypten.extra['failed']}")
    assert (crypten.case, crypten.parties, crypten.size, crypten.runs) == ("multiply", 3, 2000, 1)
    assert crypten.seconds is not None and crypten.extra["provider"] == "TTP"
    assert crypten.error is not None and crypten.error < 1e-2  # 16 fractional bits, products up to 1e4
    assert crypten.bytes_per_party and crypten.rounds is None
    if "mpyc" in peers:
        mpyc = rows[2]
        assert mpyc.extra.get("failed") or (mpyc.size == 1000 and mpyc.error is not None and mpyc.error < 1e-2)
