/*
 * ecodoc-ca: talking to Redis: the address or the sentinels, connecting
 * (TCP, unix or TLS with hiredis only formatting and parsing) with AUTH,
 * ROLE and SELECT, checked replies, one retry after a failover when safe,
 * WAIT for replicas, key names.
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_REDIS_PORT     6379
#define ECODOC_CA_SENTINEL_PORT  26379
#define ECODOC_CA_REDIS_TIMEOUT  2000       /* ms: connect, each reply */
#define ECODOC_CA_FIND_TIMEOUT   5000       /* ms: finding the master */
#define ECODOC_CA_FIND_PAUSE     200        /* ms between two rounds */
#define ECODOC_CA_SENTINELS_MAX  16
#define ECODOC_CA_WAIT_MS        1000       /* --redis-wait N: its MS */
#define ECODOC_CA_ERR_LEN        320        /* one connection's error */
#define ECODOC_CA_ADDR_LEN       300        /* host:port, for messages */
#define ECODOC_CA_MSG_LEN        1024       /* where and why */
#define ECODOC_CA_SCAN_COUNT     "1000"


typedef struct {
    int    unix_socket;        /* host is then the socket's path */
    char   host[256];
    int    port;
} ecodoc_ca_addr_t;


/* one connection to a Redis or a sentinel */

typedef struct {
    int           fd;
    SSL          *ssl;
    redisReader  *reader;
    char          err[ECODOC_CA_ERR_LEN];   /* why the last call failed */
} ecodoc_ca_conn_t;


/* a command sent or to send, kept until its reply is read */

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


static long long
ecodoc_ca_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


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


/* host:port, [IPv6]:port or unix:/path (when unix_ok) into a; 0 or -1 */

static int
ecodoc_ca_parse_addr(const char *s, size_t len, int port_default,
    int unix_ok, ecodoc_ca_addr_t *a)
{
    char         buf[300], *host, *end, *colon;
    size_t       hlen;
    long long    port;

    if (len >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    a->port = port_default;
    a->unix_socket = 0;

    if (strncmp(buf, "unix:", 5) == 0) {
        if (!unix_ok || buf[5] != '/'
            || len - 5 >= sizeof(((struct sockaddr_un *) 0)->sun_path))
        {
            return -1;
        }

        a->unix_socket = 1;
        strcpy(a->host, buf + 5);
        return 0;
    }

    if (buf[0] == '[') {
        host = buf + 1;
        end = strchr(host, ']');
        colon = (end != NULL && end[1] == ':') ? end + 1 : NULL;

        if (end == NULL || (end[1] != '\0' && colon == NULL)) {
            return -1;
        }

    } else {
        host = buf;
        colon = strchr(buf, ':');
        end = (colon != NULL) ? colon : buf + len;

        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            return -1;
        }
    }

    hlen = end - host;

    if (hlen == 0 || hlen >= sizeof(a->host)) {
        return -1;
    }

    if (colon != NULL) {
        if (ecodoc_ca_number(colon + 1, 1, 65535, &port) != 0) {
            return -1;
        }

        a->port = (int) port;
    }

    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';

    return 0;
}


static void
ecodoc_ca_addr_text(const ecodoc_ca_addr_t *a, char *buf, size_t size)
{
    if (a->unix_socket) {
        snprintf(buf, size, "unix:%s", a->host);

    } else {
        snprintf(buf, size, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d",
                 a->host, a->port);
    }
}


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
    char                n[24];
    size_t              len;
    const char         *colon;
    ecodoc_ca_redis_t  *rd;

    rd = calloc(1, sizeof(ecodoc_ca_redis_t));
    if (rd == NULL) {
        ecodoc_ca_error("out of memory");
        return ECODOC_CA_ERROR;
    }

    ca->redis = rd;
    rd->conn.fd = -1;

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


/* the TLS context, at the first TLS connection; 0 or -1 reported */

static int
ecodoc_ca_tls_init(ecodoc_ca_t *ca)
{
    SSL_CTX            *ctx;
    unsigned long       e;
    ecodoc_ca_redis_t  *rd;

    rd = ca->redis;

    if (rd->ssl_ctx != NULL) {
        return 0;
    }

    /* OpenSSL writes with write(2): a peer gone must not kill us */
    signal(SIGPIPE, SIG_IGN);

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        goto failed;
    }

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if (SSL_CTX_load_verify_locations(ctx, ca->tls_ca, NULL) != 1) {
        e = ERR_peek_last_error();
        ecodoc_ca_error("--redis-tls-ca %s: cannot load it: %s", ca->tls_ca,
                        ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                   : "unknown error");
        goto error;
    }

    if (ca->tls_cert != NULL
        && (SSL_CTX_use_certificate_chain_file(ctx, ca->tls_cert) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, ca->tls_key, SSL_FILETYPE_PEM)
               != 1
            || SSL_CTX_check_private_key(ctx) != 1))
    {
        e = ERR_peek_last_error();
        ecodoc_ca_error("--redis-tls-cert %s / --redis-tls-key %s: cannot "
                        "load them: %s", ca->tls_cert, ca->tls_key,
                        ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                   : "unknown error");
        goto error;
    }

    rd->ssl_ctx = ctx;

    return 0;

failed:

    ecodoc_ca_error("cannot make a TLS context");

error:

    SSL_CTX_free(ctx);
    ERR_clear_error();

    return -1;
}


/* 1 when fd is ready for events, 0 at the deadline, -1 error (c->err) */

static int
ecodoc_ca_poll(ecodoc_ca_conn_t *c, short events, long long deadline)
{
    int            rc;
    long long      left;
    struct pollfd  pfd;

    for ( ;; ) {
        left = deadline - ecodoc_ca_now();

        if (left <= 0) {
            snprintf(c->err, sizeof(c->err), "no answer within %d s",
                     ECODOC_CA_REDIS_TIMEOUT / 1000);
            return 0;
        }

        pfd.fd = c->fd;
        pfd.events = events;
        pfd.revents = 0;

        rc = poll(&pfd, 1, (int) left);

        if (rc > 0) {
            return 1;
        }

        if (rc < 0 && errno != EINTR) {
            snprintf(c->err, sizeof(c->err), "poll(): %s", strerror(errno));
            return -1;
        }
    }
}


/* after an SSL call returned rc: 0 to call it again, -1 error (c->err) */

static int
ecodoc_ca_tls_again(ecodoc_ca_conn_t *c, int rc, long long deadline)
{
    long           v;
    short          events;
    const char    *why;
    unsigned long  e;

    switch (SSL_get_error(c->ssl, rc)) {

    case SSL_ERROR_WANT_READ:
        events = POLLIN;
        break;

    case SSL_ERROR_WANT_WRITE:
        events = POLLOUT;
        break;

    case SSL_ERROR_ZERO_RETURN:
        snprintf(c->err, sizeof(c->err), "connection closed");
        return -1;

    case SSL_ERROR_SYSCALL:
        snprintf(c->err, sizeof(c->err), "TLS: %s",
                 errno != 0 ? strerror(errno) : "connection closed");
        return -1;

    default:
        v = SSL_get_verify_result(c->ssl);

        if (v != X509_V_OK) {
            snprintf(c->err, sizeof(c->err), "TLS: the server's certificate "
                     "is refused: %s", X509_verify_cert_error_string(v));
            return -1;
        }

        e = ERR_peek_last_error();
        why = ERR_reason_error_string(e);
        snprintf(c->err, sizeof(c->err), "TLS: %s",
                 why != NULL ? why : "handshake failed");
        return -1;
    }

    return ecodoc_ca_poll(c, events, deadline) == 1 ? 0 : -1;
}


/* after send() or recv() failed: 0 to call it again, -1 error (c->err) */

static int
ecodoc_ca_sock_again(ecodoc_ca_conn_t *c, short events, long long deadline,
    const char *call)
{
    if (errno == EINTR) {
        return 0;
    }

    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        snprintf(c->err, sizeof(c->err), "%s(): %s", call, strerror(errno));
        return -1;
    }

    return ecodoc_ca_poll(c, events, deadline) == 1 ? 0 : -1;
}


/* a non-blocking socket connected to a; 0 or -1 (c->err) */

static int
ecodoc_ca_conn_socket(ecodoc_ca_conn_t *c, const ecodoc_ca_addr_t *a,
    long long deadline)
{
    int                  fd, rc, err, one;
    char                 port[8];
    socklen_t            len;
    struct addrinfo      hints, local, *res, *ai;
    struct sockaddr_un   sun;

    res = NULL;

    if (a->unix_socket) {
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, a->host, strlen(a->host));

        memset(&local, 0, sizeof(local));
        local.ai_family = AF_UNIX;
        local.ai_socktype = SOCK_STREAM;
        local.ai_addr = (struct sockaddr *) &sun;
        local.ai_addrlen = sizeof(sun);
        ai = &local;

    } else {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(port, sizeof(port), "%d", a->port);

        rc = getaddrinfo(a->host, port, &hints, &res);
        if (rc != 0) {
            snprintf(c->err, sizeof(c->err), "cannot resolve %s: %s",
                     a->host, gai_strerror(rc));
            return -1;
        }

        ai = res;
    }

    err = 0;

    for ( /* void */ ; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd == -1) {
            err = errno;
            continue;
        }

        c->fd = fd;

        if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1
            || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
        {
            err = errno;
            goto next;
        }

        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }

        if (errno != EINPROGRESS && errno != EAGAIN) {
            err = errno;
            goto next;
        }

        rc = ecodoc_ca_poll(c, POLLOUT, deadline);

        if (rc == 0) {
            err = ETIMEDOUT;
            goto next;
        }

        len = sizeof(err);

        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        {
            err = (rc < 0) ? EIO : errno;
            goto next;
        }

        if (err == 0) {
            break;
        }

    next:

        close(fd);
        c->fd = -1;
    }

    if (res != NULL) {
        freeaddrinfo(res);
    }

    if (c->fd == -1) {
        snprintf(c->err, sizeof(c->err), "connect(): %s",
                 strerror(err != 0 ? err : EADDRNOTAVAIL));
        return -1;
    }

    if (!a->unix_socket) {
        one = 1;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }

    return 0;
}


/* the TLS handshake, the server checked for name; 0 or -1 (c->err) */

static int
ecodoc_ca_conn_tls(ecodoc_ca_t *ca, ecodoc_ca_conn_t *c, const char *name,
    long long deadline)
{
    int                  rc;
    unsigned char        ip[sizeof(struct in6_addr)];
    X509_VERIFY_PARAM   *param;

    c->ssl = SSL_new(ca->redis->ssl_ctx);

    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(c->err, sizeof(c->err), "TLS: out of memory");
        return -1;
    }

    param = SSL_get0_param(c->ssl);

    if (inet_pton(AF_INET, name, ip) == 1
        || inet_pton(AF_INET6, name, ip) == 1)
    {
        /* an address: no SNI; its certificate must name it (IP SAN) */
        rc = X509_VERIFY_PARAM_set1_ip_asc(param, name);

    } else {
        rc = SSL_set_tlsext_host_name(c->ssl, name) == 1
             && SSL_set1_host(c->ssl, name) == 1;
    }

    if (rc != 1) {
        snprintf(c->err, sizeof(c->err), "TLS: cannot check the name %s",
                 name);
        return -1;
    }

    for ( ;; ) {
        ERR_clear_error();
        errno = 0;

        rc = SSL_connect(c->ssl);

        if (rc == 1) {
            return 0;
        }

        if (ecodoc_ca_tls_again(c, rc, deadline) != 0) {
            return -1;
        }
    }
}


static void
ecodoc_ca_conn_close(ecodoc_ca_conn_t *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }

    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    if (c->reader != NULL) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
}


/* connects to a (TLS if configured); 0 or -1 (c->err), c closed */

static int
ecodoc_ca_conn_open(ecodoc_ca_t *ca, ecodoc_ca_conn_t *c,
    const ecodoc_ca_addr_t *a, long long deadline)
{
    c->fd = -1;
    c->ssl = NULL;
    c->reader = redisReaderCreate();

    if (c->reader == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }

    if (ecodoc_ca_conn_socket(c, a, deadline) != 0
        || (ca->tls_ca != NULL
            && ecodoc_ca_conn_tls(ca, c, ca->tls_name != NULL ? ca->tls_name
                                                             : a->host,
                                  deadline) != 0))
    {
        ecodoc_ca_conn_close(c);
        return -1;
    }

    return 0;
}


static int
ecodoc_ca_conn_write(ecodoc_ca_conn_t *c, const char *buf, size_t len,
    long long deadline)
{
    ssize_t  n;

    while (len > 0) {

        if (c->ssl != NULL) {
            ERR_clear_error();
            errno = 0;

            n = SSL_write(c->ssl, buf, len > 65536 ? 65536 : (int) len);

            if (n <= 0) {
                if (ecodoc_ca_tls_again(c, (int) n, deadline) != 0) {
                    return -1;
                }
                continue;
            }

        } else {
            n = send(c->fd, buf, len, MSG_NOSIGNAL);

            if (n == -1) {
                if (ecodoc_ca_sock_again(c, POLLOUT, deadline, "send") != 0) {
                    return -1;
                }
                continue;
            }
        }

        buf += n;
        len -= (size_t) n;
    }

    return 0;
}


/* the next reply; 0 or -1 (c->err) */

static int
ecodoc_ca_conn_read(ecodoc_ca_conn_t *c, redisReply **reply,
    long long deadline)
{
    char     buf[16384];
    void    *p;
    ssize_t  n;

    for ( ;; ) {
        if (redisReaderGetReply(c->reader, &p) != REDIS_OK) {
            snprintf(c->err, sizeof(c->err), "protocol error: %s",
                     c->reader->errstr);
            return -1;
        }

        if (p != NULL) {
            *reply = p;
            return 0;
        }

        if (c->ssl != NULL) {
            ERR_clear_error();
            errno = 0;

            n = SSL_read(c->ssl, buf, sizeof(buf));

            if (n <= 0) {
                if (ecodoc_ca_tls_again(c, (int) n, deadline) != 0) {
                    return -1;
                }
                continue;
            }

        } else {
            n = recv(c->fd, buf, sizeof(buf), 0);

            if (n == 0) {
                snprintf(c->err, sizeof(c->err), "connection closed");
                return -1;
            }

            if (n == -1) {
                if (ecodoc_ca_sock_again(c, POLLIN, deadline, "recv") != 0) {
                    return -1;
                }
                continue;
            }
        }

        if (redisReaderFeed(c->reader, buf, (size_t) n) != REDIS_OK) {
            snprintf(c->err, sizeof(c->err), "out of memory");
            return -1;
        }
    }
}


/*
 * One command on a connection being set up (AUTH, ROLE, SELECT, the
 * sentinel's question): the reply if it has the type, else NULL (c->err)
 */

static redisReply *
ecodoc_ca_conn_call(ecodoc_ca_conn_t *c, int type, int argc,
    const char **argv)
{
    int          len;
    char        *cmd;
    long long    deadline;
    redisReply  *r;

    len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return NULL;
    }

    deadline = ecodoc_ca_now() + ECODOC_CA_REDIS_TIMEOUT;

    if (ecodoc_ca_conn_write(c, cmd, (size_t) len, deadline) != 0
        || ecodoc_ca_conn_read(c, &r, deadline) != 0)
    {
        free(cmd);
        return NULL;
    }

    free(cmd);

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(c->err, sizeof(c->err), "%s refused: %.*s", argv[0],
                 (int) r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }

    if (type != ECODOC_CA_REPLY_ANY && r->type != type) {
        snprintf(c->err, sizeof(c->err), "unexpected reply to %s: %s "
                 "instead of %s", argv[0], ecodoc_ca_reply_type_name(r->type),
                 ecodoc_ca_reply_type_name(type));
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


/* AUTH when a password is given; 0 or -1 (c->err) */

static int
ecodoc_ca_conn_auth(ecodoc_ca_conn_t *c, const char *password)
{
    redisReply  *r;
    const char  *argv[2];

    if (password == NULL) {
        return 0;
    }

    argv[0] = "AUTH";
    argv[1] = password;

    r = ecodoc_ca_conn_call(c, REDIS_REPLY_STATUS, 2, argv);
    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return 0;
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

    if (ecodoc_ca_conn_open(ca, c, a, deadline) != 0) {
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

    if (ecodoc_ca_conn_open(ca, &c, s, deadline) != 0) {
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
        for (i = 0; i < rd->nsentinels; i++) {
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

    if (ca->tls_ca != NULL && ecodoc_ca_tls_init(ca) != 0) {
        return ECODOC_CA_ERROR;
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
    if (ca->redis != NULL) {
        ecodoc_ca_conn_close(&ca->redis->conn);
        ecodoc_ca_redis_drop(ca->redis);
    }
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
            ecodoc_ca_error("Redis at %s: %s; whether the %s was done is "
                            "unknown: check, then repeat it if need be",
                            rd->where, err, what);
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
