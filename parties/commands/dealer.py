"""`pooled dealer`: run the dealer service until SIGTERM/SIGINT.

From its configuration file (`--config dealer.toml`, written by `pooled init`) or from
flags (`--certs DIR [--listen] [--ttl]`). Only party nodes may call the dealer. It stops at
once, with one line, when its private key is open to group or others (`chmod 600 KEY`) or
is not its certificate's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("dealer", help="run the dealer (correlated randomness, address registry)", description=__doc__)
    p.add_argument("--config", type=Path, help="the dealer's TOML file (pooled init writes dealer.toml)")
    p.add_argument("--certs", type=Path, help="directory holding ca.pem, dealer.pem and dealer.key")
    p.add_argument("--listen", help="host:port to serve on (port 0: pick a free one; default 127.0.0.1:0)")
    p.add_argument("--port-file", type=Path, help="write the bound host:port here once serving")
    p.add_argument("--ttl", type=float, help="seconds an idle session is kept (default 900)")
    p.add_argument("--exit-with-parent", action="store_true", help="stop when the launching process dies")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.certs import CertFiles, Identity, check_private_key
    from parties.config import ConfigError, load_dealer
    from parties.dealer_service import serve_dealer
    from parties.process import exit_now, report_ready, wait_for_shutdown, watch_parent
    from parties.tls import TlsMaterial
    from protocols.material import KINDS

    if args.config is not None:
        if args.certs is not None:
            raise SystemExit("pooled dealer: --config names the certificates; give --config or --certs, not both")
        try:
            settings = load_dealer(args.config)
        except ConfigError as exc:
            raise SystemExit(f"pooled dealer: {exc}") from None
        files, listen, ttl = settings.tls.cert_files, settings.listen, settings.session_ttl_s
    elif args.certs is not None:
        files, listen, ttl = CertFiles.in_dir(args.certs, Identity.dealer()), "127.0.0.1:0", 900.0
    else:
        raise SystemExit("pooled dealer: give --config FILE or --certs DIR")
    listen = args.listen or listen
    try:
        check_private_key(files.key)
        tls = TlsMaterial.load(files)
    except ValueError as exc:  # KeyFileError, or a certificate without a Pooled identity
        raise SystemExit(f"pooled dealer: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"pooled dealer: cannot read {exc.filename}: {exc.strerror}") from None
    server, port, _ = serve_dealer(tls, listen, KINDS, ttl_s=args.ttl or ttl)
    if args.exit_with_parent:
        watch_parent()
    report_ready(tls.identity.uri, f"{listen.rsplit(':', 1)[0]}:{port}", args.port_file)
    wait_for_shutdown()
    server.stop(1.0).wait(2.0)
    exit_now(0)
