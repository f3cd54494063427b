-- One event and its deliveries, read in one step so they agree.
-- ARGV: event. Returns {} if absent, else { event fields, { member, fields }... }
local ev = ARGV[1]
local e = redis.call('HGETALL', P .. 'e:' .. ev)
if #e == 0 then return {} end
local out = { e }
for _, m in ipairs(redis.call('ZRANGE', P .. 'ed:' .. ev, 0, -1)) do
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGETALL', P .. 'd:' .. m)
end
return out
