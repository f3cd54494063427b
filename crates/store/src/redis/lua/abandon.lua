-- Ends the registration of the tenant's agent groups whose live-until
-- time (`gl`) is before ARGV[1] (DESIGN §13, abandoned groups): later
-- appends no longer see the group in `b:<bucket>:groups`, and its pending
-- rows, ready or in retry backoff, become `expired`. Claimed rows are a
-- live node's and are left to it. Returns how many groups it ended.
-- ARGV: now_ms
local now = ARGV[1]
local gl = P .. 'gl'
local n = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', gl, '-inf', '(' .. now)) do
  local cut = string.find(m, '|', 1, true)
  local bucket, g = string.sub(m, 1, cut - 1), string.sub(m, cut + 1)
  redis.call('SREM', P .. 'b:' .. bucket .. ':groups', string.sub(g, 2))
  for _, key in ipairs({ P .. 'q:' .. bucket .. ':' .. g, P .. 'qr:' .. bucket .. ':' .. g }) do
    for _, d in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      redis.call('HSET', P .. 'd:' .. d, 'state', 'expired', 'owner', '', 'updated', now)
    end
    redis.call('DEL', key)
  end
  redis.call('ZREM', gl, m)
  n = n + 1
end
return n
