"""`python -m benchmarks.peers --peer crypten|mpyc --op OP [--parties 3] [--size N] [--repeats R]`.

Runs one peer measurement (see `benchmarks.peers.run_peer`) and prints its row as one JSON
line; `--out FILE` also appends it to FILE.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.peers import ALIASES, PEERS, run_peer
from benchmarks.peers._procs import print_row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True, choices=PEERS)
    parser.add_argument(
        "--op", required=True, help="mul, lt, sigmoid, reciprocal, sum, logreg (aliases: " + ", ".join(ALIASES) + ")"
    )
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--size", type=int, help="elements (logreg: features, 10 or 30); default: the peer's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--provider", choices=["TTP", "TFP"], help="CrypTen only (default TTP)")
    parser.add_argument("--timeout", type=float, help="seconds before the peer's processes are killed")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    options: dict[str, object] = {}
    if args.provider:
        if args.peer != "crypten":
            parser.error("--provider applies to crypten only")
        options["provider"] = args.provider
    if args.timeout:
        options["timeout"] = args.timeout
    print_row(run_peer(args.peer, args.op, args.parties, args.size, args.repeats, **options), args.out)


if __name__ == "__main__":
    main()
