-- user_show.lua: what ecodoc-ca user show prints; drops the IDs of
-- sessions that have expired from the user's set.
-- ARGV[4] user ID U.
-- Reply: {HGETALL of P user:U, bound fingerprints, live sessions}, or 0
-- when there is no such user.

local uk = P .. 'user:' .. ARGV[4]
local h = redis.call('HGETALL', uk)
if #h == 0 then return 0 end
local live = 0
for _, sid in ipairs(redis.call('SMEMBERS', uk .. ':sessions')) do
  if redis.call('EXISTS', P .. 'sess:' .. sid) == 1 then
    live = live + 1
  else
    redis.call('SREM', uk .. ':sessions', sid)
  end
end
return {h, redis.call('SMEMBERS', uk .. ':certs'), live}
