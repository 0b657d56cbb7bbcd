/*
 * Fuzz harness: the "next" of the login page's query string, as the page
 * takes it: ngx_http_arg, ngx_http_ecodoc_unescape, ngx_http_ecodoc_next_ok.
 */

#include "../ngx_fuzz.h"


/* the input: the query string (r->args) */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t            next, out;
    ngx_http_request_t  *r;

    r = ngx_fuzz_request();
    if (r == NULL) {
        return 0;
    }

    r->args.len = size;
    r->args.data = ngx_pnalloc(r->pool, ngx_max(size, 1));

    if (r->args.data != NULL) {
        ngx_memcpy(r->args.data, data, size);

        if (ngx_http_arg(r, (u_char *) "next", 4, &next) == NGX_OK
            && ngx_http_ecodoc_unescape(r->pool, next.data,
                                        next.data + next.len, &out) == NGX_OK
            && ngx_http_ecodoc_next_ok(&out) == NGX_OK)
        {
            /* a path on this server: "/", no "//", "/\", nor a control */

            if (out.data[0] != '/' || (out.len > 1 && out.data[1] == '/')
                || ngx_strlchr(out.data, out.data + out.len, '\\') != NULL)
            {
                abort();
            }
        }
    }

    ngx_destroy_pool(r->pool);

    return 0;
}
