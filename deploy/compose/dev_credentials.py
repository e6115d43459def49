"""Write throw-away APNs and FCM credentials for the compose stack (one-shot service).

The compose file points PUSHFAN_APPS at these files with fixed ids, so this writes a key
with a known key id and a service account with a known project, once: it leaves existing
files alone so a restart of the stack keeps the keys the simulators already trust.
Each private key gets its public half beside it (`*.pub.pem`) for the simulators.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

APNS_KEY_ID = "DEVKEY0001"
FCM_PROJECT_ID = "pushfan-dev"
FCM_TOKEN_URI = "http://sim-fcm:8444/token"

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
            "client_email": f"firebase-adminsdk@{FCM_PROJECT_ID}.iam.gserviceaccount.com",
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": FCM_TOKEN_URI,
        }
        _write(account, json.dumps(body, indent=2), 0o600)
        _write(folder / f"{FCM_PROJECT_ID}-service-account.pub.pem", _public_pem(rsa_key), 0o644)
        written.append(account)
    return written


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "/var/lib/pushfan/credentials")
    written = write_credentials(folder)
    print(f"credentials in {folder}: {len(written)} written, the rest kept")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
