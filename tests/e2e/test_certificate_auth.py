"""Certificate-auth apps through the whole stack: API, expander, senders presenting each app's
client certificate (mutual TLS), and the production and sandbox APNs simulators, which check
every push against the certificate's environment and topics.

Three apps: `alpha` uses a token key, `beta` a universal certificate (sandbox and production),
`gamma` a production-only certificate. Every device is delivered except gamma's sandbox
devices: the sandbox host answers those 403 BadCertificateEnvironment, as Apple does, so they
are failed (not retried, and the devices stay active: the token is fine, the sender's
certificate is not)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtest.stack import Stack
from pushfan import db
from pushfan.seed import apns_token
from tests.fixtures.alerts import running, wait_done

pytestmark = pytest.mark.e2e
DEVICES = 300
CERTIFICATES = {"beta": ("sandbox", "production"), "gamma": ("production",)}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, dict[str, str]]]:
    name = f"e2e_cert_{secrets.token_hex(3)}"
    stack = Stack.create(name, apps=("alpha", "beta", "gamma"), certificate_apps=CERTIFICATES)
    with running(
        stack,
        lambda s: s.prepare(
            DEVICES, ios_fraction=1.0, sandbox_fraction=0.3, scopes=("alerts:send", "devices:write")
        ),
    ) as started:
        yield started


async def _devices(s: Stack) -> dict[tuple[str, str, bool], int]:
    conn = await db.connect(s.settings)
    try:
        rows = await conn.fetch(
            "SELECT app, apns_environment, active, count(*) AS n FROM devices"
            " GROUP BY app, apns_environment, active"
        )
    finally:
        await conn.close()
    return {(r["app"], r["apns_environment"], r["active"]): r["n"] for r in rows}


def _send(s: Stack, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        created = client.post("/v1/alerts", json=body, headers=headers)
        assert created.status_code == 202, created.text
        alert_id = created.json()["id"]
        state = wait_done(client, alert_id, headers)
    sims = {which: s.sim_stats(which, alert_id) for which in ("apns", "apns-sandbox")}
    return {"counts": state["counts"], **sims}


def test_certificate_apps_are_delivered_and_a_wrong_environment_certificate_fails(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        for app in ("beta", "gamma"):  # one sandbox device per certificate app, via the API
            device = {
                "platform": "ios",
                "app": app,
                "token": apns_token(sandbox=True),
                "apns_environment": "sandbox",
            }
            registered = client.post("/v1/devices", json=device, headers=headers)
            assert registered.status_code == 201, registered.text
    before = asyncio.run(_devices(s))
    sandbox = {app: before.get((app, "sandbox", True), 0) for app in ("alpha", "beta", "gamma")}
    assert all(n > 0 for n in sandbox.values()), before
    total = sum(before.values())

    sent = _send(s, headers, {"title": "t", "body": "b", "audience": {"platforms": ["ios"]}})

    counts = sent["counts"]
    assert counts["audience"] == total
    assert counts["failed"] == sandbox["gamma"]
    assert counts["invalid"] == 0 and counts["delivered"] == total - sandbox["gamma"]
    production, development = sent["apns"], sent["apns-sandbox"]
    assert int(production["accepted"]) + int(development["accepted"]) == counts["delivered"]
    assert int(development["accepted"]) == sandbox["alpha"] + sandbox["beta"]
    assert production["duplicates"] == development["duplicates"] == 0
    assert development["rejected"] == {"BadCertificateEnvironment": sandbox["gamma"]}
    assert production["rejected"] == {}
    topics = {x["headers"]["apns-topic"] for x in production["samples"] + development["samples"]}
    assert topics <= {"com.example.alpha", "com.example.beta", "com.example.gamma"}
    # The refused devices' tokens are good: nothing was deactivated.
    assert asyncio.run(_devices(s)) == before
