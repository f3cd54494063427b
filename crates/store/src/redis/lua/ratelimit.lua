-- Sliding-window rate limit, the approximation of `limiter.rs`: the
-- previous fixed window's count weighted by its overlap, plus the current
-- window's. One hash per key: window start, current and previous counts.
-- KEYS[1]: the counter key. ARGV: limit, window_ms, then one now_ms per
-- request counted (a node's concurrent requests on one key share a call).
-- Returns per request 0 (allowed) or the ms until a retry may pass.
local k = KEYS[1]
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = redis.call('HMGET', k, 'start', 'cur', 'prev', 'win')
local ws, cur, prev = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
if ws == nil or tonumber(s[4]) ~= window then
  ws, cur, prev = nil, 0, 0
end
local waits = {}
for i = 3, #ARGV do
  local now = tonumber(ARGV[i])
  local start = now - (now % window)
  if ws == nil then ws = start end
  if now < ws then start = ws end
  if ws ~= start then
    if start - ws == window then prev = cur else prev = 0 end
    cur, ws = 0, start
  end
  local elapsed = (now - start) / window
  if prev * (1 - elapsed) + cur + 1 > limit then
    waits[#waits + 1] = math.max(start + window - now, 1000)
  else
    cur = cur + 1
    waits[#waits + 1] = 0
  end
end
redis.call('HSET', k, 'start', ws, 'cur', cur, 'prev', prev, 'win', window)
redis.call('PEXPIRE', k, 2 * window)
return waits
