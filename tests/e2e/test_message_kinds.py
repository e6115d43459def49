"""Each message kind through real processes (API, expander, senders, the APNs production and
sandbox simulators and the FCM one), checked from what the simulators received: the push
types counted, a sample of the received requests carrying exactly the documented fields,
counts that add up and no duplicates."""

from __future__ import annotations

import secrets
import time
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
PAUSE_AFTER = 20  # the auth pause rule's window (2,000 by default) and the batch size here
REVOKED_DEVICES = 400
PREFETCH = 8  # batches one sender has in flight (the default sender_prefetch)
CANARY = 25


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, dict[str, str]]]:
    name = f"e2e_kinds_{secrets.token_hex(3)}"
    # "revoked": an app whose APNs key the simulators refuse (the pause test, last here: its
    # devices are registered by it, none seeded).
    env = {
        "PUSHFAN_AUTH_PAUSE_AFTER": str(PAUSE_AFTER),
        "PUSHFAN_BATCH_SIZE": str(PAUSE_AFTER),
        "PUSHFAN_ADDRESS_BURST": str(REVOKED_DEVICES + 100),  # it registers them one by one
    }
    stack = Stack.create(name, apps=("alpha", "revoked"), extra_env=env)
    scopes = ("alerts:send", "devices:write")

    def prepare(s: Stack) -> str:
        return s.prepare(DEVICES, sandbox_fraction=SANDBOX_FRACTION, scopes=scopes, apps=("alpha",))

    with running(stack, prepare, revoked=("revoked",)) as started:
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


def _until_paused(client: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (state := client.get(url, headers=headers).json())["status"] != "paused":
        assert state["status"] != "done" and time.monotonic() < deadline, state
        time.sleep(0.1)
    return state


def _refused(s: Stack) -> int:
    return int(s.sim_stats("apns")["rejected"].get("InvalidProviderToken", 0))


def test_revoked_credentials_pause_the_alert_and_resume_completes_it(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    """Every push of the app refused (403 InvalidProviderToken). With a canary of N devices
    the alert pauses after exactly N attempted (cancelled then: the rest counts cancelled).
    Without one it pauses after the rule's window plus the batches in flight, short of its
    audience; nothing more leaves while it is paused; the key fixed, resume sends the rest,
    counts add up, no push twice. Last in this module (it registers the revoked devices)."""
    s, headers = stack
    before = _refused(s)  # the module's other tests meet this refusal too
    with httpx.Client(base_url=s.api_url, timeout=10) as client:
        for n in range(REVOKED_DEVICES):
            device = {"platform": "ios", "app": "revoked", "token": f"{n + 1:064x}"}
            response = client.post("/v1/devices", json=device, headers=headers)
            assert response.status_code in (200, 201)
        alert: dict[str, Any] = {"title": "t", "body": "b", "audience": {"apps": ["revoked"]}}
        canary = {"devices": CANARY, "max_failure_ratio": 0.1}
        created = client.post("/v1/alerts", json={**alert, "canary": canary}, headers=headers)
        assert created.status_code == 202, created.text
        url = f"/v1/alerts/{created.json()['id']}"
        state = _until_paused(client, url, headers)
        assert state["paused_reason"].startswith(f"the canary failed: {CANARY} of {CANARY}")
        time.sleep(1.0)
        assert _refused(s) - before == CANARY
        cancelled = client.post(f"{url}/cancel", headers=headers)
        assert cancelled.status_code == 200
        counts = _until_finished(client, url, headers)["counts"]
        assert (counts["failed"], counts["cancelled"]) == (CANARY, REVOKED_DEVICES - CANARY)
        assert _refused(s) - before == CANARY
        print(f"canary of {CANARY}: paused after {CANARY} pushes attempted")

        created = client.post("/v1/alerts", json=alert, headers=headers)
        assert created.status_code == 202, created.text
        alert_id = created.json()["id"]
        url = f"/v1/alerts/{alert_id}"
        state = _until_paused(client, url, headers)
        assert state["paused_reason"] == "the provider refused authentication"
        time.sleep(1.0)  # in-flight pushes land; nothing else may leave
        attempted = _refused(s) - before - CANARY
        # The window, plus what was already in flight when the first batch was judged.
        assert PAUSE_AFTER <= attempted <= PAUSE_AFTER * (1 + PREFETCH), attempted
        print(f"no canary: paused after {attempted} of {REVOKED_DEVICES} pushes attempted")
        time.sleep(2.7)  # past the held batches' turn on the delay ladder: still held
        assert _refused(s) - before - CANARY == attempted
        s.grant_apns()  # the key fixed
        resumed = client.post(f"{url}/resume", headers=headers)
        assert resumed.status_code == 200 and resumed.json()["status"] != "paused"
        counts = wait_done(client, alert_id, headers)["counts"]
    apns = s.sim_stats("apns", alert_id)
    assert counts["audience"] == REVOKED_DEVICES
    assert (counts["failed"], counts["delivered"]) == (attempted, REVOKED_DEVICES - attempted)
    assert counts["invalid"] == counts["expired"] == counts["cancelled"] == 0
    assert apns["accepted"] == counts["delivered"] and apns["duplicates"] == 0


def _until_finished(client: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (state := client.get(url, headers=headers).json())["finished_at"] is None:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    return state
