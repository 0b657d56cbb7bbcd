-- enroll_tried.lua: STEP1, after the check: a right certificate password
-- gives its try back and opens an enrollment session.
-- ARGV[4] user ID U, ARGV[5] the password's ID as checked, ARGV[6] right
-- '1' or '0', ARGV[7] maximum tries, ARGV[8] the session's form token,
-- ARGV[9] session lifetime (s), ARGV[10] state from enroll_try, ARGV[11]
-- enrollment session ID.
-- Reply: 'ok', 'wrong', 'locked', or the state ('used', 'expired').

local u, ek = ARGV[4], P .. 'enroll:' .. ARGV[4]
if ARGV[6] ~= '1' then
  local t = tonumber(redis.call('HGET', ek, 'tries') or '0')
  audit('enroll_failed', u, 'wrong certificate password, tries ' .. t)
  if t >= tonumber(ARGV[7]) then
    audit('enroll_locked', u, 'after ' .. t .. ' wrong tries')
    return 'locked'
  end
  return 'wrong'
end
if redis.call('HGET', ek, 'id') ~= ARGV[5] then return 'wrong' end
if redis.call('HINCRBY', ek, 'tries', -1) < 0 then
  redis.call('HSET', ek, 'tries', '0')
end
if ARGV[10] ~= '' then
  refuse('enroll_refused', u, 'certificate password ' .. ARGV[10])
  return ARGV[10]
end
local sk = P .. 'enroll_sess:' .. ARGV[11]
redis.call('HSET', sk, 'user', u, 'id', ARGV[5], 'csrf', ARGV[8],
           'created', now)
redis.call('EXPIRE', sk, ARGV[9])
audit('enroll_started', u)
return 'ok'
