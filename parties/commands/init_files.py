"""The files `pooled init` writes: one TOML per node, the dealer's and each analyst's.

`write_consortium_configs` writes them into a consortium directory from the certificate
files `parties.certs.create_consortium` returns, each with a comment header that says how
to start that member and what to edit; `parties.config` reads them back (and documents
every key). File names: `node-<party>.toml`, `dealer.toml`, `analyst-<name>.toml`. On one
machine the dealer listens on BASE_PORT (50050) and party i (rank order, from 0) on
BASE_PORT + 1 + i, i.e. 50051 + i; an operator edits the addresses to spread the
consortium over hosts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from parties.certs import CertFiles, Identity
from parties.policy import SitePolicy

BASE_PORT = 50050
"""The dealer's port on one machine; party i listens on BASE_PORT + 1 + i."""
DEALER_FILE = "dealer.toml"


def node_file(party: str) -> str:
    return f"node-{party}.toml"


def analyst_file(analyst: str) -> str:
    return f"analyst-{analyst}.toml"


_HEADER = {
    "node": """# A Pooled party node: `pooled node --config {file}`.
# Relative paths are relative to this file's directory.
# [peers] lists EVERY party in RANK ORDER, this one included; the order must be the same in
# every node's file and every analyst's [parties]. Edit the addresses to spread the
# consortium over hosts (this node's own entry is the address its peers dial; [node] listen
# is where it binds, e.g. 0.0.0.0:PORT). Restrict [policy.analysts] to what each analyst needs.
""",
    "dealer": """# The Pooled dealer (correlated randomness; never sees data): `pooled dealer --config {file}`.
# Relative paths are relative to this file's directory. Party nodes connect to it; analysts never do.
""",
    "analyst": """# A Pooled analyst: `pooled query --config {file} "SELECT COUNT(*)"`.
# Relative paths are relative to this file's directory. [parties] is in rank order, the same
# as every node's [peers]. The analyst never talks to the dealer.
""",
}


def _rel(path: Path, base: Path) -> str:
    """`path` relative to `base` when it lies inside it, else absolute."""
    path, base = path.resolve(), base.resolve()
    return os.path.relpath(path, base) if path.is_relative_to(base) else str(path)


def _tls_table(files: CertFiles, base: Path) -> dict[str, str]:
    return {"ca": _rel(files.ca, base), "cert": _rel(files.cert, base), "key": _rel(files.key, base)}


def compose_hosts(parties: Sequence[str]) -> dict[str, str]:
    """Hosts for deploy/compose.yaml, where each member's service is named after it."""
    return {**{p: p for p in parties}, "dealer": "dealer"}


def write_consortium_configs(
    out_dir: str | Path,
    parties: Sequence[str],
    analysts: Sequence[str],
    certs: Mapping[Identity, CertFiles],
    *,
    hosts: Mapping[str, str] | None = None,
    listen_host: str | None = None,
    base_port: int = BASE_PORT,
    policy: SitePolicy | None = None,
    data: Mapping[str, str | Path] | None = None,
) -> dict[str, Path]:
    """Write one TOML per node, the dealer's and each analyst's into `out_dir`; return them by name.

    `certs` is what `parties.certs.create_consortium` returned (it must hold every member).
    `hosts` maps a party name, or "dealer", to the host others dial (default 127.0.0.1);
    members bind to `listen_host` (default: their own host). Ports: dealer `base_port`,
    party i `base_port + 1 + i`. `policy` (default: every named analyst has every role)
    and the data paths (default `data/<party>/table.csv`; its directory is created, empty)
    are the same kind for every node.
    Returns {"node-<party>" | "dealer" | "analyst-<name>": path}.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if len(parties) < 2:
        raise ValueError("a consortium needs at least two parties")
    for name in list(parties) + list(analysts):
        Identity.party(name)  # the same naming rule for every member; raises ValueError
    if len(set(parties)) != len(parties) or len(set(analysts)) != len(analysts):
        raise ValueError("party names and analyst names must each be unique")

    def host(member: str) -> str:
        return (hosts or {}).get(member, "127.0.0.1")

    def cert(identity: Identity) -> CertFiles:
        if identity not in certs:
            raise ValueError(f"no certificate given for {identity.uri}")
        return certs[identity]

    dealer_address = f"{host('dealer')}:{base_port}"
    peers = {p: f"{host(p)}:{base_port + 1 + i}" for i, p in enumerate(parties)}
    rules = policy or SitePolicy(analysts={a: frozenset({"counts", "statistics", "regression"}) for a in analysts})
    written: dict[str, Path] = {}

    def write(key: str, kind: str, filename: str, doc: dict[str, Any]) -> None:
        path = out / filename
        path.write_text(_HEADER[kind].format(file=filename) + "\n" + tomli_w.dumps(doc), encoding="utf-8")
        written[key] = path

    for i, p in enumerate(parties):
        data_path = Path((data or {}).get(p, f"data/{p}/table.csv"))
        if p not in (data or {}):
            (out / data_path).parent.mkdir(parents=True, exist_ok=True)  # where the operator puts the table
        doc = {
            "node": {"name": p, "listen": f"{listen_host or host(p)}:{base_port + 1 + i}", "dealer": dealer_address},
            "tls": _tls_table(cert(Identity.party(p)), out),
            "peers": peers,
            "data": {"path": _rel(out / data_path, out)},
            "policy": rules.to_table(),
            "audit": {"path": f"audit/{p}.audit.jsonl"},
        }
        write(f"node-{p}", "node", node_file(p), doc)
    write("dealer", "dealer", DEALER_FILE, {
        "dealer": {"listen": f"{listen_host or host('dealer')}:{base_port}", "session_ttl_s": 900.0},
        "tls": _tls_table(cert(Identity.dealer()), out),
    })
    for a in analysts:
        write(f"analyst-{a}", "analyst", analyst_file(a), {
            "analyst": {"name": a},
            "tls": _tls_table(cert(Identity.analyst(a)), out),
            "parties": peers,
        })
    return written
