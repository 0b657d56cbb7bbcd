-- user_unlock.lua: the user may try passwords again (max_failures more).
-- ARGV[4] user ID U.
-- Reply: 1 done, 0 no such user.

local u = ARGV[4]
local uk = P .. 'user:' .. u
if redis.call('EXISTS', uk) == 0 then return 0 end
redis.call('HSET', uk, 'locked', '0', 'failures', '0')
redis.call('DEL', uk .. ':pending')
audit('unlock', u)
return 1
