-- shard_done: count one expanded shard's audience once, however often it is redelivered.
-- KEYS[1] alert's shards hash (shard -> audience)   KEYS[2] alert's counters hash
-- ARGV[1] shard   ARGV[2] audience of the shard   ARGV[3] ttl s
-- ARGV[4] '' or the plan's shard count, when this call is also the plan (a targeted
--         push: one shard, planned as it ends; the first plan wins)
-- Returns the counters (pushfan.progress.COUNTERS order).
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- #include _epoch
-- #include _counters
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[2], 'shards_total', ARGV[4]) end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'audience', ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'shards_done', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('HMGET', KEYS[2], unpack(COUNTERS))
