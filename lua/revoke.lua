-- revoke.lua: certificates are revoked at the gate: each is marked
-- revoked, loses its binding, and every session of its user ends, at once.
-- With a user ID to cancel (revoke --user), every certificate issued to or
-- bound to that user is revoked here too, whatever the caller listed, and
-- the outstanding certificate password is cancelled, so that an issuance
-- or sign-up in flight cannot slip between the lists and this script.
-- ARGV[4] reason, ARGV[5] user ID for revoke --user or '', then pairs
-- ARGV[6 + 2i] fingerprint, ARGV[7 + 2i] the user it was issued to or ''.
-- Reply: 1 when a certificate password was cancelled, else 0.

local reason, cancel = ARGV[4], ARGV[5]
local targets, order = {}, {}

local function target(cert, issued)
  if targets[cert] == nil then
    targets[cert] = issued
    order[#order + 1] = cert
  end
end

for i = 6, #ARGV, 2 do target(ARGV[i], ARGV[i + 1]) end

if cancel ~= '' then
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'user:' .. cancel .. ':certs')) do
    target(c, cancel)
  end
  for _, c in ipairs(redis.call('SMEMBERS', P .. 'certs:' .. cancel)) do
    if redis.call('EXISTS', P .. 'revoked:' .. c) == 0 then
      target(c, cancel)
    end
  end
end

for _, cert in ipairs(order) do
  local issued = targets[cert]
  redis.call('SET', P .. 'revoked:' .. cert, reason)
  local ck = P .. 'cert:' .. cert
  local owner = redis.call('HGET', ck, 'user')
  redis.call('DEL', ck)
  local users = {}
  if owner then users[owner] = true end
  if issued ~= '' then users[issued] = true end
  for u in pairs(users) do
    redis.call('SREM', P .. 'user:' .. u .. ':certs', cert)
    end_sessions(u)
  end
  local ik = P .. 'certinfo:' .. cert
  if redis.call('EXISTS', ik) == 1 then
    redis.call('HSET', ik, 'revoked', now, 'reason', reason)
  end
  audit('revoked', owner or issued, 'reason ' .. reason, cert)
end

if cancel == '' or redis.call('DEL', P .. 'enroll:' .. cancel) == 0 then
  return 0
end
audit('enroll_cancelled', cancel,
      'certificate password cancelled by revoke --user')
return 1
