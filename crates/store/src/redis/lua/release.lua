-- Gives back what a node holds in this tenant. With no lease bound:
-- everything, claimed or in flight (the node closed, or its liveness
-- lapsed). With one: only claims made before it and never marked in
-- flight (a live node that claimed more than it sent). Idempotent.
-- ARGV: node, lease bound (ms) or ''
local node, stale = ARGV[1], tonumber(ARGV[2])
local hk = P .. 'held:' .. node
local n = 0
for _, key in ipairs(redis.call('SMEMBERS', hk)) do
  local claims = string.find(key, P .. 'qc:', 1, true) == 1
    or string.find(key, P .. 'pqc:', 1, true) == 1
  if not stale or claims then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local d = load(m)
      local mine = d and d.owner == node and (d.state == 'pending' or d.state == 'in_flight')
      if mine and stale then
        mine = d.state == 'pending' and (tonumber(d.claimed) or 0) < stale
      end
      if mine then
        unqueue(m, d)
        redis.call('HSET', P .. 'd:' .. m, 'state', 'pending', 'owner', '')
        enqueue(m, d, tonumber(d.next) or 0)
        n = n + 1
      end
    end
    if not stale then redis.call('DEL', key) end
  end
end
if not stale then redis.call('DEL', hk) end
return n
