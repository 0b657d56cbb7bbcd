/*
 * Sessions and form tokens: the __Host- cookie and its 256-bit token, the
 * session ID stored in Redis (its hash) and its record, HMAC form tokens.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ngx_http_ecodoc.h"


#define NGX_HTTP_ECODOC_CSRF_TTL      3600
#define NGX_HTTP_ECODOC_SECRET_MIN    32
#define NGX_HTTP_ECODOC_SECRET_MAX    4096


static ngx_int_t ngx_http_ecodoc_token_valid(u_char *p, size_t len);
static ngx_int_t ngx_http_ecodoc_csrf_mac(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, time_t t, u_char *out);


/*
 * Finds the session cookie among the Cookie headers: the first pair named
 * __Host-ecodoc holding a well-formed token; anything else is ignored.
 * The connection remembers the last token and its hash: a browser sends
 * the same cookie with every request.
 */

void
ngx_http_ecodoc_session_cookie(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx)
{
    u_char                  *p, *end, *name, *eq, *val, *vend, *next;
    ngx_table_elt_t         *h;
    ngx_http_ecodoc_conn_t  *conn;
#if (nginx_version < 1023000)
    ngx_uint_t               i;
    ngx_table_elt_t        **hh;
#endif
    u_char                   md[32];

    static ngx_str_t   cookie = ngx_string(NGX_HTTP_ECODOC_COOKIE);

    ngx_str_set(&ctx->sid, "");
    conn = ctx->conn;

    /* 1.23.0 turned the array of Cookie headers into a linked list */

#if (nginx_version >= 1023000)
    for (h = r->headers_in.cookie; h; h = h->next) {
#else
    hh = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        h = hh[i];
#endif
        p = h->value.data;
        end = p + h->value.len;

        for ( /* void */ ; p < end; p = next + 1) {
            next = ngx_strlchr(p, end, ';');
            if (next == NULL) {
                next = end;
            }

            while (p < next && *p == ' ') {
                p++;
            }

            name = p;
            eq = ngx_strlchr(p, next, '=');

            if (eq == NULL || (size_t) (eq - name) != cookie.len
                || ngx_strncmp(name, cookie.data, cookie.len) != 0)
            {
                continue;
            }

            val = eq + 1;
            vend = next;

            while (vend > val && vend[-1] == ' ') {
                vend--;
            }

            if (ngx_http_ecodoc_token_valid(val, vend - val) != NGX_OK) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "ecodoc: ignored a malformed session cookie");
                continue;
            }

            /* a copy: HTTP/2 streams of one connection may differ */

            ctx->sid.data = ngx_pnalloc(r->pool, NGX_HTTP_ECODOC_SID_LEN);
            if (ctx->sid.data == NULL) {
                ngx_str_set(&ctx->sid, "");
                return;
            }

            if (!conn->has_token
                || ngx_memcmp(conn->token, val, NGX_HTTP_ECODOC_TOKEN_LEN)
                   != 0)
            {
                EVP_Digest(val, NGX_HTTP_ECODOC_TOKEN_LEN, md, NULL,
                           EVP_sha256(), NULL);
                ngx_hex_dump(conn->sid, md, sizeof(md));
                ngx_memcpy(conn->sid_bin, md, sizeof(md));
                ngx_memcpy(conn->token, val, NGX_HTTP_ECODOC_TOKEN_LEN);
                conn->has_token = 1;
            }

            ngx_memcpy(ctx->sid.data, conn->sid, NGX_HTTP_ECODOC_SID_LEN);
            ctx->sid.len = NGX_HTTP_ECODOC_SID_LEN;
            ngx_memcpy(ctx->sid_bin, conn->sid_bin,
                       NGX_HTTP_ECODOC_DIGEST_LEN);

            return;
        }
    }
}


/*
 * Reads a session's record, "FP CREATED INITIAL USER" as the FINISH script
 * wrote it: NGX_OK if it is alive and bound to this request's certificate,
 * with its user and whether the password is still the initial one.
 * NGX_DECLINED leaves the decision to the GATE script, which knows why.
 */

ngx_int_t
ngx_http_ecodoc_session_record(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, u_char *p, size_t len, ngx_uint_t *initial)
{
    u_char                       *end, *c;
    time_t                        created;
    ngx_http_ecodoc_main_conf_t  *emcf;

    end = p + len;

    if (len < NGX_HTTP_ECODOC_FP_LEN + sizeof(" 0 0 u") - 1
        || ngx_memcmp(p, ctx->fp.data, NGX_HTTP_ECODOC_FP_LEN) != 0
        || p[NGX_HTTP_ECODOC_FP_LEN] != ' ')
    {
        return NGX_DECLINED;
    }

    p += NGX_HTTP_ECODOC_FP_LEN + 1;

    for (c = p; c < end && *c >= '0' && *c <= '9'; c++) { /* void */ }

    created = ngx_atotm(p, c - p);

    if (created == NGX_ERROR || (size_t) (end - c) < sizeof(" 0 u") - 1
        || c[0] != ' ' || (c[1] != '0' && c[1] != '1') || c[2] != ' ')
    {
        return NGX_DECLINED;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    /*
     * past its lifetime by this host's clock: the script drops it by
     * Redis' clock, the one that wrote "created"
     */

    if (ngx_time() - created > emcf->session_lifetime) {
        return NGX_DECLINED;
    }

    *initial = (c[1] == '1');

    p = c + 3;

    ctx->user.len = end - p;
    ctx->user.data = ngx_pnalloc(r->pool, ctx->user.len + 1);
    if (ctx->user.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->user.data, p, ctx->user.len);
    ctx->user.data[ctx->user.len] = '\0';

    if (ngx_http_ecodoc_user_ok(&ctx->user) != NGX_OK) {
        ngx_str_null(&ctx->user);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ecodoc_token_valid(u_char *p, size_t len)
{
    size_t  i;

    if (len != NGX_HTTP_ECODOC_TOKEN_LEN) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')
              || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a new 256-bit token for the cookie, and its hash, the session ID */

ngx_int_t
ngx_http_ecodoc_session_new(ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_str_t  src, dst;
    u_char     raw[32], md[32];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    src.data = raw;
    src.len = sizeof(raw);
    dst.data = ctx->token;

    ngx_encode_base64url(&dst, &src);

    if (dst.len != NGX_HTTP_ECODOC_TOKEN_LEN) {
        return NGX_ERROR;
    }

    EVP_Digest(ctx->token, NGX_HTTP_ECODOC_TOKEN_LEN, md, NULL, EVP_sha256(),
               NULL);
    ngx_hex_dump(ctx->new_sid, md, sizeof(md));

    OPENSSL_cleanse(raw, sizeof(raw));

    return NGX_OK;
}


ngx_int_t
ngx_http_ecodoc_session_set_cookie(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_flag_t clear)
{
    u_char           *p;
    size_t            len;
    ngx_table_elt_t  *h;

    static u_char     attrs[] = "; Path=/; Secure; HttpOnly; SameSite=Strict";
    static u_char     expire[] = "; Max-Age=0";

    len = sizeof(NGX_HTTP_ECODOC_COOKIE "=") - 1 + NGX_HTTP_ECODOC_TOKEN_LEN
          + sizeof(attrs) - 1 + sizeof(expire) - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Set-Cookie");
    h->value.data = p;

    p = ngx_cpymem(p, NGX_HTTP_ECODOC_COOKIE "=",
                   sizeof(NGX_HTTP_ECODOC_COOKIE "=") - 1);

    if (!clear) {
        p = ngx_cpymem(p, ctx->token, NGX_HTTP_ECODOC_TOKEN_LEN);
    }

    p = ngx_cpymem(p, attrs, sizeof(attrs) - 1);

    if (clear) {
        p = ngx_cpymem(p, expire, sizeof(expire) - 1);
    }

    h->value.len = p - h->value.data;

    return NGX_OK;
}


/*
 * Form tokens: "<time in hex>.<HMAC-SHA256(secret, fingerprint, session,
 * time)>", so a token only works with this certificate and this cookie.
 */

ngx_int_t
ngx_http_ecodoc_csrf_make(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_str_t *token)
{
    u_char     *p;
    ngx_str_t   src, dst;
    u_char      mac[32];

    if (ngx_http_ecodoc_csrf_mac(r, ctx, ngx_time(), mac) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 1 + 44);
    if (p == NULL) {
        return NGX_ERROR;
    }

    token->data = p;
    p = ngx_sprintf(p, "%xT.", ngx_time());

    src.data = mac;
    src.len = sizeof(mac);
    dst.data = p;
    ngx_encode_base64url(&dst, &src);

    token->len = p + dst.len - token->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_ecodoc_csrf_check(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    u_char     *dot;
    time_t      t;
    ngx_str_t   src, dst;
    u_char      mac[32], want[44];

    src = ctx->f_csrf;

    dot = ngx_strlchr(src.data, src.data + src.len, '.');
    if (dot == NULL || dot == src.data || dot - src.data > 16) {
        return NGX_DECLINED;
    }

    t = ngx_hextoi(src.data, dot - src.data);

    if (t == NGX_ERROR || t > ngx_time() + 60
        || ngx_time() - t > NGX_HTTP_ECODOC_CSRF_TTL)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ecodoc_csrf_mac(r, ctx, t, mac) != NGX_OK) {
        return NGX_ERROR;
    }

    src.data = mac;
    src.len = sizeof(mac);
    dst.data = want;
    ngx_encode_base64url(&dst, &src);

    if ((size_t) (ctx->f_csrf.data + ctx->f_csrf.len - dot - 1) != dst.len
        || CRYPTO_memcmp(dot + 1, want, dst.len) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ecodoc_csrf_mac(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    time_t t, u_char *out)
{
    u_char                       *p;
    unsigned int                  len;
    ngx_http_ecodoc_main_conf_t  *emcf;
    u_char                        msg[NGX_HTTP_ECODOC_FP_LEN
                                      + NGX_HTTP_ECODOC_SID_LEN
                                      + NGX_TIME_T_LEN + 2];

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    p = ngx_cpymem(msg, ctx->fp.data, ctx->fp.len);
    *p++ = '|';
    p = ngx_cpymem(p, ctx->sid.data, ctx->sid.len);
    *p++ = '|';
    p = ngx_sprintf(p, "%T", t);

    if (HMAC(EVP_sha256(), emcf->secret, sizeof(emcf->secret), msg, p - msg,
             out, &len)
        == NULL || len != 32)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * ecodoc_secret_file: the form tokens' key, the SHA-256 of the file's
 * contents (32 to 4096 bytes, e.g. "openssl rand -base64 48"), so that
 * every nginx node given the same file accepts the others' tokens, also
 * across reloads. Without it, each configuration load draws its own key.
 */

char *
ngx_http_ecodoc_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_main_conf_t *emcf = conf;

    char             *rc;
    u_char           *buf;
    off_t             size;
    ssize_t           n;
    ngx_str_t        *value;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (emcf->secret_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = value[1];
    file.log = cf->log;

    if (ngx_conf_full_name(cf->cycle, &file.name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    file.fd = ngx_open_file(file.name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &file.name);
        return NGX_CONF_ERROR;
    }

    rc = NGX_CONF_ERROR;
    buf = NULL;
    size = 0;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &file.name);
        goto done;
    }

    size = ngx_file_size(&fi);

    if (size < NGX_HTTP_ECODOC_SECRET_MIN
        || size > NGX_HTTP_ECODOC_SECRET_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" holds %O bytes, a secret needs %d to %d "
                           "(e.g. \"openssl rand -base64 48\")",
                           &file.name, size, NGX_HTTP_ECODOC_SECRET_MIN,
                           NGX_HTTP_ECODOC_SECRET_MAX);
        goto done;
    }

    if (fi.st_mode & S_IRWXO) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" is readable by others: anyone who reads "
                           "it can make form tokens", &file.name);
    }

    buf = ngx_alloc(size, cf->log);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, buf, size, 0);

    if (n == NGX_ERROR) {
        goto done;
    }

    if (n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           ngx_read_file_n " \"%V\" returned only %z bytes "
                           "instead of %O", &file.name, n, size);
        goto done;
    }

    SHA256(buf, size, emcf->secret);
    emcf->secret_set = 1;
    rc = NGX_CONF_OK;

done:

    if (buf != NULL) {
        OPENSSL_cleanse(buf, size);
        ngx_free(buf);
    }

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &file.name);
    }

    return rc;
}


ngx_int_t
ngx_http_ecodoc_random_hex(u_char *dst, size_t len)
{
    u_char  raw[32];

    if (len > 2 * sizeof(raw) || RAND_bytes(raw, len / 2) != 1) {
        return NGX_ERROR;
    }

    ngx_hex_dump(dst, raw, len / 2);

    return NGX_OK;
}
