-- gate.lua: the gate's verdict on a request whose session record alone
-- did not let it through (no cookie, or no live record for it).
-- ARGV[4] session ID ('' without a cookie), ARGV[5] idle timeout (s),
-- ARGV[6] session lifetime (s).
-- Reply: {'ok', U} or {'initial', U} for a live session of the user U the
-- certificate is bound to (renewed); {'nosession', U}; or {V[, U]} with V
-- one of denied()'s verdicts: revoked, unbound, nouser, locked (U '' when
-- the certificate is bound to no one).

local u = redis.call('HGET', P .. 'cert:' .. fp, 'user')
local why = denied(u or '')
if why then return {why, u or ''} end
local k = session(ARGV[4], u, tonumber(ARGV[6]))
if not k then return {'nosession', u} end
redis.call('EXPIRE', k, ARGV[5])
if redis.call('HGET', P .. 'user:' .. u, 'initial') ~= '0' then
  return {'initial', u}
end
return {'ok', u}
