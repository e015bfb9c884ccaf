"""The Lua scripts of the Redis backend: each guarantee is one atomic script on Redis's clock.

Every script reads the time with ``TIME`` - Redis's own clock - so processes whose clocks
disagree share one notion of "now". Floats go back to Python as strings (Redis turns a
Lua number into an integer). Every key a script touches is in ``KEYS[]`` and shares one
hash tag, so the scripts run on Redis Cluster too; every key gets a TTL.

Waiting rooms: a process queues at most one waiter per resource (its local FIFO's head,
which asks for the whole local queue at once; the rest wait in the process). ``queue``
holds waiters by arrival, ``seen`` when each last asked; a waiter not seen for ``stale``
seconds (its process died) is dropped. An activation slot goes to a waiter only when
fewer than the free slots are queued ahead of it (oldest first); a window's free tokens
go to whoever asks unless a process has waited longer than a period, which is then
served first - full throughput, and no one starves.
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT_BLOCK",
    "ACCOUNT_READ",
    "FLEET_STATE",
    "FLIGHTS_ALL",
    "FLIGHT_END",
    "FLIGHT_LIST",
    "FLIGHT_ORPHANS",
    "FLIGHT_START",
    "HEARTBEAT",
    "JOURNAL_LIST",
    "JOURNAL_PUT",
    "JOURNAL_REMOVE",
    "JOURNAL_TAKE",
    "JOURNAL_UPDATE",
    "KNOWN_CLAIM",
    "KNOWN_FILTER",
    "LEAVE_QUEUE",
    "ORDER_LANDED",
    "REMOVE",
    "SLOTS_ACQUIRE",
    "SLOTS_BIND",
    "SLOTS_OBSERVE",
    "SLOTS_SERVER_FULL",
    "SUCCESS_COUNTS",
    "SUCCESS_RECORD",
    "WINDOW_ACQUIRE",
    "WINDOW_BLOCK",
    "WINDOW_RELEASE",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: queue, seen.  ARGV[stale_at]: seconds; ARGV[waiter], ARGV[ttl] in ms.
_QUEUE = """
local function drop_stale(queue, seen, stale)
  local gone = redis.call('ZRANGEBYSCORE', seen, '-inf', now - stale)
  for _, w in ipairs(gone) do
    redis.call('ZREM', queue, w)
    redis.call('ZREM', seen, w)
  end
end
local function enqueue(queue, seen, waiter, ttl)
  redis.call('ZADD', queue, 'NX', now, waiter)
  redis.call('ZADD', seen, now, waiter)
  redis.call('PEXPIRE', queue, ttl)
  redis.call('PEXPIRE', seen, ttl)
end
local function ahead_of(queue, waiter)
  local rank = redis.call('ZRANK', queue, waiter)
  if rank then return rank end
  return redis.call('ZCARD', queue)
end
local function dequeue(queue, seen, waiter)
  redis.call('ZREM', queue, waiter)
  redis.call('ZREM', seen, waiter)
end
"""

#: Take up to ``want`` tokens of one endpoint (for the waiters queued in one process), or
#: say how long to wait. KEYS: tokens, queue, seen, block, epoch, restarted.
#: ARGV: calls, lease, base, waiter, stale, hold, ttl_ms, want, starve, seen_epoch,
#: fresh_epoch, epoch_ttl_ms.
#: Tokens in flight score ``now + lease`` (a crashed process's come back by then); spent
#: ones score their return time; the n granted are ``base:1`` .. ``base:n``. Free tokens go
#: to whoever asks - except that a process waiting longer than ``starve`` seconds is
#: served before any newer one, so no process starves.
#: A Redis that lost its state (restarted without persistence) has no epoch although the
#: asking process saw one: the moment is kept in ``restarted`` and every window is held
#: full for its ``hold`` after it. Returns {n, "0", epoch} granted, {0, wait, epoch}
#: otherwise; wait is "-1" when tokens are free but held for older waiters.
WINDOW_ACQUIRE = (
    _NOW
    + _QUEUE
    + """
local tokens, queue, seen, block = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local epoch_key, restarted_key = KEYS[5], KEYS[6]
local calls, lease, base, waiter = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local stale, hold, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local want, starve = tonumber(ARGV[8]), tonumber(ARGV[9])
local epoch_ttl = tonumber(ARGV[12])
local epoch = redis.call('GET', epoch_key)
if not epoch then
  epoch = ARGV[11]
  if ARGV[10] ~= '' then
    redis.call('SET', restarted_key, tostring(now), 'PX', epoch_ttl)
  end
end
redis.call('SET', epoch_key, epoch, 'PX', epoch_ttl)
redis.call('ZREMRANGEBYSCORE', tokens, '-inf', now)
drop_stale(queue, seen, stale)
local blocked = tonumber(redis.call('GET', block) or '0')
local restarted = redis.call('GET', restarted_key)
if restarted and tonumber(restarted) + hold > blocked then
  blocked = tonumber(restarted) + hold
end
if blocked > now then
  enqueue(queue, seen, waiter, ttl)
  return {0, tostring(blocked - now), epoch}
end
local free = calls - redis.call('ZCARD', tokens)
if free > 0 then
  local since = redis.call('ZSCORE', queue, waiter)
  local ahead
  if since and tonumber(since) <= now - starve then
    ahead = redis.call('ZCOUNT', queue, '-inf', '(' .. since)
  else
    ahead = redis.call('ZCOUNT', queue, '-inf', now - starve)
  end
  local n = math.min(want, free - ahead)
  if n > 0 then
    for i = 1, n do
      redis.call('ZADD', tokens, now + lease, base .. ':' .. i)
    end
    redis.call('PEXPIRE', tokens, ttl)
    if n >= want then
      dequeue(queue, seen, waiter)
    else
      enqueue(queue, seen, waiter, ttl)
    end
    return {n, '0', epoch}
  end
  enqueue(queue, seen, waiter, ttl)
  return {0, '-1', epoch}
end
enqueue(queue, seen, waiter, ttl)
local first = redis.call('ZRANGE', tokens, 0, 0, 'WITHSCORES')
local back = math.min(tonumber(first[2]), now + hold)
return {0, tostring(back - now), epoch}
"""
)

#: Stamp a spent token to come back ``hold`` seconds from now (the response arrived).
#: KEYS: tokens.  ARGV: member, hold, ttl_ms.
WINDOW_RELEASE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
)

#: Close an endpoint for ``seconds`` (a server 429); a later end extends, an earlier one
#: changes nothing. KEYS: block.  ARGV: seconds.
WINDOW_BLOCK = (
    _NOW
    + """
local seconds = tonumber(ARGV[1])
local untill = now + seconds
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untill > current then
  redis.call('SET', KEYS[1], tostring(untill), 'PX', math.ceil(seconds * 1000) + 1000)
end
return 1
"""
)

#: A process leaves a waiting room (its last local waiter gave up). KEYS: queue, seen.
#: ARGV: waiter.
LEAVE_QUEUE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

#: Take an activation slot, or say how long to wait; refuses while the account is blocked.
#: KEYS: slots, queue, seen, external, account.
#: ARGV: capacity, member, pending_hold, waiter, stale, grace, ttl_ms, probe_interval.
#: Slots score their activation's ``expire_at`` (an order in flight: ``now + pending_hold``)
#: and come back ``grace`` seconds after it. Returns {1, "0"}, {0, wait}, or
#: {-1, until, message} when the account is blocked.
SLOTS_ACQUIRE = (
    _NOW
    + _QUEUE
    + """
local slots, queue, seen, external, account = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local capacity, member, pending = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local waiter, stale, grace = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl, probe_interval = tonumber(ARGV[7]), tonumber(ARGV[8])
local blocked = redis.call('HMGET', account, 'until', 'message')
if blocked[1] and tonumber(blocked[1]) > now then
  return {-1, blocked[1], blocked[2] or ''}
end
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - grace)
drop_stale(queue, seen, stale)
local ext = tonumber(redis.call('HGET', external, 'count') or '0')
local held = redis.call('ZCARD', slots)
local free = capacity - ext - held
if free <= 0 and ext > 0 then
  local probe_at = tonumber(redis.call('HGET', external, 'probe_at') or '0')
  if now >= probe_at then
    ext = math.max(0, math.min(ext - 1, capacity - held - 1))
    redis.call('HSET', external, 'count', ext, 'probe_at', tostring(now + probe_interval))
    redis.call('PEXPIRE', external, ttl)
    free = capacity - ext - held
  end
end
if free > 0 then
  if ahead_of(queue, waiter) < free then
    redis.call('ZADD', slots, now + pending, member)
    redis.call('PEXPIRE', slots, ttl)
    dequeue(queue, seen, waiter)
    return {1, '0'}
  end
  enqueue(queue, seen, waiter, ttl)
  return {0, '-1'}
end
enqueue(queue, seen, waiter, ttl)
local wait = pending
local first = redis.call('ZRANGE', slots, 0, 0, 'WITHSCORES')
if first[2] then wait = math.min(wait, tonumber(first[2]) + grace - now) end
if ext > 0 then
  local probe_at = tonumber(redis.call('HGET', external, 'probe_at') or '0')
  wait = math.min(wait, probe_at - now)
end
return {0, tostring(math.max(wait, 0))}
"""
)

#: Tie a slot to the activation its order opened. KEYS: slots.
#: ARGV: member (the order's), activation_id, expire_at (Unix seconds; "" for none),
#: pending_hold, ttl_ms.
SLOTS_BIND = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
local expire = tonumber(ARGV[3])
if not expire then expire = now + tonumber(ARGV[4]) end
redis.call('ZADD', KEYS[1], expire, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return 1
"""
)

#: Take a member out of a sorted set: a slot given back, a token granted but not spent,
#: an order that landed. KEYS: the set.  ARGV: member.
REMOVE = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

#: An activation was seen: ended frees its slot, a new expiry moves it. KEYS: slots.
#: ARGV: activation_id, ended ("1"/"0"), expire_at ("" for unknown).
SLOTS_OBSERVE = """
if ARGV[2] == '1' then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
local expire = tonumber(ARGV[3])
if expire then
  return redis.call('ZADD', KEYS[1], 'XX', 'CH', expire, ARGV[1])
end
return 0
"""

#: The server refused an order with TooManyActivations: free that order's slot and count
#: what is not held by the fleet as external until a re-probe.
#: KEYS: slots, external.  ARGV: member, capacity, probe_interval, ttl_ms.
SLOTS_SERVER_FULL = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
local ext = math.max(0, tonumber(ARGV[2]) - held)
redis.call('HSET', KEYS[2], 'count', ext, 'probe_at', tostring(now + tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return ext
"""
)

#: Block (ARGV: "set", until, message, ttl_ms) or unblock ("clear") the account.
#: KEYS: account.
ACCOUNT_BLOCK = """
if ARGV[1] == 'clear' then
  return redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'until', ARGV[2], 'message', ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

#: The account block, if any: {until, message} or {}. KEYS: account.
ACCOUNT_READ = (
    _NOW
    + """
local blocked = redis.call('HMGET', KEYS[1], 'until', 'message')
if blocked[1] and tonumber(blocked[1]) > now then
  return {blocked[1], blocked[2] or ''}
end
return {}
"""
)

#: Record an order ("order") or a first SMS ("sms", counted only for an order of the
#: window). KEYS: orders, successes.  ARGV: kind, activation_id, window, ttl_ms.
SUCCESS_RECORD = (
    _NOW
    + """
local orders, successes = KEYS[1], KEYS[2]
if ARGV[1] == 'order' then
  redis.call('ZADD', orders, 'NX', now, ARGV[2])
  redis.call('PEXPIRE', orders, tonumber(ARGV[4]))
  return 1
end
if redis.call('ZSCORE', orders, ARGV[2]) then
  redis.call('ZADD', successes, 'NX', now, ARGV[2])
  redis.call('PEXPIRE', successes, tonumber(ARGV[4]))
  return 1
end
return 0
"""
)

#: Orders and first SMS over the window: {orders, successes}. KEYS: orders, successes.
#: ARGV: window.
SUCCESS_COUNTS = (
    _NOW
    + """
local cutoff = now - tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""
)

_OWNERS = """
local function live(owners, owner)
  local expiry = redis.call('ZSCORE', owners, owner)
  return expiry and tonumber(expiry) > now
end
local function renew(owners, owner, lease, ttl)
  redis.call('ZADD', owners, now + lease, owner)
  redis.call('PEXPIRE', owners, ttl)
end
"""

#: Renew an owner's lease. KEYS: owners.  ARGV: owner, lease, ttl_ms.
HEARTBEAT = (
    _NOW
    + _OWNERS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600)
renew(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""
)

# Claims (after _OWNERS): ``known`` (a sorted set: id -> when claimed) and ``claimers``
# (a hash: id -> owner); ids claimed ``keep`` seconds ago are forgotten.
_CLAIMS = """
local function forget_claims(known, claimers, keep)
  local gone = redis.call('ZRANGEBYSCORE', known, '-inf', now - keep)
  for _, id in ipairs(gone) do redis.call('HDEL', claimers, id) end
  redis.call('ZREMRANGEBYSCORE', known, '-inf', now - keep)
end
local function claim(known, claimers, owners, owner, id)
  local claimer = redis.call('HGET', claimers, id)
  if redis.call('ZSCORE', known, id) and claimer
      and (claimer == owner or live(owners, claimer)) then
    return 0
  end
  redis.call('ZADD', known, now, id)
  redis.call('HSET', claimers, id, owner)
  return 1
end
"""

#: Claim activation ids as handed out by this fleet: 1 per id newly claimed (or taken
#: over from an owner whose lease lapsed), 0 per id a live owner claimed already; the
#: claimer's lease is renewed. KEYS: known, claimers, owners.
#: ARGV: keep, ttl_ms, owner, lease, ids...
KNOWN_CLAIM = (
    _NOW
    + _OWNERS
    + _CLAIMS
    + """
local known, claimers, owners = KEYS[1], KEYS[2], KEYS[3]
local owner, lease, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[2])
renew(owners, owner, lease, ttl)
forget_claims(known, claimers, tonumber(ARGV[1]))
local out = {}
for i = 5, #ARGV do
  out[#out + 1] = claim(known, claimers, owners, owner, ARGV[i])
end
redis.call('PEXPIRE', known, ttl)
redis.call('PEXPIRE', claimers, ttl)
return out
"""
)

#: Which of the ids an owner whose lease runs handed out: 1 or 0 per id.
#: KEYS: known, claimers, owners.  ARGV: ids...
KNOWN_FILTER = (
    _NOW
    + _OWNERS
    + """
local out = {}
for i = 1, #ARGV do
  local claimer = redis.call('HGET', KEYS[2], ARGV[i])
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) and claimer and live(KEYS[3], claimer) then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
)

# -- orders in flight: ``flights`` (a sorted set: ``<owner>:<id>|<offer>`` scored by when
# it is dropped unended) and ``left`` (a hash: member -> ``<when it left>|<its slot>``) --

_FLIGHTS = """
local function prune_flights(flights, left)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', flights, '-inf', now)) do
    redis.call('HDEL', left, member)
  end
  redis.call('ZREMRANGEBYSCORE', flights, '-inf', now)
end
local function owner_of(member)
  return string.match(member, '^([^:]+):')
end
"""

#: An order about to leave, kept until it lands or ``hold`` seconds pass (its process
#: may have died); its owner's lease is renewed. KEYS: flights, owners, left.
#: ARGV: member, hold, ttl_ms, slot ("" none), owner, lease, owners_ttl_ms.
FLIGHT_START = (
    _NOW
    + _OWNERS
    + """
renew(KEYS[2], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], tostring(now) .. '|' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
return 1
"""
)

#: An order landed, or a recovery dealt with it. KEYS: flights, owners, left.
#: ARGV: member.
FLIGHT_END = """
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

#: Every order of the fleet in flight now whose owner's lease runs.
#: KEYS: flights, owners, left.
FLIGHT_LIST = (
    _NOW
    + _OWNERS
    + _FLIGHTS
    + """
prune_flights(KEYS[1], KEYS[3])
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = owner_of(member)
  if owner and live(KEYS[2], owner) then out[#out + 1] = member end
end
return out
"""
)

#: Every order of the fleet still in flight whose owner's lease lapsed (its process
#: died before the order landed), until its hold passes. KEYS: flights, owners, left.
FLIGHT_ORPHANS = (
    _NOW
    + _OWNERS
    + _FLIGHTS
    + """
prune_flights(KEYS[1], KEYS[3])
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = owner_of(member)
  if owner and not live(KEYS[2], owner) then out[#out + 1] = member end
end
return out
"""
)

#: Every order of the fleet in flight (a lapsed owner's until its hold passes):
#: {member, ``<when it left>|<its slot>`` ("" unknown), 1 if its owner's lease runs else 0,
#: ...}.
#: KEYS: flights, owners, left.
FLIGHTS_ALL = (
    _NOW
    + _OWNERS
    + _FLIGHTS
    + """
prune_flights(KEYS[1], KEYS[3])
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = owner_of(member)
  if owner then
    out[#out + 1] = member
    out[#out + 1] = redis.call('HGET', KEYS[3], member) or ''
    out[#out + 1] = live(KEYS[2], owner) and 1 or 0
  end
end
return out
"""
)

#: The fleet's view for dashboards. KEYS: slots, slot queue, external, account, then per
#: endpoint tokens, queue, block. ARGV: grace, then per endpoint its hold.
#: Returns {slots held, next slot expiry ("" none), slot waiters, external, account
#: until ("" none), then per endpoint: tokens, cooling, waiters, blocked until, next
#: return ("" none)}.
FLEET_STATE = (
    _NOW
    + """
local grace = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - grace)
local out = {}
out[1] = redis.call('ZCARD', KEYS[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
out[2] = first[2] and tostring(tonumber(first[2]) + grace) or ''
out[3] = redis.call('ZCARD', KEYS[2])
out[4] = tonumber(redis.call('HGET', KEYS[3], 'count') or '0')
local blocked = redis.call('HGET', KEYS[4], 'until')
out[5] = (blocked and tonumber(blocked) > now) and blocked or ''
out[6] = tostring(now)
local n = (#KEYS - 4) / 3
for i = 0, n - 1 do
  local tokens, queue, block = KEYS[5 + 3 * i], KEYS[6 + 3 * i], KEYS[7 + 3 * i]
  local hold = tonumber(ARGV[2 + i])
  redis.call('ZREMRANGEBYSCORE', tokens, '-inf', now)
  out[#out + 1] = redis.call('ZCARD', tokens)
  out[#out + 1] = redis.call('ZCOUNT', tokens, '-inf', now + hold)
  out[#out + 1] = redis.call('ZCARD', queue)
  out[#out + 1] = redis.call('GET', block) or ''
  local soonest = redis.call('ZRANGE', tokens, 0, 0, 'WITHSCORES')
  out[#out + 1] = soonest[2] or ''
end
return out
"""
)


# -- the journal of open numbers: records (id -> the activation's JSON), owners (id ->
# owner), expiries (id scored by expire_at), and the owners' leases --

_JOURNAL = """
local function journal(records, owner_of, expiries, id, record, expire, owner, ttl)
  redis.call('HSET', records, id, record)
  redis.call('HSET', owner_of, id, owner)
  redis.call('ZADD', expiries, expire, id)
  for _, key in ipairs({records, owner_of, expiries}) do redis.call('PEXPIRE', key, ttl) end
end
"""

#: Journal a number of ``owner`` and renew its lease.
#: KEYS: records, owners of, expiries, owners.
#: ARGV: id, record, expire_at, owner, lease, ttl_ms, owners_ttl_ms.
JOURNAL_PUT = (
    _NOW
    + _OWNERS
    + _JOURNAL
    + """
renew(KEYS[4], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[7]))
journal(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4],
        tonumber(ARGV[6]))
return 1
"""
)

#: An order's answer opened a number, in one step: its slot bound to it, its id claimed
#: (the result: 1, or 0 when a live owner claimed it first - the rest is done all the
#: same), journaled as the owner's (its lease renewed), counted as an order, the flight
#: ended. KEYS: slots, known, claimers, owners, records, owners of, expiries, orders,
#: flights, left.  ARGV: slot ("" none), id, record, expire_at, slots_ttl_ms, keep,
#: owner, lease, owners_ttl_ms, journal_ttl_ms, orders_ttl_ms, flight ("" none).
ORDER_LANDED = (
    _NOW
    + _OWNERS
    + _CLAIMS
    + _JOURNAL
    + """
local slots, known, claimers, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local orders, flights, left = KEYS[8], KEYS[9], KEYS[10]
local slot, id, expire, owner = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[7]
local owners_ttl = tonumber(ARGV[9])
if slot ~= '' then
  redis.call('ZREM', slots, slot)
  redis.call('ZADD', slots, expire, id)
  redis.call('PEXPIRE', slots, tonumber(ARGV[5]))
end
renew(owners, owner, tonumber(ARGV[8]), owners_ttl)
forget_claims(known, claimers, tonumber(ARGV[6]))
local claimed = claim(known, claimers, owners, owner, id)
redis.call('PEXPIRE', known, owners_ttl)
redis.call('PEXPIRE', claimers, owners_ttl)
journal(KEYS[5], KEYS[6], KEYS[7], id, ARGV[3], expire, owner, tonumber(ARGV[10]))
redis.call('ZADD', orders, 'NX', now, id)
redis.call('PEXPIRE', orders, tonumber(ARGV[11]))
if ARGV[12] ~= '' then
  redis.call('HDEL', left, ARGV[12])
  redis.call('ZREM', flights, ARGV[12])
end
return claimed
"""
)

#: New states of journaled numbers (others are ignored). KEYS: records, expiries.
#: ARGV: (id, record, expire_at) triples.
JOURNAL_UPDATE = """
for i = 1, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[2], tonumber(ARGV[i + 2]), ARGV[i])
  end
end
return 1
"""

#: Take settled numbers out. KEYS: records, owners of, expiries.  ARGV: ids...
JOURNAL_REMOVE = """
for _, id in ipairs(ARGV) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
return 1
"""

#: Every journaled number (those ``keep`` seconds past their expiry dropped), soonest
#: expiry first: {id, record, owner, 1 if the owner's lease runs else 0, ...}.
#: KEYS: records, owners of, expiries, owners.  ARGV: keep.
JOURNAL_LIST = (
    _NOW
    + _OWNERS
    + """
local records, owner_of, expiries, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cutoff = now - tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', cutoff)) do
  redis.call('HDEL', records, id)
  redis.call('HDEL', owner_of, id)
end
redis.call('ZREMRANGEBYSCORE', expiries, '-inf', cutoff)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', expiries, 0, -1)) do
  local record = redis.call('HGET', records, id)
  local owner = redis.call('HGET', owner_of, id) or ''
  if record then
    out[#out + 1] = id
    out[#out + 1] = record
    out[#out + 1] = owner
    out[#out + 1] = live(owners, owner) and 1 or 0
  end
end
return out
"""
)

#: Take over journaled numbers whose owner's lease lapsed (or that are the caller's):
#: 1 per id now the caller's, 0 per id gone or held by a live owner; renews the caller's
#: lease. KEYS: records, owners of, owners.  ARGV: owner, lease, owners_ttl_ms, ids...
JOURNAL_TAKE = (
    _NOW
    + _OWNERS
    + """
local records, owner_of, owners = KEYS[1], KEYS[2], KEYS[3]
local owner = ARGV[1]
renew(owners, owner, tonumber(ARGV[2]), tonumber(ARGV[3]))
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local holder = redis.call('HGET', owner_of, id)
  if redis.call('HEXISTS', records, id) == 0 or (holder and holder ~= owner
      and live(owners, holder)) then
    out[#out + 1] = 0
  else
    redis.call('HSET', owner_of, id, owner)
    out[#out + 1] = 1
  end
end
return out
"""
)


# -- spending: KEYS are ``at`` (a sorted set: name -> when) and ``cents`` (a hash) --

_SPENT = """
local function counted(period, kept)
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - kept)
  for _, name in ipairs(old) do
    redis.call('ZREM', KEYS[1], name)
    redis.call('HDEL', KEYS[2], name)
  end
  local within = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - period), '+inf', 'WITHSCORES')
  local total, entries = 0, {}
  for i = 1, #within, 2 do
    local amount = tonumber(redis.call('HGET', KEYS[2], within[i]) or '0')
    total = total + amount
    entries[#entries + 1] = within[i + 1]
    entries[#entries + 1] = amount
  end
  return total, entries
end
"""

#: Enter an order's money if it fits. ARGV: limit cents, period, price, entry, kept, ttl_ms.
#: Returns {1, total} when entered; else {0, total, now, at1, cents1, at2, cents2, ...}
#: (the money counted, oldest first).
SPEND_TAKE = (
    _NOW
    + _SPENT
    + """
local limit, price = tonumber(ARGV[1]), tonumber(ARGV[3])
local total, entries = counted(tonumber(ARGV[2]), tonumber(ARGV[5]))
if total + price > limit then
  local out = {0, total, tostring(now)}
  for _, value in ipairs(entries) do out[#out + 1] = value end
  return out
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('HSET', KEYS[2], ARGV[4], price)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {1, total}
"""
)

#: An entry's order opened an activation. ARGV: entry, activation id, price, ttl_ms.
SPEND_BIND = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""
)

#: Money released. ARGV: the entry or activation id.
SPEND_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

#: The cents within a period. ARGV: period, kept.
SPEND_COUNTED = (
    _NOW
    + _SPENT
    + """
local total = counted(tonumber(ARGV[1]), tonumber(ARGV[2]))
return total
"""
)
