-- batch_end: record one batch's final outcomes and counters, feed back what the provider
-- accepted and throttled in the last slice, and release the batch's lease.
-- KEYS[1] alert's final bitmap   KEYS[2] alert's counters hash   KEYS[3] rate state hash
-- KEYS[4] rate per-second counts KEYS[5] lease
-- ARGV[1] ttl s                  ARGV[2] retryable answers seen
-- ARGV[3..7] ids per outcome (delivered, invalid, failed, expired, cancelled)
-- ARGV[8] packed device ids, in that order
-- ARGV[9] accepted               ARGV[10] throttled             ARGV[11] configured rate/s
-- Returns {counters, rate after the feedback ('' when there was none), the epoch's new seq}.
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- #include _epoch
-- #include _ids
-- #include _record
-- #include _rate
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
local seq = epoch_bump()
local counts = record_outcomes(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]),
                               read_sizes(3), unpack_ids(ARGV[8]))
local accepted, throttled = tonumber(ARGV[9]), tonumber(ARGV[10])
local rate = ''
if accepted > 0 or throttled > 0 then
  rate = tostring(rate_report(KEYS[3], KEYS[4], accepted, throttled, tonumber(ARGV[11])))
end
redis.call('DEL', KEYS[5])
return {counts, rate, seq}
