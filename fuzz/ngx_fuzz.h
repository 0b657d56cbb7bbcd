/*
 * What the module's harnesses share: nginx's core set up once (time, a
 * log, the cycle), and a request built of real nginx structures per input.
 */

#ifndef _NGX_FUZZ_H_INCLUDED_
#define _NGX_FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_log_t                     ngx_fuzz_log;
static ngx_open_file_t               ngx_fuzz_log_file;
static ngx_cycle_t                   ngx_fuzz_cycle;
static ngx_http_ecodoc_main_conf_t   ngx_fuzz_emcf;
static ngx_http_ecodoc_loc_conf_t    ngx_fuzz_elcf;
static void                         *ngx_fuzz_main_conf[1];
static void                         *ngx_fuzz_loc_conf[1];


/*
 * Once per process: the time, a log at "info" into /dev/null (so that the
 * module's log lines, with the input in them, are formatted), the cycle,
 * and the module's configurations at the index nginx would give them.
 */

static ngx_inline void
ngx_fuzz_init(void)
{
    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    ngx_time_init();

    ngx_fuzz_log_file.fd = open("/dev/null", O_WRONLY);
    ngx_fuzz_log.file = &ngx_fuzz_log_file;
    ngx_fuzz_log.log_level = NGX_LOG_INFO;

    ngx_fuzz_cycle.log = &ngx_fuzz_log;
    ngx_cycle = &ngx_fuzz_cycle;

    ngx_fuzz_emcf.session_lifetime = 86400;
    ngx_fuzz_elcf.password_min_length = 8;

    ngx_http_ecodoc_module.ctx_index = 0;
    ngx_fuzz_main_conf[0] = &ngx_fuzz_emcf;
    ngx_fuzz_loc_conf[0] = &ngx_fuzz_elcf;
}


/*
 * A request on a pool of its own, with an empty list of headers, nginx's
 * core set up at the first.  The pool has no room of its own: all but the
 * smallest allocations are malloc()ed one by one, so that ASan knows where
 * each ends.  The caller destroys r->pool.
 */

static ngx_inline ngx_http_request_t *
ngx_fuzz_request(void)
{
    ngx_pool_t          *pool;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    static ngx_uint_t  inited;

    if (!inited) {
        ngx_fuzz_init();
        inited = 1;
    }

    pool = ngx_create_pool(NGX_MIN_POOL_SIZE, &ngx_fuzz_log);
    if (pool == NULL) {
        return NULL;
    }

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));

    if (r == NULL || c == NULL
        || ngx_list_init(&r->headers_in.headers, pool, 4,
                         sizeof(ngx_table_elt_t)) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    c->log = &ngx_fuzz_log;
    c->pool = pool;

    r->connection = c;
    r->pool = pool;
    r->main_conf = ngx_fuzz_main_conf;
    r->loc_conf = ngx_fuzz_loc_conf;

    return r;
}


/* a header as nginx's parser leaves it: key and value NUL-terminated */

static ngx_inline ngx_table_elt_t *
ngx_fuzz_header(ngx_http_request_t *r, char *key, u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(key);
    h->key.data = (u_char *) key;
    h->lowcase_key = (u_char *) key;
    h->next = NULL;

    h->value.len = len;
    h->value.data = ngx_pnalloc(r->pool, len + 1);
    if (h->value.data == NULL) {
        return NULL;
    }

    ngx_memcpy(h->value.data, value, len);
    h->value.data[len] = '\0';

    return h;
}


/*
 * The input as headers of one name: one per line, as a client may send
 * several (each line is a header, whatever bytes it holds)
 */

static ngx_inline ngx_table_elt_t *
ngx_fuzz_headers(ngx_http_request_t *r, char *key, const uint8_t *data,
    size_t size)
{
    u_char           *p, *end, *nl;
    ngx_table_elt_t  *h, *first, **last;

    first = NULL;
    last = &first;

    p = (u_char *) data;
    end = p + size;

    for ( ;; ) {
        nl = ngx_strlchr(p, end, '\n');
        if (nl == NULL) {
            nl = end;
        }

        h = ngx_fuzz_header(r, key, p, nl - p);
        if (h == NULL) {
            return NULL;
        }

        *last = h;
        last = &h->next;

        if (nl == end) {
            return first;
        }

        p = nl + 1;
    }
}


#endif /* _NGX_FUZZ_H_INCLUDED_ */
