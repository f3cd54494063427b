-- Appends one event: refuses an id not above the tenant's last, or older
-- than Redis time minus the skew bound (the node re-mints and retries);
-- refuses a live duplicate delivery id; else writes the event, its index
-- entries, its pending deliveries and its dedup entry in one step.
-- ARGV: id, ms, bucket, input, meta, has_payload, payload, has_did, did,
--       window_ms, skew_ms, delivers ('0': a handshake or a stopped event,
--       stored without deliveries)
local id, ms, bucket = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local input, meta = ARGV[4], ARGV[5]
local window, skew = tonumber(ARGV[10]), tonumber(ARGV[11])
if redis.call('EXISTS', P .. 'b:' .. bucket) == 0 then return { 'nf' } end
local now = now_ms()
local last = redis.call('GET', P .. 'last')
if (last and not before(last, id)) or ms < now - skew then
  return { 'retry', last or '', tostring(now) }
end
if ARGV[8] == '1' then
  local dk = P .. 'dd:' .. input .. ':' .. ARGV[9]
  local until_ms = redis.call('GET', dk)
  if until_ms and tonumber(until_ms) > ms then return { 'dup' } end
  if window > 0 then
    local ttl = math.max(ms + window - now, 1)
    redis.call('SET', dk, tostring(ms + window), 'PX', ttl)
  end
end
local ek = P .. 'e:' .. id
redis.call('HSET', ek, 'm', meta, 'b', bucket, 'ms', ms)
-- An ephemeral bucket's payload is never written, whatever the caller sent.
if ARGV[6] == '1' and redis.call('HGET', P .. 'b:' .. bucket, 'eph') ~= '1' then
  redis.call('HSET', ek, 'p', ARGV[7])
end
redis.call('ZADD', P .. 'ev', 0, id)
redis.call('ZADD', P .. 'b:' .. bucket .. ':ev', 0, id)
redis.call('SET', P .. 'last', id)
if ARGV[12] ~= '1' then return { 'ok', tostring(now), 0 } end
local outs = redis.call('HGETALL', P .. 'b:' .. bucket .. ':outs')
local groups = redis.call('SMEMBERS', P .. 'b:' .. bucket .. ':groups')
table.sort(groups)
local public = 0
for i = 1, #outs, 2 do
  local o, internal = outs[i], outs[i + 1]
  if internal == '1' and #groups > 0 then
    for _, g in ipairs(groups) do
      create_delivery(id .. '|' .. o .. '|=' .. g, id, '1', bucket, ms)
    end
  else
    create_delivery(id .. '|' .. o .. '|-', id, internal, bucket, ms)
    if internal ~= '1' then public = 1 end
  end
end
return { 'ok', tostring(now), public }
