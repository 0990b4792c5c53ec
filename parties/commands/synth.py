"""`pooled synth`: write a synthetic cohort, one CSV per party (never real patient data)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("synth", help="write a synthetic cohort, one CSV per party", description=__doc__)
    p.add_argument("--rows", type=int, required=True, help="patients in all")
    p.add_argument("--parties", type=int, required=True, help="number of sites")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from queries.synth import write_synthetic

    if args.rows < args.parties or args.parties < 1:
        raise SystemExit("pooled synth: need at least one row per party")
    for path in write_synthetic(args.rows, args.parties, args.out, args.seed):
        print(path)
    return 0
