-- lib.lua: what every script shares; scripts/lua2c puts it before each.
--
-- Every script takes no KEYS (its keys are made from the prefix) and
--   ARGV[1] key prefix P, ARGV[2] client address ('cli' for the command
--   line), ARGV[3] certificate fingerprint FP ('' when none);
-- its own arguments follow from ARGV[4].  Time is Redis' own, in every
-- script of both programs, so that hosts with other clocks agree.
-- The data model is docs/redis-schema.md.

local P, addr, fp = ARGV[1], ARGV[2], ARGV[3]
local clock = redis.call('TIME')
local now = tonumber(clock[1])
local now_ms = now * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Security events go to P audit, trimmed only by age (400 days): no number
-- of events can push an earlier one out before its time.
local AUDIT_KEEP = 400 * 86400

local function audit(ev, u, detail, cert)
  redis.call('XADD', P .. 'audit', 'MINID', '~',
             tostring((now - AUDIT_KEEP) * 1000), '*',
             'event', ev, 'user', u or '', 'fp', cert or fp, 'addr', addr,
             'detail', detail or '')
end

-- Refusals are counted, not recorded one by one: one hash a minute,
-- P refused:MINUTE (MINUTE the unix time it starts), field "WHO EVENT" the
-- count and "WHO EVENT last" the last "MS ADDR USER DETAIL" (MS its unix
-- time in milliseconds, as the audit's IDs), WHO the
-- certificate (or the address without one); the sorted set P refused
-- indexes the minutes.  Kept 7 days: a flood of refusals costs a counter,
-- never a record of the audit.
local REFUSED_KEEP = 7 * 86400

local function refuse(ev, u, detail)
  local minute = now - now % 60
  local k = P .. 'refused:' .. minute
  local f = (fp ~= '' and fp or addr) .. ' ' .. ev
  if redis.call('HINCRBY', k, f, 1) == 1
     and redis.call('EXPIRE', k, REFUSED_KEEP, 'NX') == 1 then
    redis.call('ZADD', P .. 'refused', minute, minute)
    redis.call('ZREMRANGEBYSCORE', P .. 'refused', '-inf',
               minute - REFUSED_KEEP)
  end
  redis.call('HSET', k, f .. ' last',
             now_ms .. ' ' .. addr .. ' ' .. (u or '') .. ' '
             .. (detail or ''))
end

-- every session of user u ends
local function end_sessions(u)
  local set = P .. 'user:' .. u .. ':sessions'
  for _, sid in ipairs(redis.call('SMEMBERS', set)) do
    redis.call('DEL', P .. 'sess:' .. sid)
  end
  redis.call('DEL', set)
end

-- a session is the string "FP CREATED INITIAL USER" (redis-schema.md)
local function session_of(sid)
  local v = redis.call('GET', P .. 'sess:' .. sid)
  if not v then return nil end
  local f, c, i, u = string.match(v, '^(%x+) (%d+) ([01]) (.+)$')
  return u, f, tonumber(c), i
end

local function drop_session(sid)
  local u = session_of(sid)
  redis.call('DEL', P .. 'sess:' .. sid)
  if u then redis.call('SREM', P .. 'user:' .. u .. ':sessions', sid) end
end

-- the session's key when sid is alive for user u and this certificate
local function session(sid, u, lifetime)
  if sid == '' then return nil end
  local su, sfp, created = session_of(sid)
  if not su then return nil end
  if su ~= u or sfp ~= fp then
    refuse('session_refused', su, 'cookie presented with another certificate')
    return nil
  end
  if now - created > lifetime then
    drop_session(sid)
    return nil
  end
  return P .. 'sess:' .. sid
end

-- Why this certificate (or cert) may not act as user u now, or nil when
-- it may: 'revoked', 'unbound' (bound to another user or to none),
-- 'nouser' (deleted), 'locked'.  Every script that grants or extends
-- access asks it in the same atomic step that grants.  (A page asking for
-- user u calls a certificate bound elsewhere 'wrong_cert': see checked().)
local function denied(u, cert)
  cert = cert or fp
  if redis.call('EXISTS', P .. 'revoked:' .. cert) == 1 then
    return 'revoked'
  end
  if redis.call('HGET', P .. 'cert:' .. cert, 'user') ~= u then
    return 'unbound'
  end
  local locked = redis.call('HGET', P .. 'user:' .. u, 'locked')
  if not locked then return 'nouser' end
  if locked ~= '0' then return 'locked' end
  return nil
end

-- What this certificate takes over when it signs up as user u: the
-- certificates bound to u that it replaces (a renewal's certificate
-- replaces the one it was renewed with, a new PC's (enroll-code
-- --replace) whatever is bound: certinfo's 'replaces', the fingerprint or
-- '*'), {} for a plain sign-up; or nil and why it may not sign up as u:
-- 'user_bound' (u has another certificate, or no longer the renewed one),
-- 'subject' (a successor issued to another user).
local function takeover(u)
  local info = redis.call('HMGET', P .. 'certinfo:' .. fp, 'replaces', 'user')
  local bound = redis.call('SMEMBERS', P .. 'user:' .. u .. ':certs')
  if not info[1] then
    if #bound > 0 then return nil, 'user_bound' end
    return {}
  end
  if info[2] ~= u then return nil, 'subject' end
  if info[1] == '*' or (#bound == 1 and bound[1] == info[1]) then
    return bound
  end
  return nil, 'user_bound'
end

-- The same for a sign-up of this certificate as user u: the certificate
-- must be unbound and unrevoked, the user there and unlocked, and unbound
-- unless this certificate takes over its binding (takeover()).
local function signup_denied(u)
  if redis.call('EXISTS', P .. 'revoked:' .. fp) == 1 then
    return 'revoked'
  end
  if redis.call('EXISTS', P .. 'cert:' .. fp) == 1 then
    return 'cert_bound'
  end
  local locked = redis.call('HGET', P .. 'user:' .. u, 'locked')
  if not locked then return 'nouser' end
  local _, why = takeover(u)
  if why then return why end
  if locked ~= '0' then return 'locked' end
  return nil
end

-- denied() or signup_denied() for a page's mode: signup, login, password,
-- renew (the enrollment site's renewal, as password)
local function checked(mode, u)
  if mode == 'signup' then return signup_denied(u) end
  local why = denied(u)
  if why == 'unbound' then return 'wrong_cert' end
  return why
end

-- Why a renewal asked for with certificate old by user u from the login
-- session sid no longer stands, or nil: old revoked or no longer bound to
-- u, the user gone or locked, or the session ended (a logout, a password
-- change or reset, a lock or a revocation ends it).
local function renewal_void(old, u, sid)
  local why = denied(u, old)
  if why then return why end
  local su, sfp = session_of(sid or '')
  if su ~= u or sfp ~= old then return 'nosession' end
  return nil
end

-- Revokes certificates at the gate, each {fingerprint, the user it was
-- issued to or ''}: marked revoked with the reason, its binding gone,
-- every session of its owner (and of that user) ended, audited.  A
-- certificate renewed with one of them goes with it, whether it has taken
-- over yet or not (certinfo 'replaces' or 'renewed_from' names it), and so
-- on down the chain: what was obtained with a certificate is worth no
-- more than that certificate.
local function revoke_certs(list, reason)
  local seen, i = {}, 1
  while list[i] do
    local cert, issued = list[i][1], list[i][2]
    i = i + 1
    if not seen[cert] then
      seen[cert] = true
      redis.call('SET', P .. 'revoked:' .. cert, reason)
      local ck, ik = P .. 'cert:' .. cert, P .. 'certinfo:' .. cert
      local owner = redis.call('HGET', ck, 'user')
      local holder = redis.call('HGET', ik, 'user')
      redis.call('DEL', ck)
      local users = {}
      if owner then users[owner] = true end
      if issued ~= '' then users[issued] = true end
      for u in pairs(users) do
        redis.call('SREM', P .. 'user:' .. u .. ':certs', cert)
        end_sessions(u)
      end
      if holder then users[holder] = true end
      for u in pairs(users) do
        for _, c in ipairs(redis.call('SMEMBERS', P .. 'certs:' .. u)) do
          local f = redis.call('HMGET', P .. 'certinfo:' .. c, 'replaces',
                               'renewed_from')
          if (f[1] == cert or f[2] == cert)
             and redis.call('EXISTS', P .. 'revoked:' .. c) == 0 then
            list[#list + 1] = {c, u}
          end
        end
      end
      if holder then
        redis.call('HSET', ik, 'revoked', now, 'reason', reason)
      end
      audit('revoked', owner or (issued ~= '' and issued) or holder,
            'reason ' .. reason, cert)
    end
  end
end
