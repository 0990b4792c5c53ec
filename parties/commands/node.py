"""`pooled node`: run a party node until SIGTERM/SIGINT.

Either from its configuration file (`--config node-NAME.toml`, written by `pooled init`:
identity, certificates, listen address, the dealer, every party in rank order, the data,
this site's policy and audit log) or from flags (`--certs --name --dealer ...`, as the
local consortium and the tests start nodes). With `--config`, the node refuses any job
whose roster is not its configured consortium, and its audit log is verified at start
(a broken chain stops the node: fail closed).

A node runs analysts' queries (`query`, EXPLAIN included) and nothing else. The demo and
benchmark jobs (`product`, `secure_sum`, `repeat_mul`, `bench_*`: `parties.jobs.core_jobs`,
`parties.bench_jobs`) are registered only with `--bench-jobs`, a flag for test and
benchmark consortia started from flags; no configuration file can set it, and
`--config` with `--bench-jobs` is refused. Every job, whichever, passes the site's gate
(`parties.gate`: policy, daily count, size limit, audit).

It stops at once, with one line, when its private key is open to group or others
(`chmod 600 KEY`), when the key is not its certificate's, or when the dealer cannot be
reached. Its key also signs the head of its audit log with every query (`parties.audit_heads`).

A launcher that starts the dealer and the nodes together passes the dealer's port file
(`--dealer-port-file`): the node loads its code and keys meanwhile, then waits up to a
minute for the dealer to write the file before dialing it.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from parties.commands.privacy_flags import add_site_flags, policy_table

DEALER_WAIT_S = 60.0
"""How long a node started with --dealer-port-file waits for the dealer to write it."""


def _peer(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or ":" not in address:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT, got {text!r}")
    return name, address


def register(sub: Any) -> None:
    p = sub.add_parser("node", help="run a party node", description=__doc__)
    p.add_argument("--config", type=Path, help="this node's TOML file (pooled init writes one per party)")
    p.add_argument("--certs", type=Path, help="directory holding ca.pem and this party's key and cert")
    p.add_argument("--name", help="this party's name (its certificate is party-NAME.pem)")
    p.add_argument("--dealer", help="the dealer's host:port")
    p.add_argument("--dealer-port-file", type=Path,
                   help="the dealer's --port-file: wait until it is written before dialing the dealer, and dial "
                        "the address in it unless --dealer or --config names one (a launcher starting the dealer "
                        "and the nodes together)")
    p.add_argument("--listen", help="host:port to serve on (port 0: pick a free one; default 127.0.0.1:0)")
    p.add_argument("--advertise-host", help="host peers should dial (default: the listen host)")
    p.add_argument("--data-port", type=int, default=0,
                   help="port for the other parties' data sockets, on the listen host (default: any free port; "
                        "peers learn it over gRPC)")
    p.add_argument("--advertise-data-port", type=int,
                   help="data port peers should dial, if not --data-port's (a port forward or a relay)")
    p.add_argument(
        "--peer", type=_peer, action="append", default=[], help="NAME=HOST:PORT of a peer (else asked of the dealer)"
    )
    p.add_argument("--port-file", type=Path, help="write the bound host:port here once serving")
    p.add_argument("--data-dir", type=Path, help="where this party's data lives")
    p.add_argument("--data", help="this party's table for queries: a CSV or Parquet file, or "
                                  "postgresql://USER@HOST:PORT/DB?table=NAME (password from PGPASSWORD or ~/.pgpass)")
    p.add_argument("--min-cell", type=int, default=5, help="this site's minimum cell size (without --policy)")
    p.add_argument("--max-param-fraction", type=float, default=0.33, help="max model parameters per complete case")
    p.add_argument("--allow-extremes", action="store_true",
                   help="release MIN, MAX and QUANTILE at 0 or 1 (one patient's value; refused by default)")
    p.add_argument("--no-release-zero", action="store_true", help="suppress counts of 0 like counts of 1..k-1")
    p.add_argument("--policy", type=Path, help="this site's policy file (TOML)")
    add_site_flags(p)
    p.add_argument("--audit", type=Path, help="this site's hash-chained audit log (JSON lines)")
    p.add_argument("--recv-timeout", type=float, default=30.0, help="longest wait for one peer message, seconds")
    p.add_argument("--liveness", type=float, default=4.0, help="declare a silent peer dead after this many seconds")
    p.add_argument("--exit-with-parent", action="store_true", help="stop when the launching process dies")
    p.add_argument("--bench-jobs", action="store_true",
                   help="also run the demo and benchmark jobs (product, secure_sum, repeat_mul, bench_*): "
                        "test and benchmark consortia only; refused with --config")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parties.audit import AuditError

    if args.config is not None:
        if args.bench_jobs:
            raise SystemExit("pooled node: --bench-jobs is refused with --config: a node started from its "
                             "configuration runs queries only (start test and benchmark nodes from flags)")
        flags = [f"--{k}" for k in ("certs", "name", "dealer", "data", "policy", "audit") if getattr(args, k)]
        if flags:
            raise SystemExit(f"pooled node: --config says everything {', '.join(flags)} would; give one or the other")
    else:
        missing = [f"--{k}" for k in ("certs", "name") if not getattr(args, k)]
        if not (args.dealer or args.dealer_port_file):
            missing.append("--dealer")
        if missing:
            raise SystemExit(f"pooled node: give --config FILE, or {', '.join(missing)}")
    try:
        setup = _from_config(args) if args.config is not None else _from_flags(args)
    except (ValueError, AuditError) as exc:  # ConfigError, KeyFileError, HeadError, PolicyError: one line each
        raise SystemExit(f"pooled node: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"pooled node: cannot read {exc.filename}: {exc.strerror}") from None
    return _serve(*setup)


def _signer(files: Any) -> Any:
    """This node's key, checked (no access for group or others; its certificate's), to sign its audit head."""
    from parties.audit_heads import HeadSigner
    from parties.certs import check_key_pair, check_private_key

    check_private_key(files.key)
    cert, key, ca = files.read()
    check_key_pair(cert, key, files.cert, files.key)
    return HeadSigner.from_pem(key, cert, ca)


def _from_flags(args: argparse.Namespace) -> tuple[Any, Any, Any, argparse.Namespace, Any]:
    """NodeConfig, policy and audit log from the command line (the local consortium and tests)."""
    from parties.audit import AuditLog
    from parties.certs import CertFiles, Identity
    from parties.grpc_transport import LinkSettings
    from parties.node import NodeConfig
    from parties.policy import SitePolicy
    from queries.sources import Datasets, open_source

    datasets = Datasets.of(open_source(args.data)) if args.data else None
    url = bool(args.data) and "://" in args.data
    config = NodeConfig(
        certs=CertFiles.in_dir(args.certs, Identity.party(args.name)),
        dealer=args.dealer or "",  # "": read from --dealer-port-file once the dealer has written it
        listen=args.listen or "127.0.0.1:0",
        advertise_host=args.advertise_host,
        data_port=args.data_port,
        advertise_data_port=args.advertise_data_port,
        peers=dict(args.peer),
        data_dir=args.data_dir,
        data_file=Path(args.data) if args.data and not url else None,
        links=LinkSettings(recv_timeout_s=args.recv_timeout, liveness_s=args.liveness),
    )
    signer = _signer(config.certs)
    policy = (
        SitePolicy.load(args.policy)
        if args.policy
        else SitePolicy.from_table({
            **SitePolicy(min_cell=args.min_cell, max_param_fraction=args.max_param_fraction,
                         allow_extremes=args.allow_extremes, release_zero=not args.no_release_zero).to_table(),
            **policy_table(args)}, "flags")
    )
    audit = AuditLog.open(args.audit, args.name, signer=signer) if args.audit else None
    return config, policy, audit, args, datasets


def _from_config(args: argparse.Namespace) -> tuple[Any, Any, Any, argparse.Namespace, Any]:
    """NodeConfig, policy and audit log from the node's TOML file (flags may override the listen address)."""
    from parties.audit import AuditError, AuditLog
    from parties.config import ConfigError, load_node
    from parties.datasets_config import datasets_of
    from parties.grpc_transport import LinkSettings
    from parties.node import NodeConfig

    s = load_node(args.config)
    config = NodeConfig(
        certs=s.tls.cert_files,
        dealer=s.dealer,
        listen=args.listen or s.listen,
        advertise_host=args.advertise_host,
        data_port=args.data_port,
        advertise_data_port=args.advertise_data_port,
        peers=s.others,
        data_file=s.data.path if s.data is not None else None,
        links=LinkSettings(recv_timeout_s=args.recv_timeout, liveness_s=args.liveness),
        roster=s.roster,
    )
    signer = _signer(config.certs)
    try:
        audit = AuditLog.open(s.audit, s.name, signer=signer)
    except AuditError as exc:
        raise ConfigError(f"{s.source}: audit.path: {exc}") from exc
    return config, s.policy, audit, args, datasets_of(s.datasets, s.data)


def _serve(config: Any, policy: Any, audit: Any, args: argparse.Namespace, datasets: Any = None) -> int:
    from parties.certs import Identity
    from parties.dealer_client import DealerError
    from parties.gate import JobGate
    from parties.node import Node
    from parties.policy import QueryCounter
    from parties.process import exit_now, read_port_file, report_ready, wait_for_shutdown, watch_parent
    from parties.query_job import query_job

    if args.exit_with_parent:
        watch_parent()
    if args.dealer_port_file is not None:
        try:
            address = read_port_file(args.dealer_port_file, DEALER_WAIT_S)
        except TimeoutError as exc:
            raise SystemExit(f"pooled node: no dealer: {exc}") from None
        config = replace(config, dealer=config.dealer or address)
    counter = QueryCounter.from_audit(audit.path) if audit is not None else QueryCounter()
    query = query_job(policy, audit, counter=counter, datasets=datasets)
    try:
        node = Node(config, registry(query, bench=args.bench_jobs), JobGate(policy, audit, counter))
        address = node.start()
    except ValueError as exc:
        raise SystemExit(f"pooled node: {exc}") from None
    except DealerError as exc:
        why = " ".join(str(exc).split())
        raise SystemExit(f"pooled node: cannot reach the dealer at {config.dealer}: {why}") from None
    report_ready(Identity.party(node.name).uri, address, args.port_file)
    wait_for_shutdown()
    node.stop()
    exit_now(0)


def registry(query: Any, bench: bool = False) -> Any:
    """The jobs a node runs: the query job, plus the demo and benchmark jobs only if `bench`."""
    from parties.bench_jobs import bench_op_job
    from parties.jobs import core_jobs, with_jobs

    return with_jobs(core_jobs(), query, bench_op_job()) if bench else with_jobs({}, query)
