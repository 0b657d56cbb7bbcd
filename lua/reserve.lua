-- reserve.lua: before a password is checked (sign-up, login, password
-- change), one of the user's max_failures slots is reserved for it, so
-- that no more than max_failures wrong passwords are ever checked between
-- unlocks however many arrive at once (docs/redis-schema.md).
-- ARGV[4] mode signup|login|password|renew (the enrollment site's
-- renewal), ARGV[5] user ID U, ARGV[6] max failures, ARGV[7] reservation
-- ID, ARGV[8] '1' when the certificate's subject names U, ARGV[9] session
-- ID (password, renew), ARGV[10] session lifetime; renew: ARGV[11] the
-- certificate's not-after (unix time), ARGV[12] the renewal window (s
-- before the not-after; '' any time).
-- Reply: {'ok', stored hash, initial '1'|'0'}; {'busy'} while the slots
-- are taken by checks in flight; or {V}: revoked, cert_bound, user_bound,
-- subject, wrong_cert, nouser, nosession, locked, early (renew: before
-- the window).

local mode, u, max = ARGV[4], ARGV[5], tonumber(ARGV[6])
local uk = P .. 'user:' .. u
local RESERVATION_TTL = 120

local why = checked(mode, u)
if not why and mode == 'signup' and ARGV[8] ~= '1' then why = 'subject' end
if why == 'locked' then return {'locked'} end
if why then
  refuse(mode .. '_refused', u, why)
  return {why}
end

if (mode == 'password' or mode == 'renew')
   and not session(ARGV[9], u, tonumber(ARGV[10])) then
  return {'nosession'}
end

local rec = redis.call('HMGET', uk, 'pw', 'failures', 'initial')
if mode == 'renew' then
  -- a renewal needs a full login: the initial password changed
  if rec[3] ~= '0' then return {'nosession'} end
  if ARGV[12] ~= ''
     and tonumber(ARGV[11]) - now > tonumber(ARGV[12]) then
    refuse('renewal_refused', u, 'before the renewal window')
    return {'early'}
  end
end
local f = tonumber(rec[2]) or max
if f >= max then return {'locked'} end

-- a reservation no finish came back for within its TTL (the nginx worker
-- died while hashing, or the master that held the finish failed over
-- before a replica had it) counts as a wrong password: a check whose
-- outcome is lost must not give a guesser one more try
local pk = uk .. ':pending'
local lost = redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - RESERVATION_TTL)
if lost > 0 then
  f = redis.call('HINCRBY', uk, 'failures', lost)
  audit(mode .. '_lost', u, lost .. ' password check(s) with no outcome '
        .. 'recorded, counted as failures: ' .. f)
  if f >= max then
    if redis.call('HGET', uk, 'locked') == '0' then
      redis.call('HSET', uk, 'locked', '1')
      end_sessions(u)
      audit('lock', u, 'after ' .. f .. ' wrong passwords')
    end
    return {'locked'}
  end
end
if f + redis.call('ZCARD', pk) >= max then return {'busy'} end
redis.call('ZADD', pk, now, ARGV[7])
redis.call('EXPIRE', pk, 2 * RESERVATION_TTL)
return {'ok', rec[1], rec[3] or '1'}
