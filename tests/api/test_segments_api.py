"""Segments through the REST API: expressions and saved segments on alerts, clear 422s,
user targeting with exclusions, and the dry run's audience == the devices the expander
then puts into batches."""

from __future__ import annotations

from typing import Any

import aio_pika
import httpx
import pytest

from pushfan import seed
from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.messages import decode_batch, decode_expand
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.expander import Expander
from tests.fixtures.api import bearer

ALERT = {"title": "Sale", "body": "Today only"}
FR_DE_IOS_52 = {
    "and": [
        {"platform": {"eq": "ios"}},
        {"app_version": {"gte": "5.2"}},
        {"locale": {"language": ["fr", "de"]}},
        {"last_seen": {"within": "30d"}},
    ]
}


@pytest.fixture
async def key(pool: Pool) -> dict[str, str]:
    return await bearer(pool, "alerts:send", "devices:write")


async def register(api: httpx.AsyncClient, key: dict[str, str], n: int, **fields: Any) -> int:
    ios = fields.pop("platform", "ios") == "ios"
    token = f"{n:064x}" if ios else f"fcm-token-{n:040d}"
    body = {"platform": "ios" if ios else "android", "app": "alpha", "token": token, **fields}
    response = await api.post("/v1/devices", json=body, headers=key)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


async def population(api: httpx.AsyncClient, key: dict[str, str], pool: Pool) -> dict[str, int]:
    """Six devices; only 'hit' and 'hit_de' match FR_DE_IOS_52."""
    ids = {
        "hit": await register(api, key, 1, locale="fr-CA", app_version="5.10", user_id="u1"),
        "hit_de": await register(api, key, 2, locale="de_DE", app_version="5.2.0", user_id="u2"),
        "old_app": await register(api, key, 3, locale="fr", app_version="5.1.9", user_id="u3"),
        "english": await register(api, key, 4, locale="en-US", app_version="6", user_id="u4"),
        "android": await register(
            api, key, 5, platform="android", locale="fr", app_version="6", user_id="u5"
        ),
        "unseen": await register(api, key, 6, locale="fr", app_version="6", user_id="u6"),
    }
    await pool.execute(
        "UPDATE devices SET last_seen = now() - interval '31 days' WHERE id = $1", ids["unseen"]
    )
    return ids


@pytest.mark.parametrize(
    ("audience", "where"),
    [
        ({"filter": {"app_version": {"gte": "newest"}}}, "$.app_version.gte"),
        ({"filter": {"and": [{"tags": {"has": "a"}}, {"colour": {"eq": 1}}]}}, "$.and[1].colour"),
        ({"filter": {"not": {"not": {"attributes.plan": {"gt": "x"}}}}}, "expected a number"),
        ({"filter": {"or": [{"app": {"eq": "a"}}] * 101}}, "more than 100 nodes"),
        ({"segment": "no-such-segment"}, "unknown segment"),
        ({"user_ids": [""]}, "user_ids"),
    ],
)
async def test_bad_audiences_are_a_422_that_says_where(
    api: httpx.AsyncClient, key: dict[str, str], audience: dict[str, Any], where: str
) -> None:
    for path in ("/v1/alerts", "/v1/alerts:preview"):
        response = await api.post(path, json={**ALERT, "audience": audience}, headers=key)
        assert response.status_code == 422, response.text
        assert where in response.text


async def test_saved_segments_create_list_get_delete(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    body = {"name": "fr-de-ios", "description": "the issue's example", "filter": FR_DE_IOS_52}
    created = await api.post("/v1/segments", json=body, headers=key)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/segments/fr-de-ios"
    assert (await api.post("/v1/segments", json=body, headers=key)).status_code == 409
    bad = {**body, "name": "bad", "filter": {"platform": {"eq": 1}}}
    assert (await api.post("/v1/segments", json=bad, headers=key)).status_code == 422
    got = await api.get("/v1/segments/fr-de-ios", headers=key)
    assert got.json()["filter"] == FR_DE_IOS_52
    listed = await api.get("/v1/segments", headers=key)
    assert [s["name"] for s in listed.json()] == ["fr-de-ios"]
    assert (await api.delete("/v1/segments/fr-de-ios", headers=key)).status_code == 204
    assert (await api.get("/v1/segments/fr-de-ios", headers=key)).status_code == 404
    assert (await api.delete("/v1/segments/fr-de-ios", headers=key)).status_code == 404
    assert (await api.get("/v1/segments")).status_code == 401


async def expand(
    settings: Settings,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
    sizes: list[int] | None = None,
) -> list[int]:
    """Run the expander on the plan the trigger queued; the device ids it batched (and the
    size of each expansion message in `sizes`)."""
    names = QueueNames.for_prefix(settings.queue_prefix)
    small = settings.model_copy(update={"shard_size": 2, "expander_page_size": 1})
    expander = Expander(small, pool, progress, Publisher(channel, 5), cancels)
    expand_queue = await channel.declare_queue(names.expand, passive=True)
    while (message := await expand_queue.get(fail=False, no_ack=True)) is not None:
        task = decode_expand(message.body)
        if sizes is not None:
            sizes.append(len(message.body))
        await (expander.plan(task) if task.kind == "plan" else expander.expand_shard(task))
    ids = []
    for queue in names.send.values():
        q = await channel.declare_queue(queue, passive=True)
        while (message := await q.get(fail=False, no_ack=True)) is not None:
            ids += decode_batch(message.body).device_ids
    return sorted(ids)


async def test_segment_by_name_previewed_then_sent_to_exactly_the_previewed_devices(
    api: httpx.AsyncClient,
    key: dict[str, str],
    pool: Pool,
    settings: Settings,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
) -> None:
    ids = await population(api, key, pool)
    await api.post("/v1/segments", json={"name": "fr-de", "filter": FR_DE_IOS_52}, headers=key)
    body = {**ALERT, "audience": {"segment": "fr-de"}}
    dry = await api.post("/v1/alerts:preview?credentials=false", json=body, headers=key)
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert preview["audience"] == 2
    assert {(b["provider"], b["app"], b["locale"], b["devices"]) for b in preview["by"]} == {
        ("apns", "alpha", "fr-ca", 1),
        ("apns", "alpha", "de-de", 1),
    }
    assert [p["provider"] for p in preview["payloads"]] == ["apns"]
    assert preview["payloads"][0]["payload"]["aps"]["alert"] == {
        "title": "Sale",
        "body": "Today only",
    }
    assert 0 < preview["payloads"][0]["bytes"] < preview["payloads"][0]["limit"]
    assert await expand(settings, pool, progress, channel, cancels) == []  # preview sent nothing
    sent = await api.post("/v1/alerts", json=body, headers=key)
    assert sent.status_code == 202, sent.text
    assert await expand(settings, pool, progress, channel, cancels) == sorted(
        [ids["hit"], ids["hit_de"]]
    )


async def test_user_ids_with_exclusions_expand_to_the_previewed_devices(
    api: httpx.AsyncClient,
    key: dict[str, str],
    pool: Pool,
    settings: Settings,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
) -> None:
    ids = await population(api, key, pool)
    users = [f"u{n}" for n in range(1, 7)] + [f"nobody-{n}" for n in range(20_000)]
    audience = {
        "user_ids": users,
        "exclude_user_ids": ["u2"],
        "exclude_device_ids": [ids["android"]],
        "filter": {"not": {"locale": {"language": "en"}}},
    }
    body = {**ALERT, "audience": audience}
    dry = await api.post("/v1/alerts:preview?credentials=false", json=body, headers=key)
    expected = sorted([ids["hit"], ids["old_app"], ids["unseen"]])
    assert dry.json()["audience"] == len(expected)
    assert (await api.post("/v1/alerts", json=body, headers=key)).status_code == 202
    assert await expand(settings, pool, progress, channel, cancels) == expected


async def test_preview_predicts_duration_from_the_quota(
    api: httpx.AsyncClient, key: dict[str, str], pool: Pool
) -> None:
    """1,000 Android devices at the default FCM quota of 10,000/s: 0.1 s."""
    async with pool.acquire() as conn:
        await seed.seed_devices(conn, 2_000, ios_fraction=0.5, apps=["alpha"])
    body = {**ALERT, "audience": {"platforms": ["android"]}}
    dry = (await api.post("/v1/alerts:preview?credentials=false", json=body, headers=key)).json()
    assert dry["audience"] == 1_000 and dry["seconds_per_provider"] == {"fcm": 0.1}
    assert dry["credentials"] == []


async def test_preview_and_seen_stay_inside_the_keys_apps(
    api: httpx.AsyncClient, key: dict[str, str], pool: Pool
) -> None:
    """A key bound to beta previews only beta's devices, and cannot mark alpha's seen."""
    await population(api, key, pool)  # six devices of app alpha
    beta_only = await bearer(pool, "alerts:send", "devices:write", apps=("beta",))
    dry = await api.post(
        "/v1/alerts:preview?credentials=false", json={**ALERT, "audience": {}}, headers=beta_only
    )
    assert dry.status_code == 200 and dry.json()["audience"] == 0
    named = {**ALERT, "audience": {"apps": ["alpha"]}}
    refused = await api.post("/v1/alerts:preview?credentials=false", json=named, headers=beta_only)
    assert refused.status_code == 403
    device_id = await pool.fetchval("SELECT min(id) FROM devices")
    assert (await api.post(f"/v1/devices/{device_id}/seen", headers=beta_only)).status_code == 404
    assert (await api.post(f"/v1/devices/{device_id}/seen", headers=key)).status_code == 204
