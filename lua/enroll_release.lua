-- enroll_release.lua: STEP3 failed before anything was delivered: the
-- certificate password (or the renewal) is good again, for this session's
-- user only.
-- ARGV[4] user ID U, ARGV[5] the password's ID ('' for a renewal), ARGV[6]
-- enrollment session ID.
-- Reply: 'ok', or 'used' when it is not this session's to give back.

local sk = P .. 'enroll_sess:' .. ARGV[6]
local ek = P .. 'enroll:' .. ARGV[4]
local s = redis.call('HMGET', sk, 'fp', 'renew', 'user')
if s[1] ~= 'pending' or s[3] ~= ARGV[4] then return 'used' end
if s[2] then
  redis.call('HDEL', sk, 'fp')
  audit('enroll_failed', ARGV[4], 'issuance failed; renewal usable again')
  return 'ok'
end
if redis.call('HGET', ek, 'id') ~= ARGV[5] then return 'used' end
redis.call('HSET', ek, 'used', '0')
redis.call('HDEL', sk, 'fp')
audit('enroll_failed', ARGV[4],
      'issuance failed; certificate password usable again')
return 'ok'
