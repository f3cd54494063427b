-- Settles several deliveries of the tenant in one call (`settle_one` each),
-- so bookkeeping costs one round trip per batch of acks.
-- ARGV: now_ms, node, then per delivery: member, kind, at, attempt JSON or ''
-- Returns how many were found.
local now, node = ARGV[1], ARGV[2]
local found = 0
for i = 3, #ARGV - 3, 4 do
  if settle_one(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], now, node) == 'ok' then
    found = found + 1
  end
end
return found
