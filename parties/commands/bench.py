"""`pooled bench [--suite ...] [--parties 2,3,5] [--wan RTT] [--peers] [--out DIR]`: the benchmark command.

The benchmarks live beside the packages in a source checkout (`benchmarks/`, not part of
the installed engine), so this runs `python -m benchmarks` there with the same arguments;
`python -m benchmarks --help` lists them. From an installed wheel without the checkout it
says where to get one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run the benchmarks (python -m benchmarks; source checkout)",
                       description=__doc__, add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for python -m benchmarks (--help lists them)")
    p.set_defaults(run=run)


def checkout_root() -> Path | None:
    """The source checkout this package runs from, if it has the benchmarks."""
    import parties

    root = Path(parties.__file__).resolve().parent.parent
    return root if (root / "benchmarks" / "__main__.py").is_file() else None


def run(args: argparse.Namespace) -> int:
    root = checkout_root()
    if root is None:
        print("pooled bench: the benchmarks are in the source checkout (benchmarks/); clone the repository, "
              "pip install -e '.[bench]' there and run pooled bench (or python -m benchmarks)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    return subprocess.call([sys.executable, "-m", "benchmarks", *args.args], cwd=root, env=env)
