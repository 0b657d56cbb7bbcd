-- revoke.lua: certificates are revoked at the gate: each is marked
-- revoked, loses its binding, and every session of its user ends, at once;
-- a certificate renewed with one of them and not yet signed up goes too
-- (lib.lua's revoke_certs()).
-- With a user ID to cancel (revoke --user), every certificate issued to or
-- bound to that user is revoked here too, whatever the caller listed, and
-- the outstanding certificate password is cancelled, so that an issuance
-- or sign-up in flight cannot slip between the lists and this script.
-- ARGV[4] reason, ARGV[5] user ID for revoke --user or '', then pairs
-- ARGV[6 + 2i] fingerprint, ARGV[7 + 2i] the user it was issued to or ''.
-- Reply: 1 when a certificate password was cancelled, else 0.

local reason, cancel = ARGV[4], ARGV[5]
local list = {}

for i = 6, #ARGV, 2 do list[#list + 1] = {ARGV[i], ARGV[i + 1]} end

if cancel ~= '' then
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'user:' .. cancel .. ':certs')) do
    list[#list + 1] = {c, cancel}
  end
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'certs:' .. cancel)) do
    if redis.call('EXISTS', P .. 'revoked:' .. c) == 0 then
      list[#list + 1] = {c, cancel}
    end
  end
end

revoke_certs(list, reason)

if cancel == '' or redis.call('DEL', P .. 'enroll:' .. cancel) == 0 then
  return 0
end
audit('enroll_cancelled', cancel,
      'certificate password cancelled by revoke --user')
return 1
