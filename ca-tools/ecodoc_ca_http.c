/*
 * ecodoc-ca enroll-server: the HTTP/1.1 side: the unix socket, a process
 * per connection, strict request parsing with size limits and timeouts.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_http.h"


#define ECODOC_CA_HTTP_CSP                                                   \
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "        \
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


static volatile sig_atomic_t  ecodoc_ca_http_stop;


static void
ecodoc_ca_http_signal(int signo)
{
    (void) signo;
    ecodoc_ca_http_stop = 1;
}


void
ecodoc_ca_http_log(const char *fmt, ...)
{
    char     t[ECODOC_CA_TIME_LEN];
    va_list  args;

    ecodoc_ca_iso_time(t, time(NULL), -1);
    fprintf(stderr, "%s ecodoc-ca enroll-server[%ld]: ", t, (long) getpid());

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


static const char *
ecodoc_ca_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default:  return "Error";
    }
}


/* the response buffer */

void
ecodoc_ca_resp_add(ecodoc_ca_resp_t *resp, const char *s, size_t n)
{
    char    *p;
    size_t   size;

    if (resp->failed) {
        return;
    }

    if (resp->len + n + 1 > resp->size) {
        size = resp->size ? resp->size : 8192;
        while (resp->len + n + 1 > size) {
            size *= 2;
        }

        p = realloc(resp->body, size);
        if (p == NULL) {
            resp->failed = 1;
            return;
        }

        resp->body = p;
        resp->size = size;
    }

    memcpy(resp->body + resp->len, s, n);
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
    const char  *p;

    for (p = s; *p != '\0'; p++) {
        switch (*p) {
        case '&':  ecodoc_ca_resp_puts(resp, "&amp;"); break;
        case '<':  ecodoc_ca_resp_puts(resp, "&lt;"); break;
        case '>':  ecodoc_ca_resp_puts(resp, "&gt;"); break;
        case '"':  ecodoc_ca_resp_puts(resp, "&quot;"); break;
        case '\'': ecodoc_ca_resp_puts(resp, "&#39;"); break;
        default:   ecodoc_ca_resp_add(resp, p, 1);
        }
    }
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


static int
ecodoc_ca_http_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


int
ecodoc_ca_http_unescape(char *s, int plus)
{
    int    hi, lo;
    char  *d;

    for (d = s; *s != '\0'; s++) {
        if (*s == '+' && plus) {
            *d++ = ' ';

        } else if (*s == '%') {
            hi = ecodoc_ca_http_hex((unsigned char) s[1]);
            lo = (hi >= 0) ? ecodoc_ca_http_hex((unsigned char) s[2]) : -1;

            if (lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }

            *d++ = (char) (hi << 4 | lo);
            s += 2;

        } else {
            *d++ = *s;
        }
    }

    *d = '\0';

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


/* q of a language range in Accept-Language: 1000ths; -1 when absent */

static int
ecodoc_ca_http_q(const char *al, const char *lang)
{
    int          best, q;
    size_t       n;
    const char  *p, *end, *semi;
    double       qv;

    best = -1;
    n = strlen(lang);

    for (p = al; *p != '\0'; p = (*end == ',') ? end + 1 : end) {
        end = p + strcspn(p, ",");

        while (*p == ' ' || *p == '\t') {
            p++;
        }

        if (strncasecmp(p, lang, n) != 0
            || !(p[n] == '-' || p[n] == ';' || p[n] == ',' || p[n] == ' '
                 || p[n] == '\0'))
        {
            continue;
        }

        q = 1000;
        semi = memchr(p, ';', end - p);

        if (semi != NULL) {
            semi++;
            while (*semi == ' ') {
                semi++;
            }

            if (strncasecmp(semi, "q=", 2) == 0) {
                qv = strtod(semi + 2, NULL);
                q = (qv >= 0 && qv <= 1) ? (int) (qv * 1000) : 0;
            }
        }

        if (q > best) {
            best = q;
        }
    }

    return best;
}


int
ecodoc_ca_http_english(ecodoc_ca_req_t *req)
{
    int          en, ja;
    const char  *al;

    al = ecodoc_ca_http_header(req, "Accept-Language");
    if (al == NULL) {
        return 0;
    }

    en = ecodoc_ca_http_q(al, "en");
    ja = ecodoc_ca_http_q(al, "ja");

    return en > 0 && en > ja;
}


/* the connection */

static int
ecodoc_ca_http_wait(int fd, short events, time_t deadline)
{
    int            rc;
    time_t         now;
    struct pollfd  pfd;

    pfd.fd = fd;
    pfd.events = events;

    for ( ;; ) {
        now = time(NULL);
        if (now >= deadline) {
            return -1;
        }

        rc = poll(&pfd, 1, (int) (deadline - now) * 1000);

        if (rc > 0) {
            return 0;
        }

        if (rc == 0 || errno != EINTR) {
            return -1;
        }
    }
}


static void
ecodoc_ca_http_write(int fd, const char *data, size_t len, time_t deadline)
{
    ssize_t  n;

    while (len > 0) {
        if (ecodoc_ca_http_wait(fd, POLLOUT, deadline) != 0) {
            return;
        }

        n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            return;
        }

        data += n;
        len -= n;
    }
}


static void
ecodoc_ca_http_send(int fd, ecodoc_ca_resp_t *resp, int head_only)
{
    char  head[4096];
    int   n;

    if (resp->failed) {
        resp->status = 503;
        resp->head_len = 0;
        resp->len = 0;
    }

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n"
                 "%.*s"
                 "Content-Length: %zu\r\n"
                 "Cache-Control: no-store\r\n"
                 "Content-Security-Policy: " ECODOC_CA_HTTP_CSP "\r\n"
                 "X-Content-Type-Options: nosniff\r\n"
                 "X-Frame-Options: DENY\r\n"
                 "Referrer-Policy: same-origin\r\n"
                 "Connection: close\r\n\r\n",
                 resp->status, ecodoc_ca_http_reason(resp->status),
                 (int) resp->head_len, resp->head, resp->len);

    if (n < 0 || (size_t) n >= sizeof(head)) {
        return;
    }

    ecodoc_ca_http_write(fd, head, (size_t) n, time(NULL) + 30);

    if (!head_only && resp->len > 0) {
        ecodoc_ca_http_write(fd, resp->body, resp->len, time(NULL) + 30);
    }
}


/* a bare page for what the parser refuses itself */

static void
ecodoc_ca_http_refuse(int fd, int status, const char *text)
{
    ecodoc_ca_resp_t  resp;

    memset(&resp, 0, sizeof(resp));
    resp.status = status;

    ecodoc_ca_resp_header(&resp, "Content-Type: text/html; charset=utf-8");
    ecodoc_ca_resp_puts(&resp, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                        "<meta charset=\"utf-8\"><title>");
    ecodoc_ca_resp_puts(&resp, ecodoc_ca_http_reason(status));
    ecodoc_ca_resp_puts(&resp, "</title></head><body><h1>");
    ecodoc_ca_resp_puts(&resp, ecodoc_ca_http_reason(status));
    ecodoc_ca_resp_puts(&resp, "</h1><p>");
    ecodoc_ca_resp_puts(&resp, text);
    ecodoc_ca_resp_puts(&resp, "</p></body></html>\n");

    ecodoc_ca_http_send(fd, &resp, 0);
    ecodoc_ca_http_log("- - %d (%s)", status, text);

    free(resp.body);
}


static int
ecodoc_ca_http_token_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}


/*
 * Splits the head (NUL-terminated, without the blank line) into the
 * request; the status of a refusal, or 0.
 */

static int
ecodoc_ca_http_parse(char *head, ecodoc_ca_req_t *req, const char **why)
{
    char  *line, *next, *p, *colon, *end;

    *why = "The request is malformed.";

    next = strstr(head, "\r\n");
    if (next != NULL) {
        *next = '\0';
        next += 2;
    }

    /* METHOD SP target SP HTTP/1.x */
    line = head;
    p = strchr(line, ' ');
    if (p == NULL || p == line) {
        return 400;
    }

    *p++ = '\0';
    req->method = line;

    for (line = (char *) req->method; *line != '\0'; line++) {
        if (*line < 'A' || *line > 'Z') {
            return 400;
        }
    }

    req->path = p;
    p = strchr(p, ' ');

    if (p == NULL || req->path[0] != '/'
        || (strcmp(p + 1, "HTTP/1.1") != 0 && strcmp(p + 1, "HTTP/1.0") != 0))
    {
        return 400;
    }

    *p = '\0';

    for (p = (char *) req->path; *p != '\0'; p++) {
        if ((unsigned char) *p <= 0x20 || *p == 0x7f) {
            return 400;
        }
    }

    p = strchr(req->path, '?');
    if (p != NULL) {
        *p = '\0';
    }

    for (line = next; line != NULL && *line != '\0'; line = next) {
        next = strstr(line, "\r\n");
        if (next != NULL) {
            *next = '\0';
            next += 2;
        }

        colon = strchr(line, ':');

        if (colon == NULL || colon == line) {
            return 400;
        }

        for (p = line; p < colon; p++) {
            if (!ecodoc_ca_http_token_char((unsigned char) *p)) {
                return 400;             /* also obsolete line folding */
            }
        }

        *colon = '\0';

        for (p = colon + 1; *p == ' ' || *p == '\t'; p++) {
            /* void */
        }

        for (end = p; *end != '\0'; end++) {
            if (((unsigned char) *end < 0x20 && *end != '\t') || *end == 0x7f)
            {
                return 400;
            }
        }

        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
            *--end = '\0';
        }

        if (req->nheaders == ECODOC_CA_HTTP_NHEADERS) {
            *why = "Too many header fields.";
            return 431;
        }

        req->name[req->nheaders] = line;
        req->value[req->nheaders] = p;
        req->nheaders++;
    }

    return 0;
}


/* the body length from the headers; -1 when refused (status in *st) */

static long
ecodoc_ca_http_length(ecodoc_ca_req_t *req, int *st, const char **why)
{
    int          i, seen;
    long long    n;
    const char  *v;

    n = 0;
    seen = 0;

    if (ecodoc_ca_http_header(req, "Transfer-Encoding") != NULL) {
        *st = 501;
        *why = "Transfer-Encoding is not supported.";
        return -1;
    }

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->name[i], "Content-Length") != 0) {
            continue;
        }

        v = req->value[i];

        if (seen++ || ecodoc_ca_number(v, 0, (long long) 1 << 40, &n) != 0)
        {
            *st = 400;
            *why = "Invalid Content-Length.";
            return -1;
        }
    }

    if (!seen && strcmp(req->method, "POST") == 0) {
        *st = 411;
        *why = "A POST needs a Content-Length.";
        return -1;
    }

    if (n > ECODOC_CA_HTTP_BODY_MAX) {
        *st = 413;
        *why = "The request body is larger than 64 KiB.";
        return -1;
    }

    return (long) n;
}


static void
ecodoc_ca_http_conn(int fd, ecodoc_ca_http_handler_pt handler, void *ctx)
{
    int                st;
    char              *buf, *eoh;
    long               blen;
    size_t             len, want;
    time_t             deadline;
    ssize_t            n;
    const char        *why;
    ecodoc_ca_req_t    req;
    ecodoc_ca_resp_t   resp;

    buf = malloc(ECODOC_CA_HTTP_HEADERS_MAX + ECODOC_CA_HTTP_BODY_MAX + 1);
    if (buf == NULL) {
        return;
    }

    (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    deadline = time(NULL) + ECODOC_CA_HTTP_TIMEOUT;
    len = 0;
    eoh = NULL;

    /* the head: up to the blank line, within the limit and the time */
    while (eoh == NULL) {
        if (len == ECODOC_CA_HTTP_HEADERS_MAX) {
            ecodoc_ca_http_refuse(fd, 431, "The request head is larger "
                                  "than 16 KiB.");
            goto done;
        }

        if (ecodoc_ca_http_wait(fd, POLLIN, deadline) != 0) {
            if (len > 0) {
                ecodoc_ca_http_refuse(fd, 408, "The request took too long.");
            }
            goto done;
        }

        n = recv(fd, buf + len, ECODOC_CA_HTTP_HEADERS_MAX - len, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            goto done;
        }

        len += n;
        buf[len] = '\0';

        if (memchr(buf, '\0', len) != NULL) {
            ecodoc_ca_http_refuse(fd, 400, "The request is malformed.");
            goto done;
        }

        eoh = strstr(buf, "\r\n\r\n");
    }

    *eoh = '\0';
    memset(&req, 0, sizeof(req));

    st = ecodoc_ca_http_parse(buf, &req, &why);
    if (st != 0) {
        ecodoc_ca_http_refuse(fd, st, why);
        goto done;
    }

    blen = ecodoc_ca_http_length(&req, &st, &why);
    if (blen < 0) {
        ecodoc_ca_http_refuse(fd, st, why);
        goto done;
    }

    /* the body: what came with the head, then the rest */
    want = (size_t) blen;
    len -= (eoh + 4) - buf;
    memmove(buf + ECODOC_CA_HTTP_HEADERS_MAX, eoh + 4, len);
    req.body = buf + ECODOC_CA_HTTP_HEADERS_MAX;

    if (len > want) {
        len = want;                     /* no pipelining: the rest is dropped */
    }

    while (len < want) {
        if (ecodoc_ca_http_wait(fd, POLLIN, deadline) != 0) {
            ecodoc_ca_http_refuse(fd, 408, "The request took too long.");
            goto done;
        }

        n = recv(fd, (char *) req.body + len, want - len, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            goto done;
        }

        len += n;
    }

    /* a NUL in the body, however it came, as in the head */
    if (memchr(req.body, '\0', len) != NULL) {
        ecodoc_ca_http_refuse(fd, 400, "The request is malformed.");
        goto done;
    }

    ((char *) req.body)[len] = '\0';
    req.body_len = len;

    memset(&resp, 0, sizeof(resp));
    resp.status = 200;

    handler(ctx, &req, &resp);

    ecodoc_ca_http_send(fd, &resp, strcmp(req.method, "HEAD") == 0);
    ecodoc_ca_http_log("%s %s %d", req.method, req.path, resp.status);

    free(resp.body);

done:

    free(buf);
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

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
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

    if (rc != 0 || listen(fd, 64) != 0) {
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
    int                lfd, cfd, children;
    pid_t              pid;
    struct pollfd      pfd;
    struct sigaction   sa;

    lfd = ecodoc_ca_http_listen(path, mode);
    if (lfd == -1) {
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ecodoc_ca_http_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* an inherited "ignore" would reap children behind our count */
    signal(SIGCHLD, SIG_DFL);

    ecodoc_ca_http_log("listening on unix:%s", path);

    children = 0;

    while (!ecodoc_ca_http_stop) {

        while (children > 0) {
            pid = waitpid(-1, NULL, WNOHANG);

            if (pid > 0) {
                children--;

            } else {
                if (pid == -1 && errno == ECHILD) {
                    children = 0;
                }

                break;
            }
        }

        pfd.fd = lfd;
        pfd.events = POLLIN;

        /* at the limit, wait for a child before taking more */
        if (poll(children < ECODOC_CA_HTTP_CHILDREN ? &pfd : NULL,
                 children < ECODOC_CA_HTTP_CHILDREN ? 1 : 0, 200) <= 0)
        {
            continue;
        }

        cfd = accept(lfd, NULL, NULL);
        if (cfd == -1) {
            continue;
        }

        fflush(stderr);
        pid = fork();

        if (pid == 0) {
            close(lfd);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            ecodoc_ca_http_conn(cfd, handler, ctx);
            close(cfd);
            fflush(stderr);
            _exit(0);
        }

        if (pid == -1) {
            ecodoc_ca_http_log("fork: %s", strerror(errno));
            ecodoc_ca_http_refuse(cfd, 503, "Please try again.");

        } else {
            children++;
        }

        close(cfd);
    }

    close(lfd);
    unlink(path);
    ecodoc_ca_http_log("stopped");

    return 0;
}
