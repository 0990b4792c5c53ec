"""The differential privacy flags a site's policy takes on the command line (`pooled init`, `node`, `local`).

    --disclosure dp              the site's mode ("threshold" by default)
    --epsilon-per-day E          each analyst's privacy budget per UTC day at the site
    --epsilon-total E            each analyst's privacy budget over all time at the site
    --bound COL=MIN:MAX          the range the site declares for a numeric column (repeat per column)

`policy_table` turns them into `[policy]` keys (`parties.policy.SitePolicy.from_table` checks them).
"""

from __future__ import annotations

import argparse
from typing import Any


def bound(text: str) -> tuple[str, list[float]]:
    """COL=MIN:MAX as (column, [min, max])."""
    name, sep, pair = text.partition("=")
    lo, colon, hi = pair.partition(":")
    try:
        if not (sep and colon and name):
            raise ValueError
        return name, [float(lo), float(hi)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLUMN=MIN:MAX, got {text!r}") from None


def add_site_flags(p: argparse.ArgumentParser) -> None:
    """The site's DP flags (module docstring)."""
    p.add_argument("--disclosure", choices=("threshold", "dp"), default="threshold",
                   help="threshold (minimum cell size) or dp (differential privacy, noise drawn inside MPC)")
    p.add_argument("--epsilon-per-day", type=float, help="each analyst's privacy budget per UTC day at a site")
    p.add_argument("--epsilon-total", type=float, help="each analyst's privacy budget over all time at a site")
    p.add_argument("--bound", type=bound, action="append", default=[], metavar="COL=MIN:MAX",
                   help="declared range of a numeric column, clamped to under dp (repeat per column)")


def policy_table(args: argparse.Namespace) -> dict[str, Any]:
    """The `[policy]` keys the flags set (absent flags left out)."""
    table: dict[str, Any] = {"disclosure": args.disclosure}
    for key in ("epsilon_per_day", "epsilon_total"):
        if getattr(args, key) is not None:
            table[key] = getattr(args, key)
    if args.bound:
        table["bounds"] = dict(args.bound)
    return table


def site_args(args: argparse.Namespace) -> list[str]:
    """The flags again, as `pooled node` arguments (for the nodes `pooled local` starts)."""
    out = ["--disclosure", args.disclosure]
    for key in ("epsilon_per_day", "epsilon_total"):
        if getattr(args, key) is not None:
            out += [f"--{key.replace('_', '-')}", repr(getattr(args, key))]
    for name, (lo, hi) in args.bound:
        out += ["--bound", f"{name}={lo!r}:{hi!r}"]
    return out
