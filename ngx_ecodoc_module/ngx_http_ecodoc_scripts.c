/*
 * The Lua scripts run in Redis: every check and change of the data model
 * (docs/redis-schema.md) as one atomic round trip, with its audit record.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


/*
 * Every script gets ARGV[1] key prefix, ARGV[2] unix time, ARGV[3] client
 * address, ARGV[4] certificate fingerprint; its own arguments follow.
 */

#define NGX_HTTP_ECODOC_LUA_PRELUDE                                          \
    "local P, now, addr, fp = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]\n"\
                                                                             \
    "local function audit(ev, u, detail)\n"                                  \
    "  redis.call('XADD', P .. 'audit', 'MAXLEN', '~', '100000', '*',\n"     \
    "             'event', ev, 'user', u or '', 'fp', fp, 'addr', addr,\n"   \
    "             'detail', detail or '')\n"                                 \
    "end\n"                                                                  \
                                                                             \
    "local function end_sessions(u)\n"                                       \
    "  local set = P .. 'user:' .. u .. ':sessions'\n"                       \
    "  for _, sid in ipairs(redis.call('SMEMBERS', set)) do\n"               \
    "    redis.call('DEL', P .. 'sess:' .. sid)\n"                           \
    "  end\n"                                                                \
    "  redis.call('DEL', set)\n"                                             \
    "end\n"                                                                  \
                                                                             \
    "local function drop_session(sid)\n"                                     \
    "  local k = P .. 'sess:' .. sid\n"                                      \
    "  local u = redis.call('HGET', k, 'user')\n"                            \
    "  redis.call('DEL', k)\n"                                               \
    "  if u then redis.call('SREM', P .. 'user:' .. u .. ':sessions', sid)"  \
    " end\n"                                                                 \
    "end\n"                                                                  \
                                                                             \
    /* the session key when sid is alive for user u and this certificate */  \
    "local function session(sid, u, lifetime)\n"                             \
    "  if sid == '' then return nil end\n"                                   \
    "  local k = P .. 'sess:' .. sid\n"                                      \
    "  local s = redis.call('HMGET', k, 'user', 'fp', 'created')\n"          \
    "  if not s[1] then return nil end\n"                                    \
    "  if s[1] ~= u or s[2] ~= fp then\n"                                    \
    "    audit('session_refused', s[1],\n"                                   \
    "          'cookie presented with another certificate')\n"               \
    "    return nil\n"                                                       \
    "  end\n"                                                                \
    "  local created = tonumber(s[3])\n"                                     \
    "  if not created or now - created > lifetime then\n"                    \
    "    drop_session(sid)\n"                                                \
    "    return nil\n"                                                       \
    "  end\n"                                                                \
    "  return k\n"                                                           \
    "end\n"


static char  ngx_http_ecodoc_lua_gate[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /* ARGV[5] session, ARGV[6] idle timeout, ARGV[7] lifetime */
    "if redis.call('EXISTS', P .. 'revoked:' .. fp) == 1 then\n"
    "  return {'revoked'}\n"
    "end\n"
    "local u = redis.call('HGET', P .. 'cert:' .. fp, 'user')\n"
    "if not u then return {'unbound'} end\n"
    "local st = redis.call('HMGET', P .. 'user:' .. u, 'locked', 'initial')\n"
    "if not st[1] then return {'unbound'} end\n"
    "if st[1] ~= '0' then return {'locked', u} end\n"
    "local k = session(ARGV[5], u, tonumber(ARGV[7]))\n"
    "if not k then return {'nosession', u} end\n"
    "redis.call('EXPIRE', k, ARGV[6])\n"
    "if st[2] ~= '0' then return {'initial', u} end\n"
    "return {'ok', u}\n";


static char  ngx_http_ecodoc_lua_reserve[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /*
     * ARGV[5] signup|login|password, ARGV[6] user, ARGV[7] max failures,
     * ARGV[8] reservation, ARGV[9] subject carries the user ('1'),
     * ARGV[10] session, ARGV[11] session lifetime
     */
    "local mode, u, max = ARGV[5], ARGV[6], tonumber(ARGV[7])\n"
    "local uk = P .. 'user:' .. u\n"
    "if redis.call('EXISTS', P .. 'revoked:' .. fp) == 1 then\n"
    "  return {'revoked'}\n"
    "end\n"
    "local bound = redis.call('HGET', P .. 'cert:' .. fp, 'user')\n"
    "if mode == 'signup' then\n"
    "  if bound then\n"
    "    audit('signup_refused', u, 'certificate already bound to ' .. bound)\n"
    "    return {'cert_bound'}\n"
    "  end\n"
    "  if ARGV[9] ~= '1' then\n"
    "    audit('signup_refused', u, 'certificate subject is not the user ID')\n"
    "    return {'subject'}\n"
    "  end\n"
    "elseif bound ~= u then\n"
    "  audit(mode .. '_refused', u, 'certificate not bound to the user ID')\n"
    "  return {'wrong_cert'}\n"
    "end\n"
    "local rec = redis.call('HMGET', uk, 'pw', 'locked', 'failures',"
    " 'initial')\n"
    "if not rec[1] then\n"
    "  audit(mode .. '_refused', u, 'unknown user ID')\n"
    "  return {'nouser'}\n"
    "end\n"
    "if mode == 'signup' and redis.call('SCARD', uk .. ':certs') > 0 then\n"
    "  audit('signup_refused', u, 'user ID bound to another certificate')\n"
    "  return {'user_bound'}\n"
    "end\n"
    "if mode == 'password' and not session(ARGV[10], u, tonumber(ARGV[11]))"
    " then\n"
    "  return {'nosession'}\n"
    "end\n"
    "local f = tonumber(rec[3]) or max\n"
    "if rec[2] ~= '0' or f >= max then return {'locked'} end\n"
    "local pk = uk .. ':pending'\n"
    "redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - 60)\n"
    "if f + redis.call('ZCARD', pk) >= max then return {'busy'} end\n"
    "redis.call('ZADD', pk, now, ARGV[8])\n"
    "redis.call('EXPIRE', pk, 120)\n"
    "return {'ok', rec[1], rec[4] or '1'}\n";


static char  ngx_http_ecodoc_lua_finish[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /*
     * ARGV[5] mode, ARGV[6] user, ARGV[7] max failures, ARGV[8] reservation,
     * ARGV[9] password right ('1'), ARGV[10] new session, ARGV[11] idle
     * timeout, ARGV[12] new password hash, ARGV[13] the old session
     */
    "local mode, u, max = ARGV[5], ARGV[6], tonumber(ARGV[7])\n"
    "local uk = P .. 'user:' .. u\n"
    "redis.call('ZREM', uk .. ':pending', ARGV[8])\n"
    "if redis.call('EXISTS', uk) == 0 then return {'nouser'} end\n"
    "if ARGV[9] ~= '1' then\n"
    "  local f = redis.call('HINCRBY', uk, 'failures', 1)\n"
    "  audit(mode .. '_failed', u, 'consecutive failures: ' .. f)\n"
    "  if f < max then return {'failed'} end\n"
    "  if redis.call('HGET', uk, 'locked') == '0' then\n"
    "    redis.call('HSET', uk, 'locked', '1')\n"
    "    end_sessions(u)\n"
    "    audit('lock', u, 'after ' .. f .. ' wrong passwords')\n"
    "  end\n"
    "  return {'locked'}\n"
    "end\n"
    "if redis.call('HGET', uk, 'locked') ~= '0' then return {'locked'} end\n"
    "redis.call('HSET', uk, 'failures', '0')\n"
    "if mode == 'signup' then\n"
    "  if redis.call('EXISTS', P .. 'cert:' .. fp) == 1 then\n"
    "    return {'cert_bound'}\n"
    "  end\n"
    "  if redis.call('SCARD', uk .. ':certs') > 0 then\n"
    "    return {'user_bound'}\n"
    "  end\n"
    "  redis.call('HSET', P .. 'cert:' .. fp, 'user', u, 'bound', now)\n"
    "  redis.call('SADD', uk .. ':certs', fp)\n"
    "  audit('signup', u, '')\n"
    "  return {'ok', '1'}\n"
    "end\n"
    "local initial = redis.call('HGET', uk, 'initial')\n"
    "if mode == 'password' then\n"
    "  redis.call('HSET', uk, 'pw', ARGV[12], 'initial', '0', 'changed', now)\n"
    "  end_sessions(u)\n"
    "  initial = '0'\n"
    "  audit('password_changed', u, '')\n"
    "else\n"
    "  audit('login', u, '')\n"
    "end\n"
    "if ARGV[13] ~= '' then drop_session(ARGV[13]) end\n"
    "local set = uk .. ':sessions'\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', set)) do\n"
    "  if redis.call('EXISTS', P .. 'sess:' .. sid) == 0 then\n"
    "    redis.call('SREM', set, sid)\n"
    "  end\n"
    "end\n"
    "local sk = P .. 'sess:' .. ARGV[10]\n"
    "redis.call('HSET', sk, 'user', u, 'fp', fp, 'created', now)\n"
    "redis.call('EXPIRE', sk, ARGV[11])\n"
    "redis.call('SADD', set, ARGV[10])\n"
    "return {'ok', initial}\n";


static char  ngx_http_ecodoc_lua_logout[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /* ARGV[5] session */
    "local k = P .. 'sess:' .. ARGV[5]\n"
    "local s = redis.call('HMGET', k, 'user', 'fp')\n"
    "if not s[1] or s[2] ~= fp then return {'nosession'} end\n"
    "drop_session(ARGV[5])\n"
    "audit('logout', s[1], '')\n"
    "return {'ok', s[1]}\n";


char  *ngx_http_ecodoc_scripts[] = {
    ngx_http_ecodoc_lua_gate,
    ngx_http_ecodoc_lua_reserve,
    ngx_http_ecodoc_lua_finish,
    ngx_http_ecodoc_lua_logout
};
