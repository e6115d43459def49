"""User lists through the REST API: 10^5 users uploaded in chunks under the body limits,
referenced by id so no request or shard message carries them; a complete list never changes;
an alert's inline user ids travel as a stored list too."""

from __future__ import annotations

import aio_pika
import httpx
import pytest

from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.progress import Progress
from pushfan.settings import Settings
from tests.api.test_segments_api import ALERT, expand, population
from tests.fixtures.api import bearer, queued

TEXT = {"content-type": "text/plain"}
PREVIEW = "/v1/alerts:preview?credentials=false"


@pytest.fixture
async def key(pool: Pool) -> dict[str, str]:
    return await bearer(pool, "alerts:send", "devices:write")


async def new_list(api: httpx.AsyncClient, key: dict[str, str], *chunks: bytes) -> str:
    made = await api.post("/v1/user-lists", json={"name": "buyers"}, headers=key)
    assert made.status_code == 201, made.text
    url = f"/v1/user-lists/{made.json()['id']}"
    for chunk in chunks:
        added = await api.post(f"{url}/users", content=chunk, headers={**key, **TEXT})
        assert added.status_code == 200, added.text
    return url


async def test_a_list_of_100k_users_targets_exactly_its_users_by_reference(
    api: httpx.AsyncClient,
    key: dict[str, str],
    pool: Pool,
    settings: Settings,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
) -> None:
    ids = await population(api, key, pool)
    users = ["u1", "u3", "u6"] + [f"nobody-{n}" for n in range(100_000)]
    chunks = [
        "\n".join(users[start : start + 35_000]).encode() for start in range(0, len(users), 35_000)
    ]
    assert all(len(c) < settings.max_body_bytes for c in chunks)
    url = await new_list(api, key, *chunks, b"u1\r\nu3\n\n")  # repeated ids count once
    listed = (await api.get(url, headers=key)).json()
    assert (listed["users"], listed["complete"]) == (len(users), False)
    list_id = listed["id"]
    body = {**ALERT, "audience": {"user_list": list_id, "exclude_device_ids": [ids["unseen"]]}}
    # Not usable until complete.
    refused = await api.post("/v1/alerts", json=body, headers=key)
    assert refused.status_code == 422 and "not complete" in refused.text
    assert await queued(channel, settings) == 0
    assert (await api.post(f"{url}/complete", headers=key)).json()["complete"] is True
    dry = await api.post(PREVIEW, json=body, headers=key)
    assert dry.json()["audience"] == 2
    assert (await api.post("/v1/alerts", json=body, headers=key)).status_code == 202
    sizes: list[int] = []
    assert await expand(settings, pool, progress, channel, cancels, sizes) == sorted(
        [ids["hit"], ids["old_app"]]
    )
    assert sizes and max(sizes) < 2_000  # the plan and each shard carry the list's id only


async def test_a_complete_list_never_changes_and_an_unfinished_alert_keeps_it(
    api: httpx.AsyncClient, key: dict[str, str], pool: Pool
) -> None:
    url = await new_list(api, key, b"u1\nu2\n")
    appended = await api.post(f"{url}/users", content=b"u\x01x\n", headers={**key, **TEXT})
    assert appended.status_code == 422 and "printable" in appended.text
    json_body = await api.post(f"{url}/users", json=["u3"], headers=key)
    assert json_body.status_code == 415
    assert (await api.get(url, headers=key)).json()["users"] == 2  # nothing of either kept
    await api.post(f"{url}/complete", headers=key)
    late = await api.post(f"{url}/users", content=b"u3\n", headers={**key, **TEXT})
    assert late.status_code == 409
    body = {**ALERT, "audience": {"user_list": url.rsplit("/", 1)[1]}}
    sent = await api.post("/v1/alerts", json=body, headers=key)
    assert sent.status_code == 202, sent.text
    assert (await api.delete(url, headers=key)).status_code == 409
    await api.post(f"/v1/alerts/{sent.json()['id']}/cancel", headers=key)
    assert (await api.delete(url, headers=key)).status_code == 204
    assert await pool.fetchval("SELECT count(*) FROM user_list_members") == 0


async def test_inline_and_listed_users_are_one_or_the_other(
    api: httpx.AsyncClient, key: dict[str, str]
) -> None:
    url = await new_list(api, key, b"u1\n")
    audience = {"user_ids": ["u2"], "user_list": url.rsplit("/", 1)[1]}
    response = await api.post("/v1/alerts", json={**ALERT, "audience": audience}, headers=key)
    assert response.status_code == 422 and "not both" in response.text
    unknown = {"user_list": "00000000-0000-4000-8000-000000000000"}
    response = await api.post("/v1/alerts", json={**ALERT, "audience": unknown}, headers=key)
    assert response.status_code == 422 and "unknown user list" in response.text


async def test_inline_user_ids_travel_as_the_alerts_own_stored_lists(
    api: httpx.AsyncClient,
    key: dict[str, str],
    pool: Pool,
    settings: Settings,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
) -> None:
    """The alert keeps its ids as sent; the expansion messages name two stored lists
    (users, exclusions), stored once however often the trigger is retried."""
    ids = await population(api, key, pool)
    users = ["u1", "u2", "u4"] + [f"nobody-{n}" for n in range(30_000)]
    body = {**ALERT, "audience": {"user_ids": users, "exclude_user_ids": ["u2"]}}
    headers = {**key, "idempotency-key": "inline-1"}
    for _ in range(2):
        assert (await api.post("/v1/alerts", json=body, headers=headers)).status_code == 202
    sizes: list[int] = []
    assert await expand(settings, pool, progress, channel, cancels, sizes) == sorted(
        [ids["hit"], ids["english"]]
    )
    assert max(sizes) < 2_000
    stored = await pool.fetch("SELECT name, users FROM user_lists ORDER BY name")
    assert [(r["name"], r["users"]) for r in stored] == [
        ("exclude_user_ids", 1),
        ("user_ids", len(users)),
    ]
