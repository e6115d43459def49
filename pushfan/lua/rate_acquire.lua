-- rate_acquire: reserve n pushes from a (provider, app) rate limit.
-- KEYS[1] rate state hash
-- ARGV[1] n   ARGV[2] configured rate/s (UNLIMITED for none)   ARGV[3] burst s
-- ARGV[4] recovery ms
-- Returns {wait ms before sending them, the rate in force}, as strings.
-- #include _rate
local r = rate_acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) * 1000,
                       tonumber(ARGV[4]))
return {tostring(r[1]), tostring(r[2])}
