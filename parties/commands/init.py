"""`pooled init`: write a complete consortium directory — CA, certificates, every member's TOML.

    pooled init --parties hospital-a,hospital-b,hospital-c --analysts alice,bob --out consortium

runs as it is on one machine (everything on 127.0.0.1, the dealer on --base-port and party
i on --base-port + 1 + i), and is what an operator edits (addresses, policies, data paths)
to spread the consortium over hosts (docs/deployment.md). With `--synthetic-rows N` each
site's data path gets a synthetic table (clearly synthetic: never real patient data) so the
consortium can be tried at once; without it the data directories are left empty.
`--disclosure dp` (with `--epsilon-per-day`, `--epsilon-total`, `--bound COL=MIN:MAX`)
writes every site's policy for differential privacy (`parties.commands.privacy_flags`).

The CA's private key goes to OUT/ca-private/ca.key (directory mode 0700), apart from the
members' material in OUT/certs that every configuration file points into: no node,
dealer or analyst needs it, and it should be moved offline (`pooled certs --ca-key`
uses it to add members). Every private key is written mode 0600.

It never overwrites: if the directory already holds a CA or any file it would write, it
stops and names it (a second `init` must not replace a consortium's CA or a site's
edited policy).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from parties.commands.privacy_flags import add_site_flags, policy_table

CA_PRIVATE_DIR = "ca-private"
"""Where `pooled init` puts the CA key, relative to its output directory."""


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give comma-separated names, e.g. a,b,c")
    return names


def _host(text: str) -> tuple[str, str]:
    name, sep, host = text.partition("=")
    bracketed = host.startswith("[") and host.endswith("]")
    if not sep or not name or not host or (":" in host and not bracketed):
        raise argparse.ArgumentTypeError(f"expected MEMBER=HOST (no port), got {text!r}")
    return name, host


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="write a consortium directory (CA, certificates, TOML files)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parties", type=_names, required=True, help="comma-separated party names, in rank order")
    p.add_argument("--analysts", type=_names, required=True, help="comma-separated analyst names")
    p.add_argument("--out", type=Path, required=True, help="the consortium directory to create")
    p.add_argument("--base-port", type=int, default=50050, help="the dealer's port; party i gets BASE+1+i")
    p.add_argument("--host", type=_host, action="append", default=[],
                   help="MEMBER=HOST: the host others dial for a party or 'dealer' (default 127.0.0.1)")
    p.add_argument("--listen-host", help="the host every member binds to (default: its own host; 0.0.0.0 for all)")
    p.add_argument("--synthetic-rows", type=int, default=0,
                   help="write a synthetic table of about N rows in all to each site's data path")
    add_site_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.certs import CA_CERT, CA_KEY, create_consortium
    from parties.commands.init_files import DEALER_FILE, analyst_file, node_file, write_consortium_configs
    from parties.policy import PolicyError, SitePolicy

    out: Path = args.out
    if not 1 <= args.base_port <= 65535 - len(args.parties) - 1:
        raise SystemExit(f"pooled init: --base-port must leave room for {len(args.parties) + 1} ports")
    if args.synthetic_rows < 0:
        raise SystemExit("pooled init: --synthetic-rows must be 0 or more")
    hosts = dict(args.host)
    unknown = sorted(set(hosts) - set(args.parties) - {"dealer"})
    if unknown:
        raise SystemExit(f"pooled init: --host names {unknown[0]!r}, which is neither a party nor 'dealer'")
    ca_key = out / CA_PRIVATE_DIR / CA_KEY
    would_write = [ca_key, out / "certs" / CA_CERT, out / "certs" / CA_KEY, out / DEALER_FILE]
    would_write += [out / node_file(p) for p in args.parties] + [out / analyst_file(a) for a in args.analysts]
    existing = [p for p in would_write if p.exists()]
    if existing:
        raise SystemExit(f"pooled init: {existing[0]} exists; not overwriting a consortium (choose another --out)")
    every_role = {a: ["counts", "statistics", "regression"] for a in args.analysts}
    try:
        policy = SitePolicy.from_table({**SitePolicy().to_table(), "analysts": every_role, **policy_table(args)},
                                       "pooled init")
    except PolicyError as exc:
        raise SystemExit(f"pooled init: {exc}") from None
    try:
        certs = create_consortium(out / "certs", args.parties, dealer=True, analysts=args.analysts, ca_key=ca_key)
        written = write_consortium_configs(out, args.parties, args.analysts, certs, hosts=hosts or None,
                                           listen_host=args.listen_host, base_port=args.base_port, policy=policy)
    except ValueError as exc:
        raise SystemExit(f"pooled init: {exc}") from None
    if args.synthetic_rows:
        _synthetic_tables(out, args.parties, args.synthetic_rows)
    for key, path in written.items():
        print(f"{key}\t{path}")
    print(f"ca-key\t{ca_key}\t(no member needs it: keep it offline)")
    print(f"\nStart: pooled dealer --config {out / DEALER_FILE}")
    for party in args.parties:
        print(f"       pooled node --config {out / node_file(party)}")
    print(f"Ask:   pooled query --config {out / analyst_file(args.analysts[0])} \"SELECT COUNT(*)\"")
    if not args.synthetic_rows:
        print(f"Put each site's table at {out}/data/<party>/table.csv first (or re-run with --synthetic-rows N).")
    return 0


def _synthetic_tables(out: Path, parties: list[str], rows: int) -> None:
    """Synthetic cohort tables at each site's default data path (queries.synth; no real data)."""
    from queries.synth import cohort, split

    for party, part in zip(parties, split(cohort(rows, seed=0), len(parties), 0)):
        path = out / "data" / party / "table.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)
