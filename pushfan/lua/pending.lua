-- pending: which devices have no final outcome yet for the alert.
-- KEYS[1] alert's final bitmap
-- ARGV[1] packed device ids
-- Returns '1' per device still to send, '0' per device that has its outcome (one string).
-- KEYS[last] epoch hash, ARGV[last-1..last] the epoch id and seq known (_epoch)
-- #include _epoch
-- #include _ids
-- #include _pending
if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
return (pending_flags(KEYS[1], unpack_ids(ARGV[1])))
