"""The Web Push simulator (loadtest/simulators/webpush.py) as a real process, driven by the
real web provider over TLS: it decrypts what the sender encrypted and refuses what a push
service refuses."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushfan import webpush
from pushfan.messages import Notification
from pushfan.settings import AppConfig, Settings
from pushfan.webpush import b64url
from pushfan.workers.providers.build import build_providers
from pushfan.workers.providers.vapid import load_key, public_key_b64
from pushfan.workers.providers.webpush_crypto import encrypt
from tests.fixtures.simulators import Simulator, start_simulator, stop

VAPID = b64url(
    ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
)
OTHER = b64url(
    ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
)
ALERT = "0b7e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    tls = tmp_path_factory.mktemp("webpush") / "tls"
    argv = ["webpush", "--seed", "3", "--dead-fraction", "0.2"]
    simulator = start_simulator([*argv, "--vapid-key", public_key_b64(load_key(VAPID))], tls)
    yield simulator
    stop(simulator)


def subscriptions(sim: Simulator, count: int) -> list[dict[str, object]]:
    with httpx.Client(http1=False, http2=True, verify=sim._verify()) as http:
        answer = http.post(f"{sim.url}/_sim/subscriptions", params={"count": count})
    answer.raise_for_status()
    return list(answer.json()["subscriptions"])


def wire(sub: dict[str, object]) -> str:
    keys = sub["keys"]
    assert isinstance(keys, dict)
    return webpush.wire_token(str(sub["endpoint"]), f"{keys['p256dh']} {keys['auth']}")


async def test_every_push_is_decrypted_and_its_payload_digest_recorded(sim: Simulator) -> None:
    """Given 60 handed-out subscriptions (a fifth dead), the real provider sends one alert:
    the live ones are delivered and decrypted to exactly the rendered payload, the dead ones
    come back invalid (410)."""
    subs = subscriptions(sim, 60)
    app = AppConfig(name="alpha", vapid_private_key=VAPID, vapid_subject="mailto:ops@example.com")
    settings = Settings(apps=[app], ca_file=sim.ca)
    providers = build_providers(settings, "web")
    note = Notification(
        title="Flood",
        body="Move uphill",
        data={"zone": "3"},
        expires_at=int(time.time()) + 60,
        collapse_id=ALERT,
    )
    try:
        result = await providers.by_app["alpha"].send(
            note, list(range(60)), [wire(s) for s in subs]
        )
    finally:
        await providers.close()
    assert len(result.delivered) + len(result.invalid) == 60 and 0 < len(result.invalid) < 30
    stats = sim.stats(collapse_id=ALERT)
    assert stats["accepted"] == len(result.delivered) and stats["duplicates"] == 0
    digest = hashlib.sha256(webpush.render(note)).hexdigest()
    assert stats["payload_digests"][digest] == len(result.delivered)
    assert stats["rejected"].get("Gone") == len(result.invalid)


def vapid(origin: str, key: str = VAPID, **claims: object) -> str:
    signer = load_key(key)
    body: dict[str, object] = {"aud": origin, "exp": int(time.time()) + 3600, "sub": "mailto:a@b.c"}
    body.update(claims)
    return f"vapid t={jwt.encode(body, signer, algorithm='ES256')}, k={public_key_b64(signer)}"


async def test_bad_requests_are_refused_like_a_push_service(sim: Simulator) -> None:
    sub = subscriptions(sim, 1)[0]
    keys = sub["keys"]
    assert isinstance(keys, dict)
    path = str(sub["endpoint"])[len(sim.url) :]
    good = encrypt(
        b'{"title":"t"}', webpush.b64url_decode(keys["p256dh"]), webpush.b64url_decode(keys["auth"])
    )
    base = {"ttl": "60", "content-encoding": "aes128gcm", "authorization": vapid(sim.url)}
    now = int(time.time())
    cases: list[tuple[dict[str, str], bytes, int, str]] = [
        ({**base, "authorization": ""}, good, 401, "MissingVapid"),
        (
            {**base, "authorization": vapid("https://fcm.googleapis.com")},
            good,
            401,
            "BadJwtAudience",
        ),
        ({**base, "authorization": vapid(sim.url, exp=now - 10)}, good, 401, "ExpiredJwt"),
        ({**base, "authorization": vapid(sim.url, exp=now + 25 * 3600)}, good, 401, "JwtTooLong"),
        ({**base, "authorization": vapid(sim.url, key=OTHER)}, good, 403, "VapidKeyMismatch"),
        ({k: v for k, v in base.items() if k != "ttl"}, good, 400, "MissingTTL"),
        ({**base, "topic": "x" * 33}, good, 400, "BadTopic"),
        ({**base, "urgency": "urgent"}, good, 400, "BadUrgency"),
        ({**base, "content-encoding": "aesgcm"}, good, 400, "BadContentEncoding"),
        (base, good[:-1] + bytes([good[-1] ^ 1]), 400, "DecryptionFailed"),
        (base, good + b"\0" * 4096, 413, "PayloadTooLarge"),
    ]
    # The same token presented under another key must not verify.
    token = vapid(sim.url).split("t=", 1)[1].split(",", 1)[0]
    cases.append(
        (
            {**base, "authorization": f"vapid t={token}, k={public_key_b64(load_key(OTHER))}"},
            good,
            401,
            "BadJwt",
        )
    )
    async with sim.client() as http:
        for headers, body, status, reason in cases:
            answer = await http.post(path, headers=headers, content=body)
            assert (answer.status_code, answer.json()["reason"]) == (status, reason), headers
        answer = await http.post(path, headers=base, content=good)
        assert answer.status_code == 201 and answer.headers["location"]


def test_derived_subscriptions_match_what_the_simulator_decrypts() -> None:
    """A seeder's derivation (seed, n) gives the keys the simulator holds for /push/d<n>."""
    from loadtest.simulators.webpush_keys import derive, web_subscription

    endpoint, keys = web_subscription(3, "https://127.0.0.1:1")(42)
    assert endpoint.endswith("/push/d42")
    sub = derive(3, "d42")
    assert keys == f"{sub.p256dh()} {b64url(sub.auth)}"
