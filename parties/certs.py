"""The consortium's certificate authority and the certificates of its members.

Every link in Pooled is mutual TLS, and a member's identity is the URI in its
certificate's subject alternative names: `pooled://party/<name>`, `pooled://dealer`,
`pooled://analyst/<name>`. Servers read that URI from the verified peer certificate
(never from a request field) to decide who is calling. Each certificate also carries
`localhost`, `127.0.0.1` and a DNS name unique to the member (`<name>.party.pooled`,
`dealer.pooled`, ...) so a client can insist, through gRPC's target-name override, that
the server it reached is the member it meant to reach.

`create_consortium` writes a CA plus one key and certificate per member into a directory
(keys with mode 0600; the CA key may be put elsewhere, as `pooled init` does, so that no
member's directory ever holds it); running it again with the same CA reuses it, so
members can be added later.

A member refuses to start with a private key that group or others may open
(`check_private_key`: SSH's rule), or with a key that is not its certificate's
(`check_key_pair`), each with one line naming the files.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Role = Literal["party", "dealer", "analyst"]
ROLES: tuple[Role, ...] = ("party", "dealer", "analyst")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_URI = re.compile(r"^pooled://(party|analyst)/([a-z0-9-]+)$|^pooled://dealer$")
CA_CERT, CA_KEY = "ca.pem", "ca.key"


@dataclass(frozen=True)
class Identity:
    """Who a certificate belongs to: a role and, for parties and analysts, a name."""

    role: Role
    name: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}: use one of {', '.join(ROLES)}")
        if self.role == "dealer" and self.name != "dealer":
            raise ValueError("the dealer's identity is named 'dealer'")
        if not _NAME.match(self.name):
            raise ValueError(f"invalid member name {self.name!r}: lowercase letters, digits and '-', at most 63")

    @staticmethod
    def party(name: str) -> Identity:
        return Identity("party", name)

    @staticmethod
    def analyst(name: str) -> Identity:
        return Identity("analyst", name)

    @staticmethod
    def dealer() -> Identity:
        return Identity("dealer", "dealer")

    @property
    def uri(self) -> str:
        return "pooled://dealer" if self.role == "dealer" else f"pooled://{self.role}/{self.name}"

    @property
    def dns_name(self) -> str:
        """The member's own DNS name in its certificate (used as the TLS target name)."""
        return "dealer.pooled" if self.role == "dealer" else f"{self.name}.{self.role}.pooled"

    @property
    def file_stem(self) -> str:
        return "dealer" if self.role == "dealer" else f"{self.role}-{self.name}"

    @staticmethod
    def parse(uri: str) -> Identity:
        match = _URI.match(uri)
        if match is None:
            raise ValueError(f"not a Pooled identity URI: {uri!r}")
        if uri == "pooled://dealer":
            return Identity.dealer()
        return Identity(match.group(1), match.group(2))  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class CertFiles:
    """Where one member's TLS material lives on disk."""

    cert: Path
    key: Path
    ca: Path

    @staticmethod
    def in_dir(directory: str | Path, identity: Identity) -> CertFiles:
        d = Path(directory)
        return CertFiles(d / f"{identity.file_stem}.pem", d / f"{identity.file_stem}.key", d / CA_CERT)

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(certificate chain, private key, CA certificate) as PEM bytes."""
        return self.cert.read_bytes(), self.key.read_bytes(), self.ca.read_bytes()


def identity_of(cert_pem: bytes) -> Identity:
    """The Pooled identity named in a certificate's URI subject alternative name."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("pooled://")]
    if len(uris) != 1:
        raise ValueError(f"certificate must name exactly one pooled:// identity, found {uris}")
    return Identity.parse(uris[0])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class KeyFileError(ValueError):
    """A member's private key file is unsafe, unreadable, or not the key of its certificate."""


def check_private_key(path: str | Path) -> None:
    """Raise KeyFileError if group or others have any access to the private key file at `path`."""
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"the private key {path} is open to group or others (mode {mode:04o}): chmod 600 {path}")


def check_key_pair(cert_pem: bytes, key_pem: bytes, cert_path: str | Path, key_path: str | Path) -> None:
    """Raise KeyFileError unless `key_pem` is the private key of the certificate `cert_pem`."""
    try:
        key = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{key_path} is not an unencrypted PEM private key") from exc
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise KeyFileError(f"{cert_path} is not a PEM certificate") from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise KeyFileError(f"{key_path} is not the private key of {cert_path} (it belongs to another certificate)")


def _write(path: Path, data: bytes, secret: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600 if secret else 0o644)


def new_ca(common_name: str = "Pooled consortium CA", days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed CA: (certificate PEM, key PEM)."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(ca_cert_pem: bytes, ca_key_pem: bytes, identity: Identity, days: int = 825) -> tuple[bytes, bytes]:
    """A certificate for `identity` signed by the CA: (certificate PEM, key PEM)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if identity.role != "analyst":
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(identity.uri),
            x509.DNSName(identity.dns_name),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.uri)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def create_consortium(
    out: str | Path,
    parties: list[str],
    *,
    dealer: bool = True,
    analysts: list[str] | None = None,
    ca_key: str | Path | None = None,
) -> dict[Identity, CertFiles]:
    """Write (or extend) a consortium in `out`: the CA and one key + certificate per member.

    The CA certificate is `out/ca.pem`; its private key is at `ca_key` (default
    `out/ca.key`; a directory of its own, created mode 0700, keeps it away from every
    member's files). An existing CA (both files) is reused; one of the two without the
    other is a ValueError (never a new CA over an old one). Member files are (re)written,
    every private key mode 0600. Returns where each member's files are.
    """
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = directory / CA_CERT, Path(ca_key) if ca_key is not None else directory / CA_KEY
    if ca_cert_path.exists() and ca_key_path.exists():
        ca_cert, ca_pem_key = ca_cert_path.read_bytes(), ca_key_path.read_bytes()
    elif ca_cert_path.exists() or ca_key_path.exists():
        found, absent = (ca_cert_path, ca_key_path) if ca_cert_path.exists() else (ca_key_path, ca_cert_path)
        raise ValueError(f"{found} exists but {absent} does not: name the CA's key and certificate together")
    else:
        ca_cert, ca_pem_key = new_ca()
        if not ca_key_path.parent.exists():
            ca_key_path.parent.mkdir(parents=True, mode=0o700)
            os.chmod(ca_key_path.parent, 0o700)
        _write(ca_cert_path, ca_cert, secret=False)
        _write(ca_key_path, ca_pem_key, secret=True)
    members = [Identity.party(p) for p in parties]
    if dealer:
        members.append(Identity.dealer())
    members += [Identity.analyst(a) for a in analysts or []]
    if len(set(members)) != len(members):
        raise ValueError("member names must be unique within a role")
    written = {}
    for identity in members:
        cert, key = issue(ca_cert, ca_pem_key, identity)
        files = CertFiles.in_dir(directory, identity)
        _write(files.cert, cert, secret=False)
        _write(files.key, key, secret=True)
        written[identity] = files
    return written
