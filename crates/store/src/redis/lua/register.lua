-- Registers an agent group on a bucket. The bucket's first group takes
-- over the rows that waited for any group (renamed to carry the group);
-- a later group gets a pending row per internal output for every event at
-- or after the catch-up floor. Runs in one step, so its cost grows with
-- the rows it moves (bounded by retention).
-- Either way the group counts as live until ARGV[5] at least (`gl`, by
-- live-until time; `abandon.lua` ends the registrations that lapse).
-- ARGV: bucket, group tag, floor bound ('[evt_...'), now_ms, live_until_ms
local bucket, g, floor = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZADD', P .. 'gl', 'GT', ARGV[5], bucket .. '|' .. g)
if redis.call('SADD', P .. 'b:' .. bucket .. ':groups', string.sub(g, 2)) == 0 then
  return 0
end
local q = P .. 'q:' .. bucket .. ':' .. g
local n = 0
if redis.call('SCARD', P .. 'b:' .. bucket .. ':groups') == 1 then
  local w = P .. 'w:' .. bucket
  for _, m in ipairs(redis.call('ZRANGE', w, 0, -1)) do
    local ev, o = split3(m)
    local nm = ev .. '|' .. o .. '|' .. g
    if redis.call('EXISTS', P .. 'd:' .. m) == 1 then
      redis.call('RENAME', P .. 'd:' .. m, P .. 'd:' .. nm)
      local seq = redis.call('ZSCORE', P .. 'ed:' .. ev, m) or 0
      redis.call('ZREM', P .. 'ed:' .. ev, m)
      redis.call('ZADD', P .. 'ed:' .. ev, seq, nm)
      local d = load(nm)
      if d.state == 'pending' then enqueue(nm, d, tonumber(d.next) or 0) end
      n = n + 1
    end
  end
  redis.call('DEL', w)
  return n
end
local outs = redis.call('HGETALL', P .. 'b:' .. bucket .. ':outs')
local internal = {}
for i = 1, #outs, 2 do
  if outs[i + 1] == '1' then internal[#internal + 1] = outs[i] end
end
if #internal == 0 then return 0 end
for _, ev in ipairs(redis.call('ZRANGEBYLEX', P .. 'b:' .. bucket .. ':ev', floor, '+')) do
  local since = redis.call('HGET', P .. 'e:' .. ev, 'ms') or ARGV[4]
  for _, o in ipairs(internal) do
    local m = ev .. '|' .. o .. '|' .. g
    if redis.call('EXISTS', P .. 'd:' .. m) == 0 then
      create_delivery(m, ev, '1', bucket, since)
      n = n + 1
    end
  end
end
return n
