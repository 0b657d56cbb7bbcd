/*
 * ecodoc-ca: one connection to a Redis or a sentinel (TCP, unix or TLS),
 * for ecodoc_ca_redis.c only; hiredis formats and parses, nothing more.
 */

#ifndef ECODOC_CA_REDIS_CONN_H
#define ECODOC_CA_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>


#define ECODOC_CA_REDIS_TIMEOUT  2000       /* ms: connect, each reply */
#define ECODOC_CA_ERR_LEN        320        /* one connection's error */
#define ECODOC_CA_ADDR_LEN       300        /* host:port, for messages */


typedef struct {
    int    unix_socket;                     /* host is then the path */
    char   host[256];
    int    port;
} ecodoc_ca_addr_t;


typedef struct {
    int           fd;                       /* -1: closed */
    SSL          *ssl;                      /* NULL: plain */
    redisReader  *reader;
    char          err[ECODOC_CA_ERR_LEN];   /* why the last call failed */
} ecodoc_ca_conn_t;


/* a monotonic clock, in ms: the deadlines below */
long long ecodoc_ca_now(void);

const char *ecodoc_ca_reply_type_name(int type);

/*
 * host:port, [IPv6]:port or unix:/path (when unix_ok) into a; 0 or -1;
 * and back, for messages
 */
int ecodoc_ca_parse_addr(const char *s, size_t len, int port_default,
    int unix_ok, ecodoc_ca_addr_t *a);
void ecodoc_ca_addr_text(const ecodoc_ca_addr_t *a, char *buf, size_t size);

/* the TLS client context: the CA file, optional certificate and key */
SSL_CTX *ecodoc_ca_conn_tls_ctx(const char *ca_file, const char *cert,
    const char *key);

/*
 * Connects c to a, over TLS when ctx is given, the server's certificate
 * checked for name (NULL: a's host); 0, or -1 with c->err and c closed
 */
int ecodoc_ca_conn_open(ecodoc_ca_conn_t *c, const ecodoc_ca_addr_t *a,
    SSL_CTX *ctx, const char *name, long long deadline);
void ecodoc_ca_conn_close(ecodoc_ca_conn_t *c);

/* 0, or -1 with c->err */
int ecodoc_ca_conn_write(ecodoc_ca_conn_t *c, const char *buf, size_t len,
    long long deadline);
int ecodoc_ca_conn_read(ecodoc_ca_conn_t *c, redisReply **reply,
    long long deadline);

/*
 * One command while a connection is set up (AUTH, ROLE, SELECT, the
 * sentinel's question): the reply if it has the type, else NULL (c->err);
 * AUTH only when a password is given: 0 or -1 (c->err)
 */
redisReply *ecodoc_ca_conn_call(ecodoc_ca_conn_t *c, int type, int argc,
    const char **argv);
int ecodoc_ca_conn_auth(ecodoc_ca_conn_t *c, const char *password);

#endif /* ECODOC_CA_REDIS_CONN_H */
