-- cert_record.lua: a certificate just issued is recorded for its user.
-- Issued by the enrollment site, it is good only if the enrollment that
-- redeemed the certificate password still stands; otherwise (the user
-- deleted, revoke --user, a new password handed out meanwhile) it is
-- revoked here, in the same step, and never works; so is one whose user
-- was deleted meanwhile, whoever issued it.
-- ARGV[4] user ID U, ARGV[5] the new certificate's fingerprint, ARGV[6]
-- serial, ARGV[7] not-after (unix time), ARGV[8] enrollment session ID,
-- or '' for a certificate issued on the command line.
-- Reply: 'ok', or 'cancelled' (recorded, and revoked).

local u, cert = ARGV[4], ARGV[5]
redis.call('SADD', P .. 'certs:' .. u, cert)
redis.call('HSET', P .. 'certinfo:' .. cert, 'serial', ARGV[6], 'user', u,
           'not_after', ARGV[7], 'issued', now)
audit('certificate_issued', u, 'serial ' .. ARGV[6], cert)

local reason
if redis.call('EXISTS', P .. 'user:' .. u) == 0 then
  reason = 'user deleted during issuance'
elseif ARGV[8] == '' then
  return 'ok'
else
  local s = redis.call('HMGET', P .. 'enroll_sess:' .. ARGV[8], 'user', 'id',
                       'fp')
  local e = redis.call('HMGET', P .. 'enroll:' .. u, 'id', 'used')
  if s[1] == u and s[3] == 'pending' and e[1] == s[2] and e[2] == '1' then
    return 'ok'
  end
  reason = 'enrollment cancelled during issuance'
end
redis.call('SET', P .. 'revoked:' .. cert, reason)
redis.call('HSET', P .. 'certinfo:' .. cert, 'revoked', now, 'reason', reason)
audit('revoked', u, 'reason ' .. reason, cert)
return 'cancelled'
