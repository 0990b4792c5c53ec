"""What every suite shares: the timing helper, the docs section writer, data files, names, the environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as command
from benchmarks.consortia import NODE_ENV, Scratch, party_names
from benchmarks.framework import RESULTS_HEADING, SINGLE_THREAD_ENV, timed_runs, write_section
from benchmarks.peers._procs import single_thread_env


def test_timed_runs_times_only_the_runs_after_the_warmup() -> None:
    calls: list[int] = []

    def fn() -> int:
        calls.append(len(calls))
        return calls[-1]

    seconds, results = timed_runs(fn, repeat=3, warmup=2)
    assert calls == [0, 1, 2, 3, 4] and results == [2, 3, 4] and len(seconds) == 3
    assert timed_runs(fn, repeat=1, warmup=0)[1] == [5]


def test_write_section_replaces_its_own_section_only(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    before, after = "# Benchmarks\n\nintro\n\n", "## Peers\n\nkept as is\n"
    doc.write_text(before + f"{RESULTS_HEADING}\n\nold\n\n### sub\n\nold too\n\n" + after)
    write_section(doc, f"{RESULTS_HEADING}\n\nnew\n")
    assert doc.read_text() == before + f"{RESULTS_HEADING}\n\nnew\n\n" + after
    write_section(doc, "## Other\n\nappended\n", heading="## Other")
    assert doc.read_text().endswith(after + "\n## Other\n\nappended\n")
    fresh = tmp_path / "new.md"
    write_section(fresh, f"{RESULTS_HEADING}\n\nfirst\n")
    assert fresh.read_text() == f"{RESULTS_HEADING}\n\nfirst\n"


def test_scratch_writes_each_key_once_and_removes_everything(tmp_path: Path) -> None:
    scratch = Scratch()
    writes: list[Path] = []

    def write(directory: Path) -> dict[str, Path]:
        writes.append(directory)
        (directory / "a.parquet").write_text("rows")
        return {"a": directory / "a.parquet"}

    first = scratch.files("1000-3p", write)
    assert scratch.files("1000-3p", write) == first and len(writes) == 1 and first["a"].exists()
    scratch.remove()
    assert not scratch.root.exists()


def test_party_names_are_distinct_beyond_the_letters() -> None:
    assert party_names(3) == ["a", "b", "c"] and len(party_names(8)) == 8
    assert party_names(10) == [f"p{i}" for i in range(10)]


def test_nodes_and_peers_run_with_the_same_single_thread_environment() -> None:
    assert SINGLE_THREAD_ENV and all(v == "1" for v in SINGLE_THREAD_ENV.values())
    assert SINGLE_THREAD_ENV.items() <= dict(NODE_ENV).items()
    assert SINGLE_THREAD_ENV.items() <= single_thread_env().items()


def test_the_command_without_tqdm_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    with pytest.raises(SystemExit, match=r"install the bench extra: pip install -e '\.\[bench\]'"):
        command.main(["--suite", "micro", "--no-doc"])


@pytest.mark.subprocess
def test_peer_row_takes_the_slowest_worker_per_repetition_and_the_first_workers_errors() -> None:
    from benchmarks.peers._procs import MARK, PeerRunError, run_workers

    def worker(seconds: list[float], error: float) -> list[str]:
        line = MARK + json.dumps({"seconds": seconds, "seconds_with_input": seconds, "max_abs_error": error})
        return [sys.executable, "-c", f"print({line!r})"]

    commands = {"p0": (worker([0.1, 0.5, 0.2], 1e-3), single_thread_env()),
                "p1": (worker([0.3, 0.2, 0.2], 9.0), single_thread_env())}
    row, results = run_workers("a party", commands, ["p0", "p1"], timeout=30, repeats=3, peer="x", op="mul")
    assert (row["peer"], row["op"], row["repeats"], row["threads_per_party"]) == ("x", "mul", 3, 1)
    assert row["seconds_runs"] == [0.3, 0.5, 0.2] and row["seconds_median"] == 0.3
    assert row["seconds_spread"] == pytest.approx(0.3) and row["max_abs_error"] == 1e-3 and len(results) == 2
    silent = {"p0": ([sys.executable, "-c", "print('no result')"], single_thread_env())}
    with pytest.raises(PeerRunError, match="a party printed no result"):
        run_workers("a party", silent, ["p0"], timeout=30, repeats=1)
