"""The launcher forks `pooled` command lines from one pre-loaded process: each child's output goes
to its own log, its exit code (or the signal that ended it) to its exit file, like a process
started with those arguments."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from parties.jobs import private_vector
from parties.launcher import Launcher
from parties.local import LocalConsortium, child_env


@pytest.mark.subprocess
def test_children_report_their_exit_codes_and_output(tmp_path: Path) -> None:
    launcher = Launcher.start(child_env(), tmp_path / "launcher.log")
    try:
        usage = launcher.spawn(["no-such-command"], tmp_path / "usage.log", tmp_path / "usage.exit")
        many = [launcher.spawn(["no-such-command"], tmp_path / f"{i}.log", tmp_path / f"{i}.exit") for i in range(16)]
        refused = launcher.spawn(["node"], tmp_path / "node.log", tmp_path / "node.exit")
        synth = launcher.spawn(["synth", "--rows", "40", "--parties", "2", "--out", str(tmp_path / "data")],
                               tmp_path / "synth.log", tmp_path / "synth.exit")
        assert len({usage.pid, refused.pid, synth.pid, os.getpid()}) == 4
        assert usage.wait(60) == 2 and "invalid choice: 'no-such-command'" in (tmp_path / "usage.log").read_text()
        assert refused.wait(60) == 1
        assert [child.wait(60) for child in many] == [2] * 16  # ending together, each is reaped and reported
        assert "pooled node: give --config FILE" in (tmp_path / "node.log").read_text()
        assert synth.wait(60) == 0 and sorted(p.name for p in (tmp_path / "data").iterdir()) == [
            "site_1.csv", "site_2.csv"]
    finally:
        launcher.close()


@pytest.mark.network
def test_a_child_ended_by_a_signal_reports_it(tmp_path: Path) -> None:
    """A dealer (it serves until stopped) killed with SIGKILL: its exit code is -9."""
    from parties.certs import create_consortium

    create_consortium(tmp_path / "certs", ["a", "b"], dealer=True, analysts=[], ca_key=tmp_path / "ca.key")
    launcher = Launcher.start(child_env(), tmp_path / "launcher.log")
    try:
        dealer = launcher.spawn(["dealer", "--certs", str(tmp_path / "certs"), "--listen", "127.0.0.1:0",
                                 "--port-file", str(tmp_path / "dealer.port")],
                                tmp_path / "dealer.log", tmp_path / "dealer.exit")
        assert dealer.poll() is None
        os.kill(dealer.pid, signal.SIGKILL)
        assert dealer.wait(60) == -signal.SIGKILL
    finally:
        launcher.close()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.network
def test_consortia_one_after_another_share_a_launcher(tmp_path: Path) -> None:
    """Each consortium's processes are the shared launcher's children and answer; it outlives them."""
    launcher = Launcher.start(child_env(), tmp_path / "launcher.log")
    try:
        for names in (["a", "b"], ["c", "d", "e"]):
            with LocalConsortium(names, bench_jobs=True, launcher=launcher) as lc, lc.client() as client:
                parents = {_parent(lc.pid(name)) for name in ["dealer", *names]}
                result = client.run("secure_sum", {"size": 100, "seed": 3}, roster=names)
                assert abs(result.outputs()[0] - sum(private_vector(3, p, 100) for p in names)).max() < 1e-5
            assert len(parents) == 1 and parents != {os.getpid()}
        with pytest.raises(ValueError, match="shared launcher"):
            LocalConsortium(["a", "b"], launcher=launcher, env={})
    finally:
        launcher.close()
