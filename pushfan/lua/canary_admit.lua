-- canary_admit: take up to `want` pushes of an alert into its canary (pushfan.canary), until
-- the canary is full; once it has been judged, every push passes.
-- KEYS[1] the alert's canary hash   KEYS[2] the alert's counters hash (audience, shards)
-- ARGV[1] canary devices (0: by percent)   ARGV[2] percent   ARGV[3] want   ARGV[4] ttl s
-- Returns {taken, verdict or '', full_at ms or '', size, now ms}: taken -1 when it passed
-- (send freely), 0 while its verdict is 'pause'; size 0 for a percent canary whose audience
-- is not counted yet (take nothing).
-- #include _now
local canary, counters = KEYS[1], KEYS[2]
local verdict = redis.call('HGET', canary, 'verdict')
if verdict == 'pause' then
  return {0, verdict, '', 0, tostring(now)}  -- held until resumed (which makes it 'pass')
elseif verdict then
  return {-1, verdict, '', 0, tostring(now)}
end
local size = tonumber(ARGV[1])
if size == 0 then
  local c = redis.call('HMGET', counters, 'audience', 'shards_total', 'shards_done')
  if not c[2] or c[2] == '' or tonumber(c[3] or '0') < tonumber(c[2]) then
    return {0, '', '', 0, tostring(now)}
  end
  size = math.ceil(tonumber(ARGV[2]) * tonumber(c[1] or '0') / 100)
end
local admitted = tonumber(redis.call('HGET', canary, 'admitted') or '0')
local take = math.max(0, math.min(tonumber(ARGV[3]), size - admitted))
if take > 0 then
  redis.call('HINCRBY', canary, 'admitted', take)
end
if admitted + take >= size then
  redis.call('HSETNX', canary, 'full_at', tostring(now))
end
redis.call('HSET', canary, 'size', size)
redis.call('EXPIRE', canary, tonumber(ARGV[4]))
return {take, '', redis.call('HGET', canary, 'full_at') or '', size, tostring(now)}
