-- user_reset.lua: back to an initial password; unlocks, and every session
-- and password check in flight of the user ends.
-- ARGV[4] user ID U, ARGV[5] stored hash of the new initial password.
-- Reply: 1 done, 0 no such user.

local u = ARGV[4]
local uk = P .. 'user:' .. u
if redis.call('EXISTS', uk) == 0 then return 0 end
redis.call('HSET', uk, 'pw', ARGV[5], 'initial', '1', 'locked', '0',
           'failures', '0', 'changed', now)
redis.call('DEL', uk .. ':pending')
end_sessions(u)
audit('password_reset', u)
return 1
