"""Throw-away provider credentials for the simulators, the demo and the tests.

They have the real shapes: an APNs auth key is a PKCS#8 EC P-256 key in a `.p8` file with a
10-character key id; an FCM service account is Google's JSON file with an RSA key and a
`token_uri`. The simulators verify signatures against the public halves written beside them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

_ID_ALPHABET = string.ascii_uppercase + string.digits


def _random_id(length: int = 10) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _public_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass(frozen=True)
class ApnsCredentials:
    key_file: Path  # AuthKey_<kid>.p8, private
    public_key_file: Path  # what the simulator verifies with
    key_id: str
    team_id: str


@dataclass(frozen=True)
class FcmCredentials:
    service_account_file: Path  # private
    public_key_file: Path
    project_id: str
    client_email: str


def write_apns_key(folder: Path) -> ApnsCredentials:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    key_id, team_id = _random_id(), _random_id()
    key_file = folder / f"AuthKey_{key_id}.p8"
    key_file.write_text(_private_pem(key))
    key_file.chmod(0o600)
    public = folder / f"AuthKey_{key_id}.pub.pem"
    public.write_text(_public_pem(key))
    return ApnsCredentials(key_file, public, key_id, team_id)


def write_service_account(folder: Path, project_id: str, token_uri: str) -> FcmCredentials:
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = secrets.token_hex(20)
    email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
    account = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": _private_pem(key),
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    path = folder / f"{project_id}-service-account.json"
    path.write_text(json.dumps(account, indent=2))
    path.chmod(0o600)
    public = folder / f"{project_id}-service-account.pub.pem"
    public.write_text(_public_pem(key))
    return FcmCredentials(path, public, project_id, email)


@dataclass(frozen=True)
class VapidCredentials:
    key_file: Path  # PEM, what pushfan reads (vapid_private_key_file)
    public_key: str  # base64url uncompressed point, the `k` the simulator accepts


def write_vapid_key(folder: Path) -> VapidCredentials:
    """A throw-away VAPID key pair for one app (Web Push)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = folder / "vapid.pem"
    key_file.write_text(_private_pem(key))
    key_file.chmod(0o600)
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidCredentials(key_file, base64.urlsafe_b64encode(point).rstrip(b"=").decode())


@dataclass(frozen=True)
class ApnsCertificateFiles:
    ca: Path  # the issuing CA (the simulator's --client-ca)
    pem: Path  # certificate + unencrypted key
    p12: Path  # the same as PKCS#12, with `password`
    password: str
    bundle_id: str


def write_apns_certificate(
    folder: Path,
    bundle_id: str,
    days: int = 365,
    environments: tuple[str, ...] = ("sandbox", "production"),
    name: str = "apns-cert",
) -> ApnsCertificateFiles:
    """An APNs-style client certificate, as PEM and PKCS#12, valid for `days`: subject UID =
    bundle id, CN "Apple Push Services: <bundle>", Apple's environment extensions for
    `environments` (both: a universal certificate) and its topics extension (the bundle id,
    `.voip`, `.complication`). Issued by the folder's throw-away CA (`apns-ca.pem`, made on
    first use), so the certificates of one folder share one `--client-ca`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from loadtest.simulators.apns_certauth import ENVIRONMENT_OIDS, TOPICS, topics_extension

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _apns_ca(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, bundle_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {bundle_id}"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .issuer_name(ca.subject)
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    for environment in environments:
        marker = x509.UnrecognizedExtension(ENVIRONMENT_OIDS[environment], b"\x05\x00")
        builder = builder.add_extension(marker, critical=False)
    topics = [bundle_id, f"{bundle_id}.voip", f"{bundle_id}.complication"]
    listed = x509.UnrecognizedExtension(TOPICS, topics_extension(topics))
    cert = builder.add_extension(listed, critical=False).sign(ca_key, hashes.SHA256())
    password = secrets.token_urlsafe(12)
    files = ApnsCertificateFiles(
        folder / "apns-ca.pem", folder / f"{name}.pem", folder / f"{name}.p12", password, bundle_id
    )
    files.pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + _private_pem(key).encode()
    )
    files.p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            bundle_id.encode(),
            key,
            cert,
            None,
            serialization.BestAvailableEncryption(password.encode()),
        )
    )
    return files


def _apns_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, Any]:
    """The folder's APNs test CA (`apns-ca.pem`, key in `apns-ca.key`), made on first use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    cert_file, key_file = folder / "apns-ca.pem", folder / "apns-ca.key"
    if cert_file.exists() and key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_file.read_bytes())
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushfan test APNs CA")])
    ca = (
        x509.CertificateBuilder()
        .issuer_name(name)
        .subject_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file.write_text(_private_pem(key))
    key_file.chmod(0o600)
    cert_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return key, ca
