-- user_delete.lua: the user ID goes, with its bindings, sessions and
-- certificate password (the ID may be given again later); a binding that
-- names another user is not this user's to remove.  A certificate issued
-- to take over the user's binding (a renewal's, a new PC's) and not yet
-- signed up is revoked: what it was to take over is gone.
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
local pending = {}
for _, cert in ipairs(redis.call('SMEMBERS', P .. 'certs:' .. u)) do
  if redis.call('HEXISTS', P .. 'certinfo:' .. cert, 'replaces') == 1
     and redis.call('EXISTS', P .. 'revoked:' .. cert) == 0 then
    pending[#pending + 1] = {cert, ''}
  end
end
revoke_certs(pending, 'user deleted')
end_sessions(u)
redis.call('DEL', uk, uk .. ':pending', uk .. ':certs', P .. 'enroll:' .. u)
audit('user_deleted', u)
return 1
