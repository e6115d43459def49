"""The simulators enforce the providers' message rules (push type vs payload, priority vs
push type, aps values, image URL, FCM android field names and types, data values as strings)
and count accepted pushes per push type, with samples, in /_sim/stats."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from loadtest.credentials import ApnsCredentials, FcmCredentials
from loadtest.simulators.apns_rules import payload_refusal
from loadtest.simulators.fcm_message import message_refusal
from tests.fixtures.simulators import (
    PROJECT,
    Simulator,
    access_token,
    apns_argv,
    fcm_argv,
    provider_token,
)

TOPIC = "com.example.app"
ALERT = {"aps": {"alert": {"title": "Hi", "body": "there"}, "sound": "default"}}
SILENT = {"aps": {"content-available": 1}, "sync": "1"}
TOKEN = "x" * 40 + ":APA91b" + "y" * 100


@pytest.mark.parametrize(
    ("payload", "push_type", "priority", "reason"),
    [
        (ALERT, "alert", "10", None),
        (SILENT, "background", "5", None),
        (SILENT, "background", "10", "BadPriority"),
        (SILENT, "background", "1", "BadPriority"),
        ({"aps": {"content-available": 1, "badge": 1}}, "background", "5", "BadPayload"),
        (ALERT, "background", "5", "BadPayload"),
        (SILENT, "alert", "10", "BadPayload"),
        ({"aps": {**ALERT["aps"], "interruption-level": "loud"}}, "alert", "10", "BadPayload"),
        ({"aps": {**ALERT["aps"], "relevance-score": 2}}, "alert", "10", "BadPayload"),
        ({"aps": {**ALERT["aps"], "badge": -1}}, "alert", "10", "BadPayload"),
        ({"aps": {"sound": {"name": "a", "volume": 3}}}, "alert", "1", "BadPayload"),
        ({"aps": {**ALERT["aps"], "colour": "red"}}, "alert", "10", "BadPayload"),
        ({"aps": {"alert": {"headline": "x"}}}, "alert", "10", "BadPayload"),
        ({**ALERT, "image_url": "https://img.example.com/a.png"}, "alert", "10", "BadPayload"),
        (
            {"aps": {**ALERT["aps"], "mutable-content": 1}, "image_url": "http://img.example.com"},
            "alert",
            "10",
            "BadPayload",
        ),
        (
            {"aps": {**ALERT["aps"], "mutable-content": 1}, "image_url": "https://img.example.com"},
            "alert",
            "10",
            None,
        ),
    ],
)
def test_apns_payload_rules(
    payload: dict[str, Any], push_type: str, priority: str, reason: str | None
) -> None:
    assert payload_refusal(payload, push_type, priority) == reason


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"notification": {"title": "t"}, "android": {"priority": "HIGH"}}, None),
        ({"android": {"notification": {"channel_id": "c", "sticky": True}}}, None),
        ({"android": {"notification": {"channelId": "c"}}}, None),  # lowerCamel, as Google
        ({"android": {"notification": {"colour": "#ffffff"}}}, "Unknown name 'colour'"),
        ({"android": {"notification": {"sticky": "yes"}}}, "android.notification.sticky"),
        ({"android": {"notification": {"color": "red"}}}, "android.notification.color"),
        ({"android": {"notification": {"visibility": "HIDDEN"}}}, "visibility"),
        ({"android": {"notification": {"notification_count": -1}}}, "notification_count"),
        ({"android": {"notification": {"image": "http://x.io/a.png"}}}, "image"),
        ({"notification": {"image": "ftp://x.io/a.png"}}, "message.notification.image"),
        ({"notification": {"subtitle": "s"}}, "Unknown name 'subtitle'"),
        ({"android": {"priority": "URGENT"}}, "message.android.priority"),
        ({"android": {"ttl": "3 days"}}, "message.android.ttl"),
        ({"android": {"collapse_key": 7}}, "message.android.collapse_key"),
        ({"data": {"count": 3}}, "TYPE_STRING"),
    ],
)
def test_fcm_message_rules(message: dict[str, Any], says: str | None) -> None:
    refusal = message_refusal({"token": TOKEN, **message})
    if says is None:
        assert refusal is None
    else:
        assert refusal is not None and says in refusal, refusal


async def test_apns_counts_accepted_pushes_per_push_type_with_samples(
    simulators: Callable[..., Simulator], apns_creds: ApnsCredentials
) -> None:
    apns = simulators(apns_argv(apns_creds, "--topic", TOPIC))
    cid = str(uuid.uuid4())
    base = {
        "authorization": f"bearer {provider_token(apns_creds)}",
        "apns-topic": TOPIC,
        "apns-collapse-id": cid,
    }
    async with apns.client() as http:
        for i in range(3):
            answer = await http.post(
                f"/3/device/{i:064x}",
                content=json.dumps(ALERT).encode(),
                headers={**base, "apns-push-type": "alert", "apns-priority": "10"},
            )
            assert answer.status_code == 200
        silent = {**base, "apns-push-type": "background", "apns-priority": "5"}
        answer = await http.post(
            f"/3/device/{9:064x}", content=json.dumps(SILENT).encode(), headers=silent
        )
        assert answer.status_code == 200
        loud = {**silent, "apns-priority": "10"}
        answer = await http.post(
            f"/3/device/{8:064x}", content=json.dumps(SILENT).encode(), headers=loud
        )
        assert (answer.status_code, answer.json()) == (400, {"reason": "BadPriority"})
    stats = apns.stats(collapse_id=cid)
    assert stats["accepted"] == 4
    assert stats["by_push_type"] == {"alert": 3, "background": 1}
    assert stats["rejected"].get("BadPriority", 0) >= 1
    assert stats["samples"][0] == {
        "headers": {
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-collapse-id": cid,
            "apns-topic": TOPIC,
        },
        "payload": ALERT,
    }
    assert stats["samples"][3]["payload"] == SILENT


async def test_fcm_counts_notification_and_data_messages_with_samples(
    simulators: Callable[..., Simulator], fcm_creds: FcmCredentials
) -> None:
    fcm = simulators(fcm_argv(fcm_creds))
    cid = str(uuid.uuid4())
    shown = {"notification": {"title": "t", "body": "b"}, "android": {"collapse_key": cid}}
    data = {"data": {"sync": "1"}, "android": {"collapse_key": cid, "priority": "NORMAL"}}
    async with fcm.client() as http:
        headers = {"authorization": f"Bearer {await access_token(http, fcm_creds)}"}
        path = f"/v1/projects/{PROJECT}/messages:send"
        for i, message in enumerate((shown, shown, data)):
            body = {"message": {"token": f"{i:040d}:APA91b" + "y" * 100, **message}}
            answer = await http.post(path, json=body, headers=headers)
            assert answer.status_code == 200, answer.text
        bad = {"message": {"token": TOKEN, "android": {"notification": {"colour": "red"}}}}
        answer = await http.post(path, json=bad, headers=headers)
        assert answer.status_code == 400 and "colour" in answer.text
    stats = fcm.stats(collapse_id=cid)
    assert stats["by_push_type"] == {"notification": 2, "data": 1}
    assert [s for s in stats["samples"]] == [shown, shown, data]
