/*
 * ecodoc-ca: talking to Redis: the address, connecting with AUTH and
 * SELECT, binary-safe commands whose replies are checked, key names.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_REDIS_PORT     6379
#define ECODOC_CA_REDIS_TIMEOUT  2          /* seconds, connect and reply */
#define ECODOC_CA_SCAN_COUNT     "1000"


static const char *
ecodoc_ca_reply_type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING:
        return "a string";
    case REDIS_REPLY_ARRAY:
        return "an array";
    case REDIS_REPLY_INTEGER:
        return "an integer";
    case REDIS_REPLY_NIL:
        return "nil";
    case REDIS_REPLY_STATUS:
        return "a status";
    default:
        return "an unknown reply";
    }
}


int
ecodoc_ca_redis_parse_addr(ecodoc_ca_t *ca)
{
    size_t      hlen;
    long long   port;
    const char *addr, *host, *colon, *end;

    addr = ca->redis_addr;
    ca->redis_path = NULL;
    ca->redis_port = ECODOC_CA_REDIS_PORT;

    if (strncmp(addr, "unix:", 5) == 0) {

        if (addr[5] == '\0') {
            ecodoc_ca_usage_error("invalid Redis address \"%s\": "
                                  "no socket path", addr);
            return ECODOC_CA_USAGE;
        }

        ca->redis_path = addr + 5;
        return ECODOC_CA_OK;
    }

    if (addr[0] == '[') {
        /* [IPv6]:port */
        host = addr + 1;
        end = strchr(host, ']');
        colon = (end != NULL && end[1] == ':') ? end + 1 : NULL;

        if (end == NULL || (end[1] != '\0' && colon == NULL)) {
            goto invalid;
        }

    } else {
        host = addr;
        colon = strchr(addr, ':');
        end = (colon != NULL) ? colon : addr + strlen(addr);

        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            goto invalid;
        }
    }

    hlen = end - host;

    if (hlen == 0 || hlen >= sizeof(ca->redis_host)) {
        goto invalid;
    }

    if (colon != NULL) {
        if (ecodoc_ca_number(colon + 1, 1, 65535, &port) != 0) {
            goto invalid;
        }

        ca->redis_port = (int) port;
    }

    memcpy(ca->redis_host, host, hlen);
    ca->redis_host[hlen] = '\0';

    return ECODOC_CA_OK;

invalid:

    ecodoc_ca_usage_error("invalid Redis address \"%s\": use host:port, "
                          "[IPv6]:port or unix:/path", addr);

    return ECODOC_CA_USAGE;
}


int
ecodoc_ca_redis_connect(ecodoc_ca_t *ca)
{
    char            db[24];
    redisReply     *r;
    redisContext   *c;
    struct timeval  tv;
    const char     *argv[2];

    if (ca->redis != NULL) {
        return ECODOC_CA_OK;
    }

    tv.tv_sec = ECODOC_CA_REDIS_TIMEOUT;
    tv.tv_usec = 0;

    if (ca->redis_path != NULL) {
        c = redisConnectUnixWithTimeout(ca->redis_path, tv);

    } else {
        c = redisConnectWithTimeout(ca->redis_host, ca->redis_port, tv);
    }

    if (c == NULL || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        ecodoc_ca_error("cannot connect to Redis at %s: %s", ca->redis_addr,
                        c != NULL ? c->errstr : "out of memory");
        if (c != NULL) {
            redisFree(c);
        }
        return ECODOC_CA_ERROR;
    }

    ca->redis = c;

    if (ca->redis_password != NULL) {
        argv[0] = "AUTH";
        argv[1] = ca->redis_password;

        r = ecodoc_ca_redis_command(ca, REDIS_REPLY_STATUS, 2, argv);
        if (r == NULL) {
            return ECODOC_CA_ERROR;
        }

        freeReplyObject(r);
    }

    if (ca->db != 0) {
        snprintf(db, sizeof(db), "%ld", ca->db);
        argv[0] = "SELECT";
        argv[1] = db;

        r = ecodoc_ca_redis_command(ca, REDIS_REPLY_STATUS, 2, argv);
        if (r == NULL) {
            return ECODOC_CA_ERROR;
        }

        freeReplyObject(r);
    }

    return ECODOC_CA_OK;
}


void
ecodoc_ca_redis_close(ecodoc_ca_t *ca)
{
    if (ca->redis != NULL) {
        redisFree(ca->redis);
        ca->redis = NULL;
    }
}


int
ecodoc_ca_redis_append(ecodoc_ca_t *ca, int argc, const char **argv)
{
    int      i, rc;
    size_t  *len;

    if (ca->redis == NULL && ecodoc_ca_redis_connect(ca) != ECODOC_CA_OK) {
        return ECODOC_CA_ERROR;
    }

    len = malloc(argc * sizeof(size_t));
    if (len == NULL) {
        ecodoc_ca_error("out of memory");
        return ECODOC_CA_ERROR;
    }

    for (i = 0; i < argc; i++) {
        len[i] = strlen(argv[i]);
    }

    rc = redisAppendCommandArgv(ca->redis, argc, argv, len);

    free(len);

    if (rc != REDIS_OK) {
        ecodoc_ca_error("Redis at %s: %s", ca->redis_addr,
                        ca->redis->errstr);
        return ECODOC_CA_ERROR;
    }

    return ECODOC_CA_OK;
}


redisReply *
ecodoc_ca_redis_reply(ecodoc_ca_t *ca, int type, const char *what)
{
    void        *p;
    redisReply  *r;

    if (redisGetReply(ca->redis, &p) != REDIS_OK || p == NULL) {

        if (ca->redis->err == REDIS_ERR_IO
            && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
            ecodoc_ca_error("Redis at %s: no reply within %d s",
                            ca->redis_addr, ECODOC_CA_REDIS_TIMEOUT);

        } else {
            ecodoc_ca_error("Redis at %s: %s", ca->redis_addr,
                            ca->redis->err ? ca->redis->errstr : "no reply");
        }

        return NULL;
    }

    r = p;

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


redisReply *
ecodoc_ca_redis_command(ecodoc_ca_t *ca, int type, int argc, const char **argv)
{
    if (ecodoc_ca_redis_append(ca, argc, argv) != ECODOC_CA_OK) {
        return NULL;
    }

    return ecodoc_ca_redis_reply(ca, type, argv[0]);
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

    r = ecodoc_ca_redis_command(ca, type, argc + 6, argv);

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
