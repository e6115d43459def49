-- pending: which devices have no final outcome yet for the alert.
-- KEYS[1] alert's final bitmap
-- ARGV[1] packed device ids
-- Returns '1' per device still to send, '0' per device that has its outcome (one string).
-- #include _ids
-- #include _pending
return (pending_flags(KEYS[1], unpack_ids(ARGV[1])))
