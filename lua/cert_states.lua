-- cert_states.lua: what ecodoc-ca certs --expiring says of certificates
-- of the CA database: whether the gate has each revoked, bound, or bound
-- with a renewal's certificate waiting to take over.
-- ARGV[4] and on: fingerprints.
-- Reply: a state for each, in order: 'revoked', 'renewing', 'bound' or
-- 'unbound' (not signed up).

local out = {}
for i = 4, #ARGV do
  local c = ARGV[i]
  local st = 'unbound'
  local u = redis.call('HGET', P .. 'cert:' .. c, 'user')
  if redis.call('EXISTS', P .. 'revoked:' .. c) == 1 then
    st = 'revoked'
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
end
return out
