"""APNs certificate-based authentication: an app's client certificate, as an alternative to
token (.p8) auth.

Apple issues one TLS client certificate per app (bundle id); the provider presents it on the
connection (mutual TLS) and sends no `authorization` header. The certificate is given as PEM
(certificate and private key in one file or value) or PKCS#12 (.p12) with its password. It is
loaded once at start-up: the bundle id is the subject's UID, which must be the app's
`apns_topic` (or a topic Apple derives from it: `<bundle>.voip`, `<bundle>.complication`,
...); the key is kept in memory only, never written anywhere. Apple marks the environments a
certificate is good for with extensions (development = sandbox, production; a universal
certificate has both); APNs answers `403 BadCertificateEnvironment` on the other host.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

EXPIRY_WARNING = dt.timedelta(days=30)
# Apple's extensions on push certificates: the environments, and the topics it may push to.
DEVELOPMENT_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.3.1")
PRODUCTION_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.3.2")
TOPICS_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.3.6")
ENVIRONMENT_OIDS = {"sandbox": DEVELOPMENT_OID, "production": PRODUCTION_OID}


class CertificateError(ValueError):
    """The certificate cannot be used as configured; the message says why (no secret in it)."""


@dataclass(frozen=True, repr=False)
class ApnsCertificate:
    identity_pem: bytes  # certificate then unencrypted private key: what the TLS client presents
    bundle_id: str
    not_after: dt.datetime
    # The APNs environments Apple's extensions allow; empty when it has neither marker.
    environments: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # never the key
        return f"ApnsCertificate(bundle_id={self.bundle_id!r}, not_after={self.not_after})"

    def allows(self, topic: str) -> bool:
        return topic == self.bundle_id or topic.startswith(self.bundle_id + ".")

    def seconds_left(self, now: dt.datetime | None = None) -> float:
        return (self.not_after - (now or dt.datetime.now(dt.UTC))).total_seconds()

    def expires_soon(self, now: dt.datetime | None = None) -> bool:
        return self.seconds_left(now) < EXPIRY_WARNING.total_seconds()


def load(data: bytes, password: str | None) -> ApnsCertificate:
    """From PEM (certificate + key, the key optionally encrypted) or PKCS#12 bytes."""
    secret = password.encode() if password else None
    cert: x509.Certificate | None
    key: Any
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data)
            key = serialization.load_pem_private_key(data, secret)
        else:
            key, cert, _ = pkcs12.load_key_and_certificates(data, secret)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not a usable PEM or PKCS#12 certificate: {exc}") from None
    if cert is None or key is None:
        raise CertificateError("the file must hold the certificate and its private key")
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    if not uids:
        raise CertificateError("the certificate has no UID (bundle id) in its subject")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ApnsCertificate(
        identity_pem=cert.public_bytes(serialization.Encoding.PEM) + key_pem,
        bundle_id=str(uids[0].value),
        not_after=cert.not_valid_after_utc,
        environments=environments_of(cert),
    )


def environments_of(cert: x509.Certificate) -> frozenset[str]:
    """The environments whose marker extension the certificate carries."""
    present = {extension.oid for extension in cert.extensions}
    return frozenset(name for name, oid in ENVIRONMENT_OIDS.items() if oid in present)
