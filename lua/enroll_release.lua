-- enroll_release.lua: STEP3 failed before anything was delivered: the
-- certificate password is good again, for this session's user only.
-- ARGV[4] user ID U, ARGV[5] the password's ID, ARGV[6] enrollment
-- session ID.
-- Reply: 'ok', or 'used' when it is not this session's to give back.

local sk = P .. 'enroll_sess:' .. ARGV[6]
local ek = P .. 'enroll:' .. ARGV[4]
if redis.call('HGET', sk, 'fp') ~= 'pending' then return 'used' end
if redis.call('HGET', ek, 'id') ~= ARGV[5] then return 'used' end
redis.call('HSET', ek, 'used', '0')
redis.call('HDEL', sk, 'fp')
audit('enroll_failed', ARGV[4],
      'issuance failed; certificate password usable again')
return 'ok'
