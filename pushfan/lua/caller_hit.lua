-- caller_hit: one request of API callers against their GCRA limits (pushfan.caller_rate),
-- all at one rate, all or nothing: the hit is taken from every caller, or from none when
-- one of them has no room.
-- KEYS[1..n] the callers' limit keys
-- ARGV[1] emission interval ms   ARGV[2] burst tolerance ms
-- Returns {1, '0'} when allowed, else {0, retry-after ms as a string}.
-- #include _now
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  tats[i] = math.max(tonumber(redis.call('GET', key) or now), now) + interval
  local over = tats[i] - now - tolerance - interval
  if over > wait then wait = over end
end
if wait > 0 then
  return {0, tostring(wait)}
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
end
return {1, '0'}
