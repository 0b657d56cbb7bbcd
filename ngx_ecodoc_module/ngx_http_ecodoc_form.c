/*
 * A POSTed form: its body in one piece, decoded strictly, and the checks
 * of its fields (user ID, passwords, UTF-8, next) and of its origin.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


#define NGX_HTTP_ECODOC_NEXT_MAX     2048


static ngx_int_t ngx_http_ecodoc_text_ok(ngx_str_t *s, size_t max);


/* the body in one piece: 400 wrong type, 413 too large */

ngx_int_t
ngx_http_ecodoc_form_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_str_t    *type;
    ngx_chain_t  *cl;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    if (r->headers_in.content_type == NULL) {
        return NGX_HTTP_BAD_REQUEST;
    }

    type = &r->headers_in.content_type->value;

    if (type->len < form.len
        || ngx_strncasecmp(type->data, form.data, form.len) != 0
        || (type->len > form.len && type->data[form.len] != ';'
            && type->data[form.len] != ' '))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    /*
     * A body may come in several buffers, and a chunked one (or one of
     * HTTP/2 without a length) ends with an empty buffer that is in
     * neither memory nor a file: only the bytes in memory count.  A body
     * that nginx wrote to a file is not read back.
     */

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            len += b->last - b->pos;

        } else if (b->in_file && b->file_last > b->file_pos) {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }

    if (len > NGX_HTTP_ECODOC_FORM_MAX) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    body->len = len;
    body->data = ngx_pnalloc(r->pool, len + 1);
    if (body->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body->data;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        if (ngx_buf_in_memory(cl->buf)) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


/*
 * Splits "a=1&b=2", decoding strictly; a field twice, a pair without '=',
 * a bad escape or a missing field of the page's form is malformed.
 */

ngx_int_t
ngx_http_ecodoc_form_parse(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_str_t *body)
{
    u_char                   *p, *end, *amp, *eq;
    ngx_str_t                 name, value, *dst;
    ngx_uint_t                i;
    ngx_http_ecodoc_field_t  *f, *fields;

    static ngx_http_ecodoc_field_t  extra[] = {
        { "csrf", NULL, 0, NULL, offsetof(ngx_http_ecodoc_ctx_t, f_csrf) },
        { "next", NULL, 0, NULL, offsetof(ngx_http_ecodoc_ctx_t, f_next) },
        { NULL, NULL, 0, NULL, 0 }
    };

    fields = ngx_http_ecodoc_page_table[ctx->page].fields;

    p = body->data;
    end = p + body->len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if (eq == NULL
            || ngx_http_ecodoc_unescape(r->pool, p, eq, &name) != NGX_OK
            || ngx_http_ecodoc_unescape(r->pool, eq + 1, amp, &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = amp + 1;

        for (i = 0; i < 2; i++) {
            for (f = i ? extra : fields; f->name; f++) {
                if (name.len != ngx_strlen(f->name)
                    || ngx_strncmp(name.data, f->name, name.len) != 0)
                {
                    continue;
                }

                dst = (ngx_str_t *) ((u_char *) ctx + f->offset);

                if (dst->data) {
                    return NGX_ERROR;
                }

                *dst = value;
            }
        }
    }

    for (f = fields; f->name; f++) {
        dst = (ngx_str_t *) ((u_char *) ctx + f->offset);

        if (dst->data == NULL || dst->len == 0
            || ngx_http_ecodoc_text_ok(dst, ECODOC_PASSWD_MAX_INPUT) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* %XX and '+' decoding that refuses what a browser never sends */

ngx_int_t
ngx_http_ecodoc_unescape(ngx_pool_t *pool, u_char *p, u_char *end,
    ngx_str_t *out)
{
    long  n;

    out->data = ngx_pnalloc(pool, end - p + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    n = ecodoc_web_unescape(out->data, p, end - p, ECODOC_WEB_PLUS);
    if (n < 0) {
        return NGX_ERROR;
    }

    out->len = (size_t) n;
    out->data[n] = '\0';

    return NGX_OK;
}


/* well-formed UTF-8 without control characters, at most max bytes */

static ngx_int_t
ngx_http_ecodoc_text_ok(ngx_str_t *s, size_t max)
{
    u_char      *p, *end;
    uint32_t     c, min;
    ngx_uint_t   n, i;

    if (s->len > max) {
        return NGX_DECLINED;
    }

    p = s->data;
    end = p + s->len;

    while (p < end) {
        c = *p++;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return NGX_DECLINED;
            }

            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1; c &= 0x1f; min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; c &= 0x0f; min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; c &= 0x07; min = 0x10000;

        } else {
            return NGX_DECLINED;
        }

        if ((size_t) (end - p) < n) {
            return NGX_DECLINED;
        }

        for (i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return NGX_DECLINED;
            }

            c = c << 6 | (p[i] & 0x3f);
        }

        p += n;

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)
            || c < 0xa0)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a user ID: 1-64 of [A-Za-z0-9._@-], safe in a header and a key */

ngx_int_t
ngx_http_ecodoc_user_ok(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_ECODOC_USER_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < s->len; i++) {
        if (!((s->data[i] >= 'a' && s->data[i] <= 'z')
              || (s->data[i] >= 'A' && s->data[i] <= 'Z')
              || (s->data[i] >= '0' && s->data[i] <= '9')
              || s->data[i] == '.' || s->data[i] == '_'
              || s->data[i] == '@' || s->data[i] == '-'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* "next" may only be a path on this server: "/x", never "//x" or "/\x" */

ngx_int_t
ngx_http_ecodoc_next_ok(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_ECODOC_NEXT_MAX
        || s->data[0] != '/'
        || (s->len > 1 && (s->data[1] == '/' || s->data[1] == '\\')))
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] <= 0x20 || s->data[i] >= 0x7f || s->data[i] == '\\') {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * A browser sends Origin with every POST; when it is there it must be this
 * server.  Sec-Fetch-Site, when there, must say "same-origin" (or "none":
 * the user's own doing), whatever Origin says.  Either twice is refused.
 */

ngx_int_t
ngx_http_ecodoc_same_origin(ngx_http_request_t *r)
{
    u_char           *p;
    ngx_str_t        *host, *origin, *site;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    origin = NULL;
    site = NULL;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == 6
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin", 6) == 0)
            {
                if (origin) {
                    return NGX_DECLINED;
                }

                origin = &h[i].value;

            } else if (h[i].key.len == 14
                       && ngx_strncasecmp(h[i].key.data,
                                          (u_char *) "Sec-Fetch-Site", 14)
                          == 0)
            {
                if (site) {
                    return NGX_DECLINED;
                }

                site = &h[i].value;
            }
        }
    }

    if (site
        && !(site->len == 11
             && ngx_strncmp(site->data, "same-origin", 11) == 0)
        && !(site->len == 4 && ngx_strncmp(site->data, "none", 4) == 0))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ecodoc: Sec-Fetch-Site \"%V\": not this origin",
                      site);
        return NGX_DECLINED;
    }

    if (origin == NULL) {
        return NGX_OK;
    }

    if (r->headers_in.host == NULL) {
        return NGX_DECLINED;
    }

    host = &r->headers_in.host->value;
    p = origin->data;

    if (origin->len != sizeof("https://") - 1 + host->len
        || ngx_strncasecmp(p, (u_char *) "https://", 8) != 0
        || ngx_strncasecmp(p + 8, host->data, host->len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ecodoc: Origin \"%V\" is not this server",
                      origin);
        return NGX_DECLINED;
    }

    return NGX_OK;
}
