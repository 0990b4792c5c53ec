"""`pooled audit verify PATH` / `pooled audit show PATH`: check or read a node's audit log."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="verify or show a node's hash-chained audit log", description=__doc__)
    p.add_argument("action", choices=("verify", "show"))
    p.add_argument("path", type=Path)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.audit import show, verify

    if not args.path.exists():
        print(f"pooled audit: no such file: {args.path}")
        return 2
    if args.action == "show":
        print(show(args.path))
        return 0
    report = verify(args.path)
    if report.ok:
        print(f"{args.path}: intact, {report.entries} entries")
        return 0
    print(f"{args.path}: BROKEN at line {report.broken_line}: {report.reason}")
    print(f"  ({report.entries} entries before it verify)")
    return 1
