-- Claims up to `limit` due deliveries of one agent group's queue for a
-- node, oldest event first, and returns them with those the node already
-- holds unmarked (a node sees its own claims again until it marks them in
-- flight, settles or releases them). Due retries join the ready queue
-- first; rows whose output is gone are dropped on the way.
-- ARGV: bucket, group tag, node, now_ms, limit
-- Returns { next_at or '', { member... } }
local bucket, g, node = ARGV[1], ARGV[2], ARGV[3]
local now, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local q = P .. 'q:' .. bucket .. ':' .. g
local qr = P .. 'qr:' .. bucket .. ':' .. g
local qc = P .. 'qc:' .. bucket .. ':' .. node .. ':' .. g
for _, m in ipairs(redis.call('ZRANGEBYSCORE', qr, '-inf', now)) do
  redis.call('ZREM', qr, m)
  redis.call('ZADD', q, 0, m)
end
local nx = redis.call('ZRANGE', qr, 0, 0, 'WITHSCORES')
local out = {}
if limit > 0 then
  local a = redis.call('ZRANGE', q, 0, limit - 1)
  local c = redis.call('ZRANGE', qc, 0, limit - 1)
  local i, j = 1, 1
  while #out < limit and (i <= #a or j <= #c) do
    local m, fresh
    if j > #c or (i <= #a and before(a[i], c[j])) then
      m, fresh, i = a[i], true, i + 1
    else
      m, fresh, j = c[j], false, j + 1
    end
    local _, o = split3(m)
    if redis.call('EXISTS', P .. 'o:' .. o) == 0 or redis.call('EXISTS', P .. 'd:' .. m) == 0 then
      redis.call('ZREM', q, m)
      redis.call('ZREM', qc, m)
      drop(m)
    else
      if fresh then
        redis.call('ZREM', q, m)
        redis.call('ZADD', qc, 0, m)
        redis.call('HSET', P .. 'd:' .. m, 'owner', node, 'claimed', now)
        held(node, qc)
      end
      out[#out + 1] = m
    end
  end
end
return { nx[2] or '', out }
