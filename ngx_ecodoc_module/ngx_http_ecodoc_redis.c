/*
 * The Redis client: one connection per worker (ngx_http_ecodoc_link.c) to
 * the Redis or the master, with per-command timers, reconnection with
 * backoff, EVALSHA, and WAIT after the writes that must survive a failover.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/sha.h>

#include "ngx_http_ecodoc.h"
#include "ecodoc_lua.h"


#define NGX_HTTP_ECODOC_BACKOFF_MIN   100
#define NGX_HTTP_ECODOC_BACKOFF_MAX   2000


typedef struct ngx_http_ecodoc_redis_cmd_s  ngx_http_ecodoc_redis_cmd_t;

struct ngx_http_ecodoc_redis_cmd_s {
    ngx_http_request_t                *request;   /* NULL once abandoned */
    ngx_http_ecodoc_ctx_t             *ctx;
    ngx_http_ecodoc_redis_handler_pt   handler;
    ngx_http_ecodoc_redis_cmd_t       *next;      /* in the free list */
    uint64_t                           sent;      /* us, with metrics */
    redisReply                        *held;      /* the script's, WAIT */
    ngx_uint_t                         wait;      /* 1 script, 2 WAIT next */
};


typedef struct {
    ngx_http_ecodoc_link_t             link;
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
    ngx_str_t                          wait;      /* "WAIT N T", or "" */
    ngx_http_ecodoc_redis_cmd_t       *free;
    unsigned                           moving:1;  /* to the new master */
    unsigned                           demoted:1; /* not the master now */
    unsigned                           exiting:1;
} ngx_http_ecodoc_redis_t;


static u_char *ngx_http_ecodoc_redis_bulk(u_char *p, ngx_str_t *s);
static ngx_int_t ngx_http_ecodoc_redis_evalsha(ngx_http_request_t *r,
    ngx_http_ecodoc_script_e script, ngx_str_t *args, ngx_uint_t nargs,
    ngx_uint_t wait, ngx_http_ecodoc_redis_handler_pt handler);
static ngx_int_t ngx_http_ecodoc_redis_send(ngx_http_request_t *r,
    u_char *buf, size_t len, ngx_uint_t kind, ngx_uint_t wait,
    ngx_http_ecodoc_redis_handler_pt handler);
static void ngx_http_ecodoc_redis_cmd_free(ngx_http_ecodoc_redis_cmd_t *cmd);
static ngx_int_t ngx_http_ecodoc_redis_connect(void);
static void ngx_http_ecodoc_redis_drop(ngx_uint_t level, const char *why);
static void ngx_http_ecodoc_redis_demoted(const char *why);
static ngx_uint_t ngx_http_ecodoc_redis_error(redisReply *reply,
    const char *code);
static void ngx_http_ecodoc_redis_failed(void);
static void ngx_http_ecodoc_redis_opened(ngx_http_ecodoc_link_t *link);
static void ngx_http_ecodoc_redis_closed(ngx_http_ecodoc_link_t *link);
static ngx_int_t ngx_http_ecodoc_redis_setup(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_ecodoc_redis_reply(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data);
static redisReply *ngx_http_ecodoc_redis_waited(ngx_http_ecodoc_redis_cmd_t *cmd,
    redisReply *reply);
static void ngx_http_ecodoc_redis_deliver(ngx_http_ecodoc_redis_cmd_t *cmd,
    redisReply *reply);
static void ngx_http_ecodoc_redis_timeout(ngx_event_t *ev);


static ngx_http_ecodoc_redis_t  ngx_http_ecodoc_redis;

/* the ROLE step of the setup, told apart by its address */
static char  ngx_http_ecodoc_redis_role[] = "master";


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
    ngx_str_t                     n, t;
    ngx_uint_t                    i;
    unsigned char                 md[SHA_DIGEST_LENGTH];
    u_char                        nbuf[NGX_INT_T_LEN];
    u_char                        tbuf[NGX_INT_T_LEN];
    ngx_http_ecodoc_main_conf_t  *emcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    emcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_ecodoc_module);

    ngx_memzero(&ngx_http_ecodoc_redis, sizeof(ngx_http_ecodoc_redis_t));

    ngx_http_ecodoc_redis.conf = emcf;
    ngx_http_ecodoc_redis.log = cycle->log;
    ngx_http_ecodoc_redis.backoff = NGX_HTTP_ECODOC_BACKOFF_MIN;

    ngx_http_ecodoc_redis.link.what = "Redis";
    ngx_http_ecodoc_redis.link.ssl = emcf->ssl;
    ngx_http_ecodoc_redis.link.timeout = emcf->redis_timeout;
    ngx_http_ecodoc_redis.link.opened = ngx_http_ecodoc_redis_opened;
    ngx_http_ecodoc_redis.link.closed = ngx_http_ecodoc_redis_closed;

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

    /* "WAIT N T", pipelined after each security write (ecodoc_redis_wait) */

    if (emcf->wait_replicas) {
        n.data = nbuf;
        n.len = ngx_sprintf(nbuf, "%ui", emcf->wait_replicas) - nbuf;
        t.data = tbuf;
        t.len = ngx_sprintf(tbuf, "%M", emcf->wait_timeout) - tbuf;

        p = ngx_pnalloc(cycle->pool, sizeof("*3\r\n$4\r\nWAIT\r\n") - 1
                                     + 2 * (NGX_SIZE_T_LEN + 4
                                            + NGX_INT_T_LEN));
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_http_ecodoc_redis.wait.data = p;
        p = ngx_cpymem(p, "*3\r\n$4\r\nWAIT\r\n",
                       sizeof("*3\r\n$4\r\nWAIT\r\n") - 1);
        p = ngx_http_ecodoc_redis_bulk(p, &n);
        p = ngx_http_ecodoc_redis_bulk(p, &t);
        ngx_http_ecodoc_redis.wait.len = p - ngx_http_ecodoc_redis.wait.data;
    }

    return ngx_http_ecodoc_sentinel_init(cycle);
}


void
ngx_http_ecodoc_redis_exit(ngx_cycle_t *cycle)
{
    ngx_http_ecodoc_redis_cmd_t  *cmd;

    ngx_http_ecodoc_redis.exiting = 1;

    ngx_http_ecodoc_link_free(&ngx_http_ecodoc_redis.link);

    ngx_http_ecodoc_sentinel_exit();

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
    ngx_uint_t  wait;

    /* a password check's reservation and its outcome are followed by WAIT */

    wait = (script == NGX_HTTP_ECODOC_SCRIPT_RESERVE
            || script == NGX_HTTP_ECODOC_SCRIPT_FINISH)
           && ngx_http_ecodoc_redis.wait.len;

    return ngx_http_ecodoc_redis_evalsha(r, script, args, nargs, wait,
                                         handler);
}


/*
 * Sends EVALSHA of a script that no request waits for, with no WAIT and no
 * timer: a write that is best done at once but safe to lose (a reservation
 * given back); an error in its reply is logged.  NGX_ERROR: not sent.
 */

ngx_int_t
ngx_http_ecodoc_redis_post(ngx_http_request_t *r,
    ngx_http_ecodoc_script_e script, ngx_str_t *args, ngx_uint_t nargs)
{
    return ngx_http_ecodoc_redis_evalsha(r, script, args, nargs, 0, NULL);
}


static ngx_int_t
ngx_http_ecodoc_redis_evalsha(ngx_http_request_t *r,
    ngx_http_ecodoc_script_e script, ngx_str_t *args, ngx_uint_t nargs,
    ngx_uint_t wait, ngx_http_ecodoc_redis_handler_pt handler)
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
          + ngx_http_ecodoc_redis.head[script].len
          + (wait ? ngx_http_ecodoc_redis.wait.len : 0);

    for (i = 0; i < 2 + nargs; i++) {
        len += sizeof("$18446744073709551615\r\n\r\n") - 1
               + (i < 2 ? common[i].len : args[i - 2].len);
    }

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(buf, "*%ui\r\n", 4 + 2 + nargs);
    p = ngx_cpymem(p, ngx_http_ecodoc_redis.head[script].data,
                   ngx_http_ecodoc_redis.head[script].len);

    for (i = 0; i < 2 + nargs; i++) {
        p = ngx_http_ecodoc_redis_bulk(p, i < 2 ? &common[i] : &args[i - 2]);
    }

    if (wait) {
        p = ngx_cpymem(p, ngx_http_ecodoc_redis.wait.data,
                       ngx_http_ecodoc_redis.wait.len);
    }

    return ngx_http_ecodoc_redis_send(r, buf, p - buf, script, wait, handler);
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

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(buf, ngx_http_ecodoc_redis.getex_head.data,
                   ngx_http_ecodoc_redis.getex_head.len);
    p = ngx_cpymem(p, sid->data, NGX_HTTP_ECODOC_SID_LEN);
    p = ngx_cpymem(p, ngx_http_ecodoc_redis.getex_tail.data,
                   ngx_http_ecodoc_redis.getex_tail.len);

    return ngx_http_ecodoc_redis_send(r, buf, p - buf,
                                      NGX_HTTP_ECODOC_CMD_SESSION, 0, handler);
}


/* PING, for ecodoc_health */

ngx_int_t
ngx_http_ecodoc_redis_ping(ngx_http_request_t *r,
    ngx_http_ecodoc_redis_handler_pt handler)
{
    static u_char  ping[] = "*1\r\n$4\r\nPING\r\n";

    return ngx_http_ecodoc_redis_send(r, ping, sizeof(ping) - 1,
                                      NGX_HTTP_ECODOC_CMD_PING, 0, handler);
}


/* the connection is set up and Redis answered it within the last ms */

ngx_uint_t
ngx_http_ecodoc_redis_answered(ngx_msec_t within)
{
    return ngx_http_ecodoc_redis.link.peer.connection != NULL
           && ngx_http_ecodoc_redis.ready
           && ngx_current_msec - ngx_http_ecodoc_redis.answered < within;
}


/*
 * queues a command written in Redis' protocol, with its timer; wait: WAIT
 * follows it in buf, and the timer allows for WAIT's timeout; no handler:
 * no request waits for it, and it has no timer
 */

static ngx_int_t
ngx_http_ecodoc_redis_send(ngx_http_request_t *r, u_char *buf, size_t len,
    ngx_uint_t kind, ngx_uint_t wait, ngx_http_ecodoc_redis_handler_pt handler)
{
    ngx_http_ecodoc_ctx_t        *ctx;
    ngx_http_ecodoc_redis_cmd_t  *cmd;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_redis.link.peer.connection == NULL
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

    cmd->request = handler ? r : NULL;
    cmd->ctx = ctx;
    cmd->handler = handler;
    cmd->sent = ngx_http_ecodoc_metrics ? ngx_http_ecodoc_metrics_usec() : 0;
    cmd->held = NULL;
    cmd->wait = wait;

    if (ngx_http_ecodoc_link_send(&ngx_http_ecodoc_redis.link, buf, len,
                                  wait ? 2 : 1, ngx_http_ecodoc_redis_reply,
                                  cmd)
        != NGX_OK)
    {
        ngx_http_ecodoc_redis_cmd_free(cmd);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ecodoc: Redis command not queued");
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_ERRORS
                              + NGX_HTTP_ECODOC_ERR_UNAVAILABLE, 1);
        return NGX_ERROR;
    }

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_COMMANDS + kind, 1);

    if (handler == NULL) {
        return NGX_OK;
    }

    ctx->redis_cmd = cmd;
    ctx->unconfirmed = NGX_HTTP_ECODOC_ST_ERROR;

    ctx->redis_timer.handler = ngx_http_ecodoc_redis_timeout;
    ctx->redis_timer.data = r;
    ctx->redis_timer.log = r->connection->log;
    ngx_add_timer(&ctx->redis_timer,
                  ngx_http_ecodoc_redis.conf->redis_timeout
                  + (wait ? ngx_http_ecodoc_redis.conf->wait_timeout : 0));

    return NGX_OK;
}


static u_char *
ngx_http_ecodoc_redis_bulk(u_char *p, ngx_str_t *s)
{
    p = ngx_sprintf(p, "$%uz\r\n", s->len);

    /* an empty argument may have no data: memcpy() must not see its NULL */

    if (s->len) {
        p = ngx_cpymem(p, s->data, s->len);
    }

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


/*
 * Connects to the Redis of ecodoc_redis, or to the master the sentinels
 * named; the setup is queued at once, answered before any other command,
 * and with sentinels no other command is sent before ROLE has answered.
 */

static ngx_int_t
ngx_http_ecodoc_redis_connect(void)
{
    ngx_int_t                     rc;
    ngx_uint_t                    i, n;
    const char                   *argv[3];
    size_t                        argvlen[3];
    u_char                        db[NGX_INT_T_LEN];
    ngx_http_ecodoc_link_t       *link;
    ngx_http_ecodoc_node_t       *node;
    ngx_http_ecodoc_main_conf_t  *emcf;

    if (ngx_current_msec < ngx_http_ecodoc_redis.next_try
        || ngx_http_ecodoc_redis.exiting)
    {
        return NGX_ERROR;
    }

    emcf = ngx_http_ecodoc_redis.conf;
    link = &ngx_http_ecodoc_redis.link;

    node = emcf->redis;

    if (node == NULL) {
        node = ngx_http_ecodoc_sentinel_master();
        if (node == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ecodoc_link_open(link, node, ngx_http_ecodoc_redis.log)
        != NGX_OK)
    {
        ngx_http_ecodoc_redis_failed();
        return NGX_ERROR;
    }

    rc = NGX_OK;
    n = 0;

    if (emcf->redis_password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) emcf->redis_password.data;
        argvlen[1] = emcf->redis_password.len;
        rc |= ngx_http_ecodoc_link_command(link, 2, argv, argvlen,
                                           ngx_http_ecodoc_redis_setup, "OK");
        n++;
    }

    /*
     * a master the sentinels named: it may have been demoted since, and no
     * other command is sent before ROLE says it is the master, so that no
     * script runs on a replica for a request (its writes refused there,
     * its reads perhaps stale)
     */

    if (emcf->redis == NULL) {
        argv[0] = "ROLE";
        argvlen[0] = 4;
        rc |= ngx_http_ecodoc_link_command(link, 1, argv, argvlen,
                                           ngx_http_ecodoc_redis_setup,
                                           ngx_http_ecodoc_redis_role);
        ngx_http_ecodoc_link_fence(link);
        n++;
    }

    if (emcf->redis_db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) db;
        argvlen[1] = ngx_sprintf(db, "%ui", emcf->redis_db) - db;
        rc |= ngx_http_ecodoc_link_command(link, 2, argv, argvlen,
                                           ngx_http_ecodoc_redis_setup, "OK");
        n++;
    }

    for (i = 0; i < NGX_HTTP_ECODOC_SCRIPT_N; i++) {
        argv[0] = "SCRIPT";
        argvlen[0] = 6;
        argv[1] = "LOAD";
        argvlen[1] = 4;
        argv[2] = ngx_http_ecodoc_scripts[i];
        argvlen[2] = ngx_strlen(ngx_http_ecodoc_scripts[i]);
        rc |= ngx_http_ecodoc_link_command(link, 3, argv, argvlen,
                                           ngx_http_ecodoc_redis_setup,
                                           ngx_http_ecodoc_redis.sha[i]);
        n++;
    }

    if (rc != NGX_OK) {
        ngx_http_ecodoc_redis_drop(NGX_LOG_ALERT,
                                   "cannot queue the connection setup");
        return NGX_ERROR;
    }

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_COMMANDS
                          + NGX_HTTP_ECODOC_CMD_SETUP, n);

    return NGX_OK;
}


/*
 * The sentinels named the master.  moved: another than before, the link
 * to the old one goes (before the sentinel's node changes); else it is
 * connected to at once if it is not.
 */

void
ngx_http_ecodoc_redis_master(ngx_uint_t moved)
{
    if (ngx_http_ecodoc_redis.exiting) {
        return;
    }

    if (moved) {
        ngx_http_ecodoc_redis.moving = 1;
        ngx_http_ecodoc_redis_drop(NGX_LOG_NOTICE, "the master moved");
        ngx_http_ecodoc_redis.moving = 0;

        ngx_http_ecodoc_redis.backoff = NGX_HTTP_ECODOC_BACKOFF_MIN;
        ngx_http_ecodoc_redis.next_try = ngx_current_msec;
        return;
    }

    if (ngx_http_ecodoc_redis.link.peer.connection == NULL) {
        (void) ngx_http_ecodoc_redis_connect();
    }
}


/* closes the connection; every pending command's handler gets NULL */

static void
ngx_http_ecodoc_redis_drop(ngx_uint_t level, const char *why)
{
    ngx_http_ecodoc_link_close(&ngx_http_ecodoc_redis.link, level, why);
}


/* the server is not (or no more) the master: the sentinels are asked */

static void
ngx_http_ecodoc_redis_demoted(const char *why)
{
    ngx_http_ecodoc_redis.demoted = 1;
    ngx_http_ecodoc_redis_drop(NGX_LOG_WARN, why);
    ngx_http_ecodoc_redis.demoted = 0;
}


static void
ngx_http_ecodoc_redis_failed(void)
{
    ngx_uint_t  lost;

    /*
     * a connection that worked and then closed (a restart, an idle
     * timeout, a command timed out) is made again at once, to the same
     * master; failures to connect back off.  With sentinels, the master is
     * forgotten and they are asked again when it said it is not the
     * master, or could not be connected to and set up.
     */

    lost = ngx_http_ecodoc_redis.demoted || !ngx_http_ecodoc_redis.ready;

    if (ngx_http_ecodoc_redis.ready) {
        ngx_http_ecodoc_redis.ready = 0;
        ngx_http_ecodoc_redis.next_try = ngx_current_msec;

    } else {
        ngx_http_ecodoc_redis.next_try = ngx_current_msec
                                         + ngx_http_ecodoc_redis.backoff;

        ngx_http_ecodoc_redis.backoff =
                            ngx_min(ngx_http_ecodoc_redis.backoff * 2,
                                    NGX_HTTP_ECODOC_BACKOFF_MAX);
    }

    if (ngx_http_ecodoc_redis.conf->redis == NULL && lost
        && !ngx_http_ecodoc_redis.moving && !ngx_http_ecodoc_redis.exiting)
    {
        ngx_http_ecodoc_sentinel_lost();
    }
}


static void
ngx_http_ecodoc_redis_opened(ngx_http_ecodoc_link_t *link)
{
    ngx_log_error(NGX_LOG_INFO, ngx_http_ecodoc_redis.log, 0,
                  "ecodoc: connected to Redis %V%s", &link->node->name,
                  link->ssl ? " over TLS" : "");
}


static void
ngx_http_ecodoc_redis_closed(ngx_http_ecodoc_link_t *link)
{
    ngx_http_ecodoc_redis_failed();
}


/* AUTH, ROLE, SELECT and SCRIPT LOAD: anything but the expected drops */

static ngx_int_t
ngx_http_ecodoc_redis_setup(ngx_http_ecodoc_link_t *link, redisReply *reply,
    void *data)
{
    char        *expect = data;
    redisReply  *e;

    if (reply == NULL) {
        return NGX_OK;
    }

    e = reply;

    /* ROLE: an array, "master" first */

    if (expect == ngx_http_ecodoc_redis_role) {
        e = (reply->type == REDIS_REPLY_ARRAY && reply->elements)
            ? reply->element[0] : NULL;
    }

    if (e
        && (e->type == REDIS_REPLY_STATUS || e->type == REDIS_REPLY_STRING)
        && e->len == strlen(expect)
        && ngx_strncmp(e->str, expect, e->len) == 0)
    {
        ngx_http_ecodoc_redis.answered = ngx_current_msec;

        if (expect == ngx_http_ecodoc_redis_role) {
            ngx_http_ecodoc_link_unfence(link);
        }

        if (expect == ngx_http_ecodoc_redis.sha[NGX_HTTP_ECODOC_SCRIPT_N - 1])
        {
            ngx_http_ecodoc_redis.backoff = NGX_HTTP_ECODOC_BACKOFF_MIN;
            ngx_http_ecodoc_redis.ready = 1;

            if (ngx_http_ecodoc_redis.was_ready) {
                ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_RECONNECTS, 1);
            }

            ngx_http_ecodoc_redis.was_ready = 1;
        }

        return NGX_OK;
    }

    if (expect == ngx_http_ecodoc_redis_role) {
        ngx_log_error(NGX_LOG_WARN, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: Redis %V is not the master (ROLE: %*s)",
                      &link->node->name,
                      (size_t) (e && e->type == REDIS_REPLY_STRING
                                ? e->len : 0),
                      e ? e->str : "");

        ngx_http_ecodoc_redis_demoted("not the master");
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ALERT, ngx_http_ecodoc_redis.log, 0,
                  "ecodoc: Redis refused the connection setup: %*s",
                  (size_t) (reply->type == REDIS_REPLY_ERROR ? reply->len : 0),
                  reply->str);

    ngx_http_ecodoc_redis_drop(NGX_LOG_WARN, "setup refused");

    return NGX_OK;
}


/*
 * A request's reply.  With WAIT, the script's reply is kept until WAIT's
 * arrives: the handler gets it only when enough replicas have the write.
 */

static ngx_int_t
ngx_http_ecodoc_redis_reply(ngx_http_ecodoc_link_t *link, redisReply *reply,
    void *data)
{
    ngx_http_ecodoc_redis_cmd_t  *cmd = data;

    if (cmd->wait == 1) {
        cmd->wait = 2;
        cmd->held = reply;
        return NGX_DONE;
    }

    if (cmd->wait == 2) {
        reply = ngx_http_ecodoc_redis_waited(cmd, reply);

        ngx_http_ecodoc_redis_deliver(cmd, reply);

        if (reply) {
            freeReplyObject(reply);
        }

        return NGX_OK;
    }

    ngx_http_ecodoc_redis_deliver(cmd, reply);

    return NGX_OK;
}


/*
 * the script's reply if WAIT answered enough replicas, else NULL; when
 * WAIT answered fewer, the script ran all the same: its verdict is left in
 * ctx->unconfirmed, for the handler to undo what it did
 */

static redisReply *
ngx_http_ecodoc_redis_waited(ngx_http_ecodoc_redis_cmd_t *cmd,
    redisReply *wait)
{
    redisReply  *reply;

    reply = cmd->held;
    cmd->held = NULL;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return reply;
    }

    if (wait && wait->type == REDIS_REPLY_INTEGER
        && wait->integer >= (long long) ngx_http_ecodoc_redis.conf
                                                        ->wait_replicas)
    {
        return reply;
    }

    if (wait && wait->type == REDIS_REPLY_INTEGER) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: a security write reached %L of %ui replicas "
                      "within %M ms (WAIT): not acted on, fail closed",
                      wait->integer,
                      ngx_http_ecodoc_redis.conf->wait_replicas,
                      ngx_http_ecodoc_redis.conf->wait_timeout);

        if (cmd->request) {
            (void) ngx_http_ecodoc_reply_verdict(NULL, reply,
                                                 &cmd->ctx->unconfirmed,
                                                 NULL, 0);
        }

    } else {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_redis.log, 0,
                      "ecodoc: a security write is not known to have reached "
                      "%ui replicas (WAIT: %*s): not acted on, fail closed",
                      ngx_http_ecodoc_redis.conf->wait_replicas,
                      (size_t) (wait && wait->type == REDIS_REPLY_ERROR
                                ? wait->len : sizeof("no answer") - 1),
                      wait && wait->type == REDIS_REPLY_ERROR
                      ? wait->str : "no answer");
    }

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_ERRORS
                          + NGX_HTTP_ECODOC_ERR_REPLY, 1);

    freeReplyObject(reply);

    return NULL;
}


static void
ngx_http_ecodoc_redis_deliver(ngx_http_ecodoc_redis_cmd_t *cmd,
    redisReply *reply)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *req;

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

        /*
         * every error is a failure to the handler (NULL): NOREPLICAS, a
         * write the master refused for want of replicas, above all; a
         * master demoted to a replica is left
         */

        if (ngx_http_ecodoc_redis_error(reply, "NOSCRIPT")) {
            ngx_http_ecodoc_redis_drop(NGX_LOG_WARN, "scripts were flushed");

        } else if (ngx_http_ecodoc_redis_error(reply, "READONLY")
                   || ngx_http_ecodoc_redis_error(reply, "MASTERDOWN"))
        {
            ngx_http_ecodoc_redis_demoted("not the master");
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


/*
 * the error's code: "CODE message", or in a script's error of Redis 6
 * "ERR Error running script ...: -CODE message"
 */

static ngx_uint_t
ngx_http_ecodoc_redis_error(redisReply *reply, const char *code)
{
    u_char  *p, *last;
    size_t   len;

    len = ngx_strlen(code);
    p = (u_char *) reply->str;
    last = p + reply->len;

    if ((size_t) (last - p) >= len && ngx_strncmp(p, code, len) == 0
        && ((size_t) (last - p) == len || p[len] == ' '))
    {
        return 1;
    }

    for ( /* void */ ; p + len < last; p++) {
        if (*p == '-' && ngx_strncmp(p + 1, code, len) == 0
            && (p + 1 + len == last || p[1 + len] == ' '))
        {
            return 1;
        }
    }

    return 0;
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

    ngx_http_ecodoc_redis_drop(NGX_LOG_WARN, "timeout");

    ngx_http_run_posted_requests(c);
}
