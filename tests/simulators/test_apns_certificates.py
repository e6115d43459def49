"""The APNs simulator's certificate auth, per push and per certificate, as Apple answers: a
certificate of the other environment than the host's is a 403 BadCertificateEnvironment, a
topic the certificate does not hold a 400 TopicDisallowed, a missing topic is the
certificate's own when it has one; a connection without a certificate uses token auth when
the simulator also has keys."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from loadtest.credentials import ApnsCertificateFiles, ApnsCredentials, write_apns_certificate
from loadtest.simulators.apns_certauth import CertificateIdentity, identity_of, topic_list
from pushfan.seed import apns_token
from tests.fixtures.simulators import Simulator, apns_argv, provider_token

BUNDLE = "com.example.cert"
BODY = json.dumps({"aps": {"alert": "hi"}}).encode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ApnsCertificateFiles]:
    folder = tmp_path_factory.mktemp("apns-certs")
    return {
        "universal": write_apns_certificate(folder, BUNDLE, name="universal"),
        "development": write_apns_certificate(
            folder, BUNDLE, environments=("sandbox",), name="development"
        ),
        "production": write_apns_certificate(
            folder, BUNDLE, environments=("production",), name="production"
        ),
        "not-for-push": write_apns_certificate(folder, BUNDLE, environments=(), name="plain"),
    }


@pytest.fixture(scope="module")
def production(
    simulators: Callable[..., Simulator],
    apns_creds: ApnsCredentials,
    certs: dict[str, ApnsCertificateFiles],
) -> Simulator:
    """The production host, serving certificate and token auth on one port."""
    ca = str(certs["universal"].ca)
    return simulators(apns_argv(apns_creds, "--client-ca", ca, "--environment", "production"))


def client(sim: Simulator, cert: ApnsCertificateFiles | None) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(sim.ca))
    if cert is not None:
        context.load_cert_chain(str(cert.pem))
    return httpx.AsyncClient(base_url=sim.url, http1=False, http2=True, verify=context)


async def push(
    sim: Simulator, cert: ApnsCertificateFiles | None, headers: dict[str, str]
) -> tuple[int, str | None]:
    async with client(sim, cert) as http:
        answer = await http.post(f"/3/device/{apns_token()}", content=BODY, headers=headers)
    return answer.status_code, answer.json()["reason"] if answer.content else None


def test_the_identity_is_read_from_apples_extensions(
    certs: dict[str, ApnsCertificateFiles],
) -> None:
    def identity(which: str) -> CertificateIdentity:
        pem = certs[which].pem.read_bytes()
        return identity_of(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))

    topics = (BUNDLE, f"{BUNDLE}.voip", f"{BUNDLE}.complication")
    assert identity("universal") == CertificateIdentity(
        frozenset({"sandbox", "production"}), topics
    )
    assert identity("development").environments == {"sandbox"}
    assert identity("production").environments == {"production"}
    assert not identity("not-for-push").valid
    assert topic_list(b"\x04\x00") == [] and topic_list(b"") == []


@pytest.mark.parametrize(
    ("which", "topic", "expected"),
    [
        ("universal", BUNDLE, (200, None)),
        ("production", f"{BUNDLE}.voip", (200, None)),
        ("development", BUNDLE, (403, "BadCertificateEnvironment")),
        ("production", "com.example.other", (400, "TopicDisallowed")),
        ("not-for-push", BUNDLE, (403, "BadCertificate")),
    ],
)
async def test_each_certificate_is_answered_for_its_environment_and_topics(
    production: Simulator,
    certs: dict[str, ApnsCertificateFiles],
    which: str,
    topic: str,
    expected: tuple[int, str | None],
) -> None:
    assert await push(production, certs[which], {"apns-topic": topic}) == expected


async def test_a_missing_topic_is_the_certificates_only_when_it_has_one(
    production: Simulator, certs: dict[str, ApnsCertificateFiles]
) -> None:
    """Apple: apns-topic is mandatory with a certificate that supports several topics."""
    assert await push(production, certs["universal"], {}) == (400, "MissingTopic")
    solo = CertificateIdentity(frozenset({"production"}), (BUNDLE,))
    assert solo.refusal("production", None) is None
    assert solo.refusal("sandbox", None) == "BadCertificateEnvironment"


async def test_without_a_certificate_the_push_uses_token_auth(
    production: Simulator, apns_creds: ApnsCredentials
) -> None:
    assert await push(production, None, {"apns-topic": BUNDLE}) == (403, "MissingProviderToken")
    token = {"authorization": f"bearer {provider_token(apns_creds)}", "apns-topic": BUNDLE}
    assert await push(production, None, token) == (200, None)


async def test_the_sandbox_host_refuses_a_production_certificate(
    simulators: Callable[..., Simulator], certs: dict[str, ApnsCertificateFiles]
) -> None:
    """Certificate-only mode: a connection needs a certificate from the CA."""
    sandbox = simulators(
        ["apns", "--client-ca", str(certs["universal"].ca), "--environment", "sandbox"]
    )
    token = apns_token(sandbox=True)
    async with client(sandbox, certs["production"]) as http:
        answer = await http.post(f"/3/device/{token}", content=BODY, headers={"apns-topic": BUNDLE})
    assert (answer.status_code, answer.json()) == (403, {"reason": "BadCertificateEnvironment"})
    async with client(sandbox, certs["development"]) as http:
        answer = await http.post(f"/3/device/{token}", content=BODY, headers={"apns-topic": BUNDLE})
    assert answer.status_code == 200
    async with client(sandbox, certs["development"]) as http:
        assert (await http.get("/_sim/stats")).json()["accepted"] == 1
    with pytest.raises(httpx.TransportError):  # TLS 1.3: the refusal arrives after the handshake
        async with client(sandbox, None) as http:
            await http.post(f"/3/device/{token}", content=BODY, headers={"apns-topic": BUNDLE})


def test_certificate_mode_needs_tls() -> None:
    """Without TLS (or behind the dropping relay) no certificate could be checked."""
    from loadtest.simulators.cli import main

    for extra in (["--h2c"], ["--drop-connection-every", "5"]):
        with pytest.raises(SystemExit):
            main(["apns", "--client-ca", "ca.pem", *extra])
