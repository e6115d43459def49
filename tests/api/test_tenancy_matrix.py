"""Tenancy matrix, generated from the app's routes.

Owner X's resources live in app alpha. For every /v1 route, a key of X bound to beta (the
other app) and a key of owner Y bound to alpha (the other owner) must be refused (403 or
404) or stay out of X's data; X's own alpha key must succeed (so the checks can fail), and
an expired key of X gets 401. Every dashboard route declares a role and refuses the roles
below it. A route added without a case here fails the test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from pushfan import admins, alerts, apikeys, outcome_record
from pushfan.db import Pool
from pushfan.messages import TargetSpec, decode_expand
from pushfan.outcomes import Outcome
from pushfan.progress import outcome_args
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers import targets
from tests.fixtures.api import all_routes, client, csrf_of, declared, sign_in

SCOPES = ["alerts:send", "notifications:send", "devices:write"]
TOKEN = "ab" * 32
ALERT = {"title": "t", "body": "b"}
PASSWORD = "a long enough password"


@dataclass
class Tenants:
    api: httpx.AsyncClient
    x_alpha: dict[str, str]  # the rightful key
    x_beta: dict[str, str]  # same owner, other app
    y_alpha: dict[str, str]  # other owner, same app
    expired: dict[str, str]  # X's alpha key, expired
    pool: Pool

    async def call(self, key: dict[str, str], method: str, url: str, **kw: Any) -> httpx.Response:
        return await self.api.request(method, url, headers={**key, **kw.pop("headers", {})}, **kw)

    async def device(self, user_id: str = "u1") -> int:
        body = {"platform": "ios", "app": "alpha", "token": TOKEN, "user_id": user_id}
        response = await self.call(self.x_alpha, "POST", "/v1/devices", json=body)
        assert response.status_code in (200, 201), response.text
        return int(response.json()["id"])

    async def alert(self, idempotency_key: str = "x-1") -> str:
        headers = {"idempotency-key": idempotency_key}
        response = await self.call(self.x_alpha, "POST", "/v1/alerts", json=ALERT, headers=headers)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def notification(self, idempotency_key: str = "x-2") -> str:
        body = {**ALERT, "to": {"tokens": [{"platform": "ios", "app": "alpha", "token": TOKEN}]}}
        headers = {"idempotency-key": idempotency_key}
        response = await self.call(
            self.x_alpha, "POST", "/v1/notifications", json=body, headers=headers
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])


async def _key(pool: Pool, owner: str, app: str) -> dict[str, str]:
    _, plaintext = await apikeys.create(pool, f"{owner}-{app}", SCOPES, owner=owner, apps=[app])
    return {"authorization": f"Bearer {plaintext}"}


@pytest.fixture
async def tenants(app: FastAPI, pool: Pool) -> Tenants:
    expired_key, expired = await apikeys.create(pool, "old", SCOPES, owner="x", apps=["alpha"])
    await pool.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired_key.id,
    )
    return Tenants(
        api=client(app),
        x_alpha=await _key(pool, "x", "alpha"),
        x_beta=await _key(pool, "x", "beta"),
        y_alpha=await _key(pool, "y", "alpha"),
        expired={"authorization": f"Bearer {expired}"},
        pool=pool,
    )


# One case per (method, route): given X's resources, each answers for the three keys.
Case = Callable[[Tenants], Awaitable[None]]


async def register(t: Tenants) -> None:
    await t.device("u1")
    steal = {"platform": "ios", "app": "alpha", "token": TOKEN, "user_id": "u2"}
    assert (await t.call(t.x_beta, "POST", "/v1/devices", json=steal)).status_code == 403
    assert (await t.call(t.y_alpha, "POST", "/v1/devices", json=steal)).status_code == 403
    mine = await t.call(t.x_alpha, "POST", "/v1/devices", json=steal)
    assert mine.status_code == 200, mine.text


async def delete_device(t: Tenants) -> None:
    url = f"/v1/devices/{await t.device()}"
    assert (await t.call(t.x_beta, "DELETE", url)).status_code == 404
    assert (await t.call(t.y_alpha, "DELETE", url)).status_code == 404
    assert (await t.call(t.x_alpha, "DELETE", url)).status_code == 204


async def _trigger(t: Tenants, url: str, body: dict[str, Any], create: Callable[..., Any]) -> None:
    """Another app's key is refused; another owner reusing X's Idempotency-Key gets its own
    alert (neither X's nor a 409); X's retry gets X's alert."""
    mine = await create(f"shared{url}")
    headers = {"idempotency-key": f"shared{url}"}
    other_app = await t.call(t.x_beta, "POST", url, json=body, headers=headers)
    assert other_app.status_code == 403, other_app.text
    other_owner = await t.call(t.y_alpha, "POST", url, json=body, headers=headers)
    assert other_owner.status_code == 202 and other_owner.json()["id"] != mine
    again = await t.call(t.x_alpha, "POST", url, json=body, headers=headers)
    assert again.status_code == 202 and again.json()["id"] == mine


async def create_alert(t: Tenants) -> None:
    await _trigger(t, "/v1/alerts", {**ALERT, "audience": {"apps": ["alpha"]}}, t.alert)
    # An alert without apps is for every app of the key, and no other app.
    response = await t.call(t.x_beta, "POST", "/v1/alerts", json=ALERT)
    assert response.status_code == 202


async def create_notification(t: Tenants) -> None:
    body = {**ALERT, "to": {"tokens": [{"platform": "ios", "app": "alpha", "token": TOKEN}]}}
    await _trigger(t, "/v1/notifications", body, t.notification)


async def _read(t: Tenants, url: str) -> None:
    assert (await t.call(t.x_beta, "GET", url)).status_code == 404
    assert (await t.call(t.y_alpha, "GET", url)).status_code == 404
    assert (await t.call(t.x_alpha, "GET", url)).status_code == 200


async def get_alert(t: Tenants) -> None:
    await _read(t, f"/v1/alerts/{await t.alert()}")


async def get_notification(t: Tenants) -> None:
    await _read(t, f"/v1/notifications/{await t.notification()}")


async def cancel_alert(t: Tenants) -> None:
    url = f"/v1/alerts/{await t.alert()}/cancel"
    assert (await t.call(t.x_beta, "POST", url)).status_code == 404
    assert (await t.call(t.y_alpha, "POST", url)).status_code == 404
    response = await t.call(t.x_alpha, "POST", url)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


async def resume_alert(t: Tenants) -> None:
    alert_id = await t.alert("x-resume")  # one of its own: another case cancels "x-1"
    assert await alerts.pause(t.pool, alert_id, "test")
    url = f"/v1/alerts/{alert_id}/resume"
    assert (await t.call(t.x_beta, "POST", url)).status_code == 404
    assert (await t.call(t.y_alpha, "POST", url)).status_code == 404
    response = await t.call(t.x_alpha, "POST", url)
    assert response.status_code == 200 and response.json()["status"] != "paused"
    assert (await t.call(t.x_alpha, "POST", url)).status_code == 409  # no longer paused


async def device_seen(t: Tenants) -> None:
    url = f"/v1/devices/{await t.device()}/seen"
    assert (await t.call(t.x_beta, "POST", url)).status_code == 404
    assert (await t.call(t.y_alpha, "POST", url)).status_code == 404
    assert (await t.call(t.x_alpha, "POST", url)).status_code == 204


async def _delivered(t: Tenants) -> tuple[str, int]:
    """X's alert with X's device recorded delivered in the outcome record."""
    alert, device = await t.alert(), await t.device()
    sizes, packed = outcome_args({Outcome.DELIVERED: [device]})
    await outcome_record.write_outcomes(t.pool, alert, f"{alert}:0:apns:alpha:0", 0, sizes, packed)
    return alert, device


async def device_outcome(t: Tenants) -> None:
    alert, device = await _delivered(t)
    await _read(t, f"/v1/alerts/{alert}/devices/{device}")


async def list_outcomes(t: Tenants) -> None:
    alert, device = await _delivered(t)
    url = f"/v1/alerts/{alert}/outcomes"
    await _read(t, url)
    mine = await t.call(t.x_alpha, "GET", url)
    assert [i["device_id"] for i in mine.json()["items"]] == [device]
    streamed = await t.call(t.y_alpha, "GET", url, headers={"accept": "application/x-ndjson"})
    assert streamed.status_code == 404


async def alert_report(t: Tenants) -> None:
    alert, _ = await _delivered(t)
    await _read(t, f"/v1/alerts/{alert}/report")


async def follow_up(t: Tenants) -> None:
    alert, _ = await _delivered(t)
    await t.pool.execute("UPDATE alerts SET finished_at = now() WHERE id = $1::uuid", alert)
    url = f"/v1/alerts/{alert}/follow-up"
    assert (await t.call(t.x_beta, "POST", url, json=ALERT)).status_code == 404
    assert (await t.call(t.y_alpha, "POST", url, json=ALERT)).status_code == 404
    assert (await t.call(t.x_alpha, "POST", url, json=ALERT)).status_code == 202


async def post_receipt(t: Tenants) -> None:
    """Only X's publishable key for alpha records a receipt of X's alert by X's device."""
    alert, device = await t.alert(), await t.device()
    body = {"alert_id": alert, "device_id": device, "event": "opened"}
    keys = {}
    for name, owner, app in (
        ("x_alpha", "x", "alpha"),
        ("x_beta", "x", "beta"),
        ("y", "y", "alpha"),
    ):
        _, plaintext = await apikeys.create(
            t.pool, name, ["receipts:write"], owner=owner, apps=[app]
        )
        keys[name] = {"authorization": f"Bearer {plaintext}"}
    assert (await t.call(keys["x_beta"], "POST", "/v1/receipts", json=body)).status_code == 404
    assert (await t.call(keys["y"], "POST", "/v1/receipts", json=body)).status_code == 404
    assert (await t.call(t.x_alpha, "POST", "/v1/receipts", json=body)).status_code == 403
    mine = await t.call(keys["x_alpha"], "POST", "/v1/receipts", json=body)
    assert mine.status_code == 202, mine.text


SEGMENT = {"name": "fr", "filter": {"locale": {"language": "fr"}}}


async def _segment(t: Tenants) -> str:
    """X's segment 'fr' (made once per test: a second POST of X's is a 409)."""
    response = await t.call(t.x_alpha, "POST", "/v1/segments", json=SEGMENT)
    assert response.status_code in (201, 409), response.text
    return "/v1/segments/fr"


async def create_segment(t: Tenants) -> None:
    """Names are per owner: Y saves its own 'fr'; X's other keys share X's (a 409)."""
    await _segment(t)
    assert (await t.call(t.x_beta, "POST", "/v1/segments", json=SEGMENT)).status_code == 409
    own = await t.call(t.y_alpha, "POST", "/v1/segments", json=SEGMENT)
    assert own.status_code == 201, own.text
    await t.call(t.y_alpha, "DELETE", "/v1/segments/fr")


async def list_segments(t: Tenants) -> None:
    await _segment(t)
    assert (await t.call(t.y_alpha, "GET", "/v1/segments")).json() == []
    mine = (await t.call(t.x_alpha, "GET", "/v1/segments")).json()
    assert [s["name"] for s in mine] == ["fr"]


async def get_segment(t: Tenants) -> None:
    url = await _segment(t)
    assert (await t.call(t.y_alpha, "GET", url)).status_code == 404
    assert (await t.call(t.x_alpha, "GET", url)).status_code == 200


async def delete_segment(t: Tenants) -> None:
    url = await _segment(t)
    assert (await t.call(t.y_alpha, "DELETE", url)).status_code == 404
    assert (await t.call(t.x_alpha, "DELETE", url)).status_code == 204


async def preview_alert(t: Tenants) -> None:
    """The dry run is scoped like the trigger; Y cannot use X's segment by name."""
    await t.device()
    url = "/v1/alerts:preview?credentials=false"
    named = {**ALERT, "audience": {"apps": ["alpha"]}}
    assert (await t.call(t.x_beta, "POST", url, json=named)).status_code == 403
    beta = await t.call(t.x_beta, "POST", url, json=ALERT)
    assert beta.status_code == 200 and beta.json()["audience"] == 0
    await _segment(t)
    by_name = {**ALERT, "audience": {"segment": "fr"}}
    assert (await t.call(t.y_alpha, "POST", url, json=by_name)).status_code == 422
    mine = await t.call(t.x_alpha, "POST", url, json=named)
    assert mine.status_code == 200 and mine.json()["audience"] >= 1


async def _user_list(t: Tenants, complete: bool = False) -> str:
    """A new list of X's, holding u1; its URL."""
    made = await t.call(t.x_alpha, "POST", "/v1/user-lists", json={"name": "vip"})
    assert made.status_code == 201, made.text
    url = f"/v1/user-lists/{made.json()['id']}"
    text = {"content-type": "text/plain"}
    added = await t.call(t.x_alpha, "POST", f"{url}/users", content=b"u1\n", headers=text)
    assert added.status_code == 200, added.text
    if complete:
        assert (await t.call(t.x_alpha, "POST", f"{url}/complete")).status_code == 200
    return url


async def create_user_list(t: Tenants) -> None:
    """Y cannot send to (or preview) X's list; X can."""
    await t.device("u1")
    list_id = (await _user_list(t, complete=True)).rsplit("/", 1)[1]
    body = {**ALERT, "audience": {"user_list": list_id}}
    assert (await t.call(t.y_alpha, "POST", "/v1/alerts", json=body)).status_code == 422
    url = "/v1/alerts:preview?credentials=false"
    assert (await t.call(t.y_alpha, "POST", url, json=body)).status_code == 422
    mine = await t.call(t.x_alpha, "POST", url, json=body)
    assert mine.status_code == 200 and mine.json()["audience"] == 1, mine.text


async def get_user_list(t: Tenants) -> None:
    """A list is the owner's, like a segment: every key of X sees it, Y's does not."""
    url = await _user_list(t)
    assert (await t.call(t.y_alpha, "GET", url)).status_code == 404
    assert (await t.call(t.x_beta, "GET", url)).status_code == 200
    assert (await t.call(t.x_alpha, "GET", url)).status_code == 200


async def append_users(t: Tenants) -> None:
    url = f"{await _user_list(t)}/users"
    text = {"content-type": "text/plain"}
    response = await t.call(t.y_alpha, "POST", url, content=b"u9\n", headers=text)
    assert response.status_code == 404
    response = await t.call(t.x_beta, "POST", url, content=b"u2\n", headers=text)
    assert response.status_code == 200 and response.json()["users"] == 2


async def complete_user_list(t: Tenants) -> None:
    url = f"{await _user_list(t)}/complete"
    assert (await t.call(t.y_alpha, "POST", url)).status_code == 404
    assert (await t.call(t.x_alpha, "POST", url)).json()["complete"] is True


async def delete_user_list(t: Tenants) -> None:
    url = await _user_list(t)
    assert (await t.call(t.y_alpha, "DELETE", url)).status_code == 404
    assert (await t.call(t.x_alpha, "DELETE", url)).status_code == 204


CASES: dict[tuple[str, str], Case] = {
    ("POST", "/v1/devices"): register,
    ("DELETE", "/v1/devices/{device_id}"): delete_device,
    ("POST", "/v1/alerts"): create_alert,
    ("GET", "/v1/alerts/{alert_id}"): get_alert,
    ("POST", "/v1/alerts/{alert_id}/cancel"): cancel_alert,
    ("POST", "/v1/alerts/{alert_id}/resume"): resume_alert,
    ("POST", "/v1/notifications"): create_notification,
    ("POST", "/v1/devices/{device_id}/seen"): device_seen,
    ("POST", "/v1/segments"): create_segment,
    ("GET", "/v1/segments"): list_segments,
    ("GET", "/v1/segments/{name}"): get_segment,
    ("DELETE", "/v1/segments/{name}"): delete_segment,
    ("POST", "/v1/alerts:preview"): preview_alert,
    ("GET", "/v1/notifications/{notification_id}"): get_notification,
    ("POST", "/v1/user-lists"): create_user_list,
    ("GET", "/v1/user-lists/{list_id}"): get_user_list,
    ("POST", "/v1/user-lists/{list_id}/users"): append_users,
    ("POST", "/v1/user-lists/{list_id}/complete"): complete_user_list,
    ("DELETE", "/v1/user-lists/{list_id}"): delete_user_list,
    ("GET", "/v1/alerts/{alert_id}/devices/{device_id}"): device_outcome,
    ("GET", "/v1/alerts/{alert_id}/outcomes"): list_outcomes,
    ("GET", "/v1/alerts/{alert_id}/report"): alert_report,
    ("POST", "/v1/alerts/{alert_id}/follow-up"): follow_up,
    ("POST", "/v1/receipts"): post_receipt,
}


def v1_operations(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in all_routes(app)
        if route.path.startswith("/v1")
        for method in sorted(route.methods or ())
    ]


async def test_every_v1_route_keeps_tenants_apart(app: FastAPI, tenants: Tenants) -> None:
    operations = v1_operations(app)
    missing = [op for op in operations if op not in CASES]
    assert not missing, f"routes without a tenancy case: {missing}"
    for operation in operations:
        await CASES[operation](tenants)
    assert len(operations) >= 7


async def test_an_expired_key_gets_401_on_every_route(app: FastAPI, tenants: Tenants) -> None:
    device, alert = await tenants.device(), await tenants.alert()
    for method, path in v1_operations(app):
        url = path.replace("{device_id}", str(device)).replace("{alert_id}", alert)
        url = url.replace("{notification_id}", alert)
        body: dict[str, str] | None = {} if method == "POST" else None
        response = await tenants.call(tenants.expired, method, url, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["detail"] == "this API key expired"


async def test_an_alert_without_apps_reaches_only_the_keys_apps(
    tenants: Tenants, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    """X's alpha key sends to 'everyone': the plan names alpha, so the expander never
    streams beta's devices."""
    alert_id = await tenants.alert()
    queue = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).expand, passive=True
    )
    message = await queue.get(timeout=5)
    assert message is not None
    task = decode_expand(message.body)
    assert task.alert_id == alert_id and task.audience.apps == ["alpha"]


async def test_a_targeted_push_reaches_no_device_of_another_app(
    tenants: Tenants, pool: Pool
) -> None:
    """Device ids are not app-scoped names: a push by X's beta key naming an alpha device id
    resolves to nothing, as if the id were unknown."""
    device = await tenants.device()
    spec = TargetSpec(device_ids=[device])
    assert await targets.resolve(pool, spec, 100, ["beta"]) == []
    assert [t.id for t in await targets.resolve(pool, spec, 100, ["alpha"])] == [device]


# Dashboard: each route's role; the sign-in pages and the dashboard page itself are open
# (the page redirects to sign-in without a session).
DASHBOARD_OPEN = {("GET", "/admin/login"), ("POST", "/admin/login"), ("GET", "/admin")}


async def _signed_in(app: FastAPI, pool: Pool, name: str, role: str) -> httpx.AsyncClient:
    await admins.create(pool, name, PASSWORD, role)
    browser = client(app)
    assert (await sign_in(browser, PASSWORD, name)).status_code == 303
    browser.headers["x-csrf-token"] = csrf_of((await browser.get("/admin")).text)
    return browser


async def test_every_dashboard_route_checks_the_role(app: FastAPI, pool: Pool) -> None:
    """A viewer is refused every route that needs more (403), and admitted to its own."""
    viewer = await _signed_in(app, pool, "watcher", "viewer")
    checked = 0
    routes = [r for r in all_routes(app) if r.path.startswith("/admin")]
    routes.sort(key=lambda r: "logout" in r.path)  # signing out last (and again after each)
    for route in routes:
        for method in sorted(route.methods or ()):
            if (method, route.path) in DASHBOARD_OPEN:
                continue
            if "logout" in route.path:
                viewer = await _signed_in(app, pool, "watcher", "viewer")
            role = declared(route, "role")
            assert role in admins.ROLES, f"{method} {route.path} declares no role"
            url = route.path.replace("{alert_id}", "00000000-0000-0000-0000-000000000000")
            response = await viewer.request(method, url, json={} if method == "POST" else None)
            if role == "viewer":
                assert response.status_code not in (401, 403), (method, route.path)
            else:
                assert response.status_code == 403, (method, route.path, response.text)
            checked += 1
    assert checked >= 5


async def test_only_an_admin_cancels_an_alert_sent_through_the_rest_api(
    app: FastAPI, pool: Pool, tenants: Tenants
) -> None:
    sender = await _signed_in(app, pool, "sender1", "sender")
    boss = await _signed_in(app, pool, "boss", "admin")
    url = f"/admin/api/alerts/{await tenants.alert()}/cancel"
    refused = await sender.post(url)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert (await boss.post(url)).status_code == 200
    own = await sender.post("/admin/api/alerts", json=ALERT)
    assert own.status_code == 202
    assert (await sender.post(f"/admin/api/alerts/{own.json()['id']}/cancel")).status_code == 200
