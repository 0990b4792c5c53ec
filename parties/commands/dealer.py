"""`pooled dealer`: run the dealer service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("dealer", help="run the dealer (correlated randomness, address registry)", description=__doc__)
    p.add_argument("--certs", required=True, type=Path, help="directory holding ca.pem, dealer.pem and dealer.key")
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on (port 0: pick a free one)")
    p.add_argument("--port-file", type=Path, help="write the bound host:port here once serving")
    p.add_argument("--ttl", type=float, default=900.0, help="seconds an idle session is kept (default 900)")
    p.add_argument("--exit-with-parent", action="store_true", help="stop when the launching process dies")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.certs import CertFiles, Identity
    from parties.dealer_service import serve_dealer
    from parties.process import report_ready, wait_for_shutdown, watch_parent
    from parties.tls import TlsMaterial
    from protocols.material import KINDS

    tls = TlsMaterial.load(CertFiles.in_dir(args.certs, Identity.dealer()))
    server, port, _ = serve_dealer(tls, args.listen, KINDS, ttl_s=args.ttl)
    if args.exit_with_parent:
        watch_parent()
    report_ready(tls.identity.uri, f"{args.listen.rsplit(':', 1)[0]}:{port}", args.port_file)
    wait_for_shutdown()
    server.stop(1.0).wait(2.0)
    return 0
