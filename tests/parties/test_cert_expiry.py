"""An expired certificate from the consortium CA is refused in the TLS handshake (docs/security.md)."""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
import pytest

from parties import certs
from parties.certs import CertFiles, Identity
from parties.client import ConsortiumClient
from parties.local import LocalConsortium
from parties.tls import TlsMaterial


def _analyst_files(consortium: LocalConsortium, out: Path, name: str, expires_in_days: int) -> CertFiles:
    """An analyst certificate the consortium CA issued 30 days ago (`parties.certs.issue`), valid
    until `expires_in_days` from now (negative: expired)."""
    ca_pem = (consortium.certs_dir / "ca.pem").read_bytes()
    who = Identity.analyst(name)
    issued = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(certs, "_now", lambda: issued)
        cert, key = certs.issue(ca_pem, consortium.ca_key.read_bytes(), who, days=30 + expires_in_days)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.pem").write_bytes(ca_pem)
    files = CertFiles.in_dir(out, who)
    files.cert.write_bytes(cert)
    files.key.write_bytes(key)
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
