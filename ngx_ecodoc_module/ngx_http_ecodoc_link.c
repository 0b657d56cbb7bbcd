/*
 * One connection to a Redis or a sentinel on nginx's own I/O: TCP or a
 * unix socket, TLS with the server verified, pipelined commands answered
 * in order from a FIFO of handlers, replies parsed by hiredis' reader.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_http_ecodoc.h"


#define NGX_HTTP_ECODOC_LINK_READ     16384


static void ngx_http_ecodoc_link_connected(ngx_event_t *wev);
static void ngx_http_ecodoc_link_handshaked(ngx_connection_t *c);
static ngx_int_t ngx_http_ecodoc_link_verify(ngx_http_ecodoc_link_t *link,
    const char **why);
static void ngx_http_ecodoc_link_up(ngx_http_ecodoc_link_t *link);
static void ngx_http_ecodoc_link_read(ngx_event_t *rev);
static void ngx_http_ecodoc_link_write(ngx_event_t *wev);
static void ngx_http_ecodoc_link_timeout(ngx_event_t *ev);
static void ngx_http_ecodoc_link_dummy(ngx_event_t *ev);


/*
 * Starts connecting link->node; commands may be queued at once, they are
 * sent once connected (and verified).  NGX_ERROR: logged, nothing open.
 */

ngx_int_t
ngx_http_ecodoc_link_open(ngx_http_ecodoc_link_t *link,
    ngx_http_ecodoc_node_t *node, ngx_log_t *log)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    ngx_memzero(&link->peer, sizeof(ngx_peer_connection_t));

    /* a closed link has an empty FIFO and no output (link_close) */

    link->node = node;

    link->reader = redisReaderCreate();
    if (link->reader == NULL) {
        return NGX_ERROR;
    }

    link->peer.sockaddr = node->sockaddr;
    link->peer.socklen = node->socklen;
    link->peer.name = &node->name;
    link->peer.get = ngx_event_get_peer;
    link->peer.log = log;
    link->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&link->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ecodoc: cannot connect to %s %V", link->what,
                      &node->name);
        redisReaderFree(link->reader);
        link->reader = NULL;
        link->peer.connection = NULL;
        return NGX_ERROR;
    }

    c = link->peer.connection;

    c->pool = ngx_create_pool(1024, log);
    if (c->pool == NULL) {
        ngx_close_connection(c);
        link->peer.connection = NULL;
        redisReaderFree(link->reader);
        link->reader = NULL;
        return NGX_ERROR;
    }

    c->data = link;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_http_ecodoc_link_dummy;
    c->write->handler = ngx_http_ecodoc_link_connected;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "ecodoc: connecting to %s %V%s", link->what, &node->name,
                   link->ssl ? " over TLS" : "");

    ngx_add_timer(c->write, link->timeout);

    if (rc == NGX_OK) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * Queues commands in Redis' protocol that give nreplies replies: handler
 * gets each, or NULL when the link closes first.  They are written from
 * the event loop, never from here, so that no handler runs inside its
 * caller.
 */

ngx_int_t
ngx_http_ecodoc_link_send(ngx_http_ecodoc_link_t *link, u_char *buf,
    size_t len, ngx_uint_t nreplies, ngx_http_ecodoc_link_pt handler,
    void *data)
{
    u_char                        *p;
    size_t                         size;
    ngx_uint_t                     i, n;
    ngx_connection_t              *c;
    ngx_http_ecodoc_link_entry_t  *fifo;

    c = link->peer.connection;
    if (c == NULL) {
        return NGX_ERROR;
    }

    if (link->out_last + len > link->out_size) {
        size = ngx_max(2 * link->out_size, link->out_last + len);
        size = ngx_max(size, 4096);

        p = ngx_alloc(size, c->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (link->out) {
            ngx_memcpy(p, link->out, link->out_last);
            ngx_free(link->out);
        }

        link->out = p;
        link->out_size = size;
    }

    if (link->fifo_n + nreplies > link->fifo_size) {
        n = ngx_max(2 * link->fifo_size, link->fifo_n + nreplies);
        n = ngx_max(n, 16);

        fifo = ngx_alloc(n * sizeof(ngx_http_ecodoc_link_entry_t), c->log);
        if (fifo == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < link->fifo_n; i++) {
            fifo[i] = link->fifo[(link->fifo_head + i) % link->fifo_size];
        }

        if (link->fifo) {
            ngx_free(link->fifo);
        }

        link->fifo = fifo;
        link->fifo_size = n;
        link->fifo_head = 0;
    }

    ngx_memcpy(link->out + link->out_last, buf, len);
    link->out_last += len;

    while (nreplies--) {
        i = (link->fifo_head + link->fifo_n++) % link->fifo_size;
        link->fifo[i].handler = handler;
        link->fifo[i].data = data;
    }

    if (link->up && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * What is queued from now on is held back, unsent, until link_unfence():
 * the commands queued before go alone (the setup that must be answered
 * before any other command is sent, as a master's ROLE).
 */

void
ngx_http_ecodoc_link_fence(ngx_http_ecodoc_link_t *link)
{
    link->out_fence = link->out_last;
    link->fenced = 1;
}


void
ngx_http_ecodoc_link_unfence(ngx_http_ecodoc_link_t *link)
{
    ngx_connection_t  *c;

    link->fenced = 0;

    c = link->peer.connection;

    if (c && link->up && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


/* formats a command of argc strings (hiredis) and queues it */

ngx_int_t
ngx_http_ecodoc_link_command(ngx_http_ecodoc_link_t *link, int argc,
    const char **argv, const size_t *argvlen, ngx_http_ecodoc_link_pt handler,
    void *data)
{
    int        len;
    char      *cmd;
    ngx_int_t  rc;

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        return NGX_ERROR;
    }

    rc = ngx_http_ecodoc_link_send(link, (u_char *) cmd, len, 1, handler,
                                   data);

    redisFreeCommand(cmd);

    return rc;
}


/*
 * Closes the link: why is logged at level (0: not at all), every pending
 * handler gets NULL, then link->closed is told.  It may be called from a
 * handler: the reading loop notices.
 */

void
ngx_http_ecodoc_link_close(ngx_http_ecodoc_link_t *link, ngx_uint_t level,
    const char *why)
{
    ngx_uint_t                     i, n, head, size;
    ngx_connection_t              *c;
    ngx_http_ecodoc_link_entry_t  *fifo, e;

    c = link->peer.connection;
    if (c == NULL) {
        return;
    }

    if (level) {
        ngx_log_error(level, c->log, 0, "ecodoc: %s %V: %s", link->what,
                      &link->node->name, why);
    }

    link->peer.connection = NULL;
    link->up = 0;

    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }

    if (c->pool) {
        ngx_destroy_pool(c->pool);
        c->pool = NULL;
    }

    ngx_close_connection(c);

    redisReaderFree(link->reader);
    link->reader = NULL;

    /* the FIFO is the link's no more: a handler may open it again */

    fifo = link->fifo;
    n = link->fifo_n;
    head = link->fifo_head;
    size = link->fifo_size;

    link->fifo = NULL;
    link->fifo_n = 0;
    link->fifo_head = 0;
    link->fifo_size = 0;
    link->out_pos = 0;
    link->out_last = 0;
    link->out_fence = 0;
    link->fenced = 0;

    for (i = 0; i < n; i++) {
        e = fifo[(head + i) % size];
        (void) e.handler(link, NULL, e.data);
    }

    if (fifo) {
        ngx_free(fifo);
    }

    if (link->closed) {
        link->closed(link);
    }
}


/* frees the buffers of a closed link, at the worker's exit */

void
ngx_http_ecodoc_link_free(ngx_http_ecodoc_link_t *link)
{
    ngx_http_ecodoc_link_close(link, 0, NULL);

    if (link->out) {
        ngx_free(link->out);
        link->out = NULL;
        link->out_size = 0;
    }
}


static void
ngx_http_ecodoc_link_connected(ngx_event_t *wev)
{
    int                      err;
    socklen_t                len;
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_ecodoc_link_t  *link;

    c = wev->data;
    link = c->data;

    if (wev->timedout) {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, "connect timed out");
        return;
    }

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        ngx_log_error(NGX_LOG_ERR, c->log, err, "ecodoc: connect() to %s %V "
                      "failed", link->what, &link->node->name);
        ngx_http_ecodoc_link_close(link, 0, NULL);
        return;
    }

    if (link->ssl == NULL) {
        ngx_http_ecodoc_link_up(link);
        return;
    }

    if (ngx_ssl_create_connection(link->ssl, c, NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR,
                                   "cannot create a TLS connection");
        return;
    }

    /* SNI with a name, not with an address */

    if (link->node->tls_name.len
        && ngx_inet_addr(link->node->tls_name.data, link->node->tls_name.len)
           == INADDR_NONE
        && ngx_strlchr(link->node->tls_name.data,
                       link->node->tls_name.data + link->node->tls_name.len,
                       ':') == NULL
        && SSL_set_tlsext_host_name(c->ssl->connection,
                                    (char *) link->node->tls_name.data)
           == 0)
    {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, "cannot set SNI");
        return;
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, link->timeout);
        }

        c->ssl->handler = ngx_http_ecodoc_link_handshaked;
        return;
    }

    ngx_http_ecodoc_link_handshaked(c);
}


static void
ngx_http_ecodoc_link_handshaked(ngx_connection_t *c)
{
    const char              *why;
    ngx_http_ecodoc_link_t  *link;

    link = c->data;

    if (!c->ssl->handshaked) {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR,
                                   c->write->timedout || c->read->timedout
                                   ? "TLS handshake timed out"
                                   : "TLS handshake failed");
        return;
    }

    if (ngx_http_ecodoc_link_verify(link, &why) != NGX_OK) {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, why);
        return;
    }

    ngx_http_ecodoc_link_up(link);
}


/*
 * The server's certificate: issued by the trusted CA (verified during the
 * handshake, its result kept) and for the node's name or address.
 */

static ngx_int_t
ngx_http_ecodoc_link_verify(ngx_http_ecodoc_link_t *link, const char **why)
{
    int                      rc;
    long                     v;
    X509                    *cert;
    ngx_str_t               *name;
    ngx_connection_t        *c;
    static u_char            buf[NGX_MAX_ERROR_STR];

    c = link->peer.connection;
    name = &link->node->tls_name;

    v = SSL_get_verify_result(c->ssl->connection);

    if (v != X509_V_OK) {
        ngx_snprintf(buf, sizeof(buf) - 1, "certificate verify error: "
                     "(%l:%s)%Z", v, X509_verify_cert_error_string(v));
        *why = (char *) buf;
        return NGX_ERROR;
    }

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        *why = "no certificate";
        return NGX_ERROR;
    }

    /* an address is checked against the IP addresses of subjectAltName */

    if (ngx_inet_addr(name->data, name->len) != INADDR_NONE
        || ngx_strlchr(name->data, name->data + name->len, ':'))
    {
        rc = X509_check_ip_asc(cert, (char *) name->data, 0);

    } else {
        rc = X509_check_host(cert, (char *) name->data, name->len, 0, NULL);
    }

    X509_free(cert);

    if (rc != 1) {
        ngx_snprintf(buf, sizeof(buf) - 1,
                     "certificate does not match \"%V\"%Z", name);
        *why = (char *) buf;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ecodoc_link_up(ngx_http_ecodoc_link_t *link)
{
    ngx_connection_t  *c;

    c = link->peer.connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    link->up = 1;

    c->read->handler = ngx_http_ecodoc_link_read;
    c->write->handler = ngx_http_ecodoc_link_write;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0, "ecodoc: %s %V is up",
                   link->what, &link->node->name);

    if (link->opened) {
        link->opened(link);

        if (link->peer.connection != c) {
            return;
        }
    }

    ngx_http_ecodoc_link_write(c->write);

    if (link->peer.connection == c && c->read->ready) {
        ngx_http_ecodoc_link_read(c->read);
    }
}


static void
ngx_http_ecodoc_link_read(ngx_event_t *rev)
{
    ssize_t                        n;
    void                          *r;
    ngx_int_t                      rc;
    ngx_connection_t              *c;
    ngx_http_ecodoc_link_t        *link;
    ngx_http_ecodoc_link_entry_t   e;
    u_char                         buf[NGX_HTTP_ECODOC_LINK_READ];

    c = rev->data;
    link = c->data;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_ecodoc_link_close(link, NGX_LOG_ERR,
                                       n == 0 ? "connection closed by it"
                                              : "read error");
            return;
        }

        if (redisReaderFeed(link->reader, (char *) buf, n) != REDIS_OK) {
            ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, "protocol error");
            return;
        }

        for ( ;; ) {
            if (redisReaderGetReply(link->reader, &r) != REDIS_OK) {
                ngx_http_ecodoc_link_close(link, NGX_LOG_ERR,
                                           "protocol error");
                return;
            }

            if (r == NULL) {
                break;
            }

            if (link->fifo_n) {
                e = link->fifo[link->fifo_head];
                link->fifo_head = (link->fifo_head + 1) % link->fifo_size;
                link->fifo_n--;

            } else if (link->push) {
                e.handler = link->push;
                e.data = NULL;

            } else {
                freeReplyObject(r);
                ngx_http_ecodoc_link_close(link, NGX_LOG_ERR,
                                           "a reply to no command");
                return;
            }

            rc = e.handler(link, r, e.data);

            if (rc != NGX_DONE) {
                freeReplyObject(r);
            }

            /* the handler closed the link (and perhaps opened another) */

            if (link->peer.connection != c) {
                return;
            }
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, "event error");
    }
}


static void
ngx_http_ecodoc_link_write(ngx_event_t *wev)
{
    size_t                   last;
    ssize_t                  n;
    ngx_connection_t        *c;
    ngx_http_ecodoc_link_t  *link;

    c = wev->data;
    link = c->data;

    last = link->fenced ? link->out_fence : link->out_last;

    while (link->out_pos < last) {
        n = c->send(c, link->out + link->out_pos, last - link->out_pos);

        if (n == NGX_ERROR) {
            ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, "write error");
            return;
        }

        if (n == NGX_AGAIN) {
            break;
        }

        link->out_pos += n;
    }

    if (link->out_pos == link->out_last) {
        link->out_pos = 0;
        link->out_last = 0;
        link->out_fence = 0;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_http_ecodoc_link_close(link, NGX_LOG_ERR, "event error");
    }
}


/* a read timer during the handshake is the connect timer's twin */

static void
ngx_http_ecodoc_link_timeout(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    ngx_http_ecodoc_link_close(c->data, NGX_LOG_ERR, "timed out");
}


static void
ngx_http_ecodoc_link_dummy(ngx_event_t *ev)
{
    if (ev->timedout) {
        ngx_http_ecodoc_link_timeout(ev);
    }
}


/* the TLS context of every link, from the ecodoc_redis_tls_* directives */

ngx_int_t
ngx_http_ecodoc_link_ssl(ngx_conf_t *cf, ngx_http_ecodoc_main_conf_t *emcf)
{
    ngx_pool_cleanup_t  *cln;

    if (emcf->tls_trusted.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"ecodoc_redis_tls on\" needs "
                      "\"ecodoc_redis_tls_trusted_certificate\": the Redis "
                      "server's certificate is always verified");
        return NGX_ERROR;
    }

    if ((emcf->tls_certificate.len == 0) != (emcf->tls_key.len == 0)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"ecodoc_redis_tls_certificate\" and "
                      "\"ecodoc_redis_tls_certificate_key\" go together");
        return NGX_ERROR;
    }

    emcf->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (emcf->ssl == NULL) {
        return NGX_ERROR;
    }

    emcf->ssl->log = cf->log;

    if (ngx_ssl_create(emcf->ssl, emcf->tls_protocols, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(emcf->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = emcf->ssl;

    if (emcf->tls_certificate.len
        && ngx_ssl_certificate(cf, emcf->ssl, &emcf->tls_certificate,
                               &emcf->tls_key, NULL)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ssl_trusted_certificate(cf, emcf->ssl, &emcf->tls_trusted, 9)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
