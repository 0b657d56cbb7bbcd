-- user_delete.lua: the user ID goes, with its bindings, sessions and
-- certificate password (the ID may be given again later); a binding that
-- names another user is not this user's to remove.
-- ARGV[4] user ID U.
-- Reply: 1 done, 0 no such user.

local u = ARGV[4]
local uk = P .. 'user:' .. u
if redis.call('EXISTS', uk) == 0 then return 0 end
for _, cert in ipairs(redis.call('SMEMBERS', uk .. ':certs')) do
  local ck = P .. 'cert:' .. cert
  local owner = redis.call('HGET', ck, 'user')
  if not owner or owner == u then redis.call('DEL', ck) end
end
end_sessions(u)
redis.call('DEL', uk, uk .. ':pending', uk .. ':certs', P .. 'enroll:' .. u)
audit('user_deleted', u)
return 1
