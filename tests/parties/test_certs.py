"""Consortium certificates: identities in the SAN, private keys readable by the owner only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from parties.certs import CA_CERT, CA_KEY, CertFiles, Identity, create_consortium, identity_of


def test_identities_parse_and_print() -> None:
    for ident in (Identity.party("a"), Identity.dealer(), Identity.analyst("alice")):
        assert Identity.parse(ident.uri) == ident
    assert Identity.party("site-2").dns_name == "site-2.party.pooled"
    for bad in ("pooled://party/", "pooled://party/A", "https://party/a", "pooled://dealer/x", "pooled://admin/x"):
        with pytest.raises(ValueError):
            Identity.parse(bad)


def test_consortium_files_and_sans(tmp_path: Path) -> None:
    written = create_consortium(tmp_path, ["a", "b"], dealer=True, analysts=["alice"])
    assert set(written) == {Identity.party("a"), Identity.party("b"), Identity.dealer(), Identity.analyst("alice")}
    for identity, files in written.items():
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
        pem = files.cert.read_bytes()
        assert identity_of(pem) == identity
        san = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        assert identity.dns_name in san.get_values_for_type(x509.DNSName)
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert stat.S_IMODE((tmp_path / CA_KEY).stat().st_mode) == 0o600


def test_running_again_reuses_the_ca(tmp_path: Path) -> None:
    create_consortium(tmp_path, ["a"], dealer=False)
    ca_before = (tmp_path / CA_CERT).read_bytes()
    create_consortium(tmp_path, [], dealer=False, analysts=["bob"])
    assert (tmp_path / CA_CERT).read_bytes() == ca_before
    bob = x509.load_pem_x509_certificate(CertFiles.in_dir(tmp_path, Identity.analyst("bob")).cert.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_before)
    bob.verify_directly_issued_by(ca)
