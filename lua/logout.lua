-- logout.lua: ends the session presented with this certificate.
-- ARGV[4] session ID.
-- Reply: {'ok', U}, or {'nosession'} when there is none for this
-- certificate.

local u, sfp = session_of(ARGV[4])
if not u or sfp ~= fp then return {'nosession'} end
drop_session(ARGV[4])
audit('logout', u, '')
return {'ok', u}
