/*
 * ecodoc-ca enroll-server: a small HTTP/1.1 server on a unix socket (one
 * request per connection, a process per connection) for nginx to proxy to.
 */

#ifndef ECODOC_CA_HTTP_H
#define ECODOC_CA_HTTP_H

#include <stddef.h>


#define ECODOC_CA_HTTP_HEADERS_MAX  16384    /* request line + headers */
#define ECODOC_CA_HTTP_BODY_MAX     65536
#define ECODOC_CA_HTTP_NHEADERS     100
#define ECODOC_CA_HTTP_TIMEOUT      10       /* s to read a request */
#define ECODOC_CA_HTTP_CHILDREN     32       /* connections at once */


typedef struct {
    const char  *method;
    const char  *path;                        /* without the query */
    const char  *name[ECODOC_CA_HTTP_NHEADERS];
    const char  *value[ECODOC_CA_HTTP_NHEADERS];
    int          nheaders;
    const char  *body;
    size_t       body_len;
} ecodoc_ca_req_t;


typedef struct {
    int      status;
    char     head[2048];                      /* extra header lines */
    size_t   head_len;
    char    *body;
    size_t   len;
    size_t   size;
    int      failed;                          /* out of memory */
} ecodoc_ca_resp_t;


typedef void (*ecodoc_ca_http_handler_pt)(void *ctx, ecodoc_ca_req_t *req,
    ecodoc_ca_resp_t *resp);


/* serves until SIGTERM/SIGINT; removes the socket; 0 or -1 reported */
int ecodoc_ca_http_serve(const char *path, int mode,
    ecodoc_ca_http_handler_pt handler, void *ctx);

/* a line on stderr with the time and the process ID */
void ecodoc_ca_http_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* a request header's value (the first), or NULL */
const char *ecodoc_ca_http_header(ecodoc_ca_req_t *req, const char *name);

/*
 * A field of an application/x-www-form-urlencoded body or a cookie,
 * decoded into a malloc'ed string; NULL when absent (or not decodable).
 */
char *ecodoc_ca_http_field(const char *data, size_t len, const char *name);
char *ecodoc_ca_http_cookie(ecodoc_ca_req_t *req, const char *name);

/* %XX decoding in place; -1 on a malformed escape or a NUL */
int ecodoc_ca_http_unescape(char *s, int plus);

/* 1 when the client prefers English to Japanese */
int ecodoc_ca_http_english(ecodoc_ca_req_t *req);

/* the response */
void ecodoc_ca_resp_add(ecodoc_ca_resp_t *resp, const char *s, size_t n);
void ecodoc_ca_resp_puts(ecodoc_ca_resp_t *resp, const char *s);
void ecodoc_ca_resp_html(ecodoc_ca_resp_t *resp, const char *s);
void ecodoc_ca_resp_header(ecodoc_ca_resp_t *resp, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* ECODOC_CA_HTTP_H */
