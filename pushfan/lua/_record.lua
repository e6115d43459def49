-- Shared: record_outcomes(final bitmap, counters hash, ttl, retryable, sizes, ids) -> the
-- counters (COUNTERS order). `sizes` are the counts of ids per outcome in OUTCOMES order,
-- `ids` those ids in that order; a device's first final outcome wins and only new ones bump
-- the counters.
-- #include _counters
local function record_outcomes(final, counts, ttl, retryable, sizes, ids)
  local i = 1
  for k = 1, #OUTCOMES do
    local fresh = 0
    for _ = 1, sizes[k] do
      if redis.call('SETBIT', final, ids[i], 1) == 0 then fresh = fresh + 1 end
      i = i + 1
    end
    if fresh > 0 then redis.call('HINCRBY', counts, OUTCOMES[k], fresh) end
  end
  if retryable > 0 then redis.call('HINCRBY', counts, 'retryable', retryable) end
  redis.call('EXPIRE', final, ttl)
  redis.call('EXPIRE', counts, ttl)
  return redis.call('HMGET', counts, unpack(COUNTERS))
end

-- read_sizes(first) -> the #OUTCOMES sizes from ARGV[first ...]
local function read_sizes(first)
  local sizes = {}
  for k = 1, #OUTCOMES do sizes[k] = tonumber(ARGV[first + k - 1]) end
  return sizes
end
