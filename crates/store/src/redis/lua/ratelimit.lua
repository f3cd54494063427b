-- Sliding-window rate limit, the approximation of `limiter.rs`: the
-- previous fixed window's count weighted by its overlap, plus the current
-- window's. One hash per key: window start, current and previous counts.
-- KEYS[1]: the counter key. ARGV: limit, window_ms, now_ms
-- Returns 0 (allowed) or the ms until a retry may pass.
local k = KEYS[1]
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = now - (now % window)
local s = redis.call('HMGET', k, 'start', 'cur', 'prev', 'win')
local ws, cur, prev = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
if ws == nil or tonumber(s[4]) ~= window then
  ws, cur, prev = start, 0, 0
end
if now < ws then start = ws end
if ws ~= start then
  if start - ws == window then prev = cur else prev = 0 end
  cur, ws = 0, start
end
local elapsed = (now - start) / window
if prev * (1 - elapsed) + cur + 1 > limit then
  redis.call('HSET', k, 'start', ws, 'cur', cur, 'prev', prev, 'win', window)
  redis.call('PEXPIRE', k, 2 * window)
  return math.max(start + window - now, 1000)
end
redis.call('HSET', k, 'start', ws, 'cur', cur + 1, 'prev', prev, 'win', window)
redis.call('PEXPIRE', k, 2 * window)
return 0
