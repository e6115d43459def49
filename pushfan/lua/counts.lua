-- counts: an alert's counters, as a running alert's live state.
-- KEYS[1] alert's counters hash
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- Returns the counters (pushfan.progress.COUNTERS order).
-- #include _epoch
-- #include _counters
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
return redis.call('HMGET', KEYS[1], unpack(COUNTERS))
