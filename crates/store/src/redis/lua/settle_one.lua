-- Records an attempt (if any) and moves a delivery on. A release applies
-- only to a delivery still in flight or claimed, so a late release never
-- undoes another settlement or a resend. A settlement from a node that no
-- longer holds the delivery (its claim lapsed and another node took it)
-- changes nothing, and neither does one of a delivery already settled
-- (a settlement retried after its answer was lost). Shared by `settle.lua`
-- and `settle_batch.lua`; returns 'ok' or 'nf' (no such delivery).
-- kind: delivered|failed|retry|released|expired|skipped
local function settle_one(m, kind, at, attempt, now, node)
  local d = load(m)
  if not d then return 'nf' end
  local owner = d.owner or ''
  if owner ~= '' and owner ~= node then return 'ok' end
  if d.state ~= 'pending' and d.state ~= 'in_flight' then return 'ok' end
  if kind == 'released' and not (d.state == 'in_flight' or (d.state == 'pending' and owner ~= '')) then
    return 'ok'
  end
  unqueue(m, d)
  local tries, attempts = tonumber(d.tries) or 0, d.attempts or '[]'
  if attempt ~= '' then
    tries = tries + 1
    if attempts == '[]' then
      attempts = '[' .. attempt .. ']'
    else
      attempts = string.sub(attempts, 1, -2) .. ',' .. attempt .. ']'
    end
  end
  local state, next_at = kind, 0
  if kind == 'retry' then state, next_at = 'pending', at end
  if kind == 'released' then state = 'pending' end
  redis.call('HSET', P .. 'd:' .. m, 'state', state, 'next', next_at, 'tries', tries,
    'attempts', attempts, 'updated', now, 'owner', '')
  if state == 'pending' then enqueue(m, d, next_at) end
  return 'ok'
end
