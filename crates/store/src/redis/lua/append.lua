-- Appends a batch of one tenant's events, in order, in one step each:
-- the event, its index entries, its pending deliveries and its dedup
-- entry; refuses an event whose bucket is gone or whose delivery id is a
-- live duplicate. Each event comes with the id its payload was sealed
-- under; the script commits it under that id when the id is above the
-- tenant's last and not older than Redis time minus the skew bound, and
-- otherwise mints the next id itself (re-mint: at Redis time, above the
-- last id) and records the sealing id in the event's field `a`. So no
-- append is ever refused for its order or its age.
-- ARGV: skew_ms, then per event EVENT_ARGS values: id, ms, bucket, input,
--       meta, has_payload, payload, has_did, did, window_ms, delivers
--       ('0': a handshake or a stopped event, stored without deliveries)
-- Answers { redis_ms, re-mints, { per event: { 'ok', id, public } or
-- { 'nf' } or { 'dup' } } }.
local EVENT_ARGS = 11
local B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

-- The time part of `evt_<ULID>` in ms.
local function id_ms(id)
  local v = 0
  for i = 5, 14 do
    v = v * 32 + string.find(B32, string.sub(id, i, i), 1, true) - 1
  end
  return v
end

-- The ULID time part (10 characters) of `ms`.
local function ms_text(ms)
  local t = {}
  for i = 10, 1, -1 do
    local d = ms % 32
    t[i] = string.sub(B32, d + 1, d + 1)
    ms = (ms - d) / 32
  end
  return table.concat(t)
end

-- The least id above `id`: its random part plus one (the next
-- millisecond when that overflows).
local function above(id)
  local s = { string.byte(id, 1, -1) }
  for i = #s, 15, -1 do
    local d = string.find(B32, string.char(s[i]), 1, true)
    if d < 32 then
      s[i] = string.byte(B32, d + 1)
      return string.char(unpack(s))
    end
    s[i] = string.byte('0')
  end
  return 'evt_' .. ms_text(id_ms(id) + 1) .. string.rep('0', 16)
end

local skew = tonumber(ARGV[1])
local n = (#ARGV - 1) / EVENT_ARGS
local now = now_ms()
local last = redis.call('GET', P .. 'last')
local last_ms = last and id_ms(last)
local remints = 0

-- A bucket's record, read once per batch (nothing in it changes here).
local buckets = {}
local function bucket_of(name)
  local b = buckets[name]
  if b == nil then
    local key = P .. 'b:' .. name
    b = false
    if redis.call('EXISTS', key) == 1 then
      b = { eph = redis.call('HGET', key, 'eph') == '1' }
    end
    buckets[name] = b
  end
  return b
end

-- Creates event `id`'s deliveries; 1 if one goes to a public output.
local function deliveries(b, id, bucket, ms)
  if not b.outs then
    b.outs = redis.call('HGETALL', P .. 'b:' .. bucket .. ':outs')
    b.groups = redis.call('SMEMBERS', P .. 'b:' .. bucket .. ':groups')
    table.sort(b.groups)
  end
  local outs, groups = b.outs, b.groups
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
  return public
end

local answers = {}
local committed = false
for e = 0, n - 1 do
  local a = 1 + e * EVENT_ARGS
  local id, ms, bucket = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local input, meta = ARGV[a + 4], ARGV[a + 5]
  local window = tonumber(ARGV[a + 10])
  local b = bucket_of(bucket)
  local answer
  if not b then
    answer = { 'nf' }
  else
    local sealed_as
    if (last and not before(last, id)) or ms < now - skew then
      sealed_as = id
      local t = math.max(ms, now)
      if last and t <= last_ms then
        id = above(last)
      else
        id = 'evt_' .. ms_text(t) .. string.sub(id, 15)
      end
      ms = id_ms(id)
    end
    local dup = false
    if ARGV[a + 8] == '1' then
      local dk = P .. 'dd:' .. input .. ':' .. ARGV[a + 9]
      local until_ms = redis.call('GET', dk)
      if until_ms and tonumber(until_ms) > ms then
        dup = true
      elseif window > 0 then
        local ttl = math.max(ms + window - now, 1)
        redis.call('SET', dk, tostring(ms + window), 'PX', ttl)
      end
    end
    if dup then
      answer = { 'dup' }
    else
      local ek = P .. 'e:' .. id
      -- One HSET per event: each redis.call costs more in the script
      -- than the command itself.
      local fields = { 'm', meta, 'b', bucket, 'ms', ms }
      -- An ephemeral bucket's payload is never written, whatever the
      -- caller sent.
      if ARGV[a + 6] == '1' and not b.eph then
        fields[#fields + 1], fields[#fields + 2] = 'p', ARGV[a + 7]
        if sealed_as then
          fields[#fields + 1], fields[#fields + 2] = 'a', sealed_as
        end
      end
      redis.call('HSET', ek, unpack(fields))
      if sealed_as then remints = remints + 1 end
      redis.call('ZADD', P .. 'ev', 0, id)
      redis.call('ZADD', P .. 'b:' .. bucket .. ':ev', 0, id)
      last, last_ms, committed = id, ms, true
      local public = 0
      if ARGV[a + 11] == '1' then public = deliveries(b, id, bucket, ms) end
      answer = { 'ok', id, public }
    end
  end
  answers[e + 1] = answer
end
if committed then redis.call('SET', P .. 'last', last) end
if remints > 0 then redis.call('INCRBY', P .. 'remints', remints) end
return { tostring(now), remints, answers }
