"""Locust users for pushfan's REST surface: what apps and other systems do all day.

Weights follow what a deployment sees: every app start registers or refreshes a device token
(the bulk of the traffic), systems poll the status of what they sent, targeted notifications
go to a few devices, and global alerts are rare (here with an audience of a handful of
devices, so the run measures the API rather than the fan-out). Every request carries the
API key; every answer's status code and JSON shape are checked, anything else is a failure.

Each task has a tag (devices, status, notifications, alerts): `run_locust.py --tags
notifications` runs one kind of request alone, to see what it costs (status needs a trigger
tag beside it, or it has nothing to poll).

Run through `loadtest/run_locust.py` (which starts the stack and seeds what this file
expects); options come from the command line or `LOADTEST_*` variables:
`--api-key`, `--app`, `--few-tag` (tag of the alert audience), `--device-ids lo-hi`
(targets of notifications), `--user-rate` (requests/s per user).
"""

from __future__ import annotations

import json
import os
import random
import urllib.request
import uuid
from collections import deque
from typing import Any

from locust import FastHttpUser, constant_throughput, events, tag, task
from locust.env import Environment
from locust.exception import RescheduleTaskImmediately

ALERT_STATES = {"queued", "expanding", "sending", "done", "cancelled"}
COUNT_KEYS = {"audience", "delivered", "invalid", "failed", "expired", "pending"}
TAGS = ("news", "sports", "weather", "offers")  # never the few-tag: keeps alert audiences small

# Set once at test start: whether the API serves POST /v1/notifications (it may not yet).
_features: dict[str, bool] = {"notifications": False}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--api-key", env_var="LOADTEST_API_KEY", default="", help="Bearer key")
    parser.add_argument("--app", env_var="LOADTEST_APP", default="demo")
    parser.add_argument("--few-tag", env_var="LOADTEST_FEW_TAG", default="loadtest-few")
    parser.add_argument("--device-ids", env_var="LOADTEST_DEVICE_IDS", default="1-1000")
    parser.add_argument("--user-rate", env_var="LOADTEST_USER_RATE", type=float, default=10.0)


@events.test_start.add_listener
def _probe_routes(environment: Environment, **_: Any) -> None:
    """Enable the notifications task only when the API's OpenAPI schema has the route."""
    try:
        with urllib.request.urlopen(f"{environment.host}/openapi.json", timeout=10) as answer:
            paths = json.load(answer).get("paths", {})
    except OSError:
        paths = {}
    _features["notifications"] = "post" in paths.get("/v1/notifications", {})
    state = "enabled" if _features["notifications"] else "skipped (no such route yet)"
    print(f"loadtest: POST /v1/notifications {state}", flush=True)


def _ios_token() -> str:
    return os.urandom(32).hex()


def _fcm_token() -> str:
    return f"{os.urandom(8).hex()}:APA91b{os.urandom(64).hex()}"


class ApiClient(FastHttpUser):
    """One calling system or app backend, at a steady `--user-rate` requests/s."""

    def wait_time(self) -> float:
        return constant_throughput(self.environment.parsed_options.user_rate)(self)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if not options.api_key:
            raise RuntimeError("no API key: pass --api-key or set LOADTEST_API_KEY")
        self.auth = {"Authorization": f"Bearer {options.api_key}"}
        lo, _, hi = options.device_ids.partition("-")
        self.device_range = (int(lo), int(hi or lo))
        self.alerts: deque[str] = deque(maxlen=20)
        self.notifications: deque[str] = deque(maxlen=20)
        self.tokens: deque[tuple[str, str]] = deque(maxlen=50)

    # -- the traffic ------------------------------------------------------------------------

    @tag("devices")
    @task(10)
    def register_device(self) -> None:
        """A new install (201) or, one time in four, a refresh of a known token (200)."""
        if self.tokens and random.random() < 0.25:
            platform, token = random.choice(self.tokens)
            expected = 200
        else:
            platform = random.choice(("ios", "android"))
            token = _ios_token() if platform == "ios" else _fcm_token()
            expected = 201
        body = {
            "platform": platform,
            "app": self.environment.parsed_options.app,
            "token": token,
            "user_id": f"user-{random.randrange(10**9)}",
            "tags": random.sample(TAGS, 2),
            "locale": "en-US",
        }
        with self.client.post(
            "/v1/devices", json=body, headers=self.auth, catch_response=True
        ) as r:
            if r.status_code != expected:
                r.failure(f"status {r.status_code}, expected {expected}: {r.text[:200]}")
            elif not _shaped(_json(r), {"id": int, "created": bool}):
                r.failure(f"bad body {r.text[:200]}")
            elif expected == 201:
                self.tokens.append((platform, token))

    @tag("status")
    @task(6)
    def poll_status(self) -> None:
        """A system following what it sent: the alert's or notification's status."""
        if self.notifications and random.random() < 0.4:
            path, name = "/v1/notifications/", "/v1/notifications/{id}"
            ident = random.choice(self.notifications)
        elif self.alerts:
            path, name = "/v1/alerts/", "/v1/alerts/{id}"
            ident = random.choice(self.alerts)
        else:
            raise RescheduleTaskImmediately  # nothing sent yet
        with self.client.get(
            f"{path}{ident}", headers=self.auth, name=name, catch_response=True
        ) as r:
            _check_alert(r, 200, ident)

    @tag("notifications")
    @task(3)
    def send_notification(self) -> None:
        """A targeted push to one to three known devices."""
        if not _features["notifications"]:
            raise RescheduleTaskImmediately
        lo, hi = self.device_range
        ids = random.sample(range(lo, hi + 1), min(random.randint(1, 3), hi - lo + 1))
        body = {"title": "Order shipped", "body": "On its way", "to": {"device_ids": ids}}
        with self.client.post(
            "/v1/notifications", json=body, headers=self._trigger_headers(), catch_response=True
        ) as r:
            if _check_alert(r, 202):
                self.notifications.append(_json(r)["id"])

    @tag("alerts")
    @task(1)
    def trigger_alert(self) -> None:
        """A global alert whose audience filter matches only a handful of devices."""
        body = {
            "title": "Service notice",
            "body": "Maintenance tonight from 02:00 to 03:00 UTC",
            "audience": {"tags": [self.environment.parsed_options.few_tag]},
            "ttl": 300,
        }
        with self.client.post(
            "/v1/alerts", json=body, headers=self._trigger_headers(), catch_response=True
        ) as r:
            if _check_alert(r, 202):
                self.alerts.append(_json(r)["id"])

    def _trigger_headers(self) -> dict[str, str]:
        # Systems retry triggers safely with an Idempotency-Key; each new trigger gets one.
        return {**self.auth, "Idempotency-Key": str(uuid.uuid4())}


def _json(r: Any) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def _shaped(body: Any, fields: dict[str, type]) -> bool:
    return isinstance(body, dict) and all(isinstance(body.get(k), t) for k, t in fields.items())


def _check_alert(r: Any, expected: int, ident: str | None = None) -> bool:
    """Mark the response failed unless it is `expected` with an alert's JSON shape."""
    if r.status_code != expected:
        r.failure(f"status {r.status_code}, expected {expected}: {r.text[:200]}")
        return False
    body = _json(r)
    if not _shaped(body, {"id": str, "status": str, "counts": dict}):
        r.failure(f"bad body {r.text[:200]}")
        return False
    if body["status"] not in ALERT_STATES or not COUNT_KEYS <= set(body["counts"]):
        r.failure(f"bad status or counts {r.text[:200]}")
        return False
    if ident is not None and body["id"] != ident:
        r.failure(f"asked for {ident}, got {body['id']}")
        return False
    return True
