-- Shared: pending_flags(final bitmap, ids) -> '1' per device without a final outcome, else
-- '0' (one string), and how many are pending.
local function pending_flags(final, ids)
  local flags, open = {}, 0
  for k, id in ipairs(ids) do
    if redis.call('GETBIT', final, id) == 0 then
      flags[k] = '1'
      open = open + 1
    else
      flags[k] = '0'
    end
  end
  return table.concat(flags), open
end
