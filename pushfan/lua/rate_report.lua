-- rate_report: tell a (provider, app) rate limit what the provider accepted and throttled.
-- KEYS[1] rate state hash   KEYS[2] rate per-second counts
-- ARGV[1] accepted   ARGV[2] throttled   ARGV[3] configured rate/s (UNLIMITED for none)
-- Returns the rate in force after the report, as a string.
-- #include _rate
return tostring(rate_report(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]),
                            tonumber(ARGV[3])))
