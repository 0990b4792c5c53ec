"""The `pooled` command line: cheap to import, subcommands registered from an explicit list."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from parties.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_cli_loads_no_grpc_or_numpy() -> None:
    code = (
        "import sys, parties.cli; parties.cli.build_parser(); "
        "print(sorted(m for m in ('grpc', 'numpy') if m in sys.modules))"
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
