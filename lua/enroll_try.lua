-- enroll_try.lua: STEP1, before the certificate password is checked:
-- counts the try, so that no more than the maximum are ever checked.
-- ARGV[4] user ID U, ARGV[5] maximum tries.
-- Reply: {'none', D} no certificate password, {'locked', D} no tries
-- left (D: P enroll_dummy, to check against instead, or ''), or {'ok',
-- stored hash, its ID, state} with state 'used', 'expired' or ''.

local ek = P .. 'enroll:' .. ARGV[4]
local e = redis.call('HMGET', ek, 'pw', 'expires', 'tries', 'id', 'used')
local dummy = redis.call('GET', P .. 'enroll_dummy') or ''
if not e[1] then return {'none', dummy} end
if (tonumber(e[3]) or 1e9) >= tonumber(ARGV[5]) then
  return {'locked', dummy}
end
redis.call('HINCRBY', ek, 'tries', 1)
local state = ''
if e[5] == '1' then
  state = 'used'
elseif (tonumber(e[2]) or 0) <= now then
  state = 'expired'
end
return {'ok', e[1], e[4], state}
