"""APNs certificate auth: the app's certificate (PEM, or PKCS#12 with its password) is loaded
once, checked against the topic, watched for expiry, and presented on the connection to the
simulator's client-certificate mode, with no authorization header."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from loadtest.credentials import ApnsCertificateFiles, write_apns_certificate
from pushfan import apns_certificate, payloads
from pushfan.apns_certificate import CertificateError
from pushfan.messages import Notification
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers import apns_certificates
from pushfan.workers.providers.apns_fast import FastApnsProvider
from pushfan.workers.providers.build import build_providers, build_transport
from pushfan.workers.providers.transport import TransportConfig, TransportError
from tests.fixtures.simulators import Simulator

BUNDLE = "com.example.alpha"
Factory = Callable[..., Any]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> ApnsCertificateFiles:
    return write_apns_certificate(tmp_path_factory.mktemp("apns-cert"), BUNDLE)


def cert_app(files: ApnsCertificateFiles, **extra: Any) -> AppConfig:
    return AppConfig(
        **{"name": "alpha", "apns_topic": BUNDLE, "apns_cert_file": files.pem, **extra}
    )


def test_pem_and_pkcs12_give_the_same_certificate(cert: ApnsCertificateFiles) -> None:
    pem = apns_certificate.load(cert.pem.read_bytes(), None)
    p12 = apns_certificate.load(cert.p12.read_bytes(), cert.password)
    assert pem.bundle_id == p12.bundle_id == BUNDLE
    assert pem.not_after == p12.not_after and pem.identity_pem == p12.identity_pem
    assert pem.allows(BUNDLE) and pem.allows(BUNDLE + ".voip")
    assert not pem.allows("com.example.beta") and not pem.allows(BUNDLE + "x")
    assert "PRIVATE" not in repr(pem)


def test_a_wrong_password_is_refused_without_showing_it(cert: ApnsCertificateFiles) -> None:
    with pytest.raises(CertificateError) as refused:
        apns_certificate.load(cert.p12.read_bytes(), "not-the-password")
    assert "not-the-password" not in str(refused.value)


def test_the_password_is_a_secret_and_one_auth_method_is_allowed(
    cert: ApnsCertificateFiles,
) -> None:
    app = cert_app(cert, apns_cert_password=cert.password)
    assert cert.password not in repr(app) and app.has_apns and app.uses_apns_certificate
    with pytest.raises(ValueError, match="not both"):
        cert_app(cert, apns_key="k", apns_key_id="K", apns_team_id="T")


def test_the_topic_must_be_the_certificates_bundle_id(cert: ApnsCertificateFiles) -> None:
    wrong = AppConfig(name="alpha", apns_topic="com.example.beta", apns_cert_file=cert.pem)
    with pytest.raises(CertificateError, match="not the certificate's bundle id"):
        apns_certificates.load_for(wrong)
    with pytest.raises(CertificateError):
        build_providers(Settings(apps=[wrong]), "apns")


def test_expiry_within_30_days_warns_and_sets_the_gauge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    soon = write_apns_certificate(tmp_path, BUNDLE, days=10)
    with caplog.at_level(logging.WARNING):
        certificate = apns_certificates.load_for(cert_app(soon))
    assert "expires" in caplog.text and "alpha" in caplog.text
    apns_certificates.watch([certificate])
    left = REGISTRY.get_sample_value("pushfan_apns_certificate_expiry_seconds")
    assert left is not None and 9 * 86400 < left < 10 * 86400


def test_certificate_auth_sends_no_authorization_header(cert: ApnsCertificateFiles) -> None:
    provider: Any = FastApnsProvider(Settings(), cert_app(cert), transport=None, concurrency=None)  # type: ignore[arg-type]
    note = Notification(title="t", body="b")
    names = [name for name, _ in provider._headers(payloads.apns_request(note))]
    assert "authorization" not in names and "apns-topic" in names


@pytest.mark.parametrize("transport", ["reqwest", "curl"])
async def test_pushes_go_through_the_simulators_client_certificate_mode(
    transport: str,
    cert: ApnsCertificateFiles,
    one_off: Callable[[list[str]], Simulator],
    providers: Factory,
) -> None:
    """With the certificate the pushes are delivered; without one the TLS handshake fails,
    so nothing is delivered (transient: no answer)."""
    sim = one_off(["apns", "--client-ca", str(cert.ca), "--topic", BUNDLE])
    app = cert_app(cert, apns_cert_file=cert.p12, apns_cert_password=cert.password)
    settings = Settings(
        apps=[app],
        apns_base_url=sim.url,
        ca_file=sim.ca,
        http_transport=transport,
    )
    provider = providers(settings, "apns")
    cid = f"cert-{transport}"
    note = Notification(title="t", body="b", collapse_id=cid, expires_at=int(time.time()) + 60)
    ids = list(range(1, 21))
    result = await provider.send(note, ids, [f"{i:064x}" for i in ids])
    assert sorted(result.delivered) == ids
    # The control endpoint is behind the same client-certificate check.
    context = ssl.create_default_context(cafile=str(sim.ca))
    context.load_cert_chain(str(cert.pem))
    async with httpx.AsyncClient(http1=False, http2=True, verify=context) as http:
        stats = await http.get(f"{sim.url}/_sim/stats", params={"collapse_id": cid})
    assert stats.json()["accepted"] == 20
    anonymous = build_transport(transport, TransportConfig(base_url=sim.url, ca_file=sim.ca))  # type: ignore[arg-type]
    try:
        with pytest.raises(TransportError):
            await anonymous.post(f"/3/device/{1:064x}", [("apns-topic", BUNDLE)], b"{}")
    finally:
        await anonymous.close()


def test_a_certificate_for_one_environment_warns_at_start_up(
    tmp_path: Path, cert: ApnsCertificateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    """Apple's marker extensions say where a certificate works; a universal one is quiet."""
    production = write_apns_certificate(tmp_path, BUNDLE, environments=("production",))
    with caplog.at_level(logging.WARNING):
        certificate = apns_certificates.load_for(cert_app(production))
    assert certificate.environments == {"production"}
    assert "not for sandbox" in caplog.text and "BadCertificateEnvironment" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        universal = apns_certificates.load_for(cert_app(cert))
    assert universal.environments == {"sandbox", "production"} and not caplog.text
