-- enroll_set.lua: a field of a live enrollment session only: a plain HSET
-- on one that has just expired would make a new one without a lifetime.
-- ARGV[4] enrollment session ID, ARGV[5] field, ARGV[6] value.
-- Reply: 1 set, 0 no such session.

local sk = P .. 'enroll_sess:' .. ARGV[4]
if redis.call('EXISTS', sk) == 0 then return 0 end
redis.call('HSET', sk, ARGV[5], ARGV[6])
return 1
