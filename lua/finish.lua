-- finish.lua: a password check is through; records its result and, for a
-- right password, grants what was asked, after checking again, in this
-- same atomic step, everything that would deny it now: revoked, unbound,
-- deleted, locked, the password reset or changed since the check began.
-- A sign-up of a certificate that takes over the user's binding (a
-- renewal's, a new PC's: lib.lua's takeover()) binds it and revokes the
-- certificates it replaces, in this same step.  The enrollment site's
-- renewal (mode renew) opens an enrollment session for a new certificate.
-- ARGV[4] mode signup|login|password|renew, ARGV[5] user ID U, ARGV[6] max
-- failures, ARGV[7] reservation ID, ARGV[8] the password was right '1',
-- wrong '0', not checked 'e', ARGV[9] new session ID (renew: enrollment
-- session ID), ARGV[10] idle timeout (renew: the enrollment session's
-- lifetime), ARGV[11] new password hash (password; renew: the enrollment
-- session's form token), ARGV[12] the session presented ('' if none),
-- ARGV[13] the hash that was checked, ARGV[14] session lifetime.
-- Reply: {'ok', initial '1'|'0'} (signup: {'ok', '1'}, no session made;
-- renew: {'ok', '0'}, the enrollment session made);
-- {'failed', F} a wrong password counted, F the user's consecutive
-- failures now; {'locked', '1'} when this check
-- locked the user, {'locked'} when it was locked already; {'changed'} the
-- hash was replaced meanwhile; {'error'}; or {V}: checked()'s verdicts,
-- nosession.

local mode, u, max = ARGV[4], ARGV[5], tonumber(ARGV[6])
local uk = P .. 'user:' .. u

redis.call('ZREM', uk .. ':pending', ARGV[7])
if ARGV[8] == 'e' then return {'error'} end

-- reset, changed or deleted meanwhile: this check no longer means anything
if redis.call('HGET', uk, 'pw') ~= ARGV[13] then return {'changed'} end

if ARGV[8] ~= '1' then
  local f = redis.call('HINCRBY', uk, 'failures', 1)
  audit(mode .. '_failed', u, 'consecutive failures: ' .. f)
  if f < max then return {'failed', tostring(f)} end
  if redis.call('HGET', uk, 'locked') == '0' then
    redis.call('HSET', uk, 'locked', '1')
    end_sessions(u)
    audit('lock', u, 'after ' .. f .. ' wrong passwords')
    return {'locked', '1'}
  end
  return {'locked'}
end

local why = checked(mode, u)
if why then
  refuse(mode .. '_refused', u, why .. ' while the password was checked')
  return {why}
end
if (mode == 'password' or mode == 'renew')
   and not session(ARGV[12], u, tonumber(ARGV[14])) then
  return {'nosession'}
end

redis.call('HSET', uk, 'failures', '0')

if mode == 'renew' then
  local sk = P .. 'enroll_sess:' .. ARGV[9]
  redis.call('HSET', sk, 'user', u, 'id', '', 'csrf', ARGV[11],
             'created', now, 'renew', fp, 'login', ARGV[12])
  redis.call('EXPIRE', sk, ARGV[10])
  audit('renewal_requested', u, '')
  return {'ok', '0'}
end

if mode == 'signup' then
  local old = takeover(u)
  local ik = P .. 'certinfo:' .. fp
  local replaces = redis.call('HGET', ik, 'replaces')
  redis.call('HSET', P .. 'cert:' .. fp, 'user', u, 'bound', now)
  redis.call('SADD', uk .. ':certs', fp)
  audit('signup', u, '')
  if replaces then
    -- taken over: a renewal's stays chained to the certificate it renewed
    -- (once the certificates it replaces are revoked: not with them)
    redis.call('HDEL', ik, 'replaces')
    local list = {}
    for _, c in ipairs(old) do list[#list + 1] = {c, u} end
    revoke_certs(list, 'superseded')
    if replaces ~= '*' then
      redis.call('HSET', ik, 'renewed_from', replaces)
    end
    if #old > 0 then
      redis.call('HSET', ik, 'took_over', now)
      audit(replaces == '*' and 'new_pc_taken_over' or 'renewal_taken_over',
            u, 'replaces ' .. table.concat(old, ' '))
    end
  end
  return {'ok', '1'}
end

local initial = redis.call('HGET', uk, 'initial') == '0' and '0' or '1'
if mode == 'password' then
  redis.call('HSET', uk, 'pw', ARGV[11], 'initial', '0', 'changed', now)
  end_sessions(u)
  initial = '0'
  audit('password_changed', u, '')
else
  audit('login', u, '')
end

if ARGV[12] ~= '' then drop_session(ARGV[12]) end
local set = uk .. ':sessions'
for _, sid in ipairs(redis.call('SMEMBERS', set)) do
  if redis.call('EXISTS', P .. 'sess:' .. sid) == 0 then
    redis.call('SREM', set, sid)
  end
end
redis.call('SET', P .. 'sess:' .. ARGV[9],
           fp .. ' ' .. now .. ' ' .. initial .. ' ' .. u, 'EX', ARGV[10])
redis.call('SADD', set, ARGV[9])
return {'ok', initial}
