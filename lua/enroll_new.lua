-- enroll_new.lua: a new certificate password (認証情報パスワード) for one
-- issuance, replacing any earlier one of the user.
-- ARGV[4] user ID U, ARGV[5] stored hash, ARGV[6] days it is good for,
-- ARGV[7] its random ID, ARGV[8] the hash of a password nobody knows at
-- the same cost (P enroll_dummy: STEP1 checks an unknown user ID against
-- it, as slowly as a known one), ARGV[9] '1' for a new PC (enroll-code
-- --replace: its certificate takes over the user's binding at its
-- sign-up, lua/cert_record.lua), else '0'.
-- Reply: the unix time it expires, or 0 when there is no such user.

local u = ARGV[4]
local ek = P .. 'enroll:' .. u
if redis.call('EXISTS', P .. 'user:' .. u) == 0 then return 0 end
local expires = now + tonumber(ARGV[6]) * 86400
redis.call('DEL', ek)
redis.call('HSET', ek, 'pw', ARGV[5], 'expires', expires, 'tries', '0',
           'id', ARGV[7], 'used', '0', 'created', now, 'replace', ARGV[9])
redis.call('EXPIREAT', ek, expires + 86400 * 30)
redis.call('SET', P .. 'enroll_dummy', ARGV[8])
audit('enroll_code', u, 'expires ' .. expires
      .. (ARGV[9] == '1' and ', replaces the bound certificate' or ''))
return expires
