"""Signed audit heads: a node's commitment to its log, held in its peers' logs.

A hash chain alone cannot stop whoever can write a node's log file: they may drop entries
and recompute every hash after them, and the rewritten chain verifies. What they cannot
rewrite is the other sites' logs. So with every query each node signs its chain head
(its name, how many entries its log holds, the last entry's hash) with its own party key
(the ECDSA P-256 key of its TLS certificate, `parties.certs`) and sends it, with its
certificate, to the other parties; each of them checks the signature and writes the head
into its own log (`AuditLog.record_peer_heads`, event `peer_head`). Later,
`pooled audit verify LOG --peers DIR` (`parties.audit_peers`) checks every head the
peers recorded for this node against the log: a log that was rewritten no longer holds
entry `count` with that hash.

The signature makes the record evidence: a head in B's log that verifies under A's
certificate was sent by A (B cannot invent one), and A's operator cannot say it was.

Signed message: `MESSAGE_PREFIX` followed by the canonical JSON of {node, count, hash};
the signature is ECDSA with SHA-256, DER encoded, in base64. A recorded head keeps the
SHA-256 fingerprint of the certificate that verified it, not the certificate itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from parties.certs import CertFiles, Identity, identity_of

MESSAGE_PREFIX = b"pooled audit head v1\n"
HEAD_FIELDS = ("node", "count", "hash", "signature", "cert")


class HeadError(ValueError):
    """A signed head is malformed, from an unexpected party, or its signature does not verify."""


def head_message(node: str, count: int, head: str) -> bytes:
    """The bytes a node signs for its head."""
    body = json.dumps({"node": node, "count": count, "hash": head}, sort_keys=True, separators=(",", ":"))
    return MESSAGE_PREFIX + body.encode()


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER encoding, hex."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class HeadSigner:
    """This node's signing key and certificate, and the CA whose certificates it accepts from peers."""

    key: ec.EllipticCurvePrivateKey
    cert_pem: bytes
    ca_pem: bytes

    @staticmethod
    def from_pem(key_pem: bytes, cert_pem: bytes, ca_pem: bytes) -> HeadSigner:
        key = serialization.load_pem_private_key(key_pem, None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise HeadError("an audit signing key must be an EC key (as `pooled init` writes)")
        return HeadSigner(key, cert_pem, ca_pem)

    @staticmethod
    def load(files: CertFiles) -> HeadSigner:
        """From a party's TLS files (its key signs, its certificate goes with every head)."""
        cert, key, ca = files.read()
        return HeadSigner.from_pem(key, cert, ca)

    @property
    def identity(self) -> Identity:
        return identity_of(self.cert_pem)

    def sign(self, node: str, count: int, head: str) -> dict[str, Any]:
        """The signed head {node, count, hash, signature, cert} (JSON-serialisable)."""
        signature = self.key.sign(head_message(node, count, head), ec.ECDSA(hashes.SHA256()))
        return {"node": node, "count": count, "hash": head,
                "signature": base64.b64encode(signature).decode(), "cert": self.cert_pem.decode()}


def check_signature(cert_pem: bytes, node: str, count: int, head: str, signature: str) -> None:
    """Raise HeadError unless `signature` is `cert`'s signature over (node, count, head)."""
    public = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise HeadError(f"the certificate for {node} does not hold an EC key")
    try:
        raw = base64.b64decode(signature, validate=True)
        public.verify(raw, head_message(node, count, head), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise HeadError(f"the signature on {node}'s audit head (entry {count}) does not verify") from exc


def check_certificate(cert_pem: bytes, ca_pem: bytes, node: str) -> None:
    """Raise HeadError unless `cert_pem` was issued by the CA and names party `node`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        who = identity_of(cert_pem)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise HeadError(f"the certificate sent with {node}'s audit head is not from this consortium's CA") from exc
    if who != Identity.party(node):
        raise HeadError(f"the audit head names {node}, but its certificate is {who.uri}")


def check_head(head: Mapping[str, Any], expected: str, ca_pem: bytes) -> dict[str, Any]:
    """A peer's signed head, checked: well formed, from `expected`, certificate and signature valid.

    Returns what a node records: {peer, peer_count, peer_hash, peer_signature, peer_cert}
    (`peer_cert` is the certificate's fingerprint).
    """
    if not isinstance(head, Mapping) or set(head) != set(HEAD_FIELDS):
        got = sorted(head) if isinstance(head, Mapping) else type(head).__name__
        raise HeadError(f"{expected}'s audit head must hold exactly {', '.join(HEAD_FIELDS)} (got {got})")
    node, count, digest = head["node"], head["count"], head["hash"]
    if node != expected:
        raise HeadError(f"party {expected} sent an audit head for {node!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise HeadError(f"{expected}'s audit head has an invalid entry count {count!r}")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise HeadError(f"{expected}'s audit head has an invalid hash")
    if not isinstance(head["signature"], str) or not isinstance(head["cert"], str):
        raise HeadError(f"{expected}'s audit head: signature and cert must be text")
    cert = head["cert"].encode()
    check_certificate(cert, ca_pem, expected)
    check_signature(cert, expected, count, digest, head["signature"])
    return {"peer": expected, "peer_count": count, "peer_hash": digest,
            "peer_signature": head["signature"], "peer_cert": fingerprint(cert)}
