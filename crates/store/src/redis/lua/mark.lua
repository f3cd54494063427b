-- Marks deliveries in flight for a node: pending ones that are unclaimed
-- or claimed by this node. They leave every queue, for every node.
-- ARGV: node, now_ms, member...
local node, now = ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  local m = ARGV[i]
  local d = load(m)
  if d and d.state == 'pending' and (d.owner == '' or d.owner == node) then
    unqueue(m, d)
    local _, f = claim_keys(m, d, node)
    redis.call('ZADD', f, tonumber(d.next) or 0, m)
    held(node, f)
    redis.call('HSET', P .. 'd:' .. m, 'state', 'in_flight', 'owner', node, 'updated', now)
    n = n + 1
  end
end
return n
