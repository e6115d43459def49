-- rate_seed: after Redis lost the rate limits, start one from the rate a worker last knew:
-- it replaces a missing or higher rate and holds for a recovery period before rising.
-- KEYS[1] rate state hash
-- ARGV[1] rate/s
-- Returns 1.
-- #include _now
local known = tonumber(redis.call('HGET', KEYS[1], 'rate'))
if not known or known > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'rate', ARGV[1], 'last429', now, 'raised_at', now)
  redis.call('PEXPIRE', KEYS[1], 3600000)
end
return 1
