"""`pooled certs`: create a consortium CA and certificates for its members.

The CA is `OUT/ca.pem` with its key at `--ca-key` (default `OUT/ca.key`); an existing CA
is reused, so members can be added later. A consortium from `pooled init` keeps its CA key
in `ca-private/`: `pooled certs --out consortium/certs --ca-key consortium/ca-private/ca.key
--analysts carol`.
"""

from __future__ import annotations

import argparse
from typing import Any


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def register(sub: Any) -> None:
    p = sub.add_parser("certs", help="create a consortium CA and member certificates", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="directory for ca.pem and the members' keys and certificates")
    p.add_argument("--parties", type=_names, default=[], help="comma-separated party names, e.g. a,b,c")
    p.add_argument("--dealer", action="store_true", help="also issue the dealer's certificate")
    p.add_argument("--analysts", type=_names, default=[], help="comma-separated analyst names")
    p.add_argument("--ca-key", help="the CA's private key (default OUT/ca.key; pooled init: OUT/../ca-private/ca.key)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.certs import create_consortium

    if not (args.parties or args.dealer or args.analysts):
        raise SystemExit("pooled certs: name at least one member (--parties, --dealer, --analysts)")
    try:
        written = create_consortium(args.out, args.parties, dealer=args.dealer, analysts=args.analysts,
                                    ca_key=args.ca_key)
    except ValueError as exc:
        raise SystemExit(f"pooled certs: {exc}") from None
    for identity, files in written.items():
        print(f"{identity.uri}\t{files.cert}\t{files.key}")
    return 0
