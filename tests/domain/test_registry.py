"""The device registry against the real PostgreSQL."""

from __future__ import annotations

import re

from pushfan import registry
from pushfan.db import Pool
from pushfan.messages import AudienceFilter
from pushfan.seed import seed_devices


def device(token: str = "a" * 64, **kw: object) -> registry.DeviceIn:
    base: dict[str, object] = {"platform": "ios", "app": "alpha", "token": token}
    base.update(kw)
    return registry.DeviceIn(**base)  # type: ignore[arg-type]


async def upsert(pool: Pool, new: registry.DeviceIn, owner: str = "default") -> tuple[int, bool]:
    registered = await registry.upsert(pool, new, owner)
    assert registered is not None, "refused"
    return registered


async def test_register_is_idempotent_and_refreshes(pool: Pool) -> None:
    """Registering the same (app, platform, token) twice keeps one row and updates it."""
    first, created = await upsert(pool, device(tags=["news"]))
    again, created_again = await upsert(pool, device(tags=["sports"], user_id="u1"))
    assert created and not created_again and first == again
    row = await pool.fetchrow("SELECT tags, user_id FROM devices WHERE id = $1", first)
    assert row["tags"] == ["sports"] and row["user_id"] == "u1"
    assert await pool.fetchval("SELECT count(*) FROM devices") == 1


async def test_reregistering_reactivates_a_dead_device(pool: Pool) -> None:
    device_id, _ = await upsert(pool, device())
    assert await registry.deactivate(pool, [device_id]) == 1
    assert await registry.deactivate(pool, [device_id]) == 0  # already inactive
    await registry.upsert(pool, device())
    assert await pool.fetchval("SELECT active FROM devices WHERE id = $1", device_id)


async def test_delete(pool: Pool) -> None:
    device_id, _ = await upsert(pool, device())
    assert await registry.delete(pool, device_id)
    assert not await registry.delete(pool, device_id)


async def test_another_owner_cannot_rebind_a_token_to_another_user(pool: Pool) -> None:
    """Given a token owner X registered for u1: owner Y may refresh it for u1 but not bind
    it to u2 (refused, nothing changes); X itself may."""
    device_id, _ = await upsert(pool, device(user_id="u1"), "x")
    assert await registry.upsert(pool, device(user_id="u2"), "y") is None
    assert await pool.fetchval("SELECT user_id FROM devices WHERE id = $1", device_id) == "u1"
    assert await upsert(pool, device(user_id="u1", tags=["t"]), "y") == (device_id, False)
    assert await upsert(pool, device(user_id="u2"), "x") == (device_id, False)
    assert await pool.fetchval("SELECT owner FROM devices WHERE id = $1", device_id) == "x"


async def test_scoped_delete_removes_only_the_owners_devices_of_its_apps(pool: Pool) -> None:
    device_id, _ = await upsert(pool, device(), "x")
    assert not await registry.delete(pool, device_id, owner="y", apps=["alpha"])
    assert not await registry.delete(pool, device_id, owner="x", apps=["beta"])
    assert await registry.delete(pool, device_id, owner="x", apps=["alpha"])


async def test_keyset_stream_pages_cover_the_range_once_and_skip_inactive(pool: Pool) -> None:
    """Pages are bounded, ordered, cover [lo, hi) exactly once, and skip inactive devices."""
    async with pool.acquire() as conn:
        await seed_devices(conn, 1_234, apps=["alpha", "beta"])
    await registry.deactivate(pool, [5, 6, 7])
    seen: list[int] = []
    async for page in registry.stream_targets(pool, 1, 1_001, AudienceFilter(), page_size=100):
        assert len(page) <= 100
        seen += [t.id for t in page]
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert seen == [i for i in range(1, 1_001) if i not in (5, 6, 7)]


async def test_stream_applies_the_audience_filter(pool: Pool) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 600, apps=["alpha", "beta"])
    audience = AudienceFilter(platforms=["android"], apps=["beta"], tags=["news"])
    got = [t async for page in registry.stream_targets(pool, 1, 601, audience, 50) for t in page]
    expected = await pool.fetchval(
        "SELECT count(*) FROM devices WHERE platform = 'android' AND app = 'beta' "
        "AND 'news' = ANY(tags)"
    )
    assert 0 < len(got) == expected
    assert all(t.platform == "android" and t.app == "beta" for t in got)
    assert await registry.count_audience(pool, audience) == expected


async def test_seed_writes_realistic_tokens_and_the_ios_share(pool: Pool) -> None:
    async with pool.acquire() as conn:
        assert await seed_devices(conn, 2_000, ios_fraction=0.25, apps=["alpha"]) == 2_000
    rows = await pool.fetch("SELECT platform, token FROM devices")
    ios = [r["token"] for r in rows if r["platform"] == "ios"]
    android = [r["token"] for r in rows if r["platform"] == "android"]
    assert abs(len(ios) / 2_000 - 0.25) < 0.02
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for t in ios)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}:APA91b[A-Za-z0-9_-]{146}", t) for t in android)
    assert await registry.id_range(pool) == (1, 2_001)
