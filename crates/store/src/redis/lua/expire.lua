-- Expires a group's pending deliveries pending since before a time, except
-- those waiting out a retry's backoff. A row's pending-since is never
-- before its event's time, so only members below the floor id can qualify.
-- ARGV: bucket, group tag, node, floor bound ('(evt_...'), before_ms, now_ms
local bucket, g, node, floor = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local before, now = tonumber(ARGV[5]), tonumber(ARGV[6])
local q = P .. 'q:' .. bucket .. ':' .. g
local qr = P .. 'qr:' .. bucket .. ':' .. g
for _, m in ipairs(redis.call('ZRANGEBYSCORE', qr, '-inf', now)) do
  redis.call('ZREM', qr, m)
  redis.call('ZADD', q, 0, m)
end
local n = 0
for _, key in ipairs({ q, P .. 'qc:' .. bucket .. ':' .. node .. ':' .. g }) do
  for _, m in ipairs(redis.call('ZRANGEBYLEX', key, '-', floor)) do
    local since = tonumber(redis.call('HGET', P .. 'd:' .. m, 'since'))
    if since and since < before then
      redis.call('ZREM', key, m)
      redis.call('HSET', P .. 'd:' .. m, 'state', 'expired', 'owner', '', 'updated', now)
      n = n + 1
    end
  end
end
return n
