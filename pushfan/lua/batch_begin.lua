-- batch_begin: take the lease of one batch, read which of its devices still need a push,
-- and reserve up to `take` of those pushes from the (provider, app) rate limit.
-- KEYS[1] lease            KEYS[2] alert's final bitmap     KEYS[3] rate state hash
-- ARGV[1] lease ms         ARGV[2] packed device ids        ARGV[3] pushes to reserve at most
-- ARGV[4] configured rate/s (UNLIMITED for none)            ARGV[5] burst s
-- ARGV[6] recovery ms
-- Returns false when another holder has the lease; else {pending flags ('1'/'0' per
-- device), pushes reserved, wait ms, rate} (wait and rate '' when none were reserved).
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- #include _epoch
-- #include _ids
-- #include _pending
-- #include _rate
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
if not redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[1]) then return false end
local flags, open = pending_flags(KEYS[2], unpack_ids(ARGV[2]))
local take = math.min(open, tonumber(ARGV[3]))
if take == 0 then return {flags, 0, '', ''} end
local r = rate_acquire(KEYS[3], take, tonumber(ARGV[4]), tonumber(ARGV[5]) * 1000,
                       tonumber(ARGV[6]))
return {flags, take, tostring(r[1]), tostring(r[2])}
