"""Sign-in throttling that slows a password guesser without locking the owner out.

The rule (also in the README, "Sign-in"), with N = `login_attempts_per_min`:
1. A browser that signed in as this username before (it holds a known-device cookie for
   it) is limited to N attempts a minute per cookie, and nothing else counts against it:
   guesses from elsewhere never lock the owner out of their usual browser.
2. Otherwise an address that signed in as this username before is limited to N a minute
   per address, and nothing else counts against it.
3. Any other attempt costs one from its address's budget and one from the username's
   budget (N a minute each). When either is spent the answer is 429 with a Retry-After of
   60/N seconds (6 s by default), for the right password too: a new browser on a new
   address gets in after that short wait unless someone else spends the username's budget.
A successful sign-in marks the browser (a random 256-bit cookie; Redis keeps its SHA-256)
and the address as known for that username, for `known_device_ttl_s`.
"""

from __future__ import annotations

import hashlib
import secrets

import redis.asyncio as aioredis

from pushfan.caller_rate import CallerRateLimiter, Decision
from pushfan.keys import RedisKeys

MAX_TOKEN = 128  # longer cookie values are ignored (ours are 43 characters)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class SignInGuard:
    def __init__(
        self, redis: aioredis.Redis, prefix: str, attempts_per_min: float, known_ttl_s: int
    ) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._known_ttl_s = known_ttl_s
        self._limiter = CallerRateLimiter(
            redis, prefix, attempts_per_min / 60, max(1, int(attempts_per_min))
        )

    def _device(self, username: str, token: str) -> str:
        return self._keys.known_device(_digest(username, token))

    def _address(self, username: str, address: str) -> str:
        return self._keys.known_address(_digest(username, address))

    async def admit(
        self, username: str, address: str, device_token: str | None
    ) -> tuple[Decision, bool]:
        """Take this attempt from the budgets the rule above names (refused if one is spent);
        also says whether the browser's cookie is a known device of `username`."""
        user = _digest(username)
        keys = [self._address(username, address)]
        token = device_token if device_token and len(device_token) <= MAX_TOKEN else None
        if token is not None:
            keys.append(self._device(username, token))
        known = await self._redis.mget(keys)
        if token is not None and known[-1] is not None:
            return await self._limiter.hit(f"signin:device:{_digest(username, token)}"), True
        if known[0] is not None:
            return await self._limiter.hit(f"signin:address:{_digest(username, address)}"), False
        decision = await self._limiter.hit(
            f"signin:address:{_digest(address)}", f"signin:user:{user}"
        )
        return decision, False

    async def remember(self, username: str, address: str, known_token: str | None) -> str:
        """Mark the browser and the address as known for `username`; returns the cookie value:
        `known_token` if the browser's cookie was already known for it, else a new one."""
        token = known_token or secrets.token_urlsafe(32)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._device(username, token), 1, ex=self._known_ttl_s)
            pipe.set(self._address(username, address), 1, ex=self._known_ttl_s)
            await pipe.execute()
        return token
