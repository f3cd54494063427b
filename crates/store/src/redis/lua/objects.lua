-- The administered objects' writes that must check and write in one step
-- (existence, unique names). One script, dispatched on ARGV[1], so the
-- Rust side has one place to call; each branch names its ARGV.
-- Answers 'ok', 'nf' (missing), or 'conflict:<field>'.
local op = ARGV[1]

-- A name index entry: claims `name` for `id` in hash `idx`, releasing
-- `old` if it was this object's. '' is no name.
local function rename(idx, old, name, id)
  if name == old then return true end
  if name ~= '' and redis.call('HSETNX', idx, name, id) == 0 then return false end
  if old ~= '' and redis.call('HGET', idx, old) == id then redis.call('HDEL', idx, old) end
  return true
end

if op == 'tenant.create' then -- json, has_poll, poll
  if redis.call('EXISTS', P .. 't') == 1 then return 'conflict:id' end
  redis.call('HSET', P .. 't', 'json', ARGV[2])
  if ARGV[3] == '1' then redis.call('HSET', P .. 't', 'poll', ARGV[4]) end
  return 'ok'
elseif op == 'set' then -- key suffix, field, value, ... (only if the key exists)
  local k = P .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  for i = 3, #ARGV, 2 do redis.call('HSET', k, ARGV[i], ARGV[i + 1]) end
  return 'ok'
elseif op == 'unset' then -- key suffix, field (only if the key exists)
  local k = P .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  redis.call('HDEL', k, ARGV[3])
  return 'ok'
elseif op == 'bucket.create' then -- id, name, json, auth, ephemeral
  if redis.call('EXISTS', P .. 't') == 0 then return 'nf' end
  if redis.call('EXISTS', P .. 'b:' .. ARGV[2]) == 1 then return 'conflict:id' end
  if redis.call('HSETNX', P .. 'bname', ARGV[3], ARGV[2]) == 0 then return 'conflict:name' end
  redis.call('HSET', P .. 'b:' .. ARGV[2], 'name', ARGV[3], 'json', ARGV[4], 'auth', ARGV[5],
    'eph', ARGV[6])
  redis.call('SADD', P .. 'buckets', ARGV[2])
  return 'ok'
elseif op == 'bucket.update' then -- id, name, json, auth, ephemeral
  local k = P .. 'b:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  local old = redis.call('HGET', k, 'name') or ''
  if not rename(P .. 'bname', old, ARGV[3], ARGV[2]) then return 'conflict:name' end
  redis.call('HSET', k, 'name', ARGV[3], 'json', ARGV[4], 'auth', ARGV[5], 'eph', ARGV[6])
  return 'ok'
elseif op == 'input.create' then -- id, bucket, name, json, sealed secrets, created
  local k = P .. 'i:' .. ARGV[2]
  if redis.call('EXISTS', P .. 'b:' .. ARGV[3]) == 0 then return 'nf' end
  if redis.call('EXISTS', k) == 1 then return 'conflict:id' end
  if not rename(P .. 'iname', '', ARGV[4], ARGV[2]) then return 'conflict:name' end
  redis.call('HSET', k, 'bucket', ARGV[3], 'name', ARGV[4], 'json', ARGV[5], 'sec', ARGV[6],
    'created', ARGV[7])
  redis.call('SADD', P .. 'b:' .. ARGV[3] .. ':ins', ARGV[2])
  return 'ok'
elseif op == 'input.update' then -- id, name, json, sealed secrets
  local k = P .. 'i:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  local old = redis.call('HGET', k, 'name') or ''
  if not rename(P .. 'iname', old, ARGV[3], ARGV[2]) then return 'conflict:name' end
  redis.call('HSET', k, 'name', ARGV[3], 'json', ARGV[4], 'sec', ARGV[5])
  return 'ok'
elseif op == 'input.delete' then -- id
  local k = P .. 'i:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  rename(P .. 'iname', redis.call('HGET', k, 'name') or '', '', ARGV[2])
  redis.call('SREM', P .. 'b:' .. (redis.call('HGET', k, 'bucket') or '') .. ':ins', ARGV[2])
  redis.call('DEL', k)
  return 'ok'
elseif op == 'output.create' then -- id, bucket, json, internal, created
  local k = P .. 'o:' .. ARGV[2]
  if redis.call('EXISTS', P .. 'b:' .. ARGV[3]) == 0 then return 'nf' end
  if redis.call('EXISTS', k) == 1 then return 'conflict:id' end
  redis.call('HSET', k, 'bucket', ARGV[3], 'json', ARGV[4], 'created', ARGV[6])
  redis.call('HSET', P .. 'b:' .. ARGV[3] .. ':outs', ARGV[2], ARGV[5])
  return 'ok'
elseif op == 'output.update' then -- id, json, internal
  local k = P .. 'o:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  redis.call('HSET', k, 'json', ARGV[3])
  redis.call('HSET', P .. 'b:' .. redis.call('HGET', k, 'bucket') .. ':outs', ARGV[2], ARGV[4])
  return 'ok'
elseif op == 'output.delete' then -- id
  -- Its unfinished deliveries leave the queues with it (left pending, they
  -- would head a due query forever); rows a node holds are dropped when
  -- that node's due query meets them.
  local k = P .. 'o:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  local bucket = redis.call('HGET', k, 'bucket') or ''
  redis.call('HDEL', P .. 'b:' .. bucket .. ':outs', ARGV[2])
  redis.call('DEL', k)
  local queues = { P .. 'w:' .. bucket, P .. 'pq' }
  for _, g in ipairs(redis.call('SMEMBERS', P .. 'b:' .. bucket .. ':groups')) do
    queues[#queues + 1] = P .. 'q:' .. bucket .. ':=' .. g
    queues[#queues + 1] = P .. 'qr:' .. bucket .. ':=' .. g
  end
  local needle = '|' .. ARGV[2] .. '|'
  for _, q in ipairs(queues) do
    for _, m in ipairs(redis.call('ZRANGE', q, 0, -1)) do
      if string.find(m, needle, 1, true) then drop(m) end
    end
  end
  return 'ok'
elseif op == 'token.create' then -- key, json, description, buckets, hash
  if redis.call('EXISTS', P .. 't') == 0 then return 'nf' end
  local k = P .. 'k:' .. ARGV[2]
  if redis.call('EXISTS', k) == 1 then return 'conflict:key' end
  redis.call('HSET', k, 'json', ARGV[3], 'desc', ARGV[4], 'buckets', ARGV[5], 'hash', ARGV[6])
  redis.call('SADD', P .. 'tokens', ARGV[2])
  return 'ok'
elseif op == 'token.delete' then -- key
  local k = P .. 'k:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  redis.call('DEL', k)
  redis.call('SREM', P .. 'tokens', ARGV[2])
  return 'ok'
elseif op == 'bucket.delete' then -- id: objects only, after its events went
  local k = P .. 'b:' .. ARGV[2]
  if redis.call('EXISTS', k) == 0 then return 'nf' end
  local b = P .. 'b:' .. ARGV[2]
  for _, i in ipairs(redis.call('SMEMBERS', b .. ':ins')) do
    local ik = P .. 'i:' .. i
    rename(P .. 'iname', redis.call('HGET', ik, 'name') or '', '', i)
    redis.call('DEL', ik)
  end
  for _, o in ipairs(redis.call('HKEYS', b .. ':outs')) do redis.call('DEL', P .. 'o:' .. o) end
  for _, g in ipairs(redis.call('SMEMBERS', b .. ':groups')) do
    redis.call('DEL', P .. 'q:' .. ARGV[2] .. ':=' .. g, P .. 'qr:' .. ARGV[2] .. ':=' .. g)
  end
  rename(P .. 'bname', redis.call('HGET', k, 'name') or '', '', ARGV[2])
  redis.call('DEL', b .. ':ins', b .. ':outs', b .. ':groups', b .. ':ev', P .. 'w:' .. ARGV[2], k)
  redis.call('SREM', P .. 'buckets', ARGV[2])
  return 'ok'
end
return redis.error_reply('unknown op ' .. tostring(op))
