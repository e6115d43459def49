-- counts: an alert's counters, as a running alert's live state.
-- KEYS[1] alert's counters hash
-- KEYS[2] epoch hash (_epoch)
-- ARGV[1] epoch id known         ARGV[2] epoch seq known
-- Returns the counters (pushfan.progress.COUNTERS order).
-- #include _epoch
-- #include _counters
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
return redis.call('HMGET', KEYS[1], unpack(COUNTERS))
