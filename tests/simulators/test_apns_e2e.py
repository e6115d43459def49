"""The APNs simulator, started as a process, driven over TLS by httpx and aioapns."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aioapns import APNs, NotificationRequest
from aioapns.connection import APNsProductionClientProtocol

from loadtest.credentials import ApnsCredentials, write_apns_key
from loadtest.simulators.tls import client_context
from tests.fixtures.simulators import Simulator, apns_argv, provider_token

TOPIC = "com.example.app"
BODY = json.dumps({"aps": {"alert": {"title": "Hi", "body": "there"}}}).encode()
HUGE_BODY = json.dumps({"aps": {"alert": "x" * 5000}}).encode()


def device(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture(scope="module")
def apns(simulators: Callable[..., Simulator], apns_creds: ApnsCredentials) -> Simulator:
    return simulators(apns_argv(apns_creds, "--topic", TOPIC, "--topic", "com.example.voip"))


def headers(creds: ApnsCredentials, **extra: str) -> dict[str, str]:
    base = {"authorization": f"bearer {provider_token(creds)}", "apns-topic": TOPIC}
    base.update({name.replace("_", "-"): value for name, value in extra.items()})
    return {name: value for name, value in base.items() if value != ""}


async def test_accepts_a_push_and_echoes_apns_id(
    apns: Simulator, apns_creds: ApnsCredentials
) -> None:
    apns_id = str(uuid.uuid4())
    async with apns.client() as http:
        answer = await http.post(
            f"/3/device/{device(1)}",
            content=BODY,
            headers=headers(
                apns_creds,
                apns_id=apns_id,
                apns_push_type="alert",
                apns_priority="10",
                apns_expiration="0",
                apns_collapse_id="echo",
            ),
        )
    assert answer.http_version == "HTTP/2"
    assert (answer.status_code, answer.content) == (200, b"")
    assert answer.headers["apns-id"] == apns_id


async def test_generates_apns_id_when_absent(apns: Simulator, apns_creds: ApnsCredentials) -> None:
    async with apns.client() as http:
        answer = await http.post(
            f"/3/device/{device(2)}", content=BODY, headers=headers(apns_creds)
        )
    assert answer.status_code == 200
    uuid.UUID(answer.headers["apns-id"])


def other_key_token(creds: ApnsCredentials, folder: Path) -> str:
    other = write_apns_key(folder)
    return provider_token(
        ApnsCredentials(other.key_file, other.public_key_file, creds.key_id, creds.team_id)
    )


def stale_token(creds: ApnsCredentials, folder: Path) -> str:
    return f"bearer {provider_token(creds, time.time() - 3700)}"


def other_key(creds: ApnsCredentials, folder: Path) -> str:
    return f"bearer {other_key_token(creds, folder)}"


# Each case changes one part of a valid request: a header ("" removes it), or the request's
# ":method", ":path" or ":body"; a callable value is computed from the credentials.
@pytest.mark.parametrize(
    ("case", "status", "reason", "change"),
    [
        ("no_auth", 403, "MissingProviderToken", {"authorization": ""}),
        ("garbage_auth", 403, "InvalidProviderToken", {"authorization": "bearer not-a-jwt"}),
        ("wrong_key", 403, "InvalidProviderToken", {"authorization": other_key}),
        ("stale_iat", 403, "ExpiredProviderToken", {"authorization": stale_token}),
        ("no_topic", 400, "MissingTopic", {"apns-topic": ""}),
        ("other_topic", 400, "TopicDisallowed", {"apns-topic": "com.example.stranger"}),
        ("priority_7", 400, "BadPriority", {"apns-priority": "7"}),
        ("long_collapse_id", 400, "BadCollapseId", {"apns-collapse-id": "x" * 65}),
        ("bad_apns_id", 400, "BadMessageId", {"apns-id": "not-a-uuid"}),
        ("bad_expiration", 400, "BadExpirationDate", {"apns-expiration": "tomorrow"}),
        ("bad_push_type", 400, "InvalidPushType", {"apns-push-type": "shout"}),
        ("empty_body", 400, "PayloadEmpty", {":body": b""}),
        ("huge_body", 413, "PayloadTooLarge", {":body": HUGE_BODY}),
        ("no_aps", 400, "BadPayload", {":body": b'{"alert": "hi"}'}),
        ("short_token", 400, "BadDeviceToken", {":path": "/3/device/abc123"}),
        ("get", 405, "MethodNotAllowed", {":method": "GET"}),
        ("bad_path", 404, "BadPath", {":path": "/3/devices/" + device(3)}),
    ],
)
async def test_refusals(
    apns: Simulator,
    apns_creds: ApnsCredentials,
    tmp_path: Path,
    case: str,
    status: int,
    reason: str,
    change: dict[str, Any],
) -> None:
    """Each malformed request gets Apple's status and `{"reason": ...}` body."""
    request: dict[str, Any] = {
        ":method": "POST",
        ":path": f"/3/device/{device(3)}",
        ":body": BODY,
        **headers(apns_creds),
    }
    for part, value in change.items():
        request[part] = value(apns_creds, tmp_path) if callable(value) else value
    method, path, body = request.pop(":method"), request.pop(":path"), request.pop(":body")
    sent = {name: value for name, value in request.items() if value != ""}
    async with apns.client() as http:
        answer = await http.request(method, path, content=body or None, headers=sent)
    assert answer.status_code == status
    assert answer.json() == {"reason": reason}


async def test_collapse_id_of_64_bytes_is_fine(
    apns: Simulator, apns_creds: ApnsCredentials
) -> None:
    async with apns.client() as http:
        answer = await http.post(
            f"/3/device/{device(4)}",
            content=BODY,
            headers=headers(apns_creds, apns_collapse_id="x" * 64),
        )
    assert answer.status_code == 200


async def test_stats_count_devices_and_duplicates_per_collapse_id(
    apns: Simulator, apns_creds: ApnsCredentials
) -> None:
    """Given alert `dup-check` sent to 5 devices and again to 2 of them."""
    sent = headers(apns_creds, apns_collapse_id="dup-check")
    async with apns.client() as http:
        for i in [*range(10, 15), 10, 11]:
            assert (
                await http.post(f"/3/device/{device(i)}", content=BODY, headers=sent)
            ).status_code == 200
    stats = apns.stats(collapse_id="dup-check")
    assert stats["by_collapse_id"] == {
        "dup-check": {"accepted": 7, "distinct": 5, "duplicates": 2, "duplicated_tokens": 2}
    }


class LocalProtocol(APNsProductionClientProtocol):
    APNS_SERVER = "127.0.0.1"
    APNS_PORT = 0  # set per test from the simulator's URL


async def test_aioapns_sends_through_the_simulator(
    apns: Simulator, apns_creds: ApnsCredentials
) -> None:
    """A real APNs client library works against the simulator by changing host and port."""
    protocol = type("Protocol", (LocalProtocol,), {"APNS_PORT": httpx.URL(apns.url).port})
    client = APNs(
        key=apns_creds.key_file.read_text(),
        key_id=apns_creds.key_id,
        team_id=apns_creds.team_id,
        topic=TOPIC,
        ssl_context=client_context(apns.ca),
    )
    client.pool.protocol_class = protocol
    try:
        results = [
            await client.send_notification(
                NotificationRequest(
                    device(20 + i), {"aps": {"alert": "hello"}}, collapse_key="via-aioapns"
                )
            )
            for i in range(3)
        ]
        bad = await client.send_notification(NotificationRequest("abc", {"aps": {}}))
    finally:
        client.pool.close()
    assert all(result.is_successful for result in results)
    assert (bad.status, bad.description) == ("400", "BadDeviceToken")
    assert apns.stats(collapse_id="via-aioapns")["accepted"] == 3
