/*
 * The Redis client: one hiredis async connection per worker on nginx's event
 * loop, with per-command timers, reconnection with backoff and EVALSHA.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/async.h>
#include <openssl/sha.h>

#include "ngx_http_ecodoc.h"
#include "ecodoc_lua.h"


#define NGX_HTTP_ECODOC_BACKOFF_MIN   100
#define NGX_HTTP_ECODOC_BACKOFF_MAX   2000
#define NGX_HTTP_ECODOC_ARGS_MAX      24


typedef struct ngx_http_ecodoc_redis_cmd_s  ngx_http_ecodoc_redis_cmd_t;

struct ngx_http_ecodoc_redis_cmd_s {
    ngx_http_request_t                *request;   /* NULL once abandoned */
    ngx_http_ecodoc_ctx_t             *ctx;
    ngx_http_ecodoc_redis_handler_pt   handler;
    ngx_http_ecodoc_redis_cmd_t       *next;      /* in the free list */
    uint64_t                           sent;      /* us, with metrics */
};


typedef struct {
    redisAsyncContext                 *ac;
    ngx_http_ecodoc_main_conf_t       *conf;
    ngx_log_t                         *log;
    ngx_msec_t                         backoff;
    ngx_msec_t                         next_try;
    ngx_uint_t                         ready;     /* the setup succeeded */
    ngx_uint_t                         was_ready; /* once, in this worker */
    ngx_msec_t                         answered;  /* the last answer */
    char                               sha[NGX_HTTP_ECODOC_SCRIPT_N][41];
    /* "EVALSHA sha 0 prefix" in Redis' protocol, by script */
    ngx_str_t                          head[NGX_HTTP_ECODOC_SCRIPT_N];
    /* a session's "GETEX P sess:" and "EX idle", around its ID */
    ngx_str_t                          getex_head;
    ngx_str_t                          getex_tail;
    ngx_http_ecodoc_redis_cmd_t       *free;
} ngx_http_ecodoc_redis_t;


static u_char *ngx_http_ecodoc_redis_bulk(u_char *p, ngx_str_t *s);
static ngx_int_t ngx_http_ecodoc_redis_send(ngx_http_request_t *r,
    u_char *buf, size_t len, ngx_uint_t kind,
    ngx_http_ecodoc_redis_handler_pt handler);
static void ngx_http_ecodoc_redis_cmd_free(ngx_http_ecodoc_redis_cmd_t *cmd);
static ngx_int_t ngx_http_ecodoc_redis_connect(void);
static void ngx_http_ecodoc_redis_drop(const char *why);
static void ngx_http_ecodoc_redis_failed(void);
static void ngx_http_ecodoc_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ecodoc_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ecodoc_redis_setup(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_ecodoc_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_ecodoc_redis_timeout(ngx_event_t *ev);
static void ngx_http_ecodoc_redis_read(ngx_event_t *ev);
static void ngx_http_ecodoc_redis_write(ngx_event_t *ev);
static void ngx_http_ecodoc_redis_add_read(void *data);
static void ngx_http_ecodoc_redis_del_read(void *data);
static void ngx_http_ecodoc_redis_add_write(void *data);
static void ngx_http_ecodoc_redis_del_write(void *data);
static void ngx_http_ecodoc_redis_cleanup(void *data);


static ngx_http_ecodoc_redis_t  ngx_http_ecodoc_redis;


/* the scripts' verdicts, by ngx_http_ecodoc_status_e */

ngx_str_t  ngx_http_ecodoc_status_names[] = {
    ngx_string("error"),
    ngx_string("ok"),
    ngx_string("initial"),
    ngx_string("nocert"),
    ngx_string("nosession"),
    ngx_string("revoked"),
    ngx_string("unbound"),
    ngx_string("nouser"),
    ngx_string("locked"),
    ngx_string("cert_bound"),
    ngx_string("user_bound"),
    ngx_string("subject"),
    ngx_string("wrong_cert"),
    ngx_string("busy"),
    ngx_string("failed"),
    ngx_string("changed")
};


/* lua/NAME.lua, by ngx_http_ecodoc_script_e */

static const char  *ngx_http_ecodoc_scripts[] = {
    ecodoc_lua_gate,
    ecodoc_lua_reserve,
    ecodoc_lua_finish,
    ecodoc_lua_logout
};


ngx_int_t
ngx_http_ecodoc_redis_init(ngx_cycle_t *cycle)
{
    u_char                       *p;
    size_t                        len;
    ngx_uint_t                    i;
    unsigned char                 md[SHA_DIGEST_LENGTH];
    ngx_http_ecodoc_main_conf_t  *emcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    emcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_ecodoc_module);

    ngx_memzero(&ngx_http_ecodoc_redis, sizeof(ngx_http_ecodoc_redis_t));

    ngx_http_ecodoc_redis.conf = emcf;
    ngx_http_ecodoc_redis.log = cycle->log;
    ngx_http_ecodoc_redis.backoff = NGX_HTTP_ECODOC_BACKOFF_MIN;

    for (i = 0; i < NGX_HTTP_ECODOC_SCRIPT_N; i++) {
        len = ngx_strlen(ngx_http_ecodoc_scripts[i]);
        SHA1((u_char *) ngx_http_ecodoc_scripts[i], len, md);
        ngx_hex_dump((u_char *) ngx_http_ecodoc_redis.sha[i], md,
                     SHA_DIGEST_LENGTH);

        p = ngx_pnalloc(cycle->pool, sizeof("$7\r\nEVALSHA\r\n$40\r\n\r\n"
                                            "$1\r\n0\r\n$\r\n\r\n") - 1
                                     + 40 + NGX_SIZE_T_LEN
                                     + emcf->prefix.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_http_ecodoc_redis.head[i].data = p;
        p = ngx_sprintf(p, "$7\r\nEVALSHA\r\n$40\r\n%*s\r\n$1\r\n0\r\n",
                        (size_t) 40, ngx_http_ecodoc_redis.sha[i]);
        p = ngx_http_ecodoc_redis_bulk(p, &emcf->prefix);
        ngx_http_ecodoc_redis.head[i].len = p
                                            - ngx_http_ecodoc_redis.head[i].data;
    }

    p = ngx_pnalloc(cycle->pool, sizeof("*4\r\n$5\r\nGETEX\r\n$\r\nsess:"
                                        "\r\n$2\r\nEX\r\n$\r\n\r\n") - 1
                                 + 2 * NGX_SIZE_T_LEN + emcf->prefix.len
                                 + emcf->session_timeout_arg.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ecodoc_redis.getex_head.data = p;
    p = ngx_sprintf(p, "*4\r\n$5\r\nGETEX\r\n$%uz\r\n%Vsess:",
                    emcf->prefix.len + sizeof("sess:") - 1
                    + NGX_HTTP_ECODOC_SID_LEN,
                    &emcf->prefix);
    ngx_http_ecodoc_redis.getex_head.len =
                                   p - ngx_http_ecodoc_redis.getex_head.data;

    ngx_http_ecodoc_redis.getex_tail.data = p;
    p = ngx_cpymem(p, "\r\n$2\r\nEX\r\n", sizeof("\r\n$2\r\nEX\r\n") - 1);
    p = ngx_http_ecodoc_redis_bulk(p, &emcf->session_timeout_arg);
    ngx_http_ecodoc_redis.getex_tail.len =
                                   p - ngx_http_ecodoc_redis.getex_tail.data;

    return NGX_OK;
}


void
ngx_http_ecodoc_redis_exit(ngx_cycle_t *cycle)
{
    ngx_http_ecodoc_redis_cmd_t  *cmd;

    if (ngx_http_ecodoc_redis.ac) {
        ngx_http_ecodoc_redis_drop("worker exits");
    }

    while (ngx_http_ecodoc_redis.free) {
        cmd = ngx_http_ecodoc_redis.free;
        ngx_http_ecodoc_redis.free = cmd->next;
        ngx_free(cmd);
    }
}


/*
 * Sends EVALSHA of a script with the common arguments (prefix, client
 * address, fingerprint) followed by args; the handler gets the reply, or
 * NULL on timeout or a lost connection.  NGX_ERROR: Redis is unavailable.
 */

ngx_int_t
ngx_http_ecodoc_redis_eval(ngx_http_request_t *r,
    ngx_http_ecodoc_script_e script, ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_ecodoc_redis_handler_pt handler)
{
    u_char                 *buf, *p;
    size_t                  len;
    ngx_uint_t              i;
    ngx_str_t               common[2];
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    /*
     * the command in Redis' protocol, written here: the part that never
     * changes was made once, and hiredis need not format anything
     */

    common[0] = r->connection->addr_text;
    common[1] = ctx->fp;

    len = sizeof("*18446744073709551615\r\n") - 1
          + ngx_http_ecodoc_redis.head[script].len;

    for (i = 0; i < 2 + nargs; i++) {
        len += sizeof("$18446744073709551615\r\n\r\n") - 1
               + (i < 2 ? common[i].len : args[i - 2].len);
    }

    buf = ngx_pnalloc(r->pool, len + 1);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(buf, "*%ui\r\n", 4 + 2 + nargs);
    p = ngx_cpymem(p, ngx_http_ecodoc_redis.head[script].data,
                   ngx_http_ecodoc_redis.head[script].len);

    for (i = 0; i < 2 + nargs; i++) {
        p = ngx_http_ecodoc_redis_bulk(p, i < 2 ? &common[i] : &args[i - 2]);
    }

    *p = '\0';

    return ngx_http_ecodoc_redis_send(r, buf, p - buf, script, handler);
}


/*
 * Sends "GETEX P sess:SID EX idle": the session's string, its idle timeout
 * renewed, in one command that Redis answers without running a script.
 */

ngx_int_t
ngx_http_ecodoc_redis_session(ngx_http_request_t *r, ngx_str_t *sid,
    ngx_http_ecodoc_redis_handler_pt handler)
{
    u_char  *buf, *p;
    size_t   len;

    if (sid->len != NGX_HTTP_ECODOC_SID_LEN) {
        return NGX_ERROR;
    }

    len = ngx_http_ecodoc_redis.getex_head.len + NGX_HTTP_ECODOC_SID_LEN
          + ngx_http_ecodoc_redis.getex_tail.len;

    buf = ngx_pnalloc(r->pool, len + 1);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(buf, ngx_http_ecodoc_redis.getex_head.data,
                   ngx_http_ecodoc_redis.getex_head.len);
    p = ngx_cpymem(p, sid->data, NGX_HTTP_ECODOC_SID_LEN);
    p = ngx_cpymem(p, ngx_http_ecodoc_redis.getex_tail.data,
                   ngx_http_ecodoc_redis.getex_tail.len);
    *p = '\0';

    return ngx_http_ecodoc_redis_send(r, buf, p - buf,
                                      NGX_HTTP_ECODOC_CMD_SESSION, handler);
}


/* PING, for ecodoc_health */

ngx_int_t
ngx_http_ecodoc_redis_ping(ngx_http_request_t *r,
    ngx_http_ecodoc_redis_handler_pt handler)
{
    static u_char  ping[] = "*1\r\n$4\r\nPING\r\n";

    return ngx_http_ecodoc_redis_send(r, ping, sizeof(ping) - 1,
                                      NGX_HTTP_ECODOC_CMD_PING, handler);
}


/* the connection is set up and Redis answered it within the last ms */

ngx_uint_t
ngx_http_ecodoc_redis_answered(ngx_msec_t within)
{
    return ngx_http_ecodoc_redis.ac != NULL && ngx_http_ecodoc_redis.ready
           && ngx_current_msec - ngx_http_ecodoc_redis.answered < within;
}


/*
 * queues a command written in Redis' protocol, with its timer; buf[len]
 * must be '\0': hiredis looks for the command's name (to
 * spot SUBSCRIBE) with strchr(), which reads a C string (AddressSanitizer,
 * make test-asan)
 */

static ngx_int_t
ngx_http_ecodoc_redis_send(ngx_http_request_t *r, u_char *buf, size_t len,
    ngx_uint_t kind, ngx_http_ecodoc_redis_handler_pt handler)
{
    ngx_http_ecodoc_ctx_t        *ctx;
    ngx_http_ecodoc_redis_cmd_t  *cmd;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_redis.ac == NULL
        && ngx_http_ecodoc_redis_connect() != NGX_OK)
    {
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_ERRORS
                              + NGX_HTTP_ECODOC_ERR_UNAVAILABLE, 1);
        return NGX_ERROR;
    }

    cmd = ngx_http_ecodoc_redis.free;

    if (cmd) {
        ngx_http_ecodoc_redis.free = cmd->next;

    } else {
        cmd = ngx_alloc(sizeof(ngx_http_ecodoc_redis_cmd_t),
                        r->connection->log);
        if (cmd == NULL) {
            return NGX_ERROR;
        }
    }

    cmd->request = r;
    cmd->ctx = ctx;
    cmd->handler = handler;
    cmd->sent = ngx_http_ecodoc_metrics ? ngx_http_ecodoc_metrics_usec() : 0;

    if (redisAsyncFormattedCommand(ngx_http_ecodoc_redis.ac,
                                   ngx_http_ecodoc_redis_reply, cmd,
                                   (char *) buf, len)
        != REDIS_OK)
    {
        ngx_http_ecodoc_redis_cmd_free(cmd);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ecodoc: Redis command not queued");
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_ERRORS
                              + NGX_HTTP_ECODOC_ERR_UNAVAILABLE, 1);
        return NGX_ERROR;
    }

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_COMMANDS + kind, 1);

    ctx->redis_cmd = cmd;

    ctx->redis_timer.handler = ngx_http_ecodoc_redis_timeout;
    ctx->redis_timer.data = r;
    ctx->redis_timer.log = r->connection->log;
    ngx_add_timer(&ctx->redis_timer,
                  ngx_http_ecodoc_redis.conf->redis_timeout);

    return NGX_OK;
}


static u_char *
ngx_http_ecodoc_redis_bulk(u_char *p, ngx_str_t *s)
{
    p = ngx_sprintf(p, "$%uz\r\n", s->len);
    p = ngx_cpymem(p, s->data, s->len);
    *p++ = CR;
    *p++ = LF;

    return p;
}


/* the commands are few at a time and many over time: they are reused */

static void
ngx_http_ecodoc_redis_cmd_free(ngx_http_ecodoc_redis_cmd_t *cmd)
{
    cmd->next = ngx_http_ecodoc_redis.free;
    ngx_http_ecodoc_redis.free = cmd;
}


void
ngx_http_ecodoc_redis_cancel(ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_http_ecodoc_redis_cmd_t  *cmd;

    cmd = ctx->redis_cmd;

    if (cmd) {
        cmd->request = NULL;
        ctx->redis_cmd = NULL;
    }

    if (ctx->redis_timer.timer_set) {
        ngx_del_timer(&ctx->redis_timer);
    }
}


/*
 * A script's reply is an array of strings, the first being the verdict:
 * its enum; up to nextra further strings are copied to the request pool.
 * A malformed reply, or a verdict no script gives, is an error.
 */

ngx_int_t
ngx_http_ecodoc_reply_verdict(ngx_pool_t *pool, redisReply *reply,
    ngx_http_ecodoc_status_e *status, ngx_str_t *extra, ngx_uint_t nextra)
{
    size_t       i;
    ngx_uint_t   v;
    ngx_str_t   *name;
    redisReply  *e;

    *status = NGX_HTTP_ECODOC_ST_ERROR;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) {
            return NGX_ERROR;
        }
    }

    e = reply->element[0];

    for (v = 1; v < NGX_HTTP_ECODOC_ST_N; v++) {
        name = &ngx_http_ecodoc_status_names[v];

        if (e->len == name->len
            && ngx_strncmp(e->str, name->data, e->len) == 0)
        {
            break;
        }
    }

    if (v == NGX_HTTP_ECODOC_ST_N) {
        return NGX_ERROR;
    }

    for (i = 0; i < nextra; i++) {
        ngx_str_null(&extra[i]);

        if (i + 1 >= reply->elements) {
            continue;
        }

        e = reply->element[i + 1];

        extra[i].len = e->len;
        extra[i].data = ngx_pnalloc(pool, e->len + 1);
        if (extra[i].data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(extra[i].data, e->str, e->len);
        extra[i].data[e->len] = '\0';
    }

    *status = v;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ecodoc_redis_connect(void)
{
    int                           rc;
    ngx_uint_t                    i;
    const char                   *argv[3];
    size_t                        argvlen[3];
    u_char                        db[NGX_INT_T_LEN];
    redisAsyncContext            *ac;
    ngx_connection_t             *c;
    ngx_http_ecodoc_main_conf_t  *emcf;

    if (ngx_current_msec < ngx_http_ecodoc_redis.next_try) {
        return NGX_ERROR;
    }

    emcf = ngx_http_ecodoc_redis.conf;

    if (emcf->redis_port == 0) {
        ac = redisAsyncConnectUnix((char *) emcf->redis_host.data);

    } else {
        ac = redisAsyncConnect((char *) emcf->redis_host.data,
                               (int) emcf->redis_port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: cannot allocate a Redis connection");
        ngx_http_ecodoc_redis_failed();
        return NGX_ERROR;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: Redis connect to %V:%i failed: %s",
                      &emcf->redis_host, emcf->redis_port, ac->errstr);
        redisAsyncFree(ac);
        ngx_http_ecodoc_redis_failed();
        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, ngx_http_ecodoc_redis.log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_ecodoc_redis_failed();
        return NGX_ERROR;
    }

    c->data = ac;
    c->read->handler = ngx_http_ecodoc_redis_read;
    c->write->handler = ngx_http_ecodoc_redis_write;
    c->read->log = c->log;
    c->write->log = c->log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_ecodoc_redis_add_read;
    ac->ev.delRead = ngx_http_ecodoc_redis_del_read;
    ac->ev.addWrite = ngx_http_ecodoc_redis_add_write;
    ac->ev.delWrite = ngx_http_ecodoc_redis_del_write;
    ac->ev.cleanup = ngx_http_ecodoc_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_ecodoc_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_http_ecodoc_redis_disconnected);

    ngx_http_ecodoc_redis.ac = ac;
    rc = REDIS_OK;

    /* queued now, sent once connected, answered before any EVALSHA */

    if (emcf->redis_password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) emcf->redis_password.data;
        argvlen[1] = emcf->redis_password.len;
        rc |= redisAsyncCommandArgv(ac, ngx_http_ecodoc_redis_setup, "OK", 2,
                                    argv, argvlen);
    }

    if (emcf->redis_db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) db;
        argvlen[1] = ngx_sprintf(db, "%ui", emcf->redis_db) - db;
        rc |= redisAsyncCommandArgv(ac, ngx_http_ecodoc_redis_setup, "OK", 2,
                                    argv, argvlen);
    }

    for (i = 0; i < NGX_HTTP_ECODOC_SCRIPT_N; i++) {
        argv[0] = "SCRIPT";
        argvlen[0] = 6;
        argv[1] = "LOAD";
        argvlen[1] = 4;
        argv[2] = ngx_http_ecodoc_scripts[i];
        argvlen[2] = ngx_strlen(ngx_http_ecodoc_scripts[i]);
        rc |= redisAsyncCommandArgv(ac, ngx_http_ecodoc_redis_setup,
                                    ngx_http_ecodoc_redis.sha[i], 3,
                                    argv, argvlen);
    }

    if (rc != REDIS_OK) {
        ngx_http_ecodoc_redis_drop("cannot queue the connection setup");
        return NGX_ERROR;
    }

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_COMMANDS
                          + NGX_HTTP_ECODOC_CMD_SETUP,
                          (emcf->redis_password.len != 0)
                          + (emcf->redis_db != 0) + NGX_HTTP_ECODOC_SCRIPT_N);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_http_ecodoc_redis.log, 0,
                   "ecodoc: connecting to Redis %V:%i",
                   &emcf->redis_host, emcf->redis_port);

    return NGX_OK;
}


/* closes the connection; every pending command's handler gets NULL */

static void
ngx_http_ecodoc_redis_drop(const char *why)
{
    redisAsyncContext  *ac;

    ac = ngx_http_ecodoc_redis.ac;
    if (ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_http_ecodoc_redis.log, 0,
                  "ecodoc: closing the Redis connection: %s", why);

    ngx_http_ecodoc_redis.ac = NULL;
    ngx_http_ecodoc_redis_failed();

    redisAsyncFree(ac);
}


static void
ngx_http_ecodoc_redis_failed(void)
{
    /*
     * a connection that worked and then closed (Redis restarted, an idle
     * timeout) is made again at once; failures to connect back off
     */

    if (ngx_http_ecodoc_redis.ready) {
        ngx_http_ecodoc_redis.ready = 0;
        ngx_http_ecodoc_redis.next_try = ngx_current_msec;
        return;
    }

    ngx_http_ecodoc_redis.next_try = ngx_current_msec
                                     + ngx_http_ecodoc_redis.backoff;

    ngx_http_ecodoc_redis.backoff = ngx_min(ngx_http_ecodoc_redis.backoff * 2,
                                            NGX_HTTP_ECODOC_BACKOFF_MAX);
}


static void
ngx_http_ecodoc_redis_connected(const redisAsyncContext *ac, int status)
{
    if (status == REDIS_OK) {
        ngx_log_error(NGX_LOG_INFO, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: connected to Redis");
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                  "ecodoc: Redis connection failed: %s", ac->errstr);

    /* hiredis frees the context after this callback */

    if (ngx_http_ecodoc_redis.ac == ac) {
        ngx_http_ecodoc_redis.ac = NULL;
        ngx_http_ecodoc_redis_failed();
    }
}


static void
ngx_http_ecodoc_redis_disconnected(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: Redis connection lost: %s",
                      ac->errstr ? ac->errstr : "closed");
    }

    if (ngx_http_ecodoc_redis.ac == ac) {
        ngx_http_ecodoc_redis.ac = NULL;
        ngx_http_ecodoc_redis_failed();
    }
}


/* AUTH, SELECT and SCRIPT LOAD: anything but the expected answer drops */

static void
ngx_http_ecodoc_redis_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    char        *expect = privdata;
    redisReply  *reply = r;

    if (reply == NULL) {
        return;
    }

    if ((reply->type == REDIS_REPLY_STATUS
         || reply->type == REDIS_REPLY_STRING)
        && reply->len == strlen(expect)
        && ngx_strncmp(reply->str, expect, reply->len) == 0)
    {
        ngx_http_ecodoc_redis.answered = ngx_current_msec;

        if (expect == ngx_http_ecodoc_redis.sha[NGX_HTTP_ECODOC_SCRIPT_N - 1])
        {
            ngx_http_ecodoc_redis.backoff = NGX_HTTP_ECODOC_BACKOFF_MIN;
            ngx_http_ecodoc_redis.ready = 1;

            if (ngx_http_ecodoc_redis.was_ready) {
                ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_RECONNECTS, 1);
            }

            ngx_http_ecodoc_redis.was_ready = 1;
        }

        return;
    }

    ngx_log_error(NGX_LOG_ALERT, ngx_http_ecodoc_redis.log, 0,
                  "ecodoc: Redis refused the connection setup: %*s",
                  (size_t) (reply->type == REDIS_REPLY_ERROR ? reply->len : 0),
                  reply->str);

    if (ngx_http_ecodoc_redis.ac == ac) {
        ngx_http_ecodoc_redis_drop("setup refused");
    }
}


static void
ngx_http_ecodoc_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                   *reply = r;
    ngx_connection_t             *c;
    ngx_http_request_t           *req;
    ngx_http_ecodoc_redis_cmd_t  *cmd = privdata;

    req = cmd->request;

    if (reply) {
        ngx_http_ecodoc_redis.answered = ngx_current_msec;

        if (ngx_http_ecodoc_metrics) {
            ngx_http_ecodoc_metrics_time(NGX_HTTP_ECODOC_M_LATENCY,
                                         ngx_http_ecodoc_metrics_usec()
                                         - cmd->sent);
        }

    } else if (req) {
        /* a request waited for it: not one abandoned, or timed out */
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_ERRORS
                              + NGX_HTTP_ECODOC_ERR_LOST, 1);
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: Redis error: %*s", (size_t) reply->len,
                      reply->str);

        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_ERRORS
                              + NGX_HTTP_ECODOC_ERR_REPLY, 1);

        if (ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
            && ngx_http_ecodoc_redis.ac == ac)
        {
            ngx_http_ecodoc_redis_drop("scripts were flushed");
        }

        reply = NULL;
    }

    if (req) {
        c = req->connection;

        cmd->ctx->redis_cmd = NULL;

        if (cmd->ctx->redis_timer.timer_set) {
            ngx_del_timer(&cmd->ctx->redis_timer);
        }

        cmd->handler(req, reply);
        ngx_http_run_posted_requests(c);
    }

    ngx_http_ecodoc_redis_cmd_free(cmd);
}


static void
ngx_http_ecodoc_redis_timeout(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_ecodoc_ctx_t        *ctx;
    ngx_http_ecodoc_redis_cmd_t  *cmd;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);
    cmd = ctx->redis_cmd;

    ngx_log_error(NGX_LOG_ERR, c->log, 0, "ecodoc: Redis timed out");

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_TIMEOUTS, 1);

    if (cmd) {
        ctx->redis_cmd = NULL;
        cmd->request = NULL;
        cmd->handler(r, NULL);
    }

    ngx_http_ecodoc_redis_drop("timeout");

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ecodoc_redis_read(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_ecodoc_redis_write(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


static void
ngx_http_ecodoc_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "ecodoc: cannot watch the Redis connection");
        }
    }
}


static void
ngx_http_ecodoc_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_ecodoc_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "ecodoc: cannot watch the Redis connection");
        }
    }
}


static void
ngx_http_ecodoc_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis closes the socket itself right after this */

static void
ngx_http_ecodoc_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_http_ecodoc_redis_del_read(c);
    ngx_http_ecodoc_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}
