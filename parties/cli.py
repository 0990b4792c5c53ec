"""The `pooled` command line: one subcommand per module under `parties/commands/`.

`main()` only builds the argument parser; each command module imports what it needs
(gRPC, numpy) inside its `run` function, so `pooled --help` stays fast. To add a
command, write `parties/commands/<name>.py` with `register(subparsers)` and add its
module name to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: tuple[str, ...] = (
    "parties.commands.init",
    "parties.commands.certs",
    "parties.commands.dealer",
    "parties.commands.node",
    "parties.commands.query",
    "parties.commands.demo",
    "parties.commands.demo_core",
    "parties.commands.local",
    "parties.commands.synth",
    "parties.commands.audit",
    "parties.commands.bench",
)
"""Command modules in the order `pooled --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pooled", description="Pooled: secure multi-party analytics for consortia.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


PASS_THROUGH = frozenset({"bench"})
"""Commands that hand their arguments on to another program, unparsed."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASS_THROUGH:
        command = importlib.import_module(f"parties.commands.{argv[0]}")
        return int(command.run(argparse.Namespace(command=argv[0], args=argv[1:])) or 0)
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
