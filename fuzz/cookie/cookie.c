/*
 * Fuzz harness: the session cookie among the Cookie headers,
 * ngx_http_ecodoc_session_cookie() (ngx_http_ecodoc_session.c).
 */

#include "../ngx_fuzz.h"


/*
 * The input: Cookie headers, one per line.  The cookie is looked for
 * twice on one connection, as for two requests of one browser: the second
 * time the connection knows the token.
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_uint_t               i;
    ngx_http_request_t      *r;
    ngx_http_ecodoc_ctx_t    ctx;
    ngx_http_ecodoc_conn_t   conn;

    r = ngx_fuzz_request();
    if (r == NULL) {
        return 0;
    }

    r->headers_in.cookie = ngx_fuzz_headers(r, "Cookie", data, size);

    if (r->headers_in.cookie == NULL) {
        goto done;
    }

    ngx_memzero(&conn, sizeof(ngx_http_ecodoc_conn_t));

    for (i = 0; i < 2; i++) {
        ngx_memzero(&ctx, sizeof(ngx_http_ecodoc_ctx_t));
        ctx.conn = &conn;

        ngx_http_ecodoc_session_cookie(r, &ctx);

        /* no session, or the hash of a token: 64 hex digits */

        if (ctx.sid.len != 0
            && (ctx.sid.len != NGX_HTTP_ECODOC_SID_LEN || !conn.has_token))
        {
            abort();
        }
    }

done:

    ngx_destroy_pool(r->pool);

    return 0;
}
