"""Consortium configuration files: written for `pooled init`, read back, and clear errors."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from parties.certs import CertFiles, Identity, create_consortium
from parties.commands.init_files import (
    BASE_PORT,
    DEALER_FILE,
    analyst_file,
    compose_hosts,
    node_file,
    write_consortium_configs,
)
from parties.config import ConfigError, load_analyst, load_dealer, load_node
from parties.policy import SitePolicy

PARTIES = ["hospital-a", "hospital-b", "hospital-c"]
ANALYSTS = ["alice", "bob"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[Identity, CertFiles]:
    return create_consortium(tmp_path_factory.mktemp("ca") / "certs", PARTIES, dealer=True, analysts=ANALYSTS)


def _consortium(root: Path, certs: dict[Identity, CertFiles], **kwargs: object) -> dict[str, Path]:
    """A consortium directory as `pooled init` makes it: certificates inside, configs, data files."""
    shutil.copytree(next(iter(certs.values())).ca.parent, root / "certs")
    local = {i: CertFiles.in_dir(root / "certs", i) for i in certs}
    written = write_consortium_configs(root, PARTIES, ANALYSTS, local, **kwargs)  # type: ignore[arg-type]
    for p in PARTIES:
        (root / "data" / p).mkdir(parents=True, exist_ok=True)
        (root / "data" / p / "table.csv").write_text("age,sex\n40,F\n")
    return written


def test_written_configs_load_back(tmp_path: Path, certs: dict[Identity, CertFiles]) -> None:
    written = _consortium(tmp_path, certs)
    assert set(written) == {"node-hospital-a", "node-hospital-b", "node-hospital-c", "dealer", "analyst-alice",
                            "analyst-bob"}
    assert {p.name for p in written.values()} == {*map(node_file, PARTIES), DEALER_FILE, *map(analyst_file, ANALYSTS)}
    expected_peers = {p: f"127.0.0.1:{BASE_PORT + 1 + i}" for i, p in enumerate(PARTIES)}
    for i, p in enumerate(PARTIES):
        node = load_node(tmp_path / node_file(p))
        assert (node.name, node.rank, node.roster) == (p, i, tuple(PARTIES))
        assert dict(node.peers) == expected_peers and node.advertise == f"127.0.0.1:{50051 + i}"
        assert node.listen == node.advertise and node.dealer == "127.0.0.1:50050"
        assert node.others == {q: a for q, a in expected_peers.items() if q != p}
        assert node.tls.cert_files == CertFiles.in_dir(tmp_path / "certs", Identity.party(p))
        assert node.data.path == tmp_path / "data" / p / "table.csv" and node.data.schema is None
        assert node.audit == tmp_path / "audit" / f"{p}.audit.jsonl"
        assert node.policy == SitePolicy(analysts={a: frozenset({"counts", "statistics", "regression"})
                                                   for a in ANALYSTS})
    dealer = load_dealer(tmp_path / DEALER_FILE)
    assert dealer.listen == "127.0.0.1:50050" and dealer.session_ttl_s == 900.0
    assert dealer.tls.cert == tmp_path / "certs" / "dealer.pem"
    for a in ANALYSTS:
        analyst = load_analyst(tmp_path / analyst_file(a))
        assert analyst.name == a and dict(analyst.parties) == expected_peers and analyst.roster == tuple(PARTIES)
        doc = tomllib.loads((tmp_path / analyst_file(a)).read_text())
        assert set(doc) == {"analyst", "tls", "parties"} and ":50050" not in str(doc)  # it never dials the dealer


def test_paths_are_relative_to_the_file_so_the_directory_can_move(tmp_path: Path,
                                                                   certs: dict[Identity, CertFiles]) -> None:
    _consortium(tmp_path / "here", certs)
    text = (tmp_path / "here" / node_file("hospital-b")).read_text()
    assert str(tmp_path) not in text  # nothing absolute inside the consortium directory
    shutil.move(tmp_path / "here", tmp_path / "there")
    node = load_node(tmp_path / "there" / node_file("hospital-b"))
    assert node.tls.key == tmp_path / "there" / "certs" / "party-hospital-b.key"
    assert node.data.path.is_relative_to(tmp_path / "there")


def test_compose_hosts_and_listen_host(tmp_path: Path, certs: dict[Identity, CertFiles]) -> None:
    _consortium(tmp_path, certs, hosts=compose_hosts(PARTIES), listen_host="0.0.0.0",
                policy=SitePolicy(min_cell=11, analysts={"alice": frozenset({"counts"})}))
    node = load_node(tmp_path / node_file("hospital-c"))
    assert node.listen == "0.0.0.0:50053" and node.advertise == "hospital-c:50053" and node.dealer == "dealer:50050"
    assert node.policy.min_cell == 11 and dict(node.policy.analysts or {}) == {"alice": frozenset({"counts"})}
    assert load_dealer(tmp_path / DEALER_FILE).listen == "0.0.0.0:50050"
    assert load_analyst(tmp_path / analyst_file("bob")).parties["hospital-a"] == "hospital-a:50051"


def test_every_member_needs_its_certificate(tmp_path: Path, certs: dict[Identity, CertFiles]) -> None:
    partial = {i: f for i, f in certs.items() if i != Identity.analyst("bob")}
    with pytest.raises(ValueError, match="no certificate given for pooled://analyst/bob"):
        write_consortium_configs(tmp_path, PARTIES, ANALYSTS, partial)
    with pytest.raises(ValueError, match="at least two parties"):
        write_consortium_configs(tmp_path, PARTIES[:1], ANALYSTS, certs)
    with pytest.raises(ValueError, match="invalid member name"):
        write_consortium_configs(tmp_path, ["Hospital A", "b"], ANALYSTS, certs)


def test_declared_schema_and_domains(tmp_path: Path, certs: dict[Identity, CertFiles]) -> None:
    _consortium(tmp_path, certs)
    path = tmp_path / node_file("hospital-a")
    path.write_text(path.read_text().replace(
        '[policy]', '[data.schema]\nage = "int"\nsex = "category"\n\n[data.domains]\nsex = ["F", "M"]\n\n[policy]'
    ))
    data = load_node(path).data
    assert dict(data.schema or {}) == {"age": "int", "sex": "category"} and list(data.schema or {}) == ["age", "sex"]
    assert dict(data.domains) == {"sex": ("F", "M")}


def _edit(path: Path, old: str, new: str) -> None:
    """Replace the first occurrence of `old` at the start of a line (not in the header comment)."""
    text, found = re.subn(rf"(?m)^{re.escape(old)}", lambda _: new, path.read_text(), count=1)
    assert found, old
    path.write_text(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "hospital-a"\n', "", "node.name: missing"),
        ('name = "hospital-a"', "name = 7", "node.name: must be str, got int 7"),
        ('name = "hospital-a"', 'name = "Hospital A"', "node.name: invalid member name"),
        ('listen = "127.0.0.1:50051"', 'listen = "127.0.0.1"', "node.listen: must be HOST:PORT"),
        ('dealer = "127.0.0.1:50050"', 'dealer = "127.0.0.1:70000"', "node.dealer: must be HOST:PORT"),
        ('dealer = "127.0.0.1:50050"', 'dealer = "::1:50050"', "node.dealer: an IPv6 host goes in brackets"),
        ("[node]", "[node]\nadress = 'x'", "node.adress: unknown key"),
        ("[audit]", "[audits]", "audits: unknown key"),
        ('hospital-b = "127.0.0.1:50052"', 'hospital-b = "127.0.0.1:50051"', "peers: two parties share the address"),
        ('hospital-a = "127.0.0.1:50051"\n', "", "peers: must list this node ('hospital-a') too"),
        ('hospital-c = "127.0.0.1:50053"', 'hospital-c = 50053', "peers.hospital-c: must be str"),
        ('key = "certs/party-hospital-a.key"', 'key = "certs/nope.key"', "tls.key: no such file"),
        ('cert = "certs/party-hospital-a.pem"', 'cert = "certs/party-hospital-b.pem"',
         "tls.cert: the certificate is pooled://party/hospital-b, but this file configures pooled://party/hospital-a"),
        ('path = "data/hospital-a/table.csv"', 'path = "data/hospital-a/missing.csv"', "data.path: no such file"),
        ('path = "data/hospital-a/table.csv"', 'path = ""', "data.path: must not be empty"),
        ("[data]", '[data.domains]\nsex = []\n\n[data]', "data.domains.sex: must be a non-empty list"),
        ("min_cell = 5", "min_cell = 0", "policy: min_cell must be an integer >= 1"),
        ('path = "audit/hospital-a.audit.jsonl"', "", "audit.path: missing"),
        ("[node]", "[node", "not valid TOML"),
    ],
)
def test_malformed_node_files_name_the_file_and_key(tmp_path: Path, certs: dict[Identity, CertFiles],
                                                     old: str, new: str, message: str) -> None:
    _consortium(tmp_path, certs)
    path = tmp_path / node_file("hospital-a")
    _edit(path, old, new)
    with pytest.raises(ConfigError) as info:
        load_node(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), str(info.value)


def test_a_missing_table_file_or_kind_is_named(tmp_path: Path, certs: dict[Identity, CertFiles]) -> None:
    _consortium(tmp_path, certs)
    full = (tmp_path / node_file("hospital-b")).read_text()
    path = tmp_path / "edited.toml"
    path.write_text(full.split("[tls]")[0])
    with pytest.raises(ConfigError, match=r"edited\.toml: tls: missing table"):
        load_node(path)
    with pytest.raises(ConfigError, match=r"node-nobody\.toml: no such configuration file"):
        load_node(tmp_path / "node-nobody.toml")
    path.write_text(full + '\n[data.schema]\nage = "number"\n')
    with pytest.raises(ConfigError, match=r"edited\.toml: data\.schema\.age: kind must be one of int, float, category"):
        load_node(path, check_files=False)
    path.write_text(full + '\n[data.schema]\nage = "int"\n\n[data.domains]\nage = ["1"]\n')
    with pytest.raises(ConfigError, match=r"data\.domains\.age: a domain is declared only for a column of kind"):
        load_node(path, check_files=False)


def test_malformed_dealer_and_analyst_files(tmp_path: Path, certs: dict[Identity, CertFiles]) -> None:
    _consortium(tmp_path, certs)
    dealer = tmp_path / DEALER_FILE
    _edit(dealer, "session_ttl_s = 900.0", "session_ttl_s = -1")
    with pytest.raises(ConfigError, match=r"dealer\.toml: dealer\.session_ttl_s: must be positive"):
        load_dealer(dealer)
    analyst = tmp_path / analyst_file("alice")
    _edit(analyst, 'name = "alice"', 'name = "bob"')
    with pytest.raises(ConfigError, match="the certificate is pooled://analyst/alice, but this file configures"):
        load_analyst(analyst)
    _edit(analyst, "[parties]", "[dealer]\nlisten = 'x:1'\n\n[parties]")
    with pytest.raises(ConfigError, match=r"analyst-alice\.toml: dealer: unknown key"):
        load_analyst(analyst)
