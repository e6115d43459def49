-- Shared: `now`, the Redis server's clock in milliseconds (one clock for every worker).
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
