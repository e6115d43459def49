-- record: set devices' final outcomes (a device's first one wins) and bump the counters for
-- new ones only.
-- KEYS[1] alert's final bitmap   KEYS[2] alert's counters hash
-- ARGV[1] ttl s                  ARGV[2] retryable answers seen
-- ARGV[3..7] ids per outcome (delivered, invalid, failed, expired, cancelled)
-- ARGV[8] packed device ids, in that order
-- Returns the counters (pushfan.progress.COUNTERS order).
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- #include _epoch
-- #include _ids
-- #include _record
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
return record_outcomes(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), read_sizes(3),
                       unpack_ids(ARGV[8]))
