-- Shared: the ledger's epoch (pushfan.ledger_epoch). Every ledger script starts with
--   if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end
-- and its KEYS end with the epoch hash, its ARGV with the epoch id and seq the caller knows
-- (added by Epoch.call). The call is refused, before anything is written, when Redis does
-- not hold that dataset any more: no epoch (restarted empty, flushed), another id (rebuilt
-- meanwhile), or a seq below what the caller saw (a replica or an AOF that was behind).
local function epoch_current()
  local known = redis.call('HMGET', KEYS[#KEYS], 'id', 'seq')
  return known[1] == ARGV[#ARGV - 1] and (tonumber(known[2]) or 0) >= tonumber(ARGV[#ARGV])
end
-- epoch_bump() -> the new seq: in scripts that record outcomes, after the check.
local function epoch_bump()
  return redis.call('HINCRBY', KEYS[#KEYS], 'seq', 1)
end
