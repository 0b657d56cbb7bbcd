/*
 * ecodoc-ca: talking to Redis: the address, connecting with AUTH and
 * SELECT, binary-safe commands whose replies are checked, key names.
 */

#ifndef ECODOC_CA_REDIS_H
#define ECODOC_CA_REDIS_H

#include <hiredis/hiredis.h>

#include "ecodoc_ca.h"


#define ECODOC_CA_KEY_LEN      (ECODOC_CA_PREFIX_MAX + 160)
#define ECODOC_CA_REPLY_ANY    0     /* any type but an error reply */


/* checks ca->redis_addr into host/port or path; usage error if bad */
int ecodoc_ca_redis_parse_addr(ecodoc_ca_t *ca);

/* connects (once) and authenticates; reported on failure */
int ecodoc_ca_redis_connect(ecodoc_ca_t *ca);
void ecodoc_ca_redis_close(ecodoc_ca_t *ca);

/*
 * A command from NUL-terminated strings, sent as they are.  The reply is
 * returned only when it has the expected type (or is not an error, for
 * ECODOC_CA_REPLY_ANY); otherwise NULL, the problem reported.  The
 * append/reply pair pipelines; a call is one of each.
 */
int ecodoc_ca_redis_append(ecodoc_ca_t *ca, int argc, const char **argv);
redisReply *ecodoc_ca_redis_reply(ecodoc_ca_t *ca, int type,
    const char *what);
redisReply *ecodoc_ca_redis_command(ecodoc_ca_t *ca, int type, int argc,
    const char **argv);

/*
 * Runs a script of lua/ (ecodoc_lua.h) with the arguments every script
 * takes (prefix, client address, certificate fingerprint) and then args;
 * the reply as for ecodoc_ca_redis_command.
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
