"""Web Push message encryption, RFC 8291 (`aes128gcm`, RFC 8188), with `cryptography`'s
ECDH, HKDF and AES-GCM: nothing here is a hand-written primitive, only the RFC's recipe.

For each push: a fresh ECDH key pair (RFC 8291 §2: one per message) and a random 16-byte
salt; IKM = HKDF(salt=auth, ikm=ECDH(as, ua), info="WebPush: info\\0" || ua || as, 32);
PRK = HKDF-Extract(salt, IKM), then CEK = HKDF-Expand(PRK, "Content-Encoding: aes128gcm\\0",
16) and NONCE = HKDF-Expand(PRK, "Content-Encoding: nonce\\0", 12); one record, the plaintext
followed by the 0x02 delimiter, sealed with AES-128-GCM. The body is the RFC 8188 header
(salt, record size, the sender's public key as key id) followed by that record.
"""

from __future__ import annotations

import os
import struct

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from pushfan.webpush import MAX_BODY_BYTES, MAX_PLAINTEXT_BYTES

RECORD_SIZE = MAX_BODY_BYTES
_CEK_INFO = b"Content-Encoding: aes128gcm\x00"
_NONCE_INFO = b"Content-Encoding: nonce\x00"
_KEY_INFO = b"WebPush: info\x00"
_CURVE = ec.SECP256R1()
_SHA256 = hashes.SHA256()
_POINT = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): HMAC-SHA-256 keyed with the salt."""
    mac = hmac.HMAC(salt, _SHA256)
    mac.update(ikm)
    return mac.finalize()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(_SHA256, length, info).derive(prk)


def encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth: bytes,
    *,
    salt: bytes | None = None,
    server_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """The `aes128gcm` body for one subscription (ua_public: 65-byte point, auth: 16 bytes).
    `salt` and `server_key` are fixed only by tests (RFC 8291 Appendix A)."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"plaintext is {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES}")
    salt = salt if salt is not None else os.urandom(16)
    server_key = server_key if server_key is not None else ec.generate_private_key(_CURVE)
    as_public = server_key.public_key().public_bytes(*_POINT)
    peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, ua_public)
    shared = server_key.exchange(ec.ECDH(), peer)
    ikm = _expand(_extract(auth, shared), _KEY_INFO + ua_public + as_public, 32)
    prk = _extract(salt, ikm)
    cek = _expand(prk, _CEK_INFO, 16)
    nonce = _expand(prk, _NONCE_INFO, 12)
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    return header + record
