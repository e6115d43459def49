"""The APNs client certificates of a sender's apps: loaded once at start-up, checked against
the app's topic, a warning when one is for one environment only, watched for expiry (a
warning within 30 days, and the gauge pushfan_apns_certificate_expiry_seconds: the first of
them to expire)."""

from __future__ import annotations

import logging

from pushfan import apns_certificate, metrics
from pushfan.apns_certificate import ApnsCertificate, CertificateError
from pushfan.settings import AppConfig

log = logging.getLogger(__name__)
ENVIRONMENTS = frozenset({"sandbox", "production"})


def load_for(app: AppConfig) -> ApnsCertificate:
    """The app's certificate; CertificateError if it is unusable or not for its topic."""
    data, password = app.apns_certificate_bytes()
    try:
        certificate = apns_certificate.load(data, password)
    except CertificateError as exc:
        raise CertificateError(f"app {app.name}: {exc}") from None
    if not app.apns_topic or not certificate.allows(app.apns_topic):
        raise CertificateError(
            f"app {app.name}: apns_topic {app.apns_topic!r} is not the certificate's bundle id"
            f" {certificate.bundle_id!r}"
        )
    missing = sorted(ENVIRONMENTS - certificate.environments) if certificate.environments else []
    if missing:
        log.warning(
            "app %s: the APNs certificate is not for %s: its devices there will fail"
            " (BadCertificateEnvironment)",
            app.name,
            " or ".join(missing),
        )
    if certificate.expires_soon():
        log.warning(
            "app %s: APNs certificate for %s expires %s (in %.1f days)",
            app.name,
            certificate.bundle_id,
            certificate.not_after.isoformat(),
            certificate.seconds_left() / 86400,
        )
    return certificate


def watch(certificates: list[ApnsCertificate]) -> None:
    """The expiry gauge follows the first certificate to expire, computed at each scrape."""
    if certificates:
        first = min(certificates, key=lambda c: c.not_after)
        metrics.APNS_CERTIFICATE_EXPIRY.set_function(first.seconds_left)
