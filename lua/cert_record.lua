-- cert_record.lua: a certificate just issued is recorded for its user.
-- Issued by the enrollment site, it is good only if what it was issued on
-- still stands: the enrollment that redeemed the certificate password (not
-- the user deleted, revoke --user, a new password handed out meanwhile),
-- or the renewal (lib.lua's renewal_void(): the certificate renewed still
-- bound and unrevoked, the user unlocked, the login session alive);
-- otherwise it is revoked here, in the same step, and never works; so is
-- one whose user was deleted meanwhile, whoever issued it.  A renewal's
-- certificate, and one issued on a certificate password of enroll-code
-- --replace, is marked to take over the user's binding at its sign-up
-- (certinfo 'replaces': the renewed fingerprint, or '*').
-- ARGV[4] user ID U, ARGV[5] the new certificate's fingerprint, ARGV[6]
-- serial, ARGV[7] not-after (unix time), ARGV[8] enrollment session ID,
-- or '' for a certificate issued on the command line.
-- Reply: 'ok', or 'cancelled' (recorded, and revoked).

local u, cert = ARGV[4], ARGV[5]
local ik = P .. 'certinfo:' .. cert
redis.call('SADD', P .. 'certs:' .. u, cert)
redis.call('HSET', ik, 'serial', ARGV[6], 'user', u, 'not_after', ARGV[7],
           'issued', now)
audit('certificate_issued', u, 'serial ' .. ARGV[6], cert)

local reason
if redis.call('EXISTS', P .. 'user:' .. u) == 0 then
  reason = 'user deleted during issuance'
elseif ARGV[8] == '' then
  return 'ok'
else
  local s = redis.call('HMGET', P .. 'enroll_sess:' .. ARGV[8], 'user', 'id',
                       'fp', 'renew', 'login')
  if s[4] then
    if s[1] == u and s[3] == 'pending' and not renewal_void(s[4], u, s[5])
    then
      redis.call('HSET', ik, 'replaces', s[4])
      audit('renewal_issued', u, 'renews ' .. s[4], cert)
      return 'ok'
    end
    reason = 'renewal cancelled during issuance'
  else
    local e = redis.call('HMGET', P .. 'enroll:' .. u, 'id', 'used',
                         'replace')
    if s[1] == u and s[3] == 'pending' and e[1] == s[2] and e[2] == '1' then
      if e[3] == '1' then redis.call('HSET', ik, 'replaces', '*') end
      return 'ok'
    end
    reason = 'enrollment cancelled during issuance'
  end
end
revoke_certs({{cert, ''}}, reason)
return 'cancelled'
