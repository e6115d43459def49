"""One alert to all three providers through real processes (simulators, API, expander, the
apns, fcm and web senders) and the real services: the counts add up, nothing arrives twice,
and every web payload the Web Push simulator decrypted is exactly what was sent. A targeted
rich push reaches a browser named by its endpoint as the README documents the payload, and
skips (invalid, deactivated) one whose expirationTime has passed."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from loadtest.simulators.faults import is_dead
from loadtest.simulators.webpush_keys import derive
from loadtest.stack import WEB_SIM_SEED, Stack
from pushfan import webpush
from pushfan.content import Message
from pushfan.messages import Notification
from tests.fixtures.alerts import wait_done

pytestmark = pytest.mark.e2e
DEVICES = 3_000
WEB_FRACTION = 0.3
DEAD_FRACTION = 0.05

RICH = {
    "title": "Order 42",
    "subtitle": "Out for delivery",
    "body": "Arrives today",
    "image": "https://cdn.example/van.png",
    "url": "https://shop.example/orders/42",
    "badge": 2,
    "thread_id": "orders",
    "data": {"order": "42"},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, dict[str, str]]]:
    stack = Stack.create(f"web_{secrets.token_hex(3)}", apps=("alpha", "beta"), web=True)
    try:
        scopes = ("alerts:send", "notifications:send", "devices:write")
        key = stack.prepare(DEVICES, web_fraction=WEB_FRACTION, scopes=scopes)
        stack.start_simulators(dead_fraction=DEAD_FRACTION)
        stack.start_api()
        stack.start_workers()
        yield stack, {"authorization": f"Bearer {key}"}
    finally:
        stack.stop()
        stack.cleanup()


def test_one_alert_to_apns_fcm_and_web_adds_up_and_decrypts_to_what_was_sent(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    client = httpx.Client(base_url=s.api_url, timeout=10)
    alert = {"title": "Tornado", "body": "Take shelter", "data": {"zone": "7"}, "ttl": 600}
    created = client.post("/v1/alerts", json=alert, headers=headers)
    assert created.status_code == 202, created.text
    alert_id = created.json()["id"]
    counts = wait_done(client, alert_id, headers, timeout_s=120)["counts"]
    assert counts["audience"] == DEVICES and counts["failed"] == 0
    assert counts["delivered"] + counts["invalid"] == DEVICES
    stats = {p: s.sim_stats(p, alert_id) for p in ("apns", "fcm", "web")}
    assert sum(int(st["accepted"]) for st in stats.values()) == counts["delivered"]
    assert all(st["duplicates"] == 0 for st in stats.values()), stats
    web = stats["web"]
    # Roughly the seeded share of web devices, less the dead ones.
    assert 0.2 * DEVICES < int(web["distinct_tokens"]) < 0.35 * DEVICES
    # Every decrypted payload is the one rendered for this alert, byte for byte.
    sent = webpush.render(
        Notification(title="Tornado", body="Take shelter", data={"zone": "7"}, collapse_id=alert_id)
    )
    assert web["payload_digests"] == {hashlib.sha256(sent).hexdigest(): int(web["accepted"])}
    [sample] = web["payload_samples"].values()
    assert orjson.loads(sample) == {
        "title": "Tornado",
        "body": "Take shelter",
        "data": {"zone": "7"},
        "alert_id": alert_id,
    }


def test_web_only_audience_and_dead_subscriptions_are_deactivated(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    """An alert to `platforms: ["web"]` reaches only browsers; the subscriptions found gone
    (410) are deactivated, so the next web alert's audience leaves them out."""
    s, headers = stack
    client = httpx.Client(base_url=s.api_url, timeout=10)
    body = {"title": "Web", "body": "only", "audience": {"platforms": ["web"]}}
    audiences = []
    for _ in range(2):
        created = client.post("/v1/alerts", json=body, headers=headers)
        alert_id = created.json()["id"]
        state = wait_done(client, alert_id, headers, timeout_s=120)["counts"]
        assert int(s.sim_stats("apns", alert_id)["accepted"]) == 0
        assert int(s.sim_stats("fcm", alert_id)["accepted"]) == 0
        assert int(s.sim_stats("web", alert_id)["accepted"]) == state["delivered"] > 0
        assert state["delivered"] + state["invalid"] == state["audience"]
        audiences.append(state)
    first, second = audiences
    assert second["audience"] == first["audience"] - first["invalid"]
    assert second["invalid"] == 0


def test_web_pushes_go_through_the_retry_ladder_exactly_once() -> None:
    """With a fifth of every provider's answers 500/503 and some 429s, the alert still ends
    with every device delivered once: the web pushes were retried through the delay ladder
    like the others."""
    s = Stack.create(
        f"webf_{secrets.token_hex(3)}",
        web=True,
        extra_env={"PUSHFAN_RETRY_BASE_S": "0.2", "PUSHFAN_RETRY_CAP_S": "2"},
    )
    try:
        key = s.prepare(1_000, web_fraction=0.5)
        s.start_simulators(extra=["--error-fraction", "0.2", "--rate-limit", "400"])
        s.start_api()
        s.start_workers()
        headers = {"authorization": f"Bearer {key}"}
        client = httpx.Client(base_url=s.api_url, timeout=10)
        created = client.post("/v1/alerts", json={"title": "a", "body": "b"}, headers=headers)
        alert_id = created.json()["id"]
        counts = wait_done(client, alert_id, headers, timeout_s=120)["counts"]
        assert counts["delivered"] == counts["audience"] == 1_000, counts
        web = s.sim_stats("web", alert_id)
        assert web["duplicates"] == 0 and int(web["accepted"]) > 400
        assert (
            web["rejected"].get("InternalServerError", 0) + web["rejected"].get("Unavailable", 0)
            > 0
        )
    finally:
        s.stop()
        s.cleanup()


def live_id(prefix: str) -> str:
    """A subscription id the simulator does not treat as gone (its --dead-fraction)."""
    return next(
        f"{prefix}-{n}"
        for n in range(100)
        if not is_dead(WEB_SIM_SEED, f"{prefix}-{n}", DEAD_FRACTION)
    )


def test_a_rich_push_by_endpoint_arrives_and_an_expired_subscription_is_dropped(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    assert s.web_url
    client = httpx.Client(base_url=s.api_url, timeout=10)
    fresh = derive(WEB_SIM_SEED, live_id("fresh")).as_json(s.web_url)
    ending = {
        **derive(WEB_SIM_SEED, live_id("ending")).as_json(s.web_url),
        "expirationTime": int((time.time() + 2) * 1000),
    }
    for sub in (fresh, ending):
        device = {"platform": "web", "app": "alpha", "subscription": sub}
        registered = client.post("/v1/devices", json=device, headers=headers)
        assert registered.status_code == 201, registered.text
    time.sleep(2.5)  # the second subscription's expirationTime passes
    to = [
        {"platform": "web", "app": "alpha", "token": fresh["endpoint"]},
        {"platform": "web", "app": "alpha", "subscription": {**ending, "expirationTime": None}},
    ]
    created = client.post("/v1/notifications", json={**RICH, "to": {"tokens": to}}, headers=headers)
    assert created.status_code == 202, created.text
    alert_id = created.json()["id"]
    counts = wait_done(client, alert_id, headers)["counts"]
    assert (counts["audience"], counts["delivered"], counts["invalid"]) == (2, 1, 1), counts
    web = s.sim_stats("web", alert_id)
    assert int(web["accepted"]) == 1 and web["duplicates"] == 0
    message = Message(**RICH)
    sent = Notification(
        title="Order 42",
        body="Arrives today",
        data={"order": "42"},
        collapse_id=alert_id,
        extras=message.extras(),
    )
    digest = hashlib.sha256(webpush.render(sent)).hexdigest()  # digests are the simulator's
    assert web["payload_digests"][digest] == 1  # whole life: this alert's is the one new
    assert orjson.loads(web["payload_samples"][digest]) == {
        "title": "Order 42",
        "body": "Arrives today",
        "subtitle": "Out for delivery",
        "image": "https://cdn.example/van.png",
        "tag": "orders",
        "app_badge": 2,
        "url": "https://shop.example/orders/42",
        "data": {"order": "42"},
        "alert_id": alert_id,
    }
    # The expired subscription was deactivated: a second push finds only the fresh one.
    again = client.post("/v1/notifications", json={**RICH, "to": {"tokens": to}}, headers=headers)
    assert wait_done(client, again.json()["id"], headers)["counts"]["audience"] == 1
