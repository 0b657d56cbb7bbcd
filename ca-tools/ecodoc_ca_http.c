/*
 * ecodoc-ca enroll-server: the HTTP side on GNU libmicrohttpd: the unix
 * socket, the server's limits, the request as the site sees it, the reply.
 *
 * libmicrohttpd parses the requests; a thread per connection runs the
 * site (its scrypt checks and key generation block), ECODOC_CA_HTTP_*
 * bound the connections, their memory, their silence and the body.  What
 * is checked here on top: the head as a whole (header names, the body's
 * length given once and within the limit, no Transfer-Encoding) before
 * the body is read, and no NUL in the body however it arrives.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ecodoc_web.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_http.h"


#define ECODOC_CA_HTTP_CSP                                                   \
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "        \
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


/* one request on its way in: the site's view of it, the body so far */
typedef struct {
    ecodoc_ca_req_t   req;
    char             *body;
    size_t            len;
    size_t            size;          /* the Content-Length */
    int               status;        /* a refusal decided on the way */
    int               drain;         /* ... answered after the body */
    const char       *why;
} ecodoc_ca_http_in_t;


/* what the server's callbacks share */
typedef struct {
    ecodoc_ca_http_handler_pt   handler;
    void                       *ctx;
} ecodoc_ca_http_srv_t;


static void ecodoc_ca_http_vlog(const char *fmt, va_list args);
static void ecodoc_ca_http_mhd_log(void *cls, const char *fmt, va_list ap);
static char *ecodoc_ca_resp_room(ecodoc_ca_resp_t *resp, size_t n);
static char *ecodoc_ca_http_find(const char *data, size_t len,
    const char *name, char sep, int trim);
static int ecodoc_ca_http_token(const char *s);
static enum MHD_Result ecodoc_ca_http_header_in(void *cls,
    enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size);
static int ecodoc_ca_http_head_ok(ecodoc_ca_http_in_t *in);
static enum MHD_Result ecodoc_ca_http_send(struct MHD_Connection *c,
    ecodoc_ca_req_t *req, ecodoc_ca_resp_t *resp);
static enum MHD_Result ecodoc_ca_http_refuse(struct MHD_Connection *c,
    ecodoc_ca_http_in_t *in);
static enum MHD_Result ecodoc_ca_http_request(void *cls,
    struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size,
    void **con_cls);
static void ecodoc_ca_http_done(void *cls, struct MHD_Connection *c,
    void **con_cls, enum MHD_RequestTerminationCode toe);
static size_t ecodoc_ca_http_raw(void *cls, struct MHD_Connection *c,
    char *s);
static int ecodoc_ca_http_listen(const char *path, int mode);


/* the log: whole lines, whichever thread writes them */

static void
ecodoc_ca_http_vlog(const char *fmt, va_list args)
{
    char  t[ECODOC_CA_TIME_LEN];

    ecodoc_ca_iso_time(t, time(NULL), -1);

    flockfile(stderr);
    fprintf(stderr, "%s ecodoc-ca enroll-server[%ld]: ", t, (long) getpid());
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    funlockfile(stderr);
}


void
ecodoc_ca_http_log(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ecodoc_ca_http_vlog(fmt, args);
    va_end(args);
}


/* libmicrohttpd's own messages, which end with a newline of their own */

static void
ecodoc_ca_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    int   n;
    char  msg[512];

    (void) cls;

    n = vsnprintf(msg, sizeof(msg), fmt, ap);

    if (n < 0) {
        return;
    }

    n = (size_t) n < sizeof(msg) ? n : (int) sizeof(msg) - 1;

    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }

    ecodoc_ca_http_log("libmicrohttpd: %s", msg);
}


/* the response buffer */

static char *
ecodoc_ca_resp_room(ecodoc_ca_resp_t *resp, size_t n)
{
    char    *p;
    size_t   size;

    if (resp->failed) {
        return NULL;
    }

    if (resp->len + n + 1 > resp->size) {
        size = resp->size ? resp->size : 8192;
        while (resp->len + n + 1 > size) {
            size *= 2;
        }

        p = realloc(resp->body, size);
        if (p == NULL) {
            resp->failed = 1;
            return NULL;
        }

        resp->body = p;
        resp->size = size;
    }

    return resp->body + resp->len;
}


void
ecodoc_ca_resp_add(ecodoc_ca_resp_t *resp, const char *s, size_t n)
{
    char  *p;

    p = ecodoc_ca_resp_room(resp, n);
    if (p == NULL) {
        return;
    }

    memcpy(p, s, n);
    resp->len += n;
    resp->body[resp->len] = '\0';
}


void
ecodoc_ca_resp_puts(ecodoc_ca_resp_t *resp, const char *s)
{
    ecodoc_ca_resp_add(resp, s, strlen(s));
}


void
ecodoc_ca_resp_html(ecodoc_ca_resp_t *resp, const char *s)
{
    char    *p;
    size_t   n;

    n = ecodoc_web_escape_html(NULL, (const unsigned char *) s, strlen(s));

    p = ecodoc_ca_resp_room(resp, n);
    if (p == NULL) {
        return;
    }

    resp->len += ecodoc_web_escape_html((unsigned char *) p,
                                        (const unsigned char *) s,
                                        strlen(s));
    resp->body[resp->len] = '\0';
}


void
ecodoc_ca_resp_header(ecodoc_ca_resp_t *resp, const char *fmt, ...)
{
    int      n;
    size_t   room;
    va_list  args;

    room = sizeof(resp->head) - resp->head_len;

    va_start(args, fmt);
    n = vsnprintf(resp->head + resp->head_len, room, fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n + 2 >= room) {
        resp->failed = 1;
        return;
    }

    resp->head_len += n;
    memcpy(resp->head + resp->head_len, "\r\n", 3);
    resp->head_len += 2;
}


/* request helpers */

const char *
ecodoc_ca_http_header(ecodoc_ca_req_t *req, const char *name)
{
    int  i;

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->name[i], name) == 0) {
            return req->value[i];
        }
    }

    return NULL;
}


int
ecodoc_ca_http_unescape(char *s, int plus)
{
    long  n;

    n = ecodoc_web_unescape((unsigned char *) s, (unsigned char *) s,
                            strlen(s), plus ? ECODOC_WEB_PLUS : 0);

    if (n < 0 || memchr(s, '\0', (size_t) n) != NULL) {
        return -1;
    }

    s[n] = '\0';

    return 0;
}


/* the value after "name=" in a list separated by sep, raw, or NULL */

static char *
ecodoc_ca_http_find(const char *data, size_t len, const char *name,
    char sep, int trim)
{
    char        *v;
    size_t       nlen, vlen;
    const char  *p, *end, *next;

    nlen = strlen(name);
    end = data + len;

    for (p = data; p < end; p = next + 1) {
        next = memchr(p, sep, end - p);
        if (next == NULL) {
            next = end;
        }

        while (trim && p < next && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if ((size_t) (next - p) > nlen && memcmp(p, name, nlen) == 0
            && p[nlen] == '=')
        {
            vlen = next - p - nlen - 1;
            v = malloc(vlen + 1);
            if (v != NULL) {
                memcpy(v, p + nlen + 1, vlen);
                v[vlen] = '\0';
            }
            return v;
        }
    }

    return NULL;
}


char *
ecodoc_ca_http_field(const char *data, size_t len, const char *name)
{
    char  *v;

    v = ecodoc_ca_http_find(data, len, name, '&', 0);

    if (v != NULL && ecodoc_ca_http_unescape(v, 1) != 0) {
        free(v);
        return NULL;
    }

    return v;
}


char *
ecodoc_ca_http_cookie(ecodoc_ca_req_t *req, const char *name)
{
    int   i;
    char *v;

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->name[i], "Cookie") != 0) {
            continue;
        }

        v = ecodoc_ca_http_find(req->value[i], strlen(req->value[i]), name,
                                ';', 1);
        if (v != NULL) {
            return v;
        }
    }

    return NULL;
}


int
ecodoc_ca_http_english(ecodoc_ca_req_t *req)
{
    int                i;
    ecodoc_web_lang_t  lang;

    ecodoc_web_lang_init(&lang);

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->name[i], "Accept-Language") == 0) {
            ecodoc_web_lang_add(&lang, (const unsigned char *) req->value[i],
                                strlen(req->value[i]));
        }
    }

    return ecodoc_web_lang_english(&lang);
}


/* the head, as libmicrohttpd parsed it, checked before the body */

static int
ecodoc_ca_http_token(const char *s)
{
    if (*s == '\0') {
        return 0;
    }

    for ( /* void */ ; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
              || (*s >= '0' && *s <= '9')
              || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
        {
            return 0;
        }
    }

    return 1;
}


static enum MHD_Result
ecodoc_ca_http_header_in(void *cls, enum MHD_ValueKind kind,
    const char *key, size_t key_size, const char *value, size_t value_size)
{
    ecodoc_ca_http_in_t  *in = cls;

    (void) kind;
    (void) key_size;
    (void) value_size;

    if (in->req.nheaders == ECODOC_CA_HTTP_NHEADERS) {
        in->status = 431;
        in->why = "Too many header fields.";
        return MHD_NO;
    }

    in->req.name[in->req.nheaders] = key;
    in->req.value[in->req.nheaders] = (value != NULL) ? value : "";
    in->req.nheaders++;

    return MHD_YES;
}


/* 0, or the refusal in in->status and in->why */

static int
ecodoc_ca_http_head_ok(ecodoc_ca_http_in_t *in)
{
    int         i, seen;
    long long   n;

    for (i = 0; i < in->req.nheaders; i++) {
        if (!ecodoc_ca_http_token(in->req.name[i])) {
            in->status = 400;
            in->why = "The request is malformed.";
            return -1;
        }
    }

    /* nginx sends a length; a chunked body could not be bounded before */
    if (ecodoc_ca_http_header(&in->req, "Transfer-Encoding") != NULL) {
        in->status = 501;
        in->why = "Transfer-Encoding is not supported.";
        return -1;
    }

    n = 0;
    seen = 0;

    for (i = 0; i < in->req.nheaders; i++) {
        if (strcasecmp(in->req.name[i], "Content-Length") != 0) {
            continue;
        }

        if (seen++ || ecodoc_ca_number(in->req.value[i], 0,
                                       (long long) 1 << 40, &n) != 0)
        {
            in->status = 400;
            in->why = "Invalid Content-Length.";
            return -1;
        }
    }

    if (!seen && strcmp(in->req.method, "POST") == 0) {
        in->status = 411;
        in->why = "A POST needs a Content-Length.";
        return -1;
    }

    if (n > ECODOC_CA_HTTP_BODY_MAX) {
        in->status = 413;
        in->why = "The request body is larger than 64 KiB.";

        /*
         * read and dropped before the answer when it is not too large:
         * a connection closed on a body still coming is an error to
         * the proxy sending it (a 502, not this 413)
         */
        in->drain = (n <= ECODOC_CA_HTTP_DRAIN_MAX);

        return -1;
    }

    in->size = (size_t) n;
    in->body = malloc(in->size + 1);
    if (in->body == NULL) {
        in->status = 503;
        in->why = "Please try again.";
        return -1;
    }

    return 0;
}


/* the response: the site's, with the headers every answer has */

static enum MHD_Result
ecodoc_ca_http_send(struct MHD_Connection *c, ecodoc_ca_req_t *req,
    ecodoc_ca_resp_t *resp)
{
    char                 *line, *next, *colon, *value;
    enum MHD_Result       rc;
    struct MHD_Response  *r;

    if (resp->failed) {
        resp->status = 503;
        resp->head_len = 0;
        resp->len = 0;
    }

    r = MHD_create_response_from_buffer(resp->len,
                                        resp->len ? resp->body : (char *) "",
                                        resp->len ? MHD_RESPMEM_MUST_FREE
                                                  : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        ecodoc_ca_http_log("%s %s: no memory for the response", req->method,
                           req->path);
        return MHD_NO;
    }

    if (resp->len) {
        resp->body = NULL;                  /* the response's now */
    }

    resp->head[resp->head_len] = '\0';

    for (line = resp->head; *line != '\0'; line = next) {
        next = strstr(line, "\r\n");
        *next = '\0';
        next += 2;

        colon = strchr(line, ':');
        if (colon == NULL) {
            continue;
        }

        *colon = '\0';
        for (value = colon + 1; *value == ' '; value++) { /* void */ }

        (void) MHD_add_response_header(r, line, value);
    }

    (void) MHD_add_response_header(r, "Cache-Control", "no-store");
    (void) MHD_add_response_header(r, "Content-Security-Policy",
                                   ECODOC_CA_HTTP_CSP);
    (void) MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    (void) MHD_add_response_header(r, "X-Frame-Options", "DENY");
    (void) MHD_add_response_header(r, "Referrer-Policy", "same-origin");
    (void) MHD_add_response_header(r, "Connection", "close");

    rc = MHD_queue_response(c, (unsigned) resp->status, r);
    MHD_destroy_response(r);

    ecodoc_ca_http_log("%s %s %d", req->method, req->path, resp->status);

    return rc;
}


/* a bare page for what the server refuses itself */

static enum MHD_Result
ecodoc_ca_http_refuse(struct MHD_Connection *c, ecodoc_ca_http_in_t *in)
{
    const char        *reason;
    enum MHD_Result    rc;
    ecodoc_ca_resp_t   resp;

    memset(&resp, 0, sizeof(resp));
    resp.status = in->status;
    reason = MHD_get_reason_phrase_for((unsigned) in->status);

    ecodoc_ca_resp_header(&resp, "Content-Type: text/html; charset=utf-8");
    ecodoc_ca_resp_puts(&resp, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                        "<meta charset=\"utf-8\"><title>");
    ecodoc_ca_resp_puts(&resp, reason);
    ecodoc_ca_resp_puts(&resp, "</title></head><body><h1>");
    ecodoc_ca_resp_puts(&resp, reason);
    ecodoc_ca_resp_puts(&resp, "</h1><p>");
    ecodoc_ca_resp_puts(&resp, in->why);
    ecodoc_ca_resp_puts(&resp, "</p></body></html>\n");

    ecodoc_ca_http_log("refused (%s)", in->why);
    rc = ecodoc_ca_http_send(c, &in->req, &resp);
    free(resp.body);

    return rc;
}


/*
 * libmicrohttpd's access handler, called for each request: once with the
 * head, then with each piece of the body, then once more at its end
 */

static enum MHD_Result
ecodoc_ca_http_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    ecodoc_ca_http_srv_t  *srv = cls;
    ecodoc_ca_http_in_t   *in = *con_cls;

    enum MHD_Result        rc;
    ecodoc_ca_resp_t       resp;

    (void) version;

    if (in == NULL) {
        in = calloc(1, sizeof(ecodoc_ca_http_in_t));
        if (in == NULL) {
            return MHD_NO;
        }

        *con_cls = in;
        in->req.method = method;
        in->req.path = url;

        (void) MHD_get_connection_values_n(c, MHD_HEADER_KIND,
                                           ecodoc_ca_http_header_in, in);

        if ((in->status != 0 || ecodoc_ca_http_head_ok(in) != 0)
            && !in->drain)
        {
            /* answered before the body, which is then never read */
            return ecodoc_ca_http_refuse(c, in);
        }

        return MHD_YES;
    }

    if (*upload_data_size > 0) {

        /* within the Content-Length checked, which libmicrohttpd keeps */

        if (in->status == 0 && *upload_data_size > in->size - in->len) {
            in->status = 413;
            in->why = "The request body is larger than 64 KiB.";
        }

        if (in->status == 0 && memchr(upload_data, '\0', *upload_data_size))
        {
            in->status = 400;
            in->why = "The request is malformed.";
        }

        if (in->status == 0) {
            memcpy(in->body + in->len, upload_data, *upload_data_size);
            in->len += *upload_data_size;
        }

        *upload_data_size = 0;

        return MHD_YES;
    }

    if (in->status != 0) {
        return ecodoc_ca_http_refuse(c, in);
    }

    in->body[in->len] = '\0';
    in->req.body = in->body;
    in->req.body_len = in->len;

    memset(&resp, 0, sizeof(resp));
    resp.status = 200;

    srv->handler(srv->ctx, &in->req, &resp);

    rc = ecodoc_ca_http_send(c, &in->req, &resp);
    free(resp.body);

    return rc;
}


static void
ecodoc_ca_http_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    ecodoc_ca_http_in_t  *in = *con_cls;

    (void) cls;
    (void) c;
    (void) toe;

    if (in != NULL) {
        free(in->body);
        free(in);
        *con_cls = NULL;
    }
}


/* the path is routed as it came: no %XX decoding of the target */

static size_t
ecodoc_ca_http_raw(void *cls, struct MHD_Connection *c, char *s)
{
    (void) cls;
    (void) c;

    return strlen(s);
}


static int
ecodoc_ca_http_listen(const char *path, int mode)
{
    int                 fd, rc;
    mode_t              old;
    struct stat         st;
    struct sockaddr_un  sa;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        ecodoc_ca_error("socket path too long: %s", path);
        return -1;
    }

    /* a socket left by a server that died; never any other file */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            ecodoc_ca_error("%s exists and is not a socket", path);
            return -1;
        }
        unlink(path);
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ecodoc_ca_error("socket: %s", strerror(errno));
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);

    /* the socket is made with the mode asked, never wider for a moment */

    old = umask(~mode & 0777);
    rc = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
    umask(old);

    if (rc != 0 || listen(fd, ECODOC_CA_HTTP_BACKLOG) != 0) {
        ecodoc_ca_error("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }

    return fd;
}


int
ecodoc_ca_http_serve(const char *path, int mode,
    ecodoc_ca_http_handler_pt handler, void *ctx)
{
    int                    lfd, signo;
    sigset_t               stop, old;
    struct MHD_Daemon     *d;
    ecodoc_ca_http_srv_t   srv;

    lfd = ecodoc_ca_http_listen(path, mode);
    if (lfd == -1) {
        return -1;
    }

    /*
     * SIGTERM and SIGINT are blocked in every thread (libmicrohttpd's
     * inherit the mask) and waited for here; a write to a closed Redis
     * or client socket is an error, not a signal
     */

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    signal(SIGPIPE, SIG_IGN);

    srv.handler = handler;
    srv.ctx = ctx;

    /*
     * select(), not poll(): at the connection limit libmicrohttpd's
     * select() loop stops accepting (woken through its ITC when a
     * connection ends), so the next ones wait in the backlog, where its
     * poll() loop would accept and close them; the limit keeps every
     * descriptor far below FD_SETSIZE
     */

    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION
                         | MHD_USE_INTERNAL_POLLING_THREAD
                         | MHD_USE_ITC | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, ecodoc_ca_http_request, &srv,
                         MHD_OPTION_EXTERNAL_LOGGER, ecodoc_ca_http_mhd_log,
                         NULL,
                         MHD_OPTION_LISTEN_SOCKET, lfd,
                         MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned int) ECODOC_CA_HTTP_CONNECTIONS,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t) ECODOC_CA_HTTP_MEMORY,
                         MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned int) ECODOC_CA_HTTP_TIMEOUT,
                         MHD_OPTION_NOTIFY_COMPLETED, ecodoc_ca_http_done,
                         NULL,
                         MHD_OPTION_UNESCAPE_CALLBACK, ecodoc_ca_http_raw,
                         NULL,
                         MHD_OPTION_END);

    if (d == NULL) {
        ecodoc_ca_error("cannot serve on %s with libmicrohttpd", path);
        close(lfd);
        unlink(path);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -1;
    }

    ecodoc_ca_http_log("listening on unix:%s", path);

    while (sigwait(&stop, &signo) != 0) {
        /* void */
    }

    /* the requests under way are finished, then the socket closed */
    MHD_stop_daemon(d);
    unlink(path);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    ecodoc_ca_http_log("stopped");

    return 0;
}
