/*
 * ecodoc-ca: talking to Redis: the address or the sentinels, connecting
 * (TCP, unix or TLS) with AUTH, ROLE and SELECT, commands whose replies
 * are checked and which are sent again after a failover when that is
 * safe, WAIT for replicas, key names.
 */

#ifndef ECODOC_CA_REDIS_H
#define ECODOC_CA_REDIS_H

#include <hiredis/hiredis.h>

#include "ecodoc_ca.h"


#define ECODOC_CA_DEFAULT_REDIS  "127.0.0.1:6379"
#define ECODOC_CA_KEY_LEN      (ECODOC_CA_PREFIX_MAX + 160)
#define ECODOC_CA_REPLY_ANY    0     /* any type but an error reply */


/*
 * checks the Redis settings of ca (the address or the sentinels, TLS,
 * WAIT) before any command runs: a usage error if bad, reported
 */
int ecodoc_ca_redis_config(ecodoc_ca_t *ca);

/* connects (once) and authenticates; reported on failure */
int ecodoc_ca_redis_connect(ecodoc_ca_t *ca);

/* the connection closed (opened again at the next command); all freed */
void ecodoc_ca_redis_close(ecodoc_ca_t *ca);
void ecodoc_ca_redis_free(ecodoc_ca_t *ca);

/* 1 while the connection is up (an error reply leaves it up) */
int ecodoc_ca_redis_up(ecodoc_ca_t *ca);

/*
 * After a write that must survive a failover: WAIT for --redis-wait N
 * replicas.  ECODOC_CA_OK when they confirmed it (or WAIT is off),
 * ECODOC_CA_UNCONFIRMED when fewer did (reported, naming what), or
 * ECODOC_CA_ERROR (reported).
 */
int ecodoc_ca_redis_confirm(ecodoc_ca_t *ca, const char *what);

/* 1 when a confirmation fell short during this run: exit status 3 */
int ecodoc_ca_redis_unconfirmed(ecodoc_ca_t *ca);

/*
 * A command from NUL-terminated strings, sent as they are.  The reply is
 * returned only when it has the expected type (or is not an error, for
 * ECODOC_CA_REPLY_ANY); otherwise NULL, the problem reported.  The
 * append/reply pair pipelines; a call is one of each.  After a lost
 * connection, a -READONLY or a -MASTERDOWN, the commands waiting for a
 * reply are sent once more (to the master the sentinels name) when none
 * of them can have changed anything yet, or all are reads; a write
 * whose outcome is unknown is reported, never repeated.
 */
int ecodoc_ca_redis_append(ecodoc_ca_t *ca, int argc, const char **argv);
redisReply *ecodoc_ca_redis_reply(ecodoc_ca_t *ca, int type,
    const char *what);
redisReply *ecodoc_ca_redis_command(ecodoc_ca_t *ca, int type, int argc,
    const char **argv);

/*
 * Runs a script of lua/ (ecodoc_lua.h) with the arguments every script
 * takes (prefix, client address, certificate fingerprint) and then args;
 * the reply as for ecodoc_ca_redis_command.  Every script but
 * user_show writes, and is never sent twice.
 */
redisReply *ecodoc_ca_redis_script(ecodoc_ca_t *ca, const char *script,
    int type, const char *addr, const char *fp, int argc, const char **args);

/* "CMD key" for the key made of prefix + kind + id + suffix */
redisReply *ecodoc_ca_redis_key_call(ecodoc_ca_t *ca, int type,
    const char *cmd, const char *kind, const char *id, const char *suffix);

/* prefix + kind + id + suffix, e.g. "ecodoc:" "user:" "alice" ":certs" */
void ecodoc_ca_redis_key(ecodoc_ca_t *ca, char buf[ECODOC_CA_KEY_LEN],
    const char *kind, const char *id, const char *suffix);

/*
 * 0 when r is an array of strings without NUL bytes whose count is a
 * multiple of the given number (2 for HGETALL-style field/value arrays)
 */
int ecodoc_ca_redis_strings(const redisReply *r, size_t multiple);

/* the value of a field in a checked HGETALL-style array, or NULL */
const char *ecodoc_ca_redis_field(const redisReply *r, const char *name);

/*
 * SCAN of the keys prefix + pattern, the prefix matched literally: each
 * batch of keys (a checked array of strings) goes to handler, which may
 * send commands of its own and returns 0 to go on.  Memory is one batch
 * at a time; a key may come twice, as SCAN promises no better.
 */
typedef int (*ecodoc_ca_scan_pt)(ecodoc_ca_t *ca, const redisReply *keys,
    void *data);

int ecodoc_ca_redis_scan(ecodoc_ca_t *ca, const char *pattern,
    ecodoc_ca_scan_pt handler, void *data);

#endif /* ECODOC_CA_REDIS_H */
