/*
 * ecodoc-ca enroll-server: the HTTP side on GNU libmicrohttpd: the unix
 * socket, the server's limits, the request as the site sees it, the reply.
 */

#ifndef ECODOC_CA_HTTP_H
#define ECODOC_CA_HTTP_H

#include <stddef.h>


/*
 * The limits (README "The enrollment server"): connections at once, each
 * served by its own thread, and more wait in the socket's backlog; what
 * libmicrohttpd may take for one connection's head and buffers; the
 * seconds a connection may stay silent; the body a form may have (a
 * larger one is read to its end, up to the drain limit, then refused).
 */
#define ECODOC_CA_HTTP_CONNECTIONS  256
#define ECODOC_CA_HTTP_BACKLOG      256
#define ECODOC_CA_HTTP_MEMORY       32768
#define ECODOC_CA_HTTP_TIMEOUT      10
#define ECODOC_CA_HTTP_BODY_MAX     65536
#define ECODOC_CA_HTTP_DRAIN_MAX    (1024 * 1024)   /* a larger one: 413 */
#define ECODOC_CA_HTTP_NHEADERS     100


typedef struct {
    const char  *method;
    const char  *path;                        /* without the query */
    const char  *name[ECODOC_CA_HTTP_NHEADERS];
    const char  *value[ECODOC_CA_HTTP_NHEADERS];
    int          nheaders;
    const char  *body;                        /* NUL-terminated, no NUL */
    size_t       body_len;
} ecodoc_ca_req_t;


typedef struct {
    int      status;
    char     head[2048];                      /* "Name: value\r\n" lines */
    size_t   head_len;
    char    *body;
    size_t   len;
    size_t   size;
    int      failed;                          /* out of memory or room */
} ecodoc_ca_resp_t;


/*
 * Answers one request into resp; called in the connection's own thread,
 * so several run at once
 */
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
