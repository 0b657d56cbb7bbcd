/*
 * ecodoc-ca: talking to Redis: the address or the master the sentinels
 * name (ROLE-checked), AUTH and SELECT, checked replies, one retry after
 * a failover when safe, WAIT for replicas, key names.  The connection
 * itself (socket, TLS, parsing) is ecodoc_ca_redis_conn.c's.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_redis.h"
#include "ecodoc_ca_redis_conn.h"


#define ECODOC_CA_REDIS_PORT     6379
#define ECODOC_CA_SENTINEL_PORT  26379
#define ECODOC_CA_FIND_TIMEOUT   5000       /* ms: finding the master */
#define ECODOC_CA_FIND_PAUSE     200        /* ms between two rounds */
#define ECODOC_CA_SENTINELS_MAX  16
#define ECODOC_CA_WAIT_MS        1000       /* --redis-wait N: its MS */
#define ECODOC_CA_MSG_LEN        1024       /* where and why */
#define ECODOC_CA_SCAN_COUNT     "1000"


static int ecodoc_ca_redis_check(ecodoc_ca_t *ca, ecodoc_ca_redis_t *rd);


typedef enum {
    ECODOC_CA_CMD_WRITE = 0,                /* never sent twice */
    ECODOC_CA_CMD_READ,                     /* changes nothing */
    ECODOC_CA_CMD_WAIT                      /* means something only on the
                                               connection of the write */
} ecodoc_ca_cmd_e;


typedef struct {
    char             *cmd;                  /* in the protocol */
    size_t            len;
    ecodoc_ca_cmd_e   kind;
} ecodoc_ca_cmd_t;


struct ecodoc_ca_redis_s {
    ecodoc_ca_addr_t   addr;                /* --redis, or the master */
    char               where[ECODOC_CA_MSG_LEN];   /* for messages */

    char               master[128];         /* the sentinels' name for it */
    ecodoc_ca_addr_t   sentinel[ECODOC_CA_SENTINELS_MAX];
    int                nsentinels;

    long long          wait_n;
    long long          wait_ms;
    int                unconfirmed;         /* a WAIT fell short */

    SSL_CTX           *ssl_ctx;
    ecodoc_ca_conn_t   conn;

    ecodoc_ca_cmd_t   *cmd;                 /* awaiting replies */
    size_t             head;                /* the next reply's command */
    size_t             sent;                /* the first not yet sent */
    size_t             n;
    size_t             size;
};


/* NAME@HOST:PORT[,HOST:PORT...] */

static int
ecodoc_ca_parse_sentinels(ecodoc_ca_redis_t *rd, const char *s)
{
    size_t       len;
    const char  *at, *p, *comma;

    at = strchr(s, '@');

    if (at == NULL || at == s || (size_t) (at - s) >= sizeof(rd->master)
        || at[1] == '\0')
    {
        return -1;
    }

    memcpy(rd->master, s, at - s);
    rd->master[at - s] = '\0';

    for (p = at + 1; ; p = comma + 1) {
        comma = strchr(p, ',');
        len = (comma != NULL) ? (size_t) (comma - p) : strlen(p);

        if (rd->nsentinels == ECODOC_CA_SENTINELS_MAX
            || ecodoc_ca_parse_addr(p, len, ECODOC_CA_SENTINEL_PORT, 1,
                                    &rd->sentinel[rd->nsentinels]) != 0)
        {
            return -1;
        }

        rd->nsentinels++;

        if (comma == NULL) {
            return 0;
        }
    }
}


int
ecodoc_ca_redis_config(ecodoc_ca_t *ca)
{
    int  rc;

    ca->redis = calloc(1, sizeof(ecodoc_ca_redis_t));
    if (ca->redis == NULL) {
        ecodoc_ca_error("out of memory");
        return ECODOC_CA_ERROR;
    }

    ca->redis->conn.fd = -1;

    rc = ecodoc_ca_redis_check(ca, ca->redis);

    if (rc != ECODOC_CA_OK) {
        ecodoc_ca_redis_free(ca);
    }

    return rc;
}


/* ecodoc_ca_redis_config()'s checks, into rd */

static int
ecodoc_ca_redis_check(ecodoc_ca_t *ca, ecodoc_ca_redis_t *rd)
{
    char         n[24];
    size_t       len;
    const char  *colon;

    if (ca->sentinel != NULL) {

        if (ca->redis_addr != NULL) {
            ecodoc_ca_usage_error("give --redis or --redis-sentinel "
                                  "(ECODOC_REDIS or ECODOC_REDIS_SENTINEL), "
                                  "not both");
            return ECODOC_CA_USAGE;
        }

        if (ecodoc_ca_parse_sentinels(rd, ca->sentinel) != 0) {
            ecodoc_ca_usage_error("invalid --redis-sentinel \"%s\": use "
                                  "NAME@HOST:PORT[,HOST:PORT...] (at most "
                                  "%d sentinels)", ca->sentinel,
                                  ECODOC_CA_SENTINELS_MAX);
            return ECODOC_CA_USAGE;
        }

        /* a sentinel means replicas: a write is done once one has it */
        rd->wait_n = 1;
        rd->wait_ms = ECODOC_CA_WAIT_MS;
        snprintf(rd->where, sizeof(rd->where), "(master %s)", rd->master);

    } else {
        if (ca->redis_addr == NULL) {
            ca->redis_addr = ECODOC_CA_DEFAULT_REDIS;
        }

        if (ecodoc_ca_parse_addr(ca->redis_addr, strlen(ca->redis_addr),
                                 ECODOC_CA_REDIS_PORT, 1, &rd->addr) != 0)
        {
            ecodoc_ca_usage_error("invalid Redis address \"%s\": use "
                                  "host:port, [IPv6]:port or unix:/path",
                                  ca->redis_addr);
            return ECODOC_CA_USAGE;
        }

        if (ca->tls_ca != NULL && rd->addr.unix_socket) {
            ecodoc_ca_usage_error("--redis-tls-ca: Redis speaks TLS over "
                                  "TCP only, not on \"%s\"", ca->redis_addr);
            return ECODOC_CA_USAGE;
        }

        ecodoc_ca_addr_text(&rd->addr, rd->where, sizeof(rd->where));
    }

    if (ca->wait != NULL) {
        colon = strchr(ca->wait, ':');
        len = (colon != NULL) ? (size_t) (colon - ca->wait)
                              : strlen(ca->wait);
        rd->wait_ms = ECODOC_CA_WAIT_MS;

        if (len >= sizeof(n)) {
            len = 0;
        }

        memcpy(n, ca->wait, len);
        n[len] = '\0';

        if (ecodoc_ca_number(n, 0, 64, &rd->wait_n) != 0
            || (colon != NULL
                && ecodoc_ca_number(colon + 1, 1, 60000, &rd->wait_ms) != 0))
        {
            ecodoc_ca_usage_error("invalid --redis-wait \"%s\": use N[:MS], "
                                  "N replicas (0..64, 0 = off) within MS "
                                  "milliseconds (1..60000)", ca->wait);
            return ECODOC_CA_USAGE;
        }
    }

    if ((ca->tls_cert != NULL) != (ca->tls_key != NULL)) {
        ecodoc_ca_usage_error("give --redis-tls-cert and --redis-tls-key "
                              "together");
        return ECODOC_CA_USAGE;
    }

    if (ca->tls_ca == NULL
        && (ca->tls_cert != NULL || ca->tls_name != NULL))
    {
        ecodoc_ca_usage_error("--redis-tls-cert, --redis-tls-key and "
                              "--redis-tls-name need --redis-tls-ca");
        return ECODOC_CA_USAGE;
    }

    return ECODOC_CA_OK;
}


/*
 * The connection to the master at a: AUTH, with sentinels the ROLE that
 * proves it is the master, SELECT; 0 or -1 (rd->conn.err), closed
 */

static int
ecodoc_ca_master_open(ecodoc_ca_t *ca, const ecodoc_ca_addr_t *a,
    long long deadline)
{
    char                db[24];
    redisReply         *r;
    const char         *argv[2];
    ecodoc_ca_conn_t   *c;
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;
    c = &rd->conn;

    if (ecodoc_ca_conn_open(c, a, rd->ssl_ctx, ca->tls_name, deadline) != 0) {
        return -1;
    }

    if (ecodoc_ca_conn_auth(c, ca->redis_password) != 0) {
        goto failed;
    }

    if (ca->sentinel != NULL) {
        argv[0] = "ROLE";

        r = ecodoc_ca_conn_call(c, REDIS_REPLY_ARRAY, 1, argv);
        if (r == NULL) {
            goto failed;
        }

        if (r->elements == 0 || r->element[0]->type != REDIS_REPLY_STRING
            || strcmp(r->element[0]->str, "master") != 0)
        {
            snprintf(c->err, sizeof(c->err), "not the master (ROLE: %s)",
                     r->elements > 0 && r->element[0]->type
                                        == REDIS_REPLY_STRING
                     ? r->element[0]->str : "?");
            freeReplyObject(r);
            goto failed;
        }

        freeReplyObject(r);
    }

    if (ca->db != 0) {
        snprintf(db, sizeof(db), "%ld", ca->db);
        argv[0] = "SELECT";
        argv[1] = db;

        r = ecodoc_ca_conn_call(c, REDIS_REPLY_STATUS, 2, argv);
        if (r == NULL) {
            goto failed;
        }

        freeReplyObject(r);
    }

    return 0;

failed:

    ecodoc_ca_conn_close(c);

    return -1;
}


/* asks a sentinel where the master is; 0 or -1 (err) */

static int
ecodoc_ca_ask_sentinel(ecodoc_ca_t *ca, const ecodoc_ca_addr_t *s,
    ecodoc_ca_addr_t *master, char *err, size_t size, long long deadline)
{
    int                rc;
    char               where[ECODOC_CA_ADDR_LEN];
    long long          port;
    redisReply        *r;
    const char        *argv[3];
    ecodoc_ca_conn_t   c;

    ecodoc_ca_addr_text(s, where, sizeof(where));

    if (ecodoc_ca_conn_open(&c, s, ca->redis->ssl_ctx, ca->tls_name,
                            deadline) != 0) {
        snprintf(err, size, "sentinel %s: %s", where, c.err);
        return -1;
    }

    rc = -1;
    r = NULL;

    if (ecodoc_ca_conn_auth(&c, ca->sentinel_password) != 0) {
        goto done;
    }

    argv[0] = "SENTINEL";
    argv[1] = "get-master-addr-by-name";
    argv[2] = ca->redis->master;

    r = ecodoc_ca_conn_call(&c, ECODOC_CA_REPLY_ANY, 3, argv);
    if (r == NULL) {
        goto done;
    }

    if (r->type == REDIS_REPLY_NIL) {
        snprintf(c.err, sizeof(c.err), "knows no master named \"%s\"",
                 ca->redis->master);
        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || r->element[0]->len == 0
        || r->element[0]->len >= sizeof(master->host)
        || ecodoc_ca_number(r->element[1]->str, 1, 65535, &port) != 0)
    {
        snprintf(c.err, sizeof(c.err), "unexpected reply to SENTINEL "
                 "get-master-addr-by-name");
        goto done;
    }

    master->unix_socket = 0;
    master->port = (int) port;
    memcpy(master->host, r->element[0]->str, r->element[0]->len + 1);

    rc = 0;

done:

    if (rc != 0) {
        snprintf(err, size, "sentinel %s: %s", where, c.err);
    }

    if (r != NULL) {
        freeReplyObject(r);
    }

    ecodoc_ca_conn_close(&c);

    return rc;
}


/*
 * Asks the sentinels in turn for the master, connects to it and checks
 * its ROLE, round after round until ECODOC_CA_FIND_TIMEOUT: during a
 * failover they may name the dead master, or a replica not promoted yet
 */

static int
ecodoc_ca_find_master(ecodoc_ca_t *ca)
{
    int                 i;
    char                err[ECODOC_CA_MSG_LEN], where[ECODOC_CA_ADDR_LEN];
    long long           end, deadline;
    struct timespec     pause;
    ecodoc_ca_addr_t    master;
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;
    end = ecodoc_ca_now() + ECODOC_CA_FIND_TIMEOUT;
    err[0] = '\0';

    for ( ;; ) {
        for (i = 0; i < rd->nsentinels && ecodoc_ca_now() < end; i++) {
            deadline = ecodoc_ca_now() + ECODOC_CA_REDIS_TIMEOUT;

            if (ecodoc_ca_ask_sentinel(ca, &rd->sentinel[i], &master, err,
                                       sizeof(err), deadline) != 0)
            {
                continue;
            }

            ecodoc_ca_addr_text(&master, where, sizeof(where));

            if (ecodoc_ca_master_open(ca, &master, deadline) == 0) {
                rd->addr = master;
                snprintf(rd->where, sizeof(rd->where), "%s (master %s)",
                         where, rd->master);
                return 0;
            }

            snprintf(err, sizeof(err), "master %s at %s: %s", rd->master,
                     where, rd->conn.err);
        }

        if (ecodoc_ca_now() + ECODOC_CA_FIND_PAUSE >= end) {
            break;
        }

        pause.tv_sec = 0;
        pause.tv_nsec = ECODOC_CA_FIND_PAUSE * 1000000L;
        nanosleep(&pause, NULL);
    }

    ecodoc_ca_error("no Redis master %s found through the sentinels within "
                    "%d s; the last error: %s", rd->master,
                    ECODOC_CA_FIND_TIMEOUT / 1000, err);

    return -1;
}


int
ecodoc_ca_redis_connect(ecodoc_ca_t *ca)
{
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;

    if (rd->conn.fd != -1) {
        return ECODOC_CA_OK;
    }

    if (ca->tls_ca != NULL && rd->ssl_ctx == NULL) {
        rd->ssl_ctx = ecodoc_ca_conn_tls_ctx(ca->tls_ca, ca->tls_cert,
                                             ca->tls_key);
        if (rd->ssl_ctx == NULL) {
            return ECODOC_CA_ERROR;
        }
    }

    if (ca->sentinel != NULL) {
        return ecodoc_ca_find_master(ca) == 0 ? ECODOC_CA_OK
                                              : ECODOC_CA_ERROR;
    }

    if (ecodoc_ca_master_open(ca, &rd->addr,
                              ecodoc_ca_now() + ECODOC_CA_REDIS_TIMEOUT)
        != 0)
    {
        ecodoc_ca_error("cannot connect to Redis at %s: %s", rd->where,
                        rd->conn.err);
        return ECODOC_CA_ERROR;
    }

    return ECODOC_CA_OK;
}


/* forgets the commands awaiting replies */

static void
ecodoc_ca_redis_drop(ecodoc_ca_redis_t *rd)
{
    size_t  i;

    for (i = rd->head; i < rd->n; i++) {
        free(rd->cmd[i].cmd);
    }

    rd->head = 0;
    rd->sent = 0;
    rd->n = 0;
}


void
ecodoc_ca_redis_close(ecodoc_ca_t *ca)
{
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;

    if (rd != NULL) {
        ecodoc_ca_conn_close(&rd->conn);
        ecodoc_ca_redis_drop(rd);

        free(rd->cmd);
        rd->cmd = NULL;
        rd->size = 0;

        SSL_CTX_free(rd->ssl_ctx);
        rd->ssl_ctx = NULL;
    }
}


void
ecodoc_ca_redis_free(ecodoc_ca_t *ca)
{
    ecodoc_ca_redis_close(ca);
    free(ca->redis);
    ca->redis = NULL;
}


int
ecodoc_ca_redis_up(ecodoc_ca_t *ca)
{
    return ca->redis->conn.fd != -1;
}


/* a command into the queue */

static int
ecodoc_ca_redis_queue(ecodoc_ca_t *ca, int argc, const char **argv,
    ecodoc_ca_cmd_e kind)
{
    int                 len;
    char               *cmd;
    ecodoc_ca_cmd_t    *p;
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;

    if (rd->n == rd->size) {
        p = realloc(rd->cmd, (rd->size * 2 + 16) * sizeof(ecodoc_ca_cmd_t));
        if (p == NULL) {
            ecodoc_ca_error("out of memory");
            return ECODOC_CA_ERROR;
        }

        rd->cmd = p;
        rd->size = rd->size * 2 + 16;
    }

    len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0) {
        ecodoc_ca_error("out of memory");
        return ECODOC_CA_ERROR;
    }

    rd->cmd[rd->n].cmd = cmd;
    rd->cmd[rd->n].len = (size_t) len;
    rd->cmd[rd->n].kind = kind;
    rd->n++;

    return ECODOC_CA_OK;
}


int
ecodoc_ca_redis_append(ecodoc_ca_t *ca, int argc, const char **argv)
{
    /* ecodoc-ca's only writes are scripts (ecodoc_ca_redis_script) */
    return ecodoc_ca_redis_queue(ca, argc, argv,
                                 strcmp(argv[0], "EVAL") == 0
                                 ? ECODOC_CA_CMD_WRITE : ECODOC_CA_CMD_READ);
}


/* sends what is not sent yet and reads the next reply; 0 or -1 */

static int
ecodoc_ca_redis_exchange(ecodoc_ca_redis_t *rd, redisReply **r)
{
    long long         deadline;
    ecodoc_ca_cmd_t  *c;

    deadline = ecodoc_ca_now() + ECODOC_CA_REDIS_TIMEOUT;

    for ( /* void */ ; rd->sent < rd->n; rd->sent++) {
        c = &rd->cmd[rd->sent];

        if (ecodoc_ca_conn_write(&rd->conn, c->cmd, c->len, deadline) != 0) {
            rd->sent++;       /* it may have been read in part */
            return -1;
        }
    }

    return ecodoc_ca_conn_read(&rd->conn, r, deadline);
}


/* 1 when a command sent on the connection lost may have changed data */

static int
ecodoc_ca_redis_unsure(ecodoc_ca_redis_t *rd)
{
    size_t  i;

    for (i = rd->head; i < rd->sent; i++) {
        if (rd->cmd[i].kind == ECODOC_CA_CMD_WRITE) {
            return 1;
        }
    }

    return 0;
}


redisReply *
ecodoc_ca_redis_reply(ecodoc_ca_t *ca, int type, const char *what)
{
    int                 retried, refused;
    char                err[ECODOC_CA_ERR_LEN];
    redisReply         *r;
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;

    if (rd->head == rd->n) {
        ecodoc_ca_error("no Redis %s sent", what);
        return NULL;
    }

    for (retried = 0; /* void */ ; retried = 1) {

        if (ecodoc_ca_redis_connect(ca) != ECODOC_CA_OK) {
            ecodoc_ca_redis_drop(rd);
            return NULL;
        }

        refused = 0;

        if (ecodoc_ca_redis_exchange(rd, &r) == 0) {

            /* a replica, or a master cut off from its own: nothing done */
            if (r->type != REDIS_REPLY_ERROR
                || (strncmp(r->str, "READONLY ", 9) != 0
                    && strncmp(r->str, "MASTERDOWN ", 11) != 0))
            {
                break;
            }

            refused = 1;
            snprintf(err, sizeof(err), "%.*s", (int) r->len, r->str);
            freeReplyObject(r);

        } else {
            snprintf(err, sizeof(err), "%s", rd->conn.err);
        }

        ecodoc_ca_conn_close(&rd->conn);

        if (!refused && ecodoc_ca_redis_unsure(rd)) {
            ecodoc_ca_error("Redis at %s: %s; whether the %s ran is "
                            "unknown: check (ecodoc-ca audit), then repeat "
                            "the command if need be", rd->where, err, what);
            ecodoc_ca_redis_drop(rd);
            return NULL;
        }

        if (retried || rd->cmd[rd->head].kind == ECODOC_CA_CMD_WAIT) {
            ecodoc_ca_error("Redis at %s: %s", rd->where, err);
            ecodoc_ca_redis_drop(rd);
            return NULL;
        }

        /* once more, to the master the sentinels name now */
        rd->sent = rd->head;
    }

    free(rd->cmd[rd->head].cmd);

    if (++rd->head == rd->n) {
        rd->head = 0;
        rd->sent = 0;
        rd->n = 0;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        ecodoc_ca_error("Redis %s failed: %.*s", what, (int) r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }

    if (type != ECODOC_CA_REPLY_ANY && r->type != type) {
        ecodoc_ca_error("unexpected reply to Redis %s: %s instead of %s",
                        what, ecodoc_ca_reply_type_name(r->type),
                        ecodoc_ca_reply_type_name(type));
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


static redisReply *
ecodoc_ca_redis_call(ecodoc_ca_t *ca, int type, int argc, const char **argv,
    ecodoc_ca_cmd_e kind)
{
    if (ecodoc_ca_redis_queue(ca, argc, argv, kind) != ECODOC_CA_OK) {
        return NULL;
    }

    return ecodoc_ca_redis_reply(ca, type, argv[0]);
}


redisReply *
ecodoc_ca_redis_command(ecodoc_ca_t *ca, int type, int argc, const char **argv)
{
    if (ecodoc_ca_redis_append(ca, argc, argv) != ECODOC_CA_OK) {
        return NULL;
    }

    return ecodoc_ca_redis_reply(ca, type, argv[0]);
}


int
ecodoc_ca_redis_confirm(ecodoc_ca_t *ca, const char *what)
{
    char                n[24], ms[24], got[48];
    redisReply         *r;
    const char         *argv[3];
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;

    if (rd->wait_n == 0) {
        return ECODOC_CA_OK;
    }

    r = NULL;

    /* WAIT counts the replicas that have this connection's writes */
    if (ecodoc_ca_redis_up(ca)) {
        snprintf(n, sizeof(n), "%lld", rd->wait_n);
        snprintf(ms, sizeof(ms), "%lld", rd->wait_ms);
        argv[0] = "WAIT";
        argv[1] = n;
        argv[2] = ms;

        r = ecodoc_ca_redis_call(ca, REDIS_REPLY_INTEGER, 3, argv,
                                 ECODOC_CA_CMD_WAIT);
    }

    if (r != NULL && r->integer >= rd->wait_n) {
        freeReplyObject(r);
        return ECODOC_CA_OK;
    }

    rd->unconfirmed = 1;

    if (r != NULL) {
        snprintf(got, sizeof(got), "WAIT answered %lld", r->integer);
        freeReplyObject(r);

    } else {
        snprintf(got, sizeof(got), "no answer to WAIT");
    }

    ecodoc_ca_error("%s: written to the Redis master at %s, but not "
                    "confirmed by %lld replica%s within %lld ms (%s): a "
                    "failover now could lose it; check the replicas (INFO "
                    "replication), then repeat the command", what, rd->where,
                    rd->wait_n, rd->wait_n == 1 ? "" : "s", rd->wait_ms, got);

    return ECODOC_CA_UNCONFIRMED;
}


int
ecodoc_ca_redis_unconfirmed(ecodoc_ca_t *ca)
{
    return ca->redis != NULL && ca->redis->unconfirmed;
}


redisReply *
ecodoc_ca_redis_script(ecodoc_ca_t *ca, const char *script, int type,
    const char *addr, const char *fp, int argc, const char **args)
{
    int           i;
    redisReply   *r;
    const char  **argv;

    argv = malloc((argc + 6) * sizeof(char *));
    if (argv == NULL) {
        ecodoc_ca_error("out of memory");
        return NULL;
    }

    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "0";
    argv[3] = ca->prefix;
    argv[4] = addr;
    argv[5] = fp;

    for (i = 0; i < argc; i++) {
        argv[6 + i] = args[i];
    }

    r = ecodoc_ca_redis_call(ca, type, argc + 6, argv,
                             script == ecodoc_lua_user_show
                             ? ECODOC_CA_CMD_READ : ECODOC_CA_CMD_WRITE);

    free(argv);

    return r;
}


redisReply *
ecodoc_ca_redis_key_call(ecodoc_ca_t *ca, int type, const char *cmd,
    const char *kind, const char *id, const char *suffix)
{
    char         key[ECODOC_CA_KEY_LEN];
    const char  *argv[2];

    ecodoc_ca_redis_key(ca, key, kind, id, suffix);

    argv[0] = cmd;
    argv[1] = key;

    return ecodoc_ca_redis_command(ca, type, 2, argv);
}


void
ecodoc_ca_redis_key(ecodoc_ca_t *ca, char buf[ECODOC_CA_KEY_LEN],
    const char *kind, const char *id, const char *suffix)
{
    snprintf(buf, ECODOC_CA_KEY_LEN, "%s%s%s%s", ca->prefix, kind, id,
             suffix);
}


int
ecodoc_ca_redis_strings(const redisReply *r, size_t multiple)
{
    size_t  i;

    if (r->type != REDIS_REPLY_ARRAY || r->elements % multiple != 0) {
        return -1;
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || strlen(r->element[i]->str) != r->element[i]->len)
        {
            return -1;
        }
    }

    return 0;
}


const char *
ecodoc_ca_redis_field(const redisReply *r, const char *name)
{
    size_t  i;

    for (i = 0; i + 1 < r->elements; i += 2) {
        if (strcmp(r->element[i]->str, name) == 0) {
            return r->element[i + 1]->str;
        }
    }

    return NULL;
}


int
ecodoc_ca_redis_scan(ecodoc_ca_t *ca, const char *pattern,
    ecodoc_ca_scan_pt handler, void *data)
{
    int          rc;
    char         match[2 * ECODOC_CA_PREFIX_MAX + 64], cursor[32], *p;
    redisReply  *r;
    const char  *argv[6], *s;

    if (strlen(pattern) >= 64) {
        ecodoc_ca_error("SCAN pattern too long");
        return -1;
    }

    /* the prefix's glob characters escaped */
    p = match;
    for (s = ca->prefix; *s != '\0'; s++) {
        if (strchr("*?[]\\", *s) != NULL) {
            *p++ = '\\';
        }
        *p++ = *s;
    }
    strcpy(p, pattern);

    strcpy(cursor, "0");

    argv[0] = "SCAN";
    argv[1] = cursor;
    argv[2] = "MATCH";
    argv[3] = match;
    argv[4] = "COUNT";
    argv[5] = ECODOC_CA_SCAN_COUNT;

    do {
        r = ecodoc_ca_redis_command(ca, REDIS_REPLY_ARRAY, 6, argv);
        if (r == NULL) {
            return -1;
        }

        if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING
            || r->element[0]->len >= sizeof(cursor)
            || ecodoc_ca_redis_strings(r->element[1], 1) != 0)
        {
            ecodoc_ca_error("unexpected reply to Redis SCAN");
            freeReplyObject(r);
            return -1;
        }

        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);

        rc = handler(ca, r->element[1], data);

        freeReplyObject(r);

        if (rc != 0) {
            return -1;
        }

    } while (strcmp(cursor, "0") != 0);

    return 0;
}
