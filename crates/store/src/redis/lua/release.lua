-- Gives back everything a node holds in this tenant (claimed or in flight):
-- the node closed, or its liveness key expired. Idempotent.
-- ARGV: node
local node = ARGV[1]
local hk = P .. 'held:' .. node
local n = 0
for _, key in ipairs(redis.call('SMEMBERS', hk)) do
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local d = load(m)
    if d and d.owner == node and (d.state == 'pending' or d.state == 'in_flight') then
      unqueue(m, d)
      redis.call('HSET', P .. 'd:' .. m, 'state', 'pending', 'owner', '')
      enqueue(m, d, tonumber(d.next) or 0)
      n = n + 1
    end
  end
  redis.call('DEL', key)
end
redis.call('DEL', hk)
return n
