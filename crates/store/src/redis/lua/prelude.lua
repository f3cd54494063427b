-- Shared by every tenant script (prepended to each): KEYS[1] is the
-- tenant's key prefix `{ns}:{<tenant>}:`; every key a script touches
-- starts with it, so one script stays in one Redis Cluster slot.
local P = KEYS[1]

-- Redis time in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Byte order, as sorted sets use: Lua's `<` follows the server's
-- LC_COLLATE, which Redis takes from its environment.
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- `<event>|<output>|<group>` → event, output, group tag (`-` or `=name`).
local function split3(m)
  local a = string.find(m, '|', 1, true)
  local b = string.find(m, '|', a + 1, true)
  return string.sub(m, 1, a - 1), string.sub(m, a + 1, b - 1), string.sub(m, b + 1)
end

-- A delivery's fields as a table, or nil.
local function load(m)
  local flat = redis.call('HGETALL', P .. 'd:' .. m)
  if #flat == 0 then return nil end
  local d = {}
  for i = 1, #flat, 2 do d[flat[i]] = flat[i + 1] end
  return d
end

-- The sorted sets a node's claims of this delivery live in.
local function claim_keys(m, d, owner)
  local _, _, g = split3(m)
  if d.internal == '1' then
    return P .. 'qc:' .. d.bucket .. ':' .. owner .. ':' .. g,
           P .. 'qf:' .. d.bucket .. ':' .. owner .. ':' .. g
  end
  return P .. 'pqc:' .. owner, P .. 'pqf:' .. owner
end

-- Takes a delivery out of every queue it may be in.
local function unqueue(m, d)
  local _, _, g = split3(m)
  if d.internal == '1' then
    if g == '-' then
      redis.call('ZREM', P .. 'w:' .. d.bucket, m)
    else
      redis.call('ZREM', P .. 'q:' .. d.bucket .. ':' .. g, m)
      redis.call('ZREM', P .. 'qr:' .. d.bucket .. ':' .. g, m)
    end
  else
    redis.call('ZREM', P .. 'pq', m)
  end
  if d.owner and d.owner ~= '' then
    local c, f = claim_keys(m, d, d.owner)
    redis.call('ZREM', c, m)
    redis.call('ZREM', f, m)
  end
end

-- Queues a pending, unclaimed delivery: agent groups' rows by event order
-- (ready) or by due time (backoff); rows waiting for a group apart; the
-- server's own rows by due time.
local function enqueue(m, d, next_at)
  local _, _, g = split3(m)
  if d.internal == '1' then
    if g == '-' then
      redis.call('ZADD', P .. 'w:' .. d.bucket, 0, m)
    elseif next_at > 0 then
      redis.call('ZADD', P .. 'qr:' .. d.bucket .. ':' .. g, next_at, m)
    else
      redis.call('ZADD', P .. 'q:' .. d.bucket .. ':' .. g, 0, m)
    end
  else
    redis.call('ZADD', P .. 'pq', next_at, m)
  end
end

-- Records that `owner` holds claims in `key` (what release visits).
local function held(owner, key)
  redis.call('SADD', P .. 'held:' .. owner, key)
end

-- A new pending delivery of event `ev` (received at `since`).
local function create_delivery(m, ev, internal, bucket, since)
  local seq = redis.call('ZCARD', P .. 'ed:' .. ev)
  redis.call('HSET', P .. 'd:' .. m, 'state', 'pending', 'tries', 0, 'since', since,
    'next', 0, 'owner', '', 'internal', internal, 'bucket', bucket, 'attempts', '[]',
    'updated', since)
  redis.call('ZADD', P .. 'ed:' .. ev, seq, m)
  enqueue(m, { internal = internal, bucket = bucket }, 0)
end

-- Deletes a delivery outright (its output or event is gone).
local function drop(m)
  local d = load(m)
  if d then unqueue(m, d) end
  local ev = split3(m)
  redis.call('DEL', P .. 'd:' .. m)
  redis.call('ZREM', P .. 'ed:' .. ev, m)
end
