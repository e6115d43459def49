"""The API-key cache: a hit costs no query; a revocation shows within the TTL."""

from __future__ import annotations

import asyncio

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


async def test_unknown_and_wrong_keys_are_never_cached(pool: db.Pool) -> None:
    key, plain = await apikeys.create(pool, "real", ["alerts:send"])
    cache = apikeys.KeyCache()
    assert await cache.authenticate(pool, plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    assert await cache.authenticate(pool, "pf_nope_secret") is None
    assert len(cache._entries) == 0
    assert await cache.authenticate(pool, plain) == key
