"""A targeted push to browsers through real processes (the Web Push simulator, the API, the
expander and a web sender): one browser named by its endpoint gets the rich message, decrypted
by the simulator exactly as documented; one named by its PushSubscription has passed its
expirationTime, so it is counted invalid, never sent to, and deactivated."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from loadtest.simulators.webpush_keys import derive
from loadtest.stack import WEB_SIM_SEED, Stack
from pushfan import webpush
from pushfan.content import Message
from pushfan.messages import Notification
from tests.fixtures.alerts import wait_done

pytestmark = pytest.mark.e2e
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
    stack = Stack.create(f"webt_{secrets.token_hex(3)}", apps=("alpha",), web=True)
    try:
        scopes = ("notifications:send", "devices:write", "alerts:send")
        key = stack.prepare(20, web_fraction=0.5, scopes=scopes)
        stack.start_simulators()
        stack.start_api()
        stack.start_workers(senders={"web": 1})
        yield stack, {"authorization": f"Bearer {key}"}
    finally:
        stack.stop()
        stack.cleanup()


def test_a_rich_push_by_endpoint_arrives_and_an_expired_subscription_is_dropped(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    assert s.web_url
    client = httpx.Client(base_url=s.api_url, timeout=10)
    fresh = derive(WEB_SIM_SEED, "fresh").as_json(s.web_url)
    ending = {
        **derive(WEB_SIM_SEED, "ending").as_json(s.web_url),
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
    assert web["payload_digests"] == {hashlib.sha256(webpush.render(sent)).hexdigest(): 1}
    [sample] = web["payload_samples"].values()
    assert orjson.loads(sample) == {
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
