"""Configuration files of a deployed consortium: one TOML per node, the dealer's, each analyst's.

Loading (`load_node`, `load_dealer`, `load_analyst`) returns frozen dataclasses, or raises
`ConfigError` naming the file and the key that is missing or malformed. Relative paths
are resolved against the directory of the TOML file, so a consortium directory can be
moved or mounted elsewhere (e.g. /srv/pooled in a container) as a whole. Unknown keys
are errors too (a misspelt key must not silently fall back to a default).

A node's file (`node-<party>.toml`):

    [node]
    name = "hospital-a"                    # its certificate says pooled://party/hospital-a
    listen = "0.0.0.0:50051"               # where it serves
    dealer = "dealer.example.org:50050"    # the dealer's address
    [tls]
    ca = "certs/ca.pem"
    cert = "certs/party-hospital-a.pem"
    key = "certs/party-hospital-a.key"
    [peers]                                # EVERY party, this one included, IN RANK ORDER
    hospital-a = "a.example.org:50051"
    hospital-b = "b.example.org:50052"
    hospital-c = "c.example.org:50053"
    [data]
    path = "data/hospital-a/table.csv"     # CSV or Parquet: the dataset "table", read without FROM
    [data.schema]                          # optional: declared kinds (int, float, category)
    sex = "category"
    [data.domains]                         # optional: declared category values
    sex = ["F", "M"]                       # and numeric ranges (clamped to under dp: queries/dp.py)
    bmi = { min = 10, max = 80 }
    [policy]                               # this site's rules (see parties/policy.py)
    min_cell = 5
    [policy.analysts]
    alice = ["counts", "statistics", "regression"]
    [audit]
    path = "audit/hospital-a.audit.jsonl"

A node may also declare `[database]` and `[datasets]` (tables, views or queries of a
PostgreSQL database, files, a site's own SQL: `parties.datasets_config`), which a query's
FROM names; `[data]` is then optional.

The order of `[peers]` defines the parties' ranks (rank 0 first; the last rank receives
the dealer's corrections) and must be identical in every node's file and in every
analyst's `[parties]`; a node's own entry is the address its peers dial. The dealer's
file has `[dealer] listen, session_ttl_s` and `[tls]`; an analyst's has `[analyst] name`,
`[tls]` and `[parties]` (no dealer: the analyst never talks to it).

This module only reads and checks; `pooled init` writes a consortium's files
(`parties.commands.init_files`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from parties.certs import CertFiles, Identity, identity_of
from parties.datasets_config import DatasetSettings, read_datasets
from parties.policy import PolicyError, SitePolicy

DATA_KINDS = ("int", "float", "category")  # as queries.table.KINDS
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or malformed; names the file and the key."""


@dataclass(frozen=True)
class TlsFiles:
    """This member's certificate, private key and the consortium CA certificate."""

    ca: Path
    cert: Path
    key: Path

    @property
    def cert_files(self) -> CertFiles:
        return CertFiles(self.cert, self.key, self.ca)


@dataclass(frozen=True)
class DataSettings:
    """Where a party's table lives, and optionally what it declares about its columns."""

    path: Path
    schema: Mapping[str, str] | None = None
    """Column -> kind (int, float, category), in file order; None: read from the data."""
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    """Category column -> its declared values."""
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    """Numeric column -> its declared (min, max) (`{ min = .., max = .. }` in [data.domains])."""


@dataclass(frozen=True)
class MemberSettings:
    """What every member's configuration holds: the file it was read from, and the member's TLS files
    (whose certificate names the member, checked when read)."""

    source: Path
    tls: TlsFiles


@dataclass(frozen=True)
class NodeSettings(MemberSettings):
    """A party node's configuration (`node-<party>.toml`)."""

    name: str
    listen: str
    dealer: str
    peers: Mapping[str, str]
    """Every party -> the address its peers dial, in rank order (this node included)."""
    data: DataSettings | None
    """The one-file `[data]` (None when only `[datasets]` are declared)."""
    policy: SitePolicy
    audit: Path
    datasets: tuple[DatasetSettings, ...] = ()
    """The `[datasets]`, each read through `[database]` or its own file (`parties.datasets_config`)."""

    @property
    def roster(self) -> tuple[str, ...]:
        return tuple(self.peers)

    @property
    def rank(self) -> int:
        return self.roster.index(self.name)

    @property
    def advertise(self) -> str:
        """The address the other parties dial for this node."""
        return self.peers[self.name]

    @property
    def others(self) -> dict[str, str]:
        return {p: a for p, a in self.peers.items() if p != self.name}


@dataclass(frozen=True)
class DealerSettings(MemberSettings):
    """The dealer's configuration (`dealer.toml`)."""

    listen: str
    session_ttl_s: float = 900.0


@dataclass(frozen=True)
class AnalystSettings(MemberSettings):
    """An analyst's configuration (`analyst-<name>.toml`)."""

    name: str
    parties: Mapping[str, str]
    """Every party -> its address, in rank order (the same order as the nodes' [peers])."""

    @property
    def roster(self) -> tuple[str, ...]:
        return tuple(self.parties)


# ---------------------------------------------------------------- reading


class _Reader:
    """Typed access to a parsed TOML document; every error names the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        try:
            self.doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such configuration file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def only(self, table: Mapping[str, Any], where: str, allowed: Sequence[str]) -> None:
        unknown = [k for k in table if k not in allowed]
        if unknown:
            name = f"{where}.{unknown[0]}" if where else unknown[0]
            raise self.error(name, f"unknown key (expected one of: {', '.join(allowed)})")

    def table(self, key: str, required: bool = True) -> dict[str, Any]:
        node: Any = self.doc
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            if required:
                raise self.error(key, "missing table")
            return {}
        if not isinstance(node, dict):
            raise self.error(key, f"must be a table, got {type(node).__name__}")
        return node

    def value(self, table: Mapping[str, Any], where: str, key: str, kind: type[T] | tuple[type, ...],
              default: Any = ..., check: Callable[[Any], str | None] | None = None) -> T:
        if key not in table:
            if default is ...:
                raise self.error(f"{where}.{key}", "missing")
            return default  # type: ignore[no-any-return]
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            raise self.error(f"{where}.{key}", f"must be {expected}, got {type(value).__name__} {value!r}")
        problem = check(value) if check is not None else None
        if problem:
            raise self.error(f"{where}.{key}", problem)
        return value  # type: ignore[return-value]

    def path_value(self, table: Mapping[str, Any], where: str, key: str, must_exist: bool) -> Path:
        raw = self.value(table, where, key, str, check=lambda v: None if v.strip() else "must not be empty")
        path = Path(raw).expanduser()
        path = (path if path.is_absolute() else self.base / path).resolve()
        if must_exist and not path.is_file():
            raise self.error(f"{where}.{key}", f"no such file: {path}")
        return path

    def address(self, table: Mapping[str, Any], where: str, key: str) -> str:
        return self.value(table, where, key, str, check=address_problem)

    def tls(self, member: Identity, must_exist: bool) -> TlsFiles:
        """The `[tls]` files; with `must_exist`, they exist and the certificate names `member`."""
        t = self.table("tls")
        self.only(t, "tls", ("ca", "cert", "key"))
        tls = TlsFiles(*(self.path_value(t, "tls", k, must_exist) for k in ("ca", "cert", "key")))
        if must_exist:
            self.identity(tls, member)
        return tls

    def roster(self, key: str) -> dict[str, str]:
        t = self.table(key)
        if len(t) < 2:
            raise self.error(key, f"needs at least two parties, got {len(t)}")
        for name in t:
            problem = name_problem(name)
            if problem:
                raise self.error(f"{key}.{name}", problem)
            self.address(t, key, name)
        addresses = list(t.values())
        if len(set(addresses)) != len(addresses):
            dup = next(a for a in addresses if addresses.count(a) > 1)
            raise self.error(key, f"two parties share the address {dup}")
        return dict(t)

    def identity(self, tls: TlsFiles, expected: Identity) -> None:
        try:
            found = identity_of(tls.cert.read_bytes())
        except (OSError, ValueError) as exc:
            raise self.error("tls.cert", f"not a Pooled certificate: {exc}") from exc
        if found != expected:
            raise self.error("tls.cert", f"the certificate is {found.uri}, but this file configures {expected.uri}")


def address_problem(address: str) -> str | None:
    """None if `address` is HOST:PORT (IPv6 hosts in brackets) with a port in 1..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"must be HOST:PORT with a port from 1 to 65535, got {address!r}"
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        return f"an IPv6 host goes in brackets ([::1]:50051), got {address!r}"
    return None


def name_problem(name: str) -> str | None:
    try:
        Identity.party(name)
    except ValueError as exc:
        return str(exc)
    return None


def load_node(path: str | Path, check_files: bool = True) -> NodeSettings:
    """A party node's configuration. `check_files`: the TLS files and the data file must exist,
    and the certificate must name this party."""
    r = _Reader(Path(path).resolve())
    r.only(r.doc, "", ("node", "tls", "peers", "data", "datasets", "database", "policy", "audit"))
    node = r.table("node")
    r.only(node, "node", ("name", "listen", "dealer"))
    name = r.value(node, "node", "name", str, check=name_problem)
    listen, dealer = r.address(node, "node", "listen"), r.address(node, "node", "dealer")
    tls = r.tls(Identity.party(name), check_files)
    peers = r.roster("peers")
    if name not in peers:
        raise r.error("peers", f"must list this node ({name!r}) too: its position there is its rank")
    datasets = read_datasets(r, check_files, _declared)
    if "data" not in r.doc and not datasets:
        raise r.error("data", "missing table (or declare [datasets])")
    data = _data(r, check_files) if "data" in r.doc else None
    try:
        policy = SitePolicy.from_table(r.table("policy", required=False), f"{r.path}: policy")
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc
    audit = r.table("audit")
    r.only(audit, "audit", ("path",))
    return NodeSettings(r.path, tls, name, listen, dealer, MappingProxyType(peers), data, policy,
                        r.path_value(audit, "audit", "path", must_exist=False), datasets)


def _data(r: _Reader, check_files: bool) -> DataSettings:
    t = r.table("data")
    r.only(t, "data", ("path", "schema", "domains"))
    path = r.path_value(t, "data", "path", check_files)
    if path.suffix.lower() not in (".csv", ".txt", ".parquet", ".pq"):
        raise r.error("data.path", f"must be a .csv or .parquet file, got {path.name!r}")
    schema, domains, bounds = _declared(r, "data")
    return DataSettings(path, schema, domains, bounds)


def _declared(r: _Reader, where: str) -> tuple[
    Mapping[str, str] | None, Mapping[str, tuple[str, ...]], Mapping[str, tuple[float, float]]
]:
    """A dataset's declared `schema`, category `domains` and numeric bounds (a `domains` entry
    `{ min = .., max = .. }`), under `where`: "data" or "datasets.NAME"."""
    schema = None
    if "schema" in r.table(where):
        raw = r.table(f"{where}.schema")
        for col in raw:
            r.value(raw, f"{where}.schema", col, str,
                    check=lambda k: None if k in DATA_KINDS else f"kind must be one of {', '.join(DATA_KINDS)}")
        schema = MappingProxyType(dict(raw))
    domains: dict[str, tuple[str, ...]] = {}
    bounds: dict[str, tuple[float, float]] = {}
    for col, values in r.table(f"{where}.domains", required=False).items():
        if isinstance(values, dict):
            bounds[col] = _bounds(r, f"{where}.domains.{col}", values, schema.get(col) if schema else None)
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
            raise r.error(f"{where}.domains.{col}", "must be a non-empty list of category values (strings)")
        if len(set(values)) != len(values):
            raise r.error(f"{where}.domains.{col}", "lists a value twice")
        if schema is not None and schema.get(col) != "category":
            raise r.error(f"{where}.domains.{col}", "a domain is declared only for a column of kind 'category'")
        domains[col] = tuple(values)
    return schema, MappingProxyType(domains), MappingProxyType(bounds)


def _bounds(r: _Reader, key: str, raw: dict[str, Any], kind: str | None) -> tuple[float, float]:
    """`{ min = .., max = .. }`: a numeric column's declared range, finite, min < max."""
    numbers = [raw.get(k) for k in ("min", "max")]
    ok = set(raw) == {"min", "max"} and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)
    if not ok or numbers[0] >= numbers[1]:  # type: ignore[operator]
        raise r.error(key, "a numeric range is { min = .., max = .. }, two finite numbers with min < max")
    if kind is not None and kind not in ("int", "float"):
        raise r.error(key, "a range is declared only for a numeric column (int or float)")
    return float(numbers[0]), float(numbers[1])  # type: ignore[arg-type]


def load_dealer(path: str | Path, check_files: bool = True) -> DealerSettings:
    r = _Reader(Path(path).resolve())
    r.only(r.doc, "", ("dealer", "tls"))
    dealer = r.table("dealer")
    r.only(dealer, "dealer", ("listen", "session_ttl_s"))
    listen = r.address(dealer, "dealer", "listen")
    ttl: float = r.value(dealer, "dealer", "session_ttl_s", (int, float), default=900.0,
                  check=lambda v: None if v > 0 else "must be positive")
    return DealerSettings(r.path, r.tls(Identity.dealer(), check_files), listen, float(ttl))


def load_analyst(path: str | Path, check_files: bool = True) -> AnalystSettings:
    r = _Reader(Path(path).resolve())
    r.only(r.doc, "", ("analyst", "tls", "parties"))
    analyst = r.table("analyst")
    r.only(analyst, "analyst", ("name",))
    name = r.value(analyst, "analyst", "name", str, check=name_problem)
    return AnalystSettings(r.path, r.tls(Identity.analyst(name), check_files), name,
                           MappingProxyType(r.roster("parties")))
