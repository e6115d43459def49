"""The dashboard's JSON endpoints: estimate, send (the REST trigger's path), progress list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aio_pika
import httpx

from pushfan import admins, segments
from pushfan.db import Pool
from pushfan.messages import decode_expand
from pushfan.seed import seed_devices
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from tests.fixtures.api import ADMIN_USER, csrf_of, queued, sign_in


async def signed_in(api: httpx.AsyncClient) -> dict[str, str]:
    await sign_in(api)
    return {"x-csrf-token": csrf_of((await api.get("/admin")).text)}


async def test_estimate_counts_the_active_audience(
    api: httpx.AsyncClient, pool: Pool, admin: admins.Admin
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 300, ios_fraction=0.5, apps=["alpha", "beta"])
    await signed_in(api)
    everyone = (await api.get("/admin/api/estimate")).json()
    ios_alpha = (await api.get("/admin/api/estimate?platforms=ios&apps=alpha")).json()
    assert everyone["audience"] == 300 and 0 < ios_alpha["audience"] < 150
    bad = await api.get("/admin/api/estimate?platforms=windows")
    assert bad.status_code == 422
    assert (await api.get("/admin/api/estimate?apps=gamma")).status_code == 422


async def test_send_goes_through_the_rest_trigger_path_as_the_admin(
    api: httpx.AsyncClient,
    pool: Pool,
    admin: admins.Admin,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    headers = {**await signed_in(api), "idempotency-key": "compose-1"}
    alert = {"title": "Storm", "body": "Stay in", "audience": {"platforms": ["ios"]}, "ttl": 60}
    first = await api.post("/admin/api/alerts", json=alert, headers=headers)
    double_click = await api.post("/admin/api/alerts", json=alert, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["id"] == double_click.json()["id"]
    created_by = await pool.fetchval("SELECT created_by FROM alerts")
    assert created_by == f"admin:{ADMIN_USER}"
    expand = QueueNames.for_prefix(settings.queue_prefix).expand
    assert await queued(channel, settings) == 1
    message = await (await channel.declare_queue(expand, passive=True)).get(timeout=5)
    assert message is not None and decode_expand(message.body).kind == "plan"
    listed = (await api.get("/admin/api/alerts")).json()["alerts"]
    assert [a["id"] for a in listed] == [first.json()["id"]]
    assert listed[0]["audience_filter"]["platforms"] == ["ios"]


async def test_refusals_are_the_same_as_the_rest_api(
    api: httpx.AsyncClient,
    admin: admins.Admin,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    headers = await signed_in(api)
    big = {"title": "t", "body": "b", "data": {"k": "v" * 4000}}
    response = await api.post("/admin/api/alerts", json=big, headers=headers)
    assert response.status_code == 422 and "payload is" in response.text
    unknown = await api.post("/admin/api/alerts", json={"title": "t"}, headers=headers)
    assert unknown.status_code == 422
    assert await queued(channel, settings) == 0


async def test_the_page_renders_the_compose_form_and_history(
    api: httpx.AsyncClient, admin: admins.Admin
) -> None:
    await signed_in(api)
    page = (await api.get("/admin")).text
    for needle in ('for="title"', 'for="body"', "Send Global Alert", 'value="alpha"', "History"):
        assert needle in page
    assert (await api.get("/admin/static/admin.js")).status_code == 200


async def test_the_compose_form_schedules_and_the_list_shows_it(
    api: httpx.AsyncClient,
    pool: Pool,
    admin: admins.Admin,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    """The form's Send at field (send_at, what admin.js sends) schedules the alert: nothing
    queued, listed `scheduled` with its time, and its cancel ends it."""
    headers = await signed_in(api)
    assert 'name="send_at"' in (await api.get("/admin")).text
    script = (await api.get("/admin/static/admin.js")).text
    assert "body.send_at" in script and '"scheduled"' in script
    send_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    alert = {"title": "Later", "body": "b", "send_at": send_at}
    created = await api.post("/admin/api/alerts", json=alert, headers=headers)
    assert created.status_code == 202 and created.json()["status"] == "scheduled"
    assert await queued(channel, settings) == 0
    (listed,) = (await api.get("/admin/api/alerts")).json()["alerts"]
    assert listed["status"] == "scheduled" and listed["send_at"] is not None
    cancel = await api.post(f"/admin/api/alerts/{listed['id']}/cancel", headers=headers)
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"


async def test_estimate_takes_a_saved_segment_by_name(
    api: httpx.AsyncClient, pool: Pool, admin: admins.Admin
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 300, ios_fraction=0.5, apps=["alpha", "beta"])
    await segments.create(
        pool,
        "tests",
        "ios-news",
        "",
        {"and": [{"platform": {"eq": "ios"}}, {"tags": {"has": "news"}}]},
        None,
    )
    await signed_in(api)
    got = (await api.get("/admin/api/estimate?segment=ios-news&apps=alpha")).json()
    expected = await pool.fetchval(
        "SELECT count(*) FROM devices "
        "WHERE platform = 'ios' AND app = 'alpha' AND 'news' = ANY(tags)"
    )
    assert 0 < got["audience"] == expected
    assert (await api.get("/admin/api/estimate?segment=nope")).status_code == 422
