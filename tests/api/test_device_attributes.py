"""Registration's attributes, versions and last_seen; POST /seen; the stale-token policy."""

from __future__ import annotations

import httpx
import pytest

from pushfan import stale
from pushfan.db import Pool
from pushfan.versions import version_key
from tests.fixtures.api import bearer

IOS = {"platform": "ios", "app": "alpha", "token": "ab" * 32}


@pytest.fixture
async def key(pool: Pool) -> dict[str, str]:
    return await bearer(pool, "devices:write")


async def test_registration_stores_versions_attributes_and_marks_seen(
    api: httpx.AsyncClient, key: dict[str, str], pool: Pool
) -> None:
    body = {
        **IOS,
        "app_version": "5.10.1",
        "os_version": "17.4",
        "attributes": {"plan": "pro", "age": 31, "score": 2.5, "beta": True},
    }
    response = await api.post("/v1/devices", json=body, headers=key)
    assert response.status_code == 201, response.text
    device_id = response.json()["id"]
    await pool.execute("UPDATE devices SET last_seen = now() - interval '40 days'")
    again = await api.post(
        "/v1/devices", json={**body, "attributes": {"plan": "free"}}, headers=key
    )
    assert again.status_code == 200
    row = await pool.fetchrow("SELECT *, now() - last_seen AS age FROM devices")
    assert row["id"] == device_id
    assert row["app_version_key"] == version_key("5.10.1") > version_key("5.9.9")  # type: ignore[operator]
    assert row["os_version"] == "17.4" and row["os_version_key"] == version_key("17.4")
    assert row["attributes"] == '{"plan": "free"}'  # replaced, like tags
    assert row["age"].total_seconds() < 60  # re-registration marks the device seen


@pytest.mark.parametrize(
    "attributes",
    [
        {"nested": {"a": 1}},
        {"list": [1]},
        {"null": None},
        {"bad key": 1},
        {"huge": 2**60},
        {f"k{n}": n for n in range(33)},
        {f"k{n}": "x" * 200 for n in range(12)},  # over 2048 bytes
    ],
)
async def test_bad_attributes_are_a_422(
    api: httpx.AsyncClient, key: dict[str, str], attributes: dict[str, object]
) -> None:
    response = await api.post("/v1/devices", json={**IOS, "attributes": attributes}, headers=key)
    assert response.status_code == 422, response.text


async def test_seen_refreshes_last_seen_and_404s_for_unknown(
    api: httpx.AsyncClient, key: dict[str, str], pool: Pool
) -> None:
    device_id = (await api.post("/v1/devices", json=IOS, headers=key)).json()["id"]
    await pool.execute("UPDATE devices SET last_seen = now() - interval '40 days'")
    response = await api.post(f"/v1/devices/{device_id}/seen", headers=key)
    assert response.status_code == 204
    age = await pool.fetchval("SELECT extract(epoch FROM now() - last_seen) FROM devices")
    assert age < 60
    assert (await api.post("/v1/devices/999999/seen", headers=key)).status_code == 404
    assert (await api.post(f"/v1/devices/{device_id}/seen")).status_code == 401


async def test_stale_policy_deactivates_only_unseen_devices_in_batches(pool: Pool) -> None:
    """Given 25 devices unseen for 100 days and 5 seen yesterday, a 90-day policy run in
    batches of 4 deactivates exactly the 25."""
    await pool.execute(
        """
        INSERT INTO devices (platform, app, token, last_seen)
        SELECT 'android', 'alpha', 'token-' || n || repeat('x', 40),
               now() - make_interval(days => CASE WHEN n <= 25 THEN 100 ELSE 1 END)
        FROM generate_series(1, 30) AS n
        """
    )
    assert await stale.deactivate_stale(pool, 90, batch=4) == 25
    rows = await pool.fetch("SELECT active, deactivated_at IS NOT NULL AS dead FROM devices")
    assert sum(not r["active"] and r["dead"] for r in rows) == 25
    assert await stale.deactivate_stale(pool, 90, batch=4) == 0
    assert await stale.deactivate_stale(pool, 0) == 0  # 0 disables the policy
