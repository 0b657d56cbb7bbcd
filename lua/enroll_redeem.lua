-- enroll_redeem.lua: STEP3: one issuance per certificate password (or per
-- renewal), checked and consumed at once, or only checked (before a key
-- is made for it).  A renewal's enrollment session is good while its
-- renewal stands (lib.lua's renewal_void()).
-- ARGV[4] user ID U, ARGV[5] maximum tries, ARGV[6] '1' only check,
-- ARGV[7] enrollment session ID.
-- Reply: 'ok', 'nosession', 'used', 'expired', 'locked', 'cancelled' (the
-- renewal no longer stands).

local sk = P .. 'enroll_sess:' .. ARGV[7]
local ek = P .. 'enroll:' .. ARGV[4]
local s = redis.call('HMGET', sk, 'user', 'id', 'fp', 'renew', 'login')
if not s[1] or s[1] ~= ARGV[4] then return 'nosession' end
if s[3] then return 'used' end
if s[4] then
  local why = renewal_void(s[4], s[1], s[5])
  if why then
    refuse('renewal_refused', s[1], 'renewal cancelled: ' .. why)
    return 'cancelled'
  end
else
  local e = redis.call('HMGET', ek, 'id', 'expires', 'tries', 'used')
  if not e[1] or e[1] ~= s[2] or e[4] ~= '0' then return 'used' end
  if (tonumber(e[2]) or 0) <= now then return 'expired' end
  if (tonumber(e[3]) or 1e9) >= tonumber(ARGV[5]) then return 'locked' end
end
if ARGV[6] == '1' then return 'ok' end
if not s[4] then redis.call('HSET', ek, 'used', '1') end
redis.call('HSET', sk, 'fp', 'pending')
return 'ok'
