"""The HTTP/2 transports against the real APNs simulator: HTTP/2 really used, answers read,
the server's stream limit honoured, and only the configured CA trusted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from loadtest.credentials import ApnsCredentials
from loadtest.simulators.tls import ensure_tls_dir
from pushfan.workers.providers.build import build_transport
from pushfan.workers.providers.transport import TransportConfig, TransportError
from tests.fixtures.simulators import Simulator, apns_argv

BODY = b'{"aps":{"alert":"hi"}}'


def headers(creds: ApnsCredentials) -> list[tuple[str, str]]:
    token = jwt.encode(
        {"iss": creds.team_id, "iat": int(time.time())},
        creds.key_file.read_text(),
        "ES256",
        {"kid": creds.key_id},
    )
    return [("authorization", f"bearer {token}"), ("apns-topic", "com.example.alpha")]


@pytest.fixture(scope="module")
def apns_sim(
    simulators: Callable[[list[str]], Simulator], apns_creds: ApnsCredentials
) -> Simulator:
    return simulators(apns_argv(apns_creds))


async def test_http2_is_used_and_every_part_of_the_answer_is_read(
    transport: str, apns_sim: Simulator, apns_creds: ApnsCredentials
) -> None:
    """Given the TLS simulator, a push answers 200 over HTTP/2 with the echoed apns-id, and a
    refused one carries its JSON reason in the body."""
    client = build_transport(transport, TransportConfig(apns_sim.url, apns_sim.ca))  # type: ignore[arg-type]
    try:
        apns_id = "0f5d6a52-6f0e-4a53-9d1e-2a4a1f0c9b11"
        ok = await client.post(
            "/3/device/" + "a" * 64, [*headers(apns_creds), ("apns-id", apns_id)], BODY
        )
        bad = await client.post("/3/device/nothex", headers(apns_creds), BODY)
    finally:
        await client.close()
    assert (ok.status, ok.http_version, ok.headers.get("apns-id")) == (200, 2, apns_id)
    assert (bad.status, bad.body) == (400, b'{"reason":"BadDeviceToken"}')


async def test_more_requests_than_the_server_allows_streams_all_complete(
    transport: str, apns_sim: Simulator, apns_creds: ApnsCredentials
) -> None:
    """Given one connection and a server advertising MAX_CONCURRENT_STREAMS 1000, 2,500
    requests at once all succeed: the client queues rather than overrunning the limit."""
    config = TransportConfig(apns_sim.url, apns_sim.ca, max_connections=1)
    client = build_transport(transport, config)  # type: ignore[arg-type]
    base = headers(apns_creds)
    try:
        answers = await asyncio.gather(
            *(client.post(f"/3/device/{i:064x}", base, BODY) for i in range(2500))
        )
    finally:
        await client.close()
    assert {a.status for a in answers} == {200}


async def test_a_server_signed_by_another_ca_is_refused(
    transport: str, apns_sim: Simulator, apns_creds: ApnsCredentials, tmp_path: Path
) -> None:
    """Trusting only a different CA, the TLS handshake fails and no answer is invented."""
    other = ensure_tls_dir(tmp_path / "other-ca").ca
    client = build_transport(transport, TransportConfig(apns_sim.url, other, timeout_s=5))  # type: ignore[arg-type]
    try:
        with pytest.raises(TransportError):
            await client.post("/3/device/" + "a" * 64, headers(apns_creds), BODY)
    finally:
        await client.close()
