-- caller_hit: one request of an API caller against its GCRA limit (pushfan.caller_rate).
-- KEYS[1] the caller's limit key
-- ARGV[1] emission interval ms   ARGV[2] burst tolerance ms
-- Returns {1, '0'} when allowed, else {0, retry-after ms as a string}.
-- #include _now
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local new_tat = tat + interval
if new_tat - now > tolerance + interval then
  return {0, tostring(new_tat - now - tolerance - interval)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, '0'}
