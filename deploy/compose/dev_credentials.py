"""Write throw-away credentials for the compose stack (one-shot `credentials` service).

- an APNs auth key with a known key id and an FCM service account with a known project:
  the compose file points PUSHFAN_APPS at them, and the simulators at their public halves
  (`*.pub.pem`, given to `--auth-key` / `--account`);
- a VAPID key (Web Push) the web senders sign with; the Web Push simulator takes any `k`
  and verifies the signature with it;
- a CA and one server certificate for the simulators' compose host names (`sim-apns`,
  `sim-fcm`, `sim-web`, `localhost`): the senders always speak TLS and trust `ca.pem`
  (PUSHFAN_CA_FILE).

Existing files are kept, so a restart of the stack keeps what the simulators already trust.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

APNS_KEY_ID = "DEVKEY0001"
FCM_PROJECT_ID = "pushfan-dev"
FCM_CLIENT_EMAIL = f"firebase-adminsdk@{FCM_PROJECT_ID}.iam.gserviceaccount.com"
FCM_TOKEN_URI = "https://sim-fcm:8444/token"
SIMULATOR_HOSTS = ("sim-apns", "sim-fcm", "sim-web", "localhost")
VAPID_KEY = "vapid-private-key.pem"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _private_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)


def write_credentials(folder: Path) -> list[Path]:
    """Create the credentials in `folder` unless they exist; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    apns_key = folder / f"AuthKey_{APNS_KEY_ID}.p8"
    if not apns_key.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        _write(apns_key, _private_pem(key), 0o600)
        _write(folder / f"AuthKey_{APNS_KEY_ID}.pub.pem", _public_pem(key), 0o644)
        written.append(apns_key)
    account = folder / f"{FCM_PROJECT_ID}-service-account.json"
    if not account.exists():
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        body = {
            "type": "service_account",
            "project_id": FCM_PROJECT_ID,
            "private_key_id": secrets.token_hex(20),
            "private_key": _private_pem(rsa_key),
            "client_email": FCM_CLIENT_EMAIL,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": FCM_TOKEN_URI,
        }
        _write(account, json.dumps(body, indent=2), 0o600)
        _write(folder / f"{FCM_PROJECT_ID}-service-account.pub.pem", _public_pem(rsa_key), 0o644)
        written.append(account)
    vapid = folder / VAPID_KEY
    if not vapid.exists():
        _write(vapid, _private_pem(ec.generate_private_key(ec.SECP256R1())), 0o600)
        written.append(vapid)
    if not (folder / "sim.pem").exists():
        written += _write_tls(folder)
    return written


def _write_tls(folder: Path) -> list[Path]:
    """A CA (`ca.pem`) and a certificate for the simulator hosts (`sim.pem`, `sim.key`)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushfan compose CA")])
    ca = (
        _certificate(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIMULATOR_HOSTS[0])])
    cert = (
        _certificate(ca_name, name, key.public_key(), now)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in SIMULATOR_HOSTS]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "sim.key", _private_pem(key), 0o600)
    _write(folder / "sim.pem", cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    _write(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    return [folder / "ca.pem", folder / "sim.pem", folder / "sim.key"]


def _certificate(
    issuer: x509.Name, subject: x509.Name, public: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .issuer_name(issuer)
        .subject_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
    )


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "/var/lib/pushfan/credentials")
    written = write_credentials(folder)
    print(f"credentials in {folder}: {len(written)} written, the rest kept")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
