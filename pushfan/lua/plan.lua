-- plan: record an alert's shard plan; the first plan wins.
-- KEYS[1] alert's counters hash
-- ARGV[1] lo   ARGV[2] hi (device-id range [lo, hi))   ARGV[3] shards   ARGV[4] ttl s
-- Returns the plan recorded first: {lo, hi, shards}.
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- #include _epoch
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
if redis.call('HSETNX', KEYS[1], 'shards_total', ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'plan_lo', ARGV[1], 'plan_hi', ARGV[2])
  redis.call('HSETNX', KEYS[1], 'audience', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('HMGET', KEYS[1], 'plan_lo', 'plan_hi', 'shards_total')
