-- user_add.lua: a new user ID with its initial password.
-- ARGV[4] user ID U, ARGV[5] stored hash of the initial password.
-- Reply: 1 added, 0 the user ID exists.

local u = ARGV[4]
local uk = P .. 'user:' .. u
if redis.call('EXISTS', uk) == 1 then return 0 end
redis.call('HSET', uk, 'pw', ARGV[5], 'initial', '1', 'locked', '0',
           'failures', '0', 'created', now, 'changed', now)
audit('user_added', u)
return 1
