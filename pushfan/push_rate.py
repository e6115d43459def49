"""A rate limit per (provider, app) shared by every worker: GCRA in one Redis script,
taken per batch, that adapts down when the provider answers 429 and recovers after.

- `acquire(n)` reserves n pushes and returns how long to wait before sending them (the
  reservation is made at once, so concurrent workers queue up fairly instead of racing).
- `report(accepted, throttled)` feeds back what the provider did (per second, across all
  workers). On a 429 the rate drops to 80% of itself, and to 96% of what the provider
  accepted in a recent second that had 429s when there is one: a throttled provider accepts
  exactly its quota, so that lands just under it. At most one adaptation per
  `ADAPT_EVERY_MS`; a quota 20% under the configured rate is found in one step, a far
  lower one in two. After `recovery_s` without a 429 the
  rate rises 10% per `recovery_s`, up to the configured limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import redis.asyncio as aioredis

from pushfan.settings import Settings

UNLIMITED = 1e9  # "no configured limit" still adapts to 429s, from this ceiling
ADAPT_EVERY_MS = 2_000
OBSERVE_SECONDS = 3

NOW_LUA = "local t = redis.call('TIME')\nlocal now = t[1] * 1000 + t[2] / 1000\n"

# Lua functions, also composed into the sender's per-batch scripts (pushfan.batch_ledger);
# they need NOW_LUA above them.
# rate_acquire(state key, n, configured rate/s, burst ms, recovery ms) -> {wait ms, rate}
ACQUIRE_LUA = """
local function rate_acquire(key, n, configured, burst, recovery)
  local s = redis.call('HMGET', key, 'tat', 'rate', 'last429', 'raised_at')
  local rate = math.min(tonumber(s[2]) or configured, configured)
  local last429, raised = tonumber(s[3]) or 0, tonumber(s[4]) or 0
  if rate < configured and now - last429 > recovery and now - raised > recovery then
    rate = math.min(configured, rate * 1.1)
    redis.call('HSET', key, 'raised_at', now)
  end
  if rate >= 1e9 then
    redis.call('HSET', key, 'rate', rate)
    redis.call('PEXPIRE', key, 3600000)
    return {0, rate}
  end
  local tat = math.max(tonumber(s[1]) or now, now) + n * 1000 / rate
  redis.call('HSET', key, 'tat', tat, 'rate', rate)
  redis.call('PEXPIRE', key, 3600000)
  return {math.max(0, tat - now - burst), rate}
end
"""

# rate_report(state key, per-second counts key, accepted, throttled, configured) -> rate
REPORT_LUA = f"""
local function rate_report(key, seconds, accepted, throttled, configured)
  local second = math.floor(now / 1000)
  if accepted > 0 then redis.call('HINCRBY', seconds, second, accepted) end
  if throttled > 0 then redis.call('HINCRBY', seconds, 't' .. second, throttled) end
  redis.call('EXPIRE', seconds, 30)
  local s = redis.call('HMGET', key, 'rate', 'adapted_at')
  local rate = tonumber(s[1]) or configured
  if throttled > 0 then
    redis.call('HSET', key, 'last429', now)
    if now - (tonumber(s[2]) or 0) > {ADAPT_EVERY_MS} then
      -- In a full second that had 429s the provider accepted what its quota allows: the
      -- best estimate of the quota. Without one, back off multiplicatively.
      local quota = nil
      for k = 1, {OBSERVE_SECONDS} do
        if tonumber(redis.call('HGET', seconds, 't' .. (second - k)) or '0') > 0 then
          local c = tonumber(redis.call('HGET', seconds, second - k) or '0')
          if c > 0 then quota = math.max(quota or 0, c) end
        end
      end
      if rate >= 1e9 and not quota then
        -- unlimited and nothing to go on yet: extrapolate what this second accepted so far
        local so_far = tonumber(redis.call('HGET', seconds, second) or '0')
        quota = so_far / math.max(0.1, (now % 1000) / 1000)
      end
      rate = rate * 0.8
      if quota then rate = math.min(rate, quota * 0.96) end
      rate = math.max(rate, 1)
      redis.call('HSET', key, 'rate', rate, 'adapted_at', now, 'raised_at', now)
    end
  end
  return rate
end
"""

# KEYS: state hash. ARGV: n, configured rate/s, burst s, recovery ms.
_ACQUIRE = (
    NOW_LUA
    + ACQUIRE_LUA
    + """
local r = rate_acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) * 1000,
                       tonumber(ARGV[4]))
return {tostring(r[1]), tostring(r[2])}
"""
)

# KEYS: state hash, per-second accepted counts hash. ARGV: accepted, throttled, configured.
_REPORT = (
    NOW_LUA
    + REPORT_LUA
    + """
return tostring(rate_report(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]),
                            tonumber(ARGV[3])))
"""
)


class RateKey(NamedTuple):
    """Whose rate limit: one per (provider, app), shared by every worker."""

    provider: str
    app: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the provider did with a slice of pushes: answered without throttling (accepted)
    and answered 429 (throttled)."""

    accepted: int = 0
    throttled: int = 0

    def __bool__(self) -> bool:
        return bool(self.accepted or self.throttled)


NO_FEEDBACK = Feedback()


def ceiling(configured: float) -> float:
    """The rate the scripts work with: a configured 0 (no limit) is UNLIMITED."""
    return configured if configured > 0 else UNLIMITED


class ProviderRateLimiter:
    def __init__(
        self, redis: aioredis.Redis, prefix: str, burst_s: float, recovery_s: float
    ) -> None:
        self._prefix = prefix
        self._burst_s = burst_s
        self._recovery_ms = recovery_s * 1000
        self._acquire = redis.register_script(_ACQUIRE)
        self._report = redis.register_script(_REPORT)

    @classmethod
    def from_settings(cls, redis: aioredis.Redis, settings: Settings) -> ProviderRateLimiter:
        return cls(
            redis,
            settings.redis_prefix,
            settings.rate_limit_burst_s,
            settings.rate_limit_recovery_s,
        )

    def _keys(self, key: RateKey) -> list[str]:
        """The (provider, app)'s state hash and its per-second accepted counts."""
        state = f"{self._prefix}rl:{key.provider}:{key.app}"
        return [state, f"{state}:accepted"]

    async def acquire(self, key: RateKey, n: int, configured: float) -> tuple[float, float]:
        """Reserve n pushes; (seconds to wait before sending them, the rate in force)."""
        wait_ms, rate = await self._acquire(
            keys=self._keys(key)[:1],
            args=[n, ceiling(configured), self._burst_s, self._recovery_ms],
        )
        return float(wait_ms) / 1000, float(rate)

    async def report(self, key: RateKey, feedback: Feedback, configured: float) -> float:
        """Tell the limiter what the provider accepted and throttled; returns the rate now."""
        rate = await self._report(
            keys=self._keys(key),
            args=[feedback.accepted, feedback.throttled, ceiling(configured)],
        )
        return float(rate)
