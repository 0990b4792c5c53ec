"""Key handling: the CA key apart from every member's files, keys 0600, loose or wrong keys refused."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from parties.certs import CA_CERT, CA_KEY, CertFiles, Identity, KeyFileError, check_private_key, create_consortium
from parties.cli import main
from parties.tls import TlsMaterial


def _referenced(out: Path) -> set[Path]:
    """Every path a configuration file `pooled init` wrote points at."""
    paths = set()
    for toml in out.glob("*.toml"):
        doc = tomllib.loads(toml.read_text())
        values = list(doc.get("tls", {}).values()) + [doc.get("data", {}).get("path"), doc.get("audit", {}).get("path")]
        paths |= {(out / v).resolve() for v in values if v}
    return paths


def test_pooled_init_keeps_the_ca_key_where_no_configuration_points(tmp_path: Path) -> None:
    out = tmp_path / "consortium"
    assert main(["init", "--parties", "a,b", "--analysts", "alice", "--out", str(out)]) == 0
    ca_key = out / "ca-private" / CA_KEY
    assert stat.S_IMODE(ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca_key.parent.stat().st_mode) == 0o700
    secret = ca_key.read_bytes()
    referenced = _referenced(out)
    assert any(p.name == CA_CERT for p in referenced) and len(referenced) > 10
    for directory in {p.parent for p in referenced}:
        assert ca_key.parent.resolve() not in (directory, *directory.parents)
        for f in directory.rglob("*"):
            assert not (f.is_file() and f.read_bytes() == secret), f"the CA key is at {f}, under {directory}"
    keys = list(out.rglob("*.key"))
    assert len(keys) == 5 and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)


def test_adding_a_member_needs_the_ca_key_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "consortium"
    assert main(["init", "--parties", "a,b", "--analysts", "alice", "--out", str(out)]) == 0
    ca_before = (out / "certs" / CA_CERT).read_bytes()
    with pytest.raises(SystemExit, match=r"ca\.pem exists but .*ca\.key does not"):
        main(["certs", "--out", str(out / "certs"), "--analysts", "carol"])  # never a new CA over the old one
    assert (out / "certs" / CA_CERT).read_bytes() == ca_before
    assert main(["certs", "--out", str(out / "certs"), "--ca-key", str(out / "ca-private" / CA_KEY),
                 "--analysts", "carol"]) == 0
    assert (out / "certs" / CA_CERT).read_bytes() == ca_before
    assert TlsMaterial.load(CertFiles.in_dir(out / "certs", Identity.analyst("carol"))).identity.name == "carol"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_key_open_to_group_or_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    files = create_consortium(tmp_path, ["a"], dealer=False)[Identity.party("a")]
    check_private_key(files.key)  # as written: 0600
    files.key.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        check_private_key(files.key)
    assert str(info.value).endswith(f"chmod 600 {files.key}") and f"mode {mode:04o}" in str(info.value)


def test_a_key_that_is_not_the_certificates_is_one_line_naming_both(tmp_path: Path) -> None:
    written = create_consortium(tmp_path, ["a", "b"], dealer=False)
    a, b = written[Identity.party("a")], written[Identity.party("b")]
    with pytest.raises(KeyFileError) as info:
        TlsMaterial.load(CertFiles(a.cert, b.key, a.ca))
    assert str(info.value) == f"{b.key} is not the private key of {a.cert} (it belongs to another certificate)"
    b.key.write_text("not a key")
    with pytest.raises(KeyFileError, match="is not an unencrypted PEM private key"):
        TlsMaterial.load(b)
