-- Shared: unpack_ids(packed) -> the device ids of one binary argument, 4 little-endian
-- bytes each (pushfan.progress.pack_ids); bitmap offsets stay below 2^32.
local function unpack_ids(packed)
  local ids = {}
  for k = 1, #packed / 4 do ids[k] = struct.unpack('<I4', packed, 4 * k - 3) end
  return ids
end
