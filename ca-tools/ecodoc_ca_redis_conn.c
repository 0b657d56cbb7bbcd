/*
 * ecodoc-ca: one connection to a Redis or a sentinel: addresses, a
 * non-blocking socket (TCP or unix) or OpenSSL's TLS over it, timeouts,
 * hiredis' parser for the replies.
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
#include <openssl/x509v3.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"
#include "ecodoc_ca_redis_conn.h"


long long
ecodoc_ca_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


const char *
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

int
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


void
ecodoc_ca_addr_text(const ecodoc_ca_addr_t *a, char *buf, size_t size)
{
    if (a->unix_socket) {
        snprintf(buf, size, "unix:%s", a->host);

    } else {
        snprintf(buf, size, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d",
                 a->host, a->port);
    }
}


SSL_CTX *
ecodoc_ca_conn_tls_ctx(const char *ca_file, const char *cert,
    const char *key)
{
    SSL_CTX  *ctx;

    /* OpenSSL writes with write(2): a peer gone must not kill us */
    signal(SIGPIPE, SIG_IGN);

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ecodoc_ca_error("cannot make a TLS context: %s",
                        ecodoc_ca_ssl_error());
        return NULL;
    }

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        ecodoc_ca_error("--redis-tls-ca %s: cannot load it: %s", ca_file,
                        ecodoc_ca_ssl_error());
        goto failed;
    }

    if (cert != NULL
        && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(ctx) != 1))
    {
        ecodoc_ca_error("--redis-tls-cert %s / --redis-tls-key %s: cannot "
                        "load them: %s", cert, key, ecodoc_ca_ssl_error());
        goto failed;
    }

    return ctx;

failed:

    SSL_CTX_free(ctx);

    return NULL;
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
ecodoc_ca_conn_tls(ecodoc_ca_conn_t *c, SSL_CTX *ctx, const char *name,
    long long deadline)
{
    int                  rc;
    unsigned char        ip[sizeof(struct in6_addr)];
    X509_VERIFY_PARAM   *param;

    c->ssl = SSL_new(ctx);

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


void
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


int
ecodoc_ca_conn_open(ecodoc_ca_conn_t *c, const ecodoc_ca_addr_t *a,
    SSL_CTX *ctx, const char *name, long long deadline)
{
    c->fd = -1;
    c->ssl = NULL;
    c->reader = redisReaderCreate();

    if (c->reader == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }

    if (ecodoc_ca_conn_socket(c, a, deadline) != 0
        || (ctx != NULL
            && ecodoc_ca_conn_tls(c, ctx, name != NULL ? name : a->host,
                                  deadline) != 0))
    {
        ecodoc_ca_conn_close(c);
        return -1;
    }

    return 0;
}


int
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

int
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

redisReply *
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

int
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
