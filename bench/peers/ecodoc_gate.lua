-- The checks of ngx_ecodoc_module's gate, as an OpenResty user would write
-- them with Debian's lua-nginx-redis (lua-resty-redis, here "nginx.redis")
-- and lua-nginx-string: the same Redis key layout, the same GETEX of the
-- session's record for a cookie, and the very same GATE script otherwise
-- (EVALSHA of the text the module loads; EVAL only if Redis lost it),
-- over a cosocket connection pool (set_keepalive).
--
-- Used by both Lua peers: access_by_lua (lua.conf) and the auth location
-- of auth_request (auth_request.conf).

local redis  = require "nginx.redis"
local sha256 = require "nginx.sha256"
local rstr   = require "nginx.string"

local decode_base64 = ngx.decode_base64
local to_hex = rstr.to_hex
local find, gsub, sub, match = string.find, string.gsub, string.sub,
    string.match

local _M = {}

local conf = {}

-- init_by_lua: the script text, Redis' socket, the key prefix and the
-- session timeouts (the module's defaults)
function _M.init(o)
    local f = assert(io.open(o.script, "rb"))
    conf.script = f:read("*a")
    f:close()
    conf.sha = to_hex(ngx.sha1_bin(conf.script))
    conf.redis = o.redis
    conf.prefix = o.prefix
    conf.idle = tostring(o.idle or 1800)
    conf.lifetime = tostring(o.lifetime or 28800)
    conf.lifetime_n = tonumber(conf.lifetime)
end

local function hex_sha256(s)
    local h = sha256:new()
    h:update(s)
    return to_hex(h:final())
end

-- the lower-case hex SHA-256 of the verified client certificate's DER
local function fingerprint()
    if ngx.var.ssl_client_verify ~= "SUCCESS" then
        return nil
    end
    local pem = ngx.var.ssl_client_raw_cert
    if not pem then
        return nil
    end
    local b64 = gsub(sub(pem, 28, -27), "%s", "")  -- strip the PEM armour
    local der = decode_base64(b64)
    if not der then
        return nil
    end
    return hex_sha256(der)
end

-- the session ID: SHA-256 of a well-formed __Host-ecodoc token
local function session_id()
    local token = ngx.var["cookie___Host-ecodoc"]
    if not token or #token ~= 43 or find(token, "[^%w_-]") then
        return ""
    end
    return hex_sha256(token)
end

-- returns verdict, user, fingerprint; verdict "ok" lets the request on
function _M.check()
    local fp = fingerprint()
    if not fp then
        return "nocert"
    end

    local red = redis:new()
    red:set_timeout(1000)

    local ok, err = red:connect(conf.redis)
    if not ok then
        ngx.log(ngx.ERR, "ecodoc: redis connect: ", err)
        return "error"
    end

    local sid = session_id()
    local res

    -- a cookie: the session's record "FP CREATED INITIAL USER", renewed
    if sid ~= "" then
        res, err = red:getex(conf.prefix .. "sess:" .. sid, "EX", conf.idle)
        if not res then
            ngx.log(ngx.ERR, "ecodoc: redis: ", err)
            red:close()
            return "error"
        end
        if res ~= ngx.null then
            local f, c, i, u = match(res, "^(%x+) (%d+) ([01]) ([%w._@-]+)$")
            if f == fp and #u <= 64
               and ngx.time() - tonumber(c) <= conf.lifetime_n
            then
                red:set_keepalive(60000, 64)
                return i == "0" and "ok" or "initial", u, fp
            end
        end
    end

    -- no cookie, or a record that does not let the request on
    res, err = red:evalsha(conf.sha, 0, conf.prefix, ngx.var.remote_addr, fp,
                           sid, conf.idle, conf.lifetime)
    if not res and err and find(err, "NOSCRIPT", 1, true) then
        res, err = red:eval(conf.script, 0, conf.prefix, ngx.var.remote_addr,
                            fp, sid, conf.idle, conf.lifetime)
    end

    if not res then
        ngx.log(ngx.ERR, "ecodoc: redis: ", err)
        red:close()
        return "error"
    end

    red:set_keepalive(60000, 64)

    if type(res) ~= "table" or type(res[1]) ~= "string" then
        return "error"
    end

    if res[1] == "ok" and (type(res[2]) ~= "string" or res[2] == "") then
        return "error"
    end

    return res[1], res[2], fp
end

-- what the module answers for a refused verdict (status, page to go to)
local refusals = {
    unbound   = { ngx.HTTP_FORBIDDEN, "signup" },
    nosession = { ngx.HTTP_UNAUTHORIZED, "login" },
    initial   = { ngx.HTTP_FORBIDDEN, "password" },
    locked    = { ngx.HTTP_FORBIDDEN },
    revoked   = { ngx.HTTP_FORBIDDEN },
    nocert    = { ngx.HTTP_FORBIDDEN },
}

function _M.refusal(verdict)
    local r = refusals[verdict]
    if not r then
        return ngx.HTTP_SERVICE_UNAVAILABLE
    end
    return r[1], r[2]
end

return _M
