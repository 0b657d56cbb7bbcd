-- cert_states.lua: what the gate says of certificates of the CA database
-- (ecodoc-ca certs --expiring, crl): whether it has each revoked (a
-- takeover revokes in Redis only), bound, or bound with a renewal's
-- certificate waiting to take over.
-- ARGV[4] and on: fingerprints.
-- Reply: three strings for each, in order: the state 'revoked',
-- 'renewing', 'bound' or 'unbound' (not signed up); for a revoked one the
-- reason and the unix time of the revocation (certinfo; '' unknown).

local out = {}
for i = 4, #ARGV do
  local c = ARGV[i]
  local st, why, at = 'unbound', '', ''
  local u = redis.call('HGET', P .. 'cert:' .. c, 'user')
  if redis.call('EXISTS', P .. 'revoked:' .. c) == 1 then
    st = 'revoked'
    why = redis.call('GET', P .. 'revoked:' .. c) or ''
    at = redis.call('HGET', P .. 'certinfo:' .. c, 'revoked') or ''
  elseif u then
    st = 'bound'
    for _, n in ipairs(redis.call('SMEMBERS', P .. 'certs:' .. u)) do
      if redis.call('HGET', P .. 'certinfo:' .. n, 'replaces') == c
         and redis.call('EXISTS', P .. 'revoked:' .. n) == 0 then
        st = 'renewing'
      end
    end
  end
  out[#out + 1] = st
  out[#out + 1] = why
  out[#out + 1] = at
end
return out
