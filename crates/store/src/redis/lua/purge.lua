-- Deletes up to `limit` of a bucket's oldest events below a bound, with
-- their index entries and deliveries (out of every queue).
-- ARGV: bucket, upper bound ('(evt_...' or '+'), limit
local bucket, upper, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local idx = P .. 'b:' .. bucket .. ':ev'
local evs = redis.call('ZRANGEBYLEX', idx, '-', upper, 'LIMIT', 0, limit)
for _, ev in ipairs(evs) do
  for _, m in ipairs(redis.call('ZRANGE', P .. 'ed:' .. ev, 0, -1)) do
    local d = load(m)
    if d then unqueue(m, d) end
    redis.call('DEL', P .. 'd:' .. m)
  end
  redis.call('DEL', P .. 'ed:' .. ev, P .. 'e:' .. ev)
  redis.call('ZREM', P .. 'ev', ev)
  redis.call('ZREM', idx, ev)
end
return #evs
