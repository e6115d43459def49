"""The API-key cache: a hit costs no query; a revocation shows within the TTL; unknown ids
are cached as unknown (a flood of bad keys costs a query per id per TTL)."""

from __future__ import annotations

import asyncio
from typing import Any

from pushfan import apikeys, db


async def test_cached_key_is_served_without_a_query(pool: db.Pool) -> None:
    """Given an authenticated key, when the row disappears, the cache still answers until
    the TTL, and stops answering after it."""
    key, plain = await apikeys.create(pool, "cached", ["alerts:send"])
    cache = apikeys.KeyCache(ttl_s=0.2)
    assert await cache.authenticate(pool, plain) == key
    await pool.execute("DELETE FROM api_keys WHERE id = $1", key.id)
    assert await cache.authenticate(pool, plain) == key
    await asyncio.sleep(0.25)
    assert await cache.authenticate(pool, plain) is None


async def test_revocation_takes_effect_within_the_ttl(pool: db.Pool) -> None:
    key, plain = await apikeys.create(pool, "revoked", ["alerts:send"])
    cache = apikeys.KeyCache(ttl_s=0.2)
    assert not (await cache.authenticate(pool, plain)).revoked  # type: ignore[union-attr]
    await apikeys.revoke(pool, key.id)
    await asyncio.sleep(0.25)
    again = await cache.authenticate(pool, plain)
    assert again is not None and again.revoked


class Counting:
    """The real pool, counting the queries made through it."""

    def __init__(self, pool: db.Pool) -> None:
        self.pool = pool
        self.queries = 0

    async def fetchrow(self, *args: Any) -> Any:
        self.queries += 1
        return await self.pool.fetchrow(*args)


async def test_wrong_secrets_never_authenticate_though_their_id_is_cached(pool: db.Pool) -> None:
    key, plain = await apikeys.create(pool, "real", ["alerts:send"])
    cache = apikeys.KeyCache()
    wrong = plain[:-1] + ("A" if plain[-1] != "A" else "B")
    for _ in range(3):
        assert await cache.authenticate(pool, wrong) is None
    assert await cache.authenticate(pool, plain) == key
    assert await cache.authenticate(pool, wrong) is None


async def test_unknown_ids_are_negatively_cached(pool: db.Pool) -> None:
    """A flood of one unknown key costs one query per negative TTL, not one per request;
    a key created under an id that was just asked for works once the TTL ends."""
    counting = Counting(pool)
    cache = apikeys.KeyCache(unknown_ttl_s=0.3)
    for _ in range(100):
        assert await cache.authenticate(counting, "pf_0badc0de_secret") is None
    assert counting.queries == 1
    _, real = await apikeys.create(pool, "later", ["alerts:send"])
    real_id = real.split("_")[1]
    assert await cache.authenticate(counting, f"pf_{real_id}_guess") is None
    await asyncio.sleep(0.35)
    assert await cache.authenticate(counting, "pf_0badc0de_secret") is None
    assert counting.queries == 3
    assert await cache.authenticate(counting, real) is not None
    assert counting.queries == 3  # the id's row was cached by the wrong guess


async def test_malformed_keys_cost_no_query(pool: db.Pool) -> None:
    counting = Counting(pool)
    cache = apikeys.KeyCache()
    for presented in ("nope", "pf__x", "pf_", "pf_x", "xx_1_2"):
        assert await cache.authenticate(counting, presented) is None
    assert counting.queries == 0
