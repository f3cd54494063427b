-- Resend: the event's deliveries (all, or one output's) pending again from
-- scratch, except those in flight. 'nf' if the event is not in the tenant.
-- ARGV: event, output or '', now_ms
local ev, output, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', P .. 'e:' .. ev) == 0 then return 'nf' end
local n = 0
for _, m in ipairs(redis.call('ZRANGE', P .. 'ed:' .. ev, 0, -1)) do
  local _, o = split3(m)
  local d = load(m)
  if d and (output == '' or o == output) and d.state ~= 'in_flight' then
    unqueue(m, d)
    redis.call('HSET', P .. 'd:' .. m, 'state', 'pending', 'tries', 0, 'since', now,
      'next', 0, 'owner', '', 'updated', now)
    enqueue(m, d, 0)
    n = n + 1
  end
end
return n
