"""An expired certificate from the consortium CA is refused in the TLS handshake (docs/security.md)."""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from parties.certs import CertFiles, Identity
from parties.client import ConsortiumClient
from parties.local import LocalConsortium
from parties.tls import TlsMaterial


def _analyst_files(consortium: LocalConsortium, out: Path, name: str, expires_in_days: int) -> CertFiles:
    """An analyst certificate the consortium CA signs, valid until `expires_in_days` from now (negative: expired)."""
    ca_pem = (consortium.certs_dir / "ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(consortium.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now, who = datetime.datetime.now(datetime.UTC), Identity.analyst(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, who.uri)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now + datetime.timedelta(days=expires_in_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(who.uri)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.pem").write_bytes(ca_pem)
    files = CertFiles.in_dir(out, who)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files


@pytest.mark.network
def test_an_expired_certificate_cannot_connect_and_the_same_one_still_valid_can(tmp_path: Path) -> None:
    with LocalConsortium(["p1", "p2"]) as consortium:
        valid = _analyst_files(consortium, tmp_path / "valid", "carol", expires_in_days=5)
        with ConsortiumClient(TlsMaterial.load(valid), consortium.addresses) as client:
            assert client.status("p1", timeout_s=10).identity == "pooled://party/p1"
        expired = _analyst_files(consortium, tmp_path / "expired", "carol", expires_in_days=-1)
        with ConsortiumClient(TlsMaterial.load(expired), consortium.addresses) as client:
            with pytest.raises(grpc.RpcError) as refused:
                client.status("p1", timeout_s=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake failed: no handler ran
