-- The server's own deliveries of one tenant (of one bucket, if given):
-- those the node holds unmarked, then newly claimed due ones, each with
-- its due time (the caller merges tenants by due time).
-- ARGV: node, now_ms, limit, bucket or ''
-- Returns { next_at or '', { member, due, member, due, ... } }
local node, now, limit, bucket = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local pq, pqc = P .. 'pq', P .. 'pqc:' .. node
local out = {}
-- A bucket filter reads each row's bucket, so it cannot stop at `limit`
-- rows of the index: it scans what is due (or this many rows for next_at).
local scan = limit
if bucket ~= '' then scan = -1 end
local function wanted(m)
  return bucket == '' or redis.call('HGET', P .. 'd:' .. m, 'bucket') == bucket
end
local function keep(m, score, fresh)
  local _, o = split3(m)
  if redis.call('EXISTS', P .. 'o:' .. o) == 0 or redis.call('EXISTS', P .. 'd:' .. m) == 0 then
    redis.call('ZREM', pqc, m)
    drop(m)
    return
  end
  if not wanted(m) or #out / 2 >= limit then return end
  if fresh then
    redis.call('ZREM', pq, m)
    redis.call('ZADD', pqc, score, m)
    redis.call('HSET', P .. 'd:' .. m, 'owner', node, 'claimed', now)
    held(node, pqc)
  end
  out[#out + 1] = m
  out[#out + 1] = score
end
if limit > 0 then
  local mine = redis.call('ZRANGE', pqc, 0, scan > 0 and scan - 1 or -1, 'WITHSCORES')
  for i = 1, #mine, 2 do keep(mine[i], mine[i + 1], false) end
  local room = limit - #out / 2
  if room > 0 then
    local fresh = redis.call('ZRANGEBYSCORE', pq, '-inf', now, 'WITHSCORES', 'LIMIT', 0,
      scan > 0 and room or -1)
    for i = 1, #fresh, 2 do keep(fresh[i], fresh[i + 1], true) end
  end
end
local later = redis.call('ZRANGEBYSCORE', pq, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0,
  bucket == '' and 1 or 1000)
for i = 1, #later, 2 do
  if wanted(later[i]) then return { later[i + 1], out } end
end
return { '', out }
