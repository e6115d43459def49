"""Each message kind through real processes (API, expander, senders, the APNs production and
sandbox simulators and the FCM one), checked from what the simulators received: the push
types counted, a sample of the received requests carrying exactly the documented fields,
counts that add up and no duplicates."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtest.stack import Stack
from pushfan.seed import SANDBOX_TOKEN_PREFIX
from tests.fixtures.alerts import running, wait_done

pytestmark = pytest.mark.e2e
DEVICES = 400
SANDBOX_FRACTION = 0.25
IMAGE = "https://img.example.com/sale.png"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, dict[str, str]]]:
    name = f"e2e_kinds_{secrets.token_hex(3)}"
    stack = Stack.create(name, apps=("alpha",))
    scopes = ("alerts:send", "devices:write")
    with running(
        stack, lambda s: s.prepare(DEVICES, sandbox_fraction=SANDBOX_FRACTION, scopes=scopes)
    ) as started:
        yield started


def send(
    s: Stack, headers: dict[str, str], body: dict[str, Any], apns_collapse_id: str = ""
) -> dict[str, Any]:
    """Trigger, wait until done, and return the alert's state plus each simulator's stats
    (the APNs ones under `apns_collapse_id` when the message overrides it)."""
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        created = client.post("/v1/alerts", json=body, headers=headers)
        assert created.status_code == 202, created.text
        alert_id = created.json()["id"]
        state = wait_done(client, alert_id, headers)
    sims = {
        which: s.sim_stats(which, apns_collapse_id or alert_id)
        for which in ("apns", "apns-sandbox")
    }
    sims["fcm"] = s.sim_stats("fcm", alert_id)
    counts = state["counts"]
    assert counts["delivered"] + counts["invalid"] + counts["failed"] == counts["audience"]
    assert sum(int(x["accepted"]) for x in sims.values()) == counts["delivered"]
    assert all(x["duplicates"] == 0 for x in sims.values())
    return {"id": alert_id, "counts": counts, **sims}


def only(stats: dict[str, Any], push_type: str) -> list[dict[str, Any]]:
    """The samples, after checking every accepted push had this push type."""
    assert stats["by_push_type"] == {push_type: stats["accepted"]}
    samples: list[dict[str, Any]] = stats["samples"]
    assert samples
    return samples


def test_a_rich_alert_carries_every_documented_field(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    body = {
        "title": "Sale",
        "subtitle": "Today only",
        "body": "50% off",
        "badge": 3,
        "sound": "ping.caf",
        "image": IMAGE,
        "category": "REPLY",
        "thread_id": "promo",
        "interruption_level": "time-sensitive",
        "relevance_score": 0.5,
        "url": "shop://sale",
        "data": {"campaign": "c1"},
    }
    sent = send(s, headers, body)
    assert sent["counts"]["delivered"] == DEVICES and sent["counts"]["invalid"] == 0
    for sample in only(sent["apns"], "alert") + only(sent["apns-sandbox"], "alert"):
        assert sample["headers"]["apns-priority"] == "10"
        assert sample["payload"] == {
            "aps": {
                "alert": {"title": "Sale", "subtitle": "Today only", "body": "50% off"},
                "badge": 3,
                "sound": "ping.caf",
                "thread-id": "promo",
                "category": "REPLY",
                "interruption-level": "time-sensitive",
                "relevance-score": 0.5,
                "mutable-content": 1,
            },
            "campaign": "c1",
            "url": "shop://sale",
            "image_url": IMAGE,
            "alert_id": sent["id"],
        }
    for message in only(sent["fcm"], "notification"):
        assert message["notification"] == {"title": "Sale", "body": "50% off", "image": IMAGE}
        assert message["android"]["notification"] == {
            "sound": "ping.caf",
            "tag": "promo",
            "click_action": "REPLY",
            "notification_count": 3,
        }
        assert message["android"]["priority"] == "HIGH"
        assert message["data"] == {"campaign": "c1", "url": "shop://sale", "alert_id": sent["id"]}


def test_a_silent_push_is_a_background_push_and_an_fcm_data_message(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    sent = send(s, headers, {"content_available": True, "data": {"sync": "inbox"}})
    for sample in only(sent["apns"], "background"):
        assert sample["headers"]["apns-push-type"] == "background"
        assert sample["headers"]["apns-priority"] == "5"
        assert sample["payload"] == {
            "aps": {"content-available": 1},
            "sync": "inbox",
            "alert_id": sent["id"],
        }
    for message in only(sent["fcm"], "data"):
        assert "notification" not in message
        assert message["android"]["priority"] == "NORMAL"
        assert message["data"] == {"sync": "inbox", "alert_id": sent["id"]}


def test_a_data_only_message_is_data_on_fcm_and_an_alert_on_apns(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    body = {"title": "New", "body": "Hi", "data_only": True, "data": {"chat": "7"}}
    sent = send(s, headers, body)
    for message in only(sent["fcm"], "data"):
        assert set(message) == {"android", "data"}
        assert message["data"] == {
            "chat": "7",
            "title": "New",
            "body": "Hi",
            "alert_id": sent["id"],
        }
    for sample in only(sent["apns"], "alert"):
        assert sample["payload"]["aps"] == {
            "alert": {"title": "New", "body": "Hi"},
            "sound": "default",
        }


def test_overrides_reach_the_wire(stack: tuple[Stack, dict[str, str]]) -> None:
    s, headers = stack
    body = {
        "title": "Goal",
        "body": "2-1",
        "apns": {"priority": 5, "collapse_id": "match-7", "aps": {"sound": "goal.caf"}},
        "android": {
            "priority": "NORMAL",
            "ttl": "600s",
            "notification": {"channel_id": "scores", "color": "#00aa00", "sticky": True},
        },
    }
    # apns-collapse-id is overridden, so the APNs simulators count these under it.
    sent = send(s, headers, body, apns_collapse_id="match-7")
    for sample in only(sent["apns"], "alert"):
        assert sample["headers"]["apns-priority"] == "5"
        assert sample["headers"]["apns-collapse-id"] == "match-7"
        assert sample["payload"]["aps"] == {
            "alert": {"title": "Goal", "body": "2-1"},
            "sound": "goal.caf",
        }
    for message in only(sent["fcm"], "notification"):
        assert message["android"] == {
            "priority": "NORMAL",
            "ttl": "600s",
            "collapse_key": sent["id"],
            "notification": {"channel_id": "scores", "color": "#00aa00", "sticky": True},
        }


def test_sandbox_devices_are_sent_to_the_sandbox_host_only(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    """Seeded sandbox devices reach the sandbox simulator; a development-build token
    registered as production is refused there (BadDeviceToken) and deactivated."""
    s, headers = stack
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        wrong = SANDBOX_TOKEN_PREFIX + secrets.token_hex(28)
        registered = client.post(
            "/v1/devices",
            json={"platform": "ios", "app": "alpha", "token": wrong, "tags": ["wrong-env"]},
            headers=headers,
        )
        assert registered.status_code == 201
        right = client.post(
            "/v1/devices",
            json={
                "platform": "ios",
                "app": "alpha",
                "token": SANDBOX_TOKEN_PREFIX + secrets.token_hex(28),
                "tags": ["wrong-env"],
                "apns_environment": "sandbox",
            },
            headers=headers,
        )
        assert right.status_code == 201
    body = {"title": "t", "body": "b", "audience": {"platforms": ["ios"]}}
    sent = send(s, headers, body)
    ios = sent["counts"]["audience"]
    sandbox = int(sent["apns-sandbox"]["accepted"])
    assert 0.15 * ios < sandbox < 0.35 * ios
    assert int(sent["apns"]["accepted"]) + sandbox == ios - 1
    assert sent["counts"]["invalid"] == 1
    assert sent["apns"]["rejected"] == {"BadDeviceToken": 1}
    assert int(sent["fcm"]["accepted"]) == 0
