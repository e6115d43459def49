"""POST /v1/notifications to browsers: a web target named by its subscription's endpoint or
by the whole PushSubscription, checked as a registration is, resolved to the registered
device and sent with its registered keys."""

from __future__ import annotations

from typing import Any

import aio_pika
import httpx

from pushfan.db import Pool
from pushfan.messages import TargetSpec, TokenTarget, decode_expand
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.webpush import split_wire_token
from pushfan.workers.targets import resolve
from tests.fixtures.api import bearer, queued
from tests.fixtures.services import drain
from tests.webpush.keys import Browser
from tests.webpush.ssrf_table import ACCEPTED

PUSH = {"title": "Your order shipped", "body": "Arrives Tuesday"}
SPELLED = "https://FCM.googleapis.com:443/fcm/send/order-42"
ENDPOINT = "https://fcm.googleapis.com/fcm/send/order-42"


def to(*targets: dict[str, Any]) -> dict[str, Any]:
    return {**PUSH, "to": {"tokens": list(targets)}}


async def test_web_targets_by_endpoint_and_by_subscription_are_queued_normalised(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    key = await bearer(pool, "notifications:send")
    sub = Browser.new().subscription(ACCEPTED[1])
    body = to(
        {"platform": "web", "app": "alpha", "token": SPELLED},
        {"platform": "web", "app": "alpha", "subscription": sub},
    )
    response = await api.post("/v1/notifications", json=body, headers=key)
    assert response.status_code == 202, response.text
    (message,) = await drain(channel, QueueNames.for_prefix(settings.queue_prefix).expand)
    assert decode_expand(message).targets == TargetSpec(
        tokens=[TokenTarget("web", "alpha", ENDPOINT), TokenTarget("web", "alpha", ACCEPTED[1])]
    )


async def test_bad_web_targets_are_422_and_nothing_is_queued(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    key = await bearer(pool, "notifications:send")
    sub = Browser.new().subscription(ACCEPTED[1])
    bad_key = {**sub, "keys": {"p256dh": "BA" + "A" * 85, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}
    web: dict[str, Any] = {"platform": "web", "app": "alpha"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**web, "token": "https://169.254.169.254/latest/meta-data/"}, "private or loopback"),
        ({**web, "token": "https://evil.example/push"}, "not a known push service"),
        ({**web, "subscription": bad_key}, "not a point on P-256"),
        ({**web, "token": ENDPOINT, "subscription": sub}, "one of them"),
        (web, "one of them"),
        ({"platform": "ios", "app": "alpha", "subscription": sub}, "no subscription"),
    ]
    for target, reason in cases:
        response = await api.post("/v1/notifications", json=to(target), headers=key)
        assert response.status_code == 422 and reason in response.text, (target, response.text)
    assert await queued(channel, settings) == 0


async def test_a_web_target_resolves_to_the_registered_device_and_its_keys(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    """The expander finds the browser by the endpoint it registered with: its wire token
    carries the registered keys."""
    browser = Browser.new()
    device = {"platform": "web", "app": "alpha", "subscription": browser.subscription(ENDPOINT)}
    writer = await bearer(pool, "devices:write")
    registered = await api.post("/v1/devices", json=device, headers=writer)
    assert registered.status_code == 201, registered.text
    spec = TargetSpec(tokens=[TokenTarget("web", "alpha", ENDPOINT)])
    [target] = await resolve(pool, spec, page_size=10)
    assert target.id == registered.json()["id"] and target.platform == "web"
    endpoint, _, auth, _ = split_wire_token(target.token)
    assert (endpoint, auth) == (ENDPOINT, browser.auth)
