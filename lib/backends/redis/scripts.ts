/**
 * lockdeck's own Redis lock layout and the Lua scripts that keep it consistent.
 *
 * Keys of lock `N` (prefix `P`, default "lockdeck"). All share the hash tag `{N}` so that they
 * land in one Cluster slot and one script may touch them all:
 *   P:{N}        hash   token, owner, host, pid, inst, fence, acq, exp, ttl, ch, labels  (PX = lease)
 *   P:{N}:fence  string the last fence (server µs clock, or +1), never expires: fences keep increasing
 *   P:{N}:q      zset   waiter id -> enqueue time in µs (server clock); FIFO order
 *   P:{N}:w      hash   waiter id -> JSON {t: token, o: owner, h, p, i, ttl, ch, lu: lease until ms, l: labels}
 *   P:index      zset   lock name -> expiry (ms): the inspector's list of held locks, never KEYS/SCAN.
 *                       In Cluster mode it lives in another slot, so the scripts skip it and the
 *                       client updates it beside them (it is a hint; `list` verifies every entry).
 *
 * Handoff is done by the server: a release hands the lock straight to the oldest live waiter (a
 * new token, fence and a short first lease) and publishes "granted" to that waiter's process
 * channel, so the waiter owns the lock the moment the message arrives — half a round trip after
 * the release reached Redis (perf-reliability-anchors.md §1.3, "best compatible design"). A dead
 * waiter cannot wedge the lock: its first lease is short (`handoffTtl`), and waiters that stop
 * refreshing their queue entry (`lu`) are skipped.
 *
 * Every script reads the time with TIME, so all expiries come from one clock: the server's.
 */

/** Shared Lua prelude: time, the grant and the handoff. KEYS = lock, fence, q, w, index. */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- Events for watchers: type, at, fence, owner, ms and name, one per line. Plain concatenation, not cjson: this runs
-- on every acquire and release. Names and owners cannot contain control characters (validated).
-- ms: how long the acquirer waited ('acquired'), or how long the holder held the lock; for
-- 'attempt', the mode and a short id of the attempt ('queued:<id>' / 'refused:<id>', the id tells
-- the copies a Redlock attempt publishes on each master from two attempts); for 'renewed', the new
-- expiry (epoch ms, this server's clock), so a watcher need not read the lock back; for 'lost'
-- (published by the holder's process, not by a script), the LostReason.
local function publishEvent(chan, typ, name, fence, owner, ms)
  if chan ~= '' then
    redis.call('PUBLISH', chan, typ .. '\\n' .. now .. '\\n' .. (fence or '') .. '\\n' .. (owner or '') .. '\\n' .. (ms or '') .. '\\n' .. name)
  end
end

-- The next fence: the server's clock in µs, or one more than the last fence if that is not
-- below it (same µs, or the clock stepped back). A plain INCR counter goes back to 1 when Redis
-- restarts without persistence, and to a stale value when a replica that missed the last INCRs
-- is promoted; a fence that goes back is worthless (Kleppmann, "How to do distributed locking").
-- With the clock as a floor the fences keep increasing across both, as long as the new server's
-- clock is not behind by more than the restart or failover took (seconds) — a hybrid logical
-- clock (Kulkarni et al., 2014). The counter cannot outrun the clock: that would take more than
-- one acquisition per µs. Measured: RELIABILITY.md, redis-ephemeral x server-kill.
-- Fences are strings ('%.0f'): a µs time has 16 digits and Lua prints numbers with 14.
-- Redlock (clockFloor false) keeps the plain counter: its masters must give one fence for one
-- acquisition, which their own clocks would not (their counters are raised to the quorum's
-- highest, redlock.ts); a master restarted empty is Redlock's known hazard (delayed restarts).
local function nextFence(clockFloor)
  if not clockFloor then return string.format('%.0f', redis.call('INCR', KEYS[2])) end
  local us = string.format('%.0f', nowUs)
  local last = tonumber(redis.call('GETSET', KEYS[2], us))
  if last and last >= nowUs then
    us = string.format('%.0f', last + 1)
    redis.call('SET', KEYS[2], us)
  end
  return us
end

-- Makes the lock held by entry e for leaseMs; returns the new fence (a string).
local function grant(e, leaseMs, useIndex, name, clockFloor)
  local fence = nextFence(clockFloor)
  local exp = now + leaseMs
  redis.call('HSET', KEYS[1], 'token', e.t, 'owner', e.o, 'host', e.h, 'pid', e.p, 'inst', e.i,
    'fence', fence, 'acq', now, 'exp', exp, 'ttl', e.ttl, 'ch', e.ch, 'labels', e.l)
  redis.call('PEXPIRE', KEYS[1], leaseMs)
  if useIndex == '1' then redis.call('ZADD', KEYS[5], exp, name) end
  return fence, exp
end

-- Hands the free lock to the oldest waiter whose queue entry is still live. Returns its id or nil.
local function handoff(useIndex, name, handoffTtl, events)
  -- handoffTtl 0: Redlock mode, where no single server may grant a quorum lock; waiters are
  -- recorded only so the console can show them.
  if handoffTtl == '0' then return nil end
  while true do
    -- ZPOPMIN (Redis >= 5) reads and removes the head in one call, where ZRANGE + ZREM took two:
    -- this loop is on the handoff's critical path, and each redis.call costs ~1-3 us of Lua glue.
    local first = redis.call('ZPOPMIN', KEYS[3])
    local head = first[1]
    if not head then return nil end
    local raw = redis.call('HGET', KEYS[4], head)
    redis.call('HDEL', KEYS[4], head)
    if raw then
      local e = cjson.decode(raw)
      if tonumber(e.lu) >= now then
        local lease = math.min(tonumber(e.ttl), tonumber(handoffTtl))
        local fence, exp = grant(e, lease, useIndex, name, true)
        redis.call('PUBLISH', e.ch, 'g|' .. head .. '|' .. fence .. '|' .. exp .. '|' .. lease)
        publishEvent(events, 'acquired', name, fence, e.o, math.floor((nowUs - tonumber(first[2])) / 1000))
        return head
      end
    end
  end
end
`;

/**
 * ACQUIRE: take the lock if it is free and nobody older waits; else (with a waiter id) join or
 * refresh the queue. Also answers "already yours" when a release handed it to us meanwhile.
 * ARGV: name, token, ttl, owner, host, pid, inst, ch, labels, waiterId|'', waitLeaseMs, useIndex,
 *       events channel, handoffTtl, waitedMs (as the client measured it, for the event)
 * Returns {1, fence, exp, now, lease, granted here: 1 | 0} or {0, pttl, now, queued position (0-based) or -1}.
 * "Granted here" is 0 when a release handed us the lock earlier (its grant was written by the
 * releaser's connection, so a WAIT on ours does not cover it: see base.ts, confirmGrant).
 */
export const ACQUIRE = `${PRELUDE}
local name, token, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local waiter, useIndex, events, handoffTtl = ARGV[10], ARGV[12], ARGV[13], ARGV[14]
local me = {t = token, o = ARGV[4], h = ARGV[5], p = ARGV[6], i = ARGV[7], ttl = ttl, ch = ARGV[8],
  l = ARGV[9], lu = now + tonumber(ARGV[11])}
-- Fast path, the uncontended acquire: neither the lock nor a queue exists. One EXISTS instead of
-- HGET + ZRANGE (a missing lock cannot be ours, a missing queue has no older waiter).
if redis.call('EXISTS', KEYS[1], KEYS[3]) == 0 then
  if waiter ~= '' then redis.call('HDEL', KEYS[4], waiter) end
  local fence, exp = grant(me, ttl, useIndex, name, handoffTtl ~= '0')
  publishEvent(events, 'acquired', name, fence, me.o, ARGV[15])
  return {1, fence, tostring(exp), now, ttl, 1}
end
local cur = redis.call('HGET', KEYS[1], 'token')
if cur == token then
  if waiter ~= '' then
    redis.call('ZREM', KEYS[3], waiter)
    redis.call('HDEL', KEYS[4], waiter)
  end
  local h = redis.call('HMGET', KEYS[1], 'fence', 'exp')
  return {1, h[1], h[2], now, redis.call('PTTL', KEYS[1]), 0}
end
if not cur then
  -- Free. Fairness: the oldest live waiter goes first; a newcomer only gets an uncontested lock.
  local head = nil
  if handoffTtl ~= '0' then head = redis.call('ZRANGE', KEYS[3], 0, 0)[1] end
  while head and head ~= waiter do
    local raw = redis.call('HGET', KEYS[4], head)
    if raw and tonumber(cjson.decode(raw).lu) >= now then break end
    redis.call('ZREM', KEYS[3], head)
    redis.call('HDEL', KEYS[4], head)
    head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  end
  if not head or head == waiter then
    if waiter ~= '' then
      redis.call('ZREM', KEYS[3], waiter)
      redis.call('HDEL', KEYS[4], waiter)
    end
    local fence, exp = grant(me, ttl, useIndex, name, handoffTtl ~= '0')
    publishEvent(events, 'acquired', name, fence, me.o, ARGV[15])
    return {1, fence, tostring(exp), now, ttl, 1}
  end
  handoff(useIndex, name, handoffTtl, events)
end
-- Refused: one 'attempt' event for a single try, and for a waiter when it joins the queue (not
-- on its re-checks). Only this contended path pays for it.
if waiter == '' then
  publishEvent(events, 'attempt', name, nil, me.o, 'refused:' .. string.sub(redis.sha1hex(token), 1, 12))
  return {0, redis.call('PTTL', KEYS[1]), now, -1}
end
if not redis.call('ZSCORE', KEYS[3], waiter) then
  redis.call('ZADD', KEYS[3], nowUs, waiter)
  publishEvent(events, 'attempt', name, nil, me.o, 'queued:' .. string.sub(redis.sha1hex(token), 1, 12))
end
redis.call('HSET', KEYS[4], waiter, cjson.encode(me))
return {0, redis.call('PTTL', KEYS[1]), now, redis.call('ZRANK', KEYS[3], waiter)}
`;

/**
 * RELEASE: compare-and-delete on the token, then hand the lock to the next waiter.
 * ARGV: name, token, useIndex, events channel, handoffTtl. Returns 1 if released, 0 if not ours.
 */
export const RELEASE = `${PRELUDE}
local name, token, useIndex, events, handoffTtl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = redis.call('HMGET', KEYS[1], 'token', 'fence', 'owner', 'acq')
if h[1] ~= token then return 0 end
publishEvent(events, 'released', name, h[2], h[3], now - tonumber(h[4] or now))
-- Handing over rewrites every field of the hash, so it needs no DEL first.
if not handoff(useIndex, name, handoffTtl, events) then
  redis.call('DEL', KEYS[1])
  if useIndex == '1' then redis.call('ZREM', KEYS[5], name) end
end
return 1
`;

/**
 * EXTEND: compare on the token, then set a new lease of ttl ms.
 * ARGV: name, token, ttl, useIndex, events channel. Returns {exp, now} or 0 when not ours.
 */
export const EXTEND = `${PRELUDE}
local name, token, ttl, useIndex, events = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local h = redis.call('HMGET', KEYS[1], 'token', 'fence')
if h[1] ~= token then return 0 end
local exp = now + ttl
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[1], 'exp', exp, 'ttl', ttl)
if useIndex == '1' then redis.call('ZADD', KEYS[5], exp, name) end
publishEvent(events, 'renewed', name, h[2], nil, exp)
return {exp, now}
`;

/**
 * CANCEL: a waiter gives up. If a release handed it the lock in the meantime, pass it on.
 * ARGV: name, waiterId, token, useIndex, events channel, handoffTtl. Returns 1 if it had to pass it on.
 */
export const CANCEL = `${PRELUDE}
local name, waiter, token, useIndex, events, handoffTtl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
redis.call('ZREM', KEYS[3], waiter)
redis.call('HDEL', KEYS[4], waiter)
local h = redis.call('HMGET', KEYS[1], 'token', 'fence', 'owner', 'acq')
if h[1] ~= token then return 0 end
publishEvent(events, 'released', name, h[2], h[3], now - tonumber(h[4] or now))
if not handoff(useIndex, name, handoffTtl, events) then
  redis.call('DEL', KEYS[1])
  if useIndex == '1' then redis.call('ZREM', KEYS[5], name) end
end
return 1
`;

/**
 * FORCE: an operator's release of what they saw. With an expected fence/owner it changes nothing
 * unless they still hold the lock. Tells the holder's process at once (its channel) and hands the
 * lock to the next waiter.
 * ARGV: name, expectFence|'', expectOwner|'', useIndex, events channel, handoffTtl.
 * Returns {'missing'} | {'changed', hash...} | {'released', hash...}.
 */
export const FORCE = `${PRELUDE}
local name, expectFence, expectOwner, useIndex, events, handoffTtl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {'missing'} end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
local function result(status)
  local out = {status}
  for k, v in pairs(f) do
    if k ~= 'token' then table.insert(out, k); table.insert(out, v) end
  end
  table.insert(out, 'pttl'); table.insert(out, tostring(redis.call('PTTL', KEYS[1])))
  table.insert(out, 'now'); table.insert(out, tostring(now))
  return out
end
if (expectFence ~= '' and f.fence ~= expectFence) or (expectOwner ~= '' and f.owner ~= expectOwner) then
  return result('changed')
end
local out = result('released')
if f.ch then redis.call('PUBLISH', f.ch, 'l|' .. f.fence .. '|' .. name) end
publishEvent(events, 'forced', name, f.fence, f.owner, now - tonumber(f.acq or now))
if not handoff(useIndex, name, handoffTtl, events) then
  redis.call('DEL', KEYS[1])
  if useIndex == '1' then redis.call('ZREM', KEYS[5], name) end
end
return out
`;

/**
 * RAISE_FENCE (Redlock): after winning a quorum, make every won server's counter and lock carry
 * the highest fence any of them gave, so the next quorum (which overlaps ours in at least one
 * server) gets a strictly higher one. ARGV: token, fence. Returns 1 if the lock is still ours.
 */
export const RAISE_FENCE = `
local h = redis.call('HGET', KEYS[1], 'token')
if h ~= ARGV[1] then return 0 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('HSET', KEYS[1], 'fence', ARGV[2])
return 1
`;
