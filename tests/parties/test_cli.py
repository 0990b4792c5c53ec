"""The `pooled` command line: cheap to import, subcommands registered from an explicit list."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from parties.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.subprocess  # a fresh interpreter: this one has imported everything already
def test_importing_the_cli_loads_no_grpc_or_numpy() -> None:
    code = (
        "import sys, parties.cli; parties.cli.build_parser(); "
        "print(sorted(m for m in ('grpc', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.subprocess
def test_a_node_and_an_analyst_start_without_formulaic_scipy_or_duckdb() -> None:
    """Model formulas (formulaic), p-values (scipy.stats) and row evaluation (duckdb) load on
    first use: a node that starts, or an analyst who asks a SELECT, pays for none of them."""
    modules = ("parties.commands.node", "parties.commands.dealer", "parties.commands.local", "parties.node",
               "parties.query_job", "parties.gate", "parties.jobs", "parties.bench_jobs", "parties.process",
               "parties.dealer_service", "parties.analyst", "parties.local", "queries.engine", "queries.result")
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        "from queries.parser import parse; parse('SELECT COUNT(*), AVG(bmi) WHERE age > 40 GROUP BY sex'); "
        "print(sorted(m for m in ('formulaic', 'scipy', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_listed_command_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    assert set(sub.choices) == {name.rsplit(".", 1)[1].replace("_", "-") for name in COMMANDS}


def test_certs_command_writes_a_consortium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--parties", "a,b,c", "--dealer", "--analysts", "alice"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["ca.pem", "ca.key", "dealer.pem", "dealer.key", "analyst-alice.pem", "analyst-alice.key"]
        + [f"party-{p}.{ext}" for p in "abc" for ext in ("pem", "key")]
    )
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.glob("*.key"))
    assert "pooled://party/a" in capsys.readouterr().out


def test_local_passes_yates_and_format_to_the_analyst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pooled local --yates --format csv`: the flag reaches `ask`, and the CSV printed names the
    corrected chi-square (the consortium replaced by in-process parties)."""
    import contextlib

    import pandas as pd

    import parties.analyst
    import parties.local
    from queries.engine import run_in_process
    from queries.table import normalize_frame

    files = []
    for i, rows in enumerate(([("no", 0)] * 30 + [("yes", 1)] * 15, [("no", 1)] * 10 + [("yes", 0)] * 5)):
        files.append(tmp_path / f"s{i}.csv")
        pd.DataFrame(rows, columns=["smoking", "outcome"]).to_csv(files[-1], index=False)
    asked: list[bool] = []

    class Consortium(contextlib.nullcontext):
        def __enter__(self) -> Consortium:
            return self

        def client(self) -> contextlib.nullcontext:
            return contextlib.nullcontext()

        def prepare(self) -> None:
            pass

        def stop(self) -> None:
            pass

    def ask(client: object, names: list[str], text: str, min_cell: int = 0, yates: bool = False,
            stmt: object = None, epsilon: float | None = None) -> tuple:
        asked.append(yates)
        frames = [normalize_frame(pd.read_csv(f)) for f in files]
        return run_in_process(frames, text, min_cell=min_cell, yates=yates)[0], None, None

    monkeypatch.setattr(parties.local, "LocalConsortium", lambda *a, **k: Consortium())
    monkeypatch.setattr(parties.analyst, "ask", ask)
    data = [arg for f in files for arg in ("--data", str(f))]
    assert main(["local", *data, "--yates", "--format", "csv", "CROSSTAB smoking BY outcome"]) == 0
    out = capsys.readouterr().out
    assert asked == [True]
    assert out.splitlines()[:3] == ["smoking,0,1,total,suppressed", "no,30,10,40,", "yes,5,15,20,"]
    assert "# chi2_test,Pearson chi-square with Yates' continuity correction,," in out.splitlines()
    assert build_parser().parse_args(["query", "--config", "a.toml", "--yates", "CROSSTAB a BY b"]).yates
    assert not build_parser().parse_args(["query", "--config", "a.toml", "CROSSTAB a BY b"]).yates
