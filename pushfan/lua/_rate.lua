-- Shared: the provider rate limit of one (provider, app), GCRA in a state hash
-- (tat, rate, last429, raised_at, adapted_at) plus per-second accepted/throttled counts.
-- UNLIMITED is pushfan.provider_rate.UNLIMITED: a configured rate that high means no limit,
-- though 429s still adapt it down.
-- #include _now
local UNLIMITED = 1e9
local ADAPT_EVERY_MS = 2000   -- at most one adaptation per this many ms, across all workers
local OBSERVE_SECONDS = 3     -- how many past seconds a 429 looks at for the quota

-- rate_acquire(state, n, configured rate/s, burst ms, recovery ms) -> {wait ms, rate}:
-- reserve n pushes now (fair queueing across workers) and say how long to wait for them.
-- After `recovery` ms without a 429 the rate climbs 10% per `recovery`, up to `configured`.
local function rate_acquire(key, n, configured, burst, recovery)
  local s = redis.call('HMGET', key, 'tat', 'rate', 'last429', 'raised_at')
  local rate = math.min(tonumber(s[2]) or configured, configured)
  local last429, raised = tonumber(s[3]) or 0, tonumber(s[4]) or 0
  if rate < configured and now - last429 > recovery and now - raised > recovery then
    rate = math.min(configured, rate * 1.1)
    redis.call('HSET', key, 'raised_at', now)
  end
  if rate >= UNLIMITED then
    redis.call('HSET', key, 'rate', rate)
    redis.call('PEXPIRE', key, 3600000)
    return {0, rate}
  end
  local tat = math.max(tonumber(s[1]) or now, now) + n * 1000 / rate
  redis.call('HSET', key, 'tat', tat, 'rate', rate)
  redis.call('PEXPIRE', key, 3600000)
  return {math.max(0, tat - now - burst), rate}
end

-- rate_report(state, seconds, accepted, throttled, configured) -> the rate now: count what
-- the provider accepted and throttled this second; on a 429 the rate drops to 80% of itself,
-- and to 96% of what the provider accepted in a recent second that had 429s, if one did.
local function rate_report(key, seconds, accepted, throttled, configured)
  local second = math.floor(now / 1000)
  if accepted > 0 then redis.call('HINCRBY', seconds, second, accepted) end
  if throttled > 0 then redis.call('HINCRBY', seconds, 't' .. second, throttled) end
  redis.call('EXPIRE', seconds, 30)
  local s = redis.call('HMGET', key, 'rate', 'adapted_at')
  local rate = tonumber(s[1]) or configured
  if throttled > 0 then
    redis.call('HSET', key, 'last429', now)
    if now - (tonumber(s[2]) or 0) > ADAPT_EVERY_MS then
      -- In a full second that had 429s the provider accepted what its quota allows: the
      -- best estimate of the quota. Without one, back off multiplicatively.
      local quota = nil
      for k = 1, OBSERVE_SECONDS do
        if tonumber(redis.call('HGET', seconds, 't' .. (second - k)) or '0') > 0 then
          local c = tonumber(redis.call('HGET', seconds, second - k) or '0')
          if c > 0 then quota = math.max(quota or 0, c) end
        end
      end
      if rate >= UNLIMITED and not quota then
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
