"""`pooled audit verify PATH [--expect-head HASH] [--peers DIR [--certs DIR]]` / `pooled audit show PATH`.

`verify` checks the log's hash chain and prints its head hash (the last entry's).
`--expect-head`: a head recorded earlier must still be in the log (entries cut off the end).
`--peers DIR`: the other nodes' logs (every *.jsonl file there but PATH itself); every head
of this node they recorded (signed by it, with each query) must still be in the log, so a
log whose entries were dropped and whose chain was recomputed is caught. `--certs DIR`:
the consortium's certificates (`ca.pem`, `party-<name>.pem`, as `pooled init` writes in
OUT/certs): each recorded head's signature is checked against this node's certificate.
`--node NAME`: the node whose log PATH is (default: the node its first entry names).
Exits 1 when anything is wrong, naming every problem.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="verify or show a node's hash-chained audit log", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("verify", "show"))
    p.add_argument("path", type=Path)
    p.add_argument("--expect-head", help="a head hash recorded earlier: it must still be in the log")
    p.add_argument("--peers", type=Path, help="a directory holding the other nodes' audit logs (*.jsonl)")
    p.add_argument("--certs", type=Path, help="with --peers: the consortium's certificates, to check signatures")
    p.add_argument("--node", help="with --peers: the node whose log PATH is (default: from its entries)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.audit import show, verify

    if not args.path.exists():
        print(f"pooled audit: no such file: {args.path}")
        return 2
    if args.action == "show":
        print(show(args.path))
        return 0
    if (args.certs or args.node) and not args.peers:
        print("pooled audit: --certs and --node go with --peers DIR")
        return 2
    report = verify(args.path, expect_head=args.expect_head)
    if report.ok:
        print(f"{args.path}: intact, {report.entries} entries")
        print(f"head {report.head}")
    else:
        print(f"{args.path}: BROKEN at line {report.broken_line}: {report.reason}")
        print(f"  ({report.entries} entries before it verify)")
    peers_ok = _peers(args) if args.peers else True
    return 0 if report.ok and peers_ok else 1


def _peers(args: argparse.Namespace) -> bool:
    from parties.audit_peers import cross_check

    try:
        check = cross_check(args.path, args.peers, node=args.node, certs=args.certs)
    except ValueError as exc:
        print(f"pooled audit: {exc}")
        return False
    logs = ", ".join(p.name for p in check.logs)
    signed = "signatures checked" if check.signatures_checked else "signatures not checked (give --certs DIR)"
    if check.ok:
        print(f"peers: all {check.heads} heads of {check.node} recorded in {logs} are in this log ({signed})")
        return True
    print(f"peers: {len(check.problems)} problem(s) in {check.heads} heads of {check.node} recorded in {logs}"
          f" ({signed}):")
    for problem in check.problems:
        print(f"  {problem}")
    return False
