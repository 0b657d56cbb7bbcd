/*
 * The Lua scripts run in Redis: every check and change of the data model
 * (docs/redis-schema.md) as one atomic round trip, with its audit record.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


/*
 * Every script gets ARGV[1] key prefix, ARGV[2] client address, ARGV[3]
 * certificate fingerprint; its own arguments follow.  The time is Redis'
 * own, so that nginx hosts with different clocks agree.
 */

#define NGX_HTTP_ECODOC_LUA_PRELUDE                                          \
    "local P, addr, fp = ARGV[1], ARGV[2], ARGV[3]\n"                        \
    "local now = tonumber(redis.call('TIME')[1])\n"                          \
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
    /* a session is the string "FP CREATED INITIAL USER" (redis-schema) */  \
    "local function session_of(sid)\n"                                       \
    "  local v = redis.call('GET', P .. 'sess:' .. sid)\n"                   \
    "  if not v then return nil end\n"                                       \
    "  local f, c, i, u = string.match(v, '^(%x+) (%d+) ([01]) (.+)$')\n"    \
    "  return u, f, tonumber(c), i\n"                                        \
    "end\n"                                                                  \
                                                                             \
    "local function drop_session(sid)\n"                                     \
    "  local u = session_of(sid)\n"                                          \
    "  redis.call('DEL', P .. 'sess:' .. sid)\n"                             \
    "  if u then redis.call('SREM', P .. 'user:' .. u .. ':sessions', sid)"  \
    " end\n"                                                                 \
    "end\n"                                                                  \
                                                                             \
    /* the session key when sid is alive for user u and this certificate */  \
    "local function session(sid, u, lifetime)\n"                             \
    "  if sid == '' then return nil end\n"                                   \
    "  local su, sfp, created = session_of(sid)\n"                           \
    "  if not su then return nil end\n"                                      \
    "  if su ~= u or sfp ~= fp then\n"                                       \
    "    audit('session_refused', su,\n"                                     \
    "          'cookie presented with another certificate')\n"               \
    "    return nil\n"                                                       \
    "  end\n"                                                                \
    "  if now - created > lifetime then\n"                                   \
    "    drop_session(sid)\n"                                                \
    "    return nil\n"                                                       \
    "  end\n"                                                                \
    "  return P .. 'sess:' .. sid\n"                                         \
    "end\n"


static char  ngx_http_ecodoc_lua_gate[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /* ARGV[4] session, ARGV[5] idle timeout, ARGV[6] lifetime */
    "if redis.call('EXISTS', P .. 'revoked:' .. fp) == 1 then\n"
    "  return {'revoked'}\n"
    "end\n"
    "local u = redis.call('HGET', P .. 'cert:' .. fp, 'user')\n"
    "if not u then return {'unbound'} end\n"
    "local st = redis.call('HMGET', P .. 'user:' .. u, 'locked', 'initial')\n"
    "if not st[1] then return {'unbound'} end\n"
    "if st[1] ~= '0' then return {'locked', u} end\n"
    "local k = session(ARGV[4], u, tonumber(ARGV[6]))\n"
    "if not k then return {'nosession', u} end\n"
    "redis.call('EXPIRE', k, ARGV[5])\n"
    "if st[2] ~= '0' then return {'initial', u} end\n"
    "return {'ok', u}\n";


static char  ngx_http_ecodoc_lua_reserve[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /*
     * ARGV[4] signup|login|password, ARGV[5] user, ARGV[6] max failures,
     * ARGV[7] reservation, ARGV[8] subject carries the user ('1'),
     * ARGV[9] session, ARGV[10] session lifetime
     */
    "local mode, u, max = ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
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
    "  if ARGV[8] ~= '1' then\n"
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
    "if mode == 'password' and not session(ARGV[9], u, tonumber(ARGV[10]))"
    " then\n"
    "  return {'nosession'}\n"
    "end\n"
    "local f = tonumber(rec[3]) or max\n"
    "if rec[2] ~= '0' or f >= max then return {'locked'} end\n"
    "local pk = uk .. ':pending'\n"
    "redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - 120)\n"
    "if f + redis.call('ZCARD', pk) >= max then return {'busy'} end\n"
    "redis.call('ZADD', pk, now, ARGV[7])\n"
    "redis.call('EXPIRE', pk, 240)\n"
    "return {'ok', rec[1], rec[4] or '1'}\n";


static char  ngx_http_ecodoc_lua_finish[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /*
     * ARGV[4] mode, ARGV[5] user, ARGV[6] max failures, ARGV[7] reservation,
     * ARGV[8] password right '1', wrong '0', not checked 'e', ARGV[9] new
     * session, ARGV[10] idle timeout, ARGV[11] new password hash, ARGV[12]
     * the old session, ARGV[13] the hash checked, ARGV[14] session lifetime
     */
    "local mode, u, max = ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
    "local uk = P .. 'user:' .. u\n"
    "redis.call('ZREM', uk .. ':pending', ARGV[7])\n"
    "if ARGV[8] == 'e' then return {'error'} end\n"
    /* reset or changed meanwhile: this check no longer means anything */
    "if redis.call('HGET', uk, 'pw') ~= ARGV[13] then return {'changed'} end\n"
    "if mode == 'password' and ARGV[8] == '1'\n"
    "   and not session(ARGV[12], u, tonumber(ARGV[14])) then\n"
    "  return {'nosession'}\n"
    "end\n"
    "if ARGV[8] ~= '1' then\n"
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
    "local initial = redis.call('HGET', uk, 'initial') == '0' and '0' or '1'\n"
    "if mode == 'password' then\n"
    "  redis.call('HSET', uk, 'pw', ARGV[11], 'initial', '0', 'changed', now)\n"
    "  end_sessions(u)\n"
    "  initial = '0'\n"
    "  audit('password_changed', u, '')\n"
    "else\n"
    "  audit('login', u, '')\n"
    "end\n"
    "if ARGV[12] ~= '' then drop_session(ARGV[12]) end\n"
    "local set = uk .. ':sessions'\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', set)) do\n"
    "  if redis.call('EXISTS', P .. 'sess:' .. sid) == 0 then\n"
    "    redis.call('SREM', set, sid)\n"
    "  end\n"
    "end\n"
    "local sk = P .. 'sess:' .. ARGV[9]\n"
    "redis.call('SET', sk, fp .. ' ' .. now .. ' ' .. initial .. ' ' .. u,\n"
    "           'EX', ARGV[10])\n"
    "redis.call('SADD', set, ARGV[9])\n"
    "return {'ok', initial}\n";


static char  ngx_http_ecodoc_lua_logout[] =
    NGX_HTTP_ECODOC_LUA_PRELUDE
    /* ARGV[4] session */
    "local u, sfp = session_of(ARGV[4])\n"
    "if not u or sfp ~= fp then return {'nosession'} end\n"
    "drop_session(ARGV[4])\n"
    "audit('logout', u, '')\n"
    "return {'ok', u}\n";


char  *ngx_http_ecodoc_scripts[] = {
    ngx_http_ecodoc_lua_gate,
    ngx_http_ecodoc_lua_reserve,
    ngx_http_ecodoc_lua_finish,
    ngx_http_ecodoc_lua_logout
};
