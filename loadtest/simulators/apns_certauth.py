"""APNs certificate-based auth: what a client certificate allows, read from the certificate.

Apple's push certificates carry their environment and topics as extensions, which Apple's
servers check on every push sent over the connection:

- `1.2.840.113635.100.6.3.1`: valid for the development (sandbox) environment;
- `1.2.840.113635.100.6.3.2`: valid for production (a universal "Apple Push Services"
  certificate has both);
- `1.2.840.113635.100.6.3.6`: the topics (a DER sequence of UTF8String topics, each followed
  by a sequence of its labels), e.g. the bundle id, `<bundle>.voip`, `<bundle>.complication`;
- the subject's UID: the bundle id (a certificate without the topics extension allows the
  bundle id alone).

The answers are Apple's (`developer.apple.com`, "Handling notification responses from APNs"):
403 `BadCertificate` for a certificate that is not a push certificate (no UID or no
environment), 403 `BadCertificateEnvironment` for a certificate of the other environment than
the host's, 400 `TopicDisallowed` for a topic the certificate does not hold, and 400
`MissingTopic` when `apns-topic` is absent and the certificate holds several topics (with one,
that topic is the default).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from pushfan.apns_certificate import ENVIRONMENT_OIDS, environments_of
from pushfan.apns_certificate import TOPICS_OID as TOPICS

__all__ = ["ENVIRONMENT_OIDS", "TOPICS", "CertificateIdentity", "identity_of", "topic_list"]

_SEQUENCE, _UTF8STRING = 0x30, 0x0C


@dataclass(frozen=True)
class CertificateIdentity:
    """What a verified client certificate allows; `valid` False: not a push certificate."""

    environments: frozenset[str] = frozenset()
    topics: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return bool(self.environments and self.topics)

    def refusal(self, environment: str | None, topic: str | None) -> str | None:
        """None when a push to `topic` on the host of `environment` is allowed, else
        Apple's reason."""
        if not self.valid:
            return "BadCertificate"
        if environment is not None and environment not in self.environments:
            return "BadCertificateEnvironment"
        if topic is None:
            return "MissingTopic" if len(self.topics) > 1 else None
        return None if topic in self.topics else "TopicDisallowed"


def identity_of(der: bytes) -> CertificateIdentity:
    """The environments and topics of a DER client certificate."""
    cert = x509.load_der_x509_certificate(der)
    environments = environments_of(cert)
    listed = _extension(cert, TOPICS)
    topics = tuple(topic_list(listed)) if listed is not None else ()
    if not topics:
        uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
        topics = (str(uids[0].value),) if uids else ()
    return CertificateIdentity(environments, topics)


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else b""


def topic_list(der: bytes) -> list[str]:
    """The UTF8Strings directly inside the outer SEQUENCE of Apple's topics extension (the
    labels' nested sequences are skipped); [] when it is not such a sequence."""
    tag, body, _ = _tlv(der, 0)
    if tag != _SEQUENCE:
        return []
    topics, i = [], 0
    while i < len(body):
        tag, value, i = _tlv(body, i)
        if tag == _UTF8STRING:
            topics.append(value.decode("utf-8", "replace"))
    return topics


def _tlv(data: bytes, i: int) -> tuple[int, bytes, int]:
    """One DER tag-length-value at `i`: (tag, value, index after it); tag -1 if truncated."""
    if i + 2 > len(data):
        return -1, b"", len(data)
    tag, length = data[i], data[i + 1]
    i += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[i : i + size], "big")
        i += size
    if i + length > len(data):
        return -1, b"", len(data)
    return tag, data[i : i + length], i + length


def topics_extension(topics: list[str]) -> bytes:
    """DER of Apple's topics extension for `topics` (each labelled by its suffix), for the
    throw-away certificates of the tests and the demo."""
    items = b""
    for topic in topics:
        label = topic.rsplit(".", 1)[-1] if topic != topics[0] else "app"
        items += _der(_UTF8STRING, topic.encode()) + _der(
            _SEQUENCE, _der(_UTF8STRING, label.encode())
        )
    return _der(_SEQUENCE, items)


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + value
