/*
 * Redis Sentinel in each worker: asks the sentinels in turn who the master
 * is, and keeps one subscribed to +switch-master to follow a failover.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


#define NGX_HTTP_ECODOC_SENTINEL_PAUSE   200   /* ms between two questions */
#define NGX_HTTP_ECODOC_SENTINEL_ROUND   1000  /* after all failed, doubled */
#define NGX_HTTP_ECODOC_SENTINEL_MAX     8000  /* ... up to this */
#define NGX_HTTP_ECODOC_SENTINEL_KEEP    3000  /* a PING on the subscription */

#define NGX_HTTP_ECODOC_SENTINEL_AUTH    ((void *) 1)
#define NGX_HTTP_ECODOC_SENTINEL_ASK     ((void *) 2)


typedef struct {
    ngx_http_ecodoc_main_conf_t   *conf;
    ngx_log_t                     *log;

    ngx_http_ecodoc_link_t         query;     /* get-master-addr-by-name */
    ngx_uint_t                     next;      /* the sentinel asked next */
    ngx_uint_t                     failed;    /* in a row */
    ngx_msec_t                     asked;     /* when */
    ngx_msec_t                     round;     /* the pause after a round */
    ngx_event_t                    ask;
    ngx_event_t                    answer;    /* the question's timeout */

    ngx_http_ecodoc_link_t         sub;       /* SUBSCRIBE +switch-master */
    ngx_uint_t                     sub_next;
    ngx_msec_t                     sub_pause; /* before the next try */
    ngx_event_t                    resub;
    ngx_event_t                    keep;      /* PING, and its timeout */

    ngx_http_ecodoc_node_t         master;
    ngx_sockaddr_t                 master_sa;
    u_char                         master_name[NGX_SOCKADDR_STRLEN + 1];
    unsigned                       known:1;
    unsigned                       pinged:1;  /* the sub link owes a reply */
    unsigned                       exiting:1;
} ngx_http_ecodoc_sentinel_t;


static void ngx_http_ecodoc_sentinel_discover(void);
static void ngx_http_ecodoc_sentinel_ask(ngx_event_t *ev);
static ngx_int_t ngx_http_ecodoc_sentinel_queue(ngx_http_ecodoc_link_t *link,
    const char *cmd, ngx_str_t *arg1, ngx_str_t *arg2);
static ngx_int_t ngx_http_ecodoc_sentinel_answer(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data);
static void ngx_http_ecodoc_sentinel_unanswered(ngx_http_ecodoc_link_t *link);
static void ngx_http_ecodoc_sentinel_silent(ngx_event_t *ev);
static void ngx_http_ecodoc_sentinel_subscribe(ngx_event_t *ev);
static ngx_int_t ngx_http_ecodoc_sentinel_subscribed(
    ngx_http_ecodoc_link_t *link, redisReply *reply, void *data);
static ngx_int_t ngx_http_ecodoc_sentinel_message(
    ngx_http_ecodoc_link_t *link, redisReply *reply, void *data);
static void ngx_http_ecodoc_sentinel_heard(void);
static void ngx_http_ecodoc_sentinel_keep(ngx_event_t *ev);
static void ngx_http_ecodoc_sentinel_owed(ngx_int_t rc);
static void ngx_http_ecodoc_sentinel_unsubscribed(
    ngx_http_ecodoc_link_t *link);
static void ngx_http_ecodoc_sentinel_event(ngx_event_t *ev,
    ngx_event_handler_pt handler, ngx_log_t *log);
static ngx_int_t ngx_http_ecodoc_sentinel_set(u_char *ip, size_t iplen,
    u_char *port, size_t portlen, const char *from);


static ngx_http_ecodoc_sentinel_t  ngx_http_ecodoc_sentinel;


ngx_int_t
ngx_http_ecodoc_sentinel_init(ngx_cycle_t *cycle)
{
    ngx_http_ecodoc_sentinel_t   *st;
    ngx_http_ecodoc_main_conf_t  *emcf;

    st = &ngx_http_ecodoc_sentinel;

    ngx_memzero(st, sizeof(ngx_http_ecodoc_sentinel_t));

    emcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_ecodoc_module);

    if (emcf->sentinels == NULL) {
        return NGX_OK;
    }

    st->conf = emcf;
    st->log = cycle->log;

    st->query.what = "sentinel";
    st->query.ssl = emcf->ssl;
    st->query.timeout = emcf->redis_timeout;
    st->query.closed = ngx_http_ecodoc_sentinel_unanswered;

    st->sub = st->query;
    st->sub.push = ngx_http_ecodoc_sentinel_message;
    st->sub.closed = ngx_http_ecodoc_sentinel_unsubscribed;

    /* over TLS, the master's certificate has ecodoc_redis_tls_name */

    st->master.sockaddr = &st->master_sa.sockaddr;
    st->master.name.data = st->master_name;
    st->master.tls_name = emcf->tls_name;

    st->round = NGX_HTTP_ECODOC_SENTINEL_ROUND;
    st->sub_pause = NGX_HTTP_ECODOC_SENTINEL_PAUSE;

    ngx_http_ecodoc_sentinel_event(&st->ask, ngx_http_ecodoc_sentinel_ask,
                                   cycle->log);
    ngx_http_ecodoc_sentinel_event(&st->answer,
                                   ngx_http_ecodoc_sentinel_silent,
                                   cycle->log);
    ngx_http_ecodoc_sentinel_event(&st->resub,
                                   ngx_http_ecodoc_sentinel_subscribe,
                                   cycle->log);
    ngx_http_ecodoc_sentinel_event(&st->keep, ngx_http_ecodoc_sentinel_keep,
                                   cycle->log);

    /* each worker asks and subscribes as it starts, not at its first user */

    ngx_add_timer(&st->ask, 1);
    ngx_add_timer(&st->resub, 1);

    return NGX_OK;
}


void
ngx_http_ecodoc_sentinel_exit(void)
{
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (st->conf == NULL) {
        return;
    }

    st->exiting = 1;

    if (st->ask.timer_set) {
        ngx_del_timer(&st->ask);
    }

    if (st->answer.timer_set) {
        ngx_del_timer(&st->answer);
    }

    if (st->resub.timer_set) {
        ngx_del_timer(&st->resub);
    }

    if (st->keep.timer_set) {
        ngx_del_timer(&st->keep);
    }

    ngx_http_ecodoc_link_free(&st->query);
    ngx_http_ecodoc_link_free(&st->sub);
}


/* the master, or NULL while the sentinels are asked */

ngx_http_ecodoc_node_t *
ngx_http_ecodoc_sentinel_master(void)
{
    if (ngx_http_ecodoc_sentinel.known) {
        return &ngx_http_ecodoc_sentinel.master;
    }

    ngx_http_ecodoc_sentinel_discover();

    return NULL;
}


/* the master failed us (gone, timed out, demoted): ask again */

void
ngx_http_ecodoc_sentinel_lost(void)
{
    ngx_http_ecodoc_sentinel.known = 0;

    ngx_http_ecodoc_sentinel_discover();
}


/* asks unless a question is under way; not more often than PAUSE */

static void
ngx_http_ecodoc_sentinel_discover(void)
{
    ngx_msec_t                   since;
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (st->exiting || st->query.peer.connection || st->ask.timer_set) {
        return;
    }

    since = ngx_current_msec - st->asked;

    if (since < NGX_HTTP_ECODOC_SENTINEL_PAUSE) {
        ngx_add_timer(&st->ask, NGX_HTTP_ECODOC_SENTINEL_PAUSE - since);
        return;
    }

    ngx_http_ecodoc_sentinel_ask(&st->ask);
}


static void
ngx_http_ecodoc_sentinel_ask(ngx_event_t *ev)
{
    ngx_http_ecodoc_node_t       *node;
    ngx_http_ecodoc_sentinel_t   *st;
    ngx_http_ecodoc_main_conf_t  *emcf;

    st = &ngx_http_ecodoc_sentinel;
    emcf = st->conf;

    if (st->exiting || st->query.peer.connection) {
        return;
    }

    node = emcf->sentinels->elts;
    node = &node[st->next];
    st->next = (st->next + 1) % emcf->sentinels->nelts;
    st->asked = ngx_current_msec;

    if (ngx_http_ecodoc_link_open(&st->query, node, st->log) != NGX_OK) {
        ngx_http_ecodoc_sentinel_unanswered(&st->query);
        return;
    }

    if (ngx_http_ecodoc_sentinel_queue(&st->query, "SENTINEL",
                                       NULL, &emcf->sentinel_name)
        != NGX_OK)
    {
        ngx_http_ecodoc_link_close(&st->query, NGX_LOG_ALERT,
                                   "cannot queue a command");
        return;
    }

    /* a sentinel that accepts and never answers is left for the next */

    ngx_add_timer(&st->answer, emcf->redis_timeout);
}


/* AUTH if the sentinels want a password, then cmd arg1 arg2 */

static ngx_int_t
ngx_http_ecodoc_sentinel_queue(ngx_http_ecodoc_link_t *link, const char *cmd,
    ngx_str_t *arg1, ngx_str_t *arg2)
{
    int                           argc;
    const char                   *argv[3];
    size_t                        argvlen[3];
    ngx_http_ecodoc_link_pt       handler;
    ngx_http_ecodoc_main_conf_t  *emcf;

    emcf = ngx_http_ecodoc_sentinel.conf;
    handler = (link == &ngx_http_ecodoc_sentinel.query)
              ? ngx_http_ecodoc_sentinel_answer
              : ngx_http_ecodoc_sentinel_subscribed;

    if (emcf->sentinel_password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) emcf->sentinel_password.data;
        argvlen[1] = emcf->sentinel_password.len;

        if (ngx_http_ecodoc_link_command(link, 2, argv, argvlen, handler,
                                         NGX_HTTP_ECODOC_SENTINEL_AUTH)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    argc = 0;
    argv[argc] = cmd;
    argvlen[argc++] = ngx_strlen(cmd);

    if (arg1 == NULL) {
        argv[argc] = "get-master-addr-by-name";
        argvlen[argc++] = sizeof("get-master-addr-by-name") - 1;

    } else {
        argv[argc] = (char *) arg1->data;
        argvlen[argc++] = arg1->len;
    }

    if (arg2) {
        argv[argc] = (char *) arg2->data;
        argvlen[argc++] = arg2->len;
    }

    return ngx_http_ecodoc_link_command(link, argc, argv, argvlen, handler,
                                        NGX_HTTP_ECODOC_SENTINEL_ASK);
}


static ngx_int_t
ngx_http_ecodoc_sentinel_answer(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data)
{
    redisReply                  *ip, *port;
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (reply == NULL) {
        return NGX_OK;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, st->log, 0,
                      "ecodoc: sentinel %V refused %s: %*s",
                      &link->node->name,
                      data == NGX_HTTP_ECODOC_SENTINEL_AUTH
                      ? "AUTH" : "SENTINEL get-master-addr-by-name",
                      (size_t) reply->len, reply->str);
        ngx_http_ecodoc_link_close(link, 0, NULL);
        return NGX_OK;
    }

    if (data == NGX_HTTP_ECODOC_SENTINEL_AUTH) {
        return NGX_OK;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, st->log, 0,
                      "ecodoc: sentinel %V does not know the master \"%V\"",
                      &link->node->name, &st->conf->sentinel_name);
        ngx_http_ecodoc_link_close(link, 0, NULL);
        return NGX_OK;
    }

    ip = reply->element[0];
    port = reply->element[1];

    if (ngx_http_ecodoc_sentinel_set((u_char *) ip->str, ip->len,
                                     (u_char *) port->str, port->len,
                                     "asked")
        != NGX_OK)
    {
        ngx_http_ecodoc_link_close(link, 0, NULL);
        return NGX_OK;
    }

    /* answered: the link goes quietly, the master is connected to */

    if (st->answer.timer_set) {
        ngx_del_timer(&st->answer);
    }

    st->failed = 0;
    st->round = NGX_HTTP_ECODOC_SENTINEL_ROUND;
    link->closed = NULL;
    ngx_http_ecodoc_link_close(link, 0, NULL);
    link->closed = ngx_http_ecodoc_sentinel_unanswered;

    return NGX_OK;
}


/* no answer from that sentinel: the next one, at once or after a pause */

static void
ngx_http_ecodoc_sentinel_unanswered(ngx_http_ecodoc_link_t *link)
{
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (st->answer.timer_set) {
        ngx_del_timer(&st->answer);
    }

    if (st->exiting || st->ask.timer_set) {
        return;
    }

    /* a round with no answer: the next one later each time */

    if (++st->failed % st->conf->sentinels->nelts == 0) {
        ngx_log_error(NGX_LOG_ERR, st->log, 0,
                      "ecodoc: no sentinel named the master \"%V\": "
                      "asking again in %M ms",
                      &st->conf->sentinel_name, st->round);
        ngx_add_timer(&st->ask, st->round);
        st->round = ngx_min(2 * st->round, NGX_HTTP_ECODOC_SENTINEL_MAX);
        return;
    }

    ngx_add_timer(&st->ask, 1);
}


/* the question's timer: the sentinel accepted and said nothing in time */

static void
ngx_http_ecodoc_sentinel_silent(ngx_event_t *ev)
{
    ngx_http_ecodoc_link_close(&ngx_http_ecodoc_sentinel.query, NGX_LOG_ERR,
                               "no answer in time");
}


static void
ngx_http_ecodoc_sentinel_subscribe(ngx_event_t *ev)
{
    ngx_str_t                     channel;
    ngx_http_ecodoc_node_t       *node;
    ngx_http_ecodoc_sentinel_t   *st;

    st = &ngx_http_ecodoc_sentinel;

    if (st->exiting || st->sub.peer.connection) {
        return;
    }

    node = st->conf->sentinels->elts;
    node = &node[st->sub_next];
    st->sub_next = (st->sub_next + 1) % st->conf->sentinels->nelts;

    if (ngx_http_ecodoc_link_open(&st->sub, node, st->log) != NGX_OK) {
        ngx_http_ecodoc_sentinel_unsubscribed(&st->sub);
        return;
    }

    ngx_str_set(&channel, "+switch-master");

    ngx_http_ecodoc_sentinel_owed(
        ngx_http_ecodoc_sentinel_queue(&st->sub, "SUBSCRIBE", &channel, NULL));
}


static ngx_int_t
ngx_http_ecodoc_sentinel_subscribed(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data)
{
    if (reply == NULL) {
        return NGX_OK;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_ecodoc_sentinel.log, 0,
                      "ecodoc: sentinel %V refused %s: %*s",
                      &link->node->name,
                      data == NGX_HTTP_ECODOC_SENTINEL_AUTH
                      ? "AUTH" : "SUBSCRIBE",
                      (size_t) reply->len, reply->str);
        ngx_http_ecodoc_link_close(link, 0, NULL);
        return NGX_OK;
    }

    if (data == NGX_HTTP_ECODOC_SENTINEL_ASK) {
        ngx_log_error(NGX_LOG_INFO, ngx_http_ecodoc_sentinel.log, 0,
                      "ecodoc: subscribed to +switch-master on sentinel %V",
                      &link->node->name);

        ngx_http_ecodoc_sentinel.sub_pause = NGX_HTTP_ECODOC_SENTINEL_PAUSE;
        ngx_http_ecodoc_sentinel_heard();

        /* a switch before the subscription went unheard: ask */

        ngx_http_ecodoc_sentinel_discover();
    }

    return NGX_OK;
}


/*
 * "+switch-master": "NAME old-ip old-port new-ip new-port"; also the
 * handler of PING, whose reply may come after a message that it takes
 */

static ngx_int_t
ngx_http_ecodoc_sentinel_message(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data)
{
    u_char                      *p, *last, *f[5];
    size_t                       len[5];
    ngx_uint_t                   i;
    redisReply                  *msg;
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (reply == NULL) {
        return NGX_OK;
    }

    ngx_http_ecodoc_sentinel_heard();

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[0]->len != sizeof("message") - 1
        || ngx_strncmp(reply->element[0]->str, "message", 7) != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return NGX_OK;
    }

    msg = reply->element[2];
    p = (u_char *) msg->str;
    last = p + msg->len;

    for (i = 0; i < 5; i++) {
        f[i] = p;
        while (p < last && *p != ' ') {
            p++;
        }

        len[i] = p - f[i];

        if (len[i] == 0 || (i < 4 && p == last)) {
            return NGX_OK;
        }

        p++;
    }

    if (len[0] != st->conf->sentinel_name.len
        || ngx_strncmp(f[0], st->conf->sentinel_name.data, len[0]) != 0)
    {
        return NGX_OK;
    }

    (void) ngx_http_ecodoc_sentinel_set(f[3], len[3], f[4], len[4],
                                        "+switch-master");

    return NGX_OK;
}


/* the subscription is alive: the next PING in KEEP */

static void
ngx_http_ecodoc_sentinel_heard(void)
{
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    st->pinged = 0;

    if (!st->exiting) {
        ngx_add_timer(&st->keep, NGX_HTTP_ECODOC_SENTINEL_KEEP);
    }
}


/*
 * A subscription says nothing while no switch happens: a PING every KEEP
 * tells a live one from a sentinel gone silent (stopped, a lost route),
 * which is left for the next
 */

static void
ngx_http_ecodoc_sentinel_keep(ngx_event_t *ev)
{
    const char                  *argv[1];
    size_t                       argvlen[1];
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (st->exiting || st->sub.peer.connection == NULL) {
        return;
    }

    if (st->pinged) {
        ngx_http_ecodoc_link_close(&st->sub, NGX_LOG_ERR,
                                   "no answer in time on +switch-master");
        return;
    }

    argv[0] = "PING";
    argvlen[0] = 4;

    ngx_http_ecodoc_sentinel_owed(
        ngx_http_ecodoc_link_command(&st->sub, 1, argv, argvlen,
                                     ngx_http_ecodoc_sentinel_message, NULL));
}


/*
 * A command was queued on the subscription (rc: how that went): SUBSCRIBE
 * and PING alike are answered within ecodoc_redis_timeout, or the
 * subscription is left
 */

static void
ngx_http_ecodoc_sentinel_owed(ngx_int_t rc)
{
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (rc != NGX_OK) {
        ngx_http_ecodoc_link_close(&st->sub, NGX_LOG_ALERT,
                                   "cannot queue a command");
        return;
    }

    st->pinged = 1;
    ngx_add_timer(&st->keep, st->conf->redis_timeout);
}


/* no subscription: the next sentinel, later each time in a row */

static void
ngx_http_ecodoc_sentinel_unsubscribed(ngx_http_ecodoc_link_t *link)
{
    ngx_http_ecodoc_sentinel_t  *st;

    st = &ngx_http_ecodoc_sentinel;

    if (st->keep.timer_set) {
        ngx_del_timer(&st->keep);
    }

    st->pinged = 0;

    if (st->exiting || st->resub.timer_set) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, st->log, 0,
                  "ecodoc: not subscribed to +switch-master: trying the "
                  "next sentinel in %M ms", st->sub_pause);

    ngx_add_timer(&st->resub, st->sub_pause);

    st->sub_pause = ngx_min(2 * st->sub_pause, NGX_HTTP_ECODOC_SENTINEL_MAX);
}


/*
 * The timers must not hold a worker that is shutting down; their data is
 * read as a connection by the event debug log (ngx_event_ident)
 */

static void
ngx_http_ecodoc_sentinel_event(ngx_event_t *ev, ngx_event_handler_pt handler,
    ngx_log_t *log)
{
    ev->handler = handler;
    ev->data = &ngx_http_ecodoc_sentinel;
    ev->log = log;
    ev->cancelable = 1;
}


/*
 * A sentinel named the master: a new one is logged and the Redis client
 * moves to it; the same one is connected to if it is not yet
 */

static ngx_int_t
ngx_http_ecodoc_sentinel_set(u_char *ip, size_t iplen, u_char *port,
    size_t portlen, const char *from)
{
    ngx_int_t                    n;
    ngx_addr_t                   addr;
    ngx_uint_t                   moved;
    ngx_pool_t                  *pool;
    ngx_http_ecodoc_sentinel_t  *st;
    u_char                       name[NGX_SOCKADDR_STRLEN + 1];

    st = &ngx_http_ecodoc_sentinel;

    n = ngx_atoi(port, portlen);

    pool = ngx_create_pool(512, st->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    if (n < 1 || n > 65535 || iplen > NGX_SOCKADDR_STRLEN
        || ngx_parse_addr(pool, &addr, ip, iplen) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, st->log, 0,
                      "ecodoc: a sentinel named an invalid master address "
                      "\"%*s:%*s\"", iplen, ip, portlen, port);
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_inet_set_port(addr.sockaddr, (in_port_t) n);

    n = ngx_sock_ntop(addr.sockaddr, addr.socklen, name, NGX_SOCKADDR_STRLEN,
                      1);

    /* another address than the last one named (known or lost since) */

    moved = (size_t) n != st->master.name.len
            || ngx_strncmp(name, st->master.name.data, n) != 0;

    if (moved) {
        /* the old link goes while its node still names the old master */

        st->known = 0;
        ngx_http_ecodoc_redis_master(1);

        ngx_memcpy(&st->master_sa, addr.sockaddr, addr.socklen);
        st->master.socklen = addr.socklen;
        ngx_memcpy(st->master_name, name, n);
        st->master.name.len = n;

        ngx_log_error(NGX_LOG_NOTICE, st->log, 0,
                      "ecodoc: redis master of \"%V\" is now %V (%s)",
                      &st->conf->sentinel_name, &st->master.name, from);
    }

    ngx_destroy_pool(pool);

    st->known = 1;

    ngx_http_ecodoc_redis_master(0);

    return NGX_OK;
}
