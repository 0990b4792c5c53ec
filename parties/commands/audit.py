"""`pooled audit verify PATH [--expect-head HASH]` / `pooled audit show PATH`: check or read a node's audit log.

`verify` prints the head hash (the last entry's); record it somewhere the node cannot
rewrite, and pass it later as `--expect-head` to notice entries cut off the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="verify or show a node's hash-chained audit log", description=__doc__)
    p.add_argument("action", choices=("verify", "show"))
    p.add_argument("path", type=Path)
    p.add_argument("--expect-head", help="a head hash recorded earlier: it must still be in the log")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.audit import show, verify

    if not args.path.exists():
        print(f"pooled audit: no such file: {args.path}")
        return 2
    if args.action == "show":
        print(show(args.path))
        return 0
    report = verify(args.path, expect_head=args.expect_head)
    if report.ok:
        print(f"{args.path}: intact, {report.entries} entries")
        print(f"head {report.head}")
        return 0
    print(f"{args.path}: BROKEN at line {report.broken_line}: {report.reason}")
    print(f"  ({report.entries} entries before it verify)")
    return 1
