/*
 * ngx_http_ecodoc_module: directives, configuration, variables, the removal
 * of client-sent identity headers and the access-phase gate.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ngx_http_ecodoc.h"


static ngx_int_t ngx_http_ecodoc_strip_headers(ngx_http_request_t *r);
static ngx_int_t ngx_http_ecodoc_gate_handler(ngx_http_request_t *r);
static void ngx_http_ecodoc_gate_session_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_gate_finish(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_gate_done(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_ecodoc_gate_verdict(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_ctx_cleanup(void *data);
static void ngx_http_ecodoc_conn_free(void *parent, void *ptr,
    CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

static ngx_int_t ngx_http_ecodoc_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ecodoc_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ecodoc_add_variables(ngx_conf_t *cf);
static void *ngx_http_ecodoc_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ecodoc_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ecodoc_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ecodoc_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ecodoc_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ecodoc_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ecodoc_wait(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ecodoc_node(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ecodoc_node_t *node);
static ngx_int_t ngx_http_ecodoc_redis_check(ngx_conf_t *cf,
    ngx_http_ecodoc_main_conf_t *emcf);
static char *ngx_http_ecodoc_scrypt(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ecodoc_gate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ecodoc_check_gate(ngx_conf_t *cf,
    ngx_http_ecodoc_loc_conf_t *conf);
static ngx_int_t ngx_http_ecodoc_check_pages(ngx_conf_t *cf);
static char *ngx_http_ecodoc_pages(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ecodoc_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_ecodoc_init_process(ngx_cycle_t *cycle);
static void ngx_http_ecodoc_exit_process(ngx_cycle_t *cycle);


static int  ngx_http_ecodoc_conn_index = -1;


static ngx_conf_bitmask_t  ngx_http_ecodoc_tls_protocols[] = {
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ecodoc_commands[] = {

    { ngx_string("ecodoc"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_ecodoc_gate,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, gate),
      NULL },

    { ngx_string("ecodoc_pages"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ecodoc_pages,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_pages_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, pages_uri),
      NULL },

    { ngx_string("ecodoc_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ecodoc_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_redis_password"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, redis_password),
      NULL },

    { ngx_string("ecodoc_redis_database"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, redis_db),
      NULL },

    { ngx_string("ecodoc_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("ecodoc_redis_tls"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, tls),
      NULL },

    { ngx_string("ecodoc_redis_tls_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, tls_trusted),
      NULL },

    { ngx_string("ecodoc_redis_tls_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, tls_certificate),
      NULL },

    { ngx_string("ecodoc_redis_tls_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, tls_key),
      NULL },

    { ngx_string("ecodoc_redis_tls_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, tls_name),
      NULL },

    { ngx_string("ecodoc_redis_tls_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, tls_protocols),
      &ngx_http_ecodoc_tls_protocols },

    { ngx_string("ecodoc_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ecodoc_sentinel,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_redis_sentinel_password"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, sentinel_password),
      NULL },

    { ngx_string("ecodoc_redis_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ecodoc_wait,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_redis_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, prefix),
      NULL },

    { ngx_string("ecodoc_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ecodoc_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_max_failures"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, max_failures),
      NULL },

    { ngx_string("ecodoc_session_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, session_timeout),
      NULL },

    { ngx_string("ecodoc_session_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, session_lifetime),
      NULL },

    { ngx_string("ecodoc_scrypt"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_ecodoc_scrypt,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("ecodoc_signup_subject_match"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, subject_match),
      NULL },

    { ngx_string("ecodoc_password_min_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, password_min_length),
      NULL },

    { ngx_string("ecodoc_password_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
      ngx_http_ecodoc_password_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_forgot_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, forgot_url),
      NULL },

    { ngx_string("ecodoc_enroll_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, enroll_url),
      NULL },

    { ngx_string("ecodoc_renewal_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, renewal_url),
      NULL },

    { ngx_string("ecodoc_cert_expiry_notice"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ecodoc_loc_conf_t, expiry_notice),
      NULL },

    { ngx_string("ecodoc_template"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ecodoc_template,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ecodoc_metrics_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ecodoc_secret_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ecodoc_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ecodoc_health_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ecodoc_module_ctx = {
    ngx_http_ecodoc_add_variables,         /* preconfiguration */
    ngx_http_ecodoc_init,                  /* postconfiguration */

    ngx_http_ecodoc_create_main_conf,      /* create main configuration */
    ngx_http_ecodoc_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ecodoc_create_loc_conf,       /* create location configuration */
    ngx_http_ecodoc_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_ecodoc_module = {
    NGX_MODULE_V1,
    &ngx_http_ecodoc_module_ctx,           /* module context */
    ngx_http_ecodoc_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ecodoc_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ecodoc_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_ecodoc_vars[] = {

    { ngx_string("ecodoc_user"), NULL, ngx_http_ecodoc_variable,
      offsetof(ngx_http_ecodoc_ctx_t, user),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("ecodoc_cert_fingerprint"), NULL, ngx_http_ecodoc_variable,
      offsetof(ngx_http_ecodoc_ctx_t, fp),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("ecodoc_status"), NULL, ngx_http_ecodoc_status_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("ecodoc_cert_expires"), NULL, ngx_http_ecodoc_cert_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("ecodoc_cert_not_after"), NULL,
      ngx_http_ecodoc_cert_variable,
      1, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

      ngx_http_null_variable
};


/*
 * Removes every header a backend could read as X-Ecodoc-*: any case, and
 * '_' or '.' in place of '-', since many backends fold those together.
 */

static ngx_int_t
ngx_http_ecodoc_strip_headers(ngx_http_request_t *r)
{
    u_char            c;
    ngx_uint_t        i, j, n, strip;
    ngx_list_t        headers;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    static u_char     prefix[] = "x-ecodoc-";

    strip = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len < sizeof(prefix) - 1) {
            continue;
        }

        for (j = 0; j < sizeof(prefix) - 1; j++) {
            c = ngx_tolower(h[i].key.data[j]);

            if (c == '_' || c == '.') {
                c = '-';
            }

            if (c != prefix[j]) {
                break;
            }
        }

        if (j == sizeof(prefix) - 1) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ecodoc: dropped client header \"%V\"", &h[i].key);
            h[i].hash = 0;
            strip++;
        }
    }

    if (strip == 0) {
        return NGX_DECLINED;
    }

    /* rebuild the list without them: upstream modules send every entry */

    n = 0;
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    if (ngx_list_init(&headers, r->pool, n, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].hash == 0) {
                continue;
            }

            nh = ngx_list_push(&headers);
            if (nh == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            *nh = h[i];
        }
    }

    r->headers_in.headers = headers;

    return NGX_DECLINED;
}


ngx_http_ecodoc_ctx_t *
ngx_http_ecodoc_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ecodoc_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ecodoc_ctx_cleanup;
    cln->data = ctx;

    ngx_str_set(&ctx->sid, "");

    ngx_http_set_ctx(r, ctx, ngx_http_ecodoc_module);

    return ctx;
}


static void
ngx_http_ecodoc_ctx_cleanup(void *data)
{
    ngx_http_ecodoc_ctx_t  *ctx = data;

    ngx_http_ecodoc_redis_cancel(ctx);
    ngx_http_ecodoc_slot_leave(ctx);
}


/*
 * The SHA-256 fingerprint of the verified client certificate, computed once
 * per TLS connection and kept with the SSL object (HTTP/2 streams share it).
 */

ngx_int_t
ngx_http_ecodoc_fingerprint(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    X509                    *cert;
    unsigned int             len;
    ngx_ssl_conn_t          *ssl;
    ngx_http_ecodoc_conn_t  *conn;
    u_char                   md[EVP_MAX_MD_SIZE];

    if (r->connection->ssl == NULL) {
        return NGX_DECLINED;
    }

    ssl = r->connection->ssl->connection;

    conn = SSL_get_ex_data(ssl, ngx_http_ecodoc_conn_index);

    if (conn == NULL) {
        if (SSL_get_verify_result(ssl) != X509_V_OK) {
            return NGX_DECLINED;
        }

        cert = SSL_get_peer_certificate(ssl);
        if (cert == NULL) {
            return NGX_DECLINED;
        }

        if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32) {
            X509_free(cert);
            ngx_ssl_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ecodoc: X509_digest() failed");
            return NGX_ERROR;
        }

        conn = OPENSSL_zalloc(sizeof(ngx_http_ecodoc_conn_t));
        if (conn == NULL) {
            X509_free(cert);
            return NGX_ERROR;
        }

        conn->not_after = ngx_http_ecodoc_cert_not_after(cert);
        X509_free(cert);

        ngx_hex_dump(conn->fp, md, len);
        ngx_memcpy(conn->fp_bin, md, len);

        if (SSL_set_ex_data(ssl, ngx_http_ecodoc_conn_index, conn) != 1) {
            OPENSSL_free(conn);
            return NGX_ERROR;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ecodoc: client certificate %*s",
                       (size_t) NGX_HTTP_ECODOC_FP_LEN, conn->fp);
    }

    ctx->conn = conn;
    ctx->fp.data = conn->fp;
    ctx->fp.len = NGX_HTTP_ECODOC_FP_LEN;

    return NGX_OK;
}


static void
ngx_http_ecodoc_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    OPENSSL_free(ptr);
}


/*
 * the access-phase gate: one Redis round trip per request, a GETEX of the
 * session's record when the client presents a cookie, the GATE script
 * otherwise and when that record does not let the request on
 */

static ngx_int_t
ngx_http_ecodoc_gate_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_ecodoc_ctx_t       *ctx;
    ngx_http_ecodoc_loc_conf_t  *elcf;
    ngx_http_ecodoc_main_conf_t *emcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (!elcf->gate || elcf->pages) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_ecodoc_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->waiting) {
        return NGX_AGAIN;
    }

    if (ctx->done) {
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_GATE
                              + (ctx->status < NGX_HTTP_ECODOC_GATE_N
                                 ? ctx->status : NGX_HTTP_ECODOC_ST_ERROR),
                              1);

        rc = ngx_http_ecodoc_gate_verdict(r, ctx);

        if (rc == NGX_DECLINED) {
            return NGX_OK;
        }

        /* the answer is sent: end the request here, not in the phases */

        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    rc = ngx_http_ecodoc_fingerprint(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ecodoc: no verified client certificate");
        ctx->status = NGX_HTTP_ECODOC_ST_NOCERT;
        ctx->done = 1;
        return ngx_http_ecodoc_gate_handler(r);
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    ngx_http_ecodoc_session_cookie(r, ctx);

    if (emcf->cache && ctx->sid.len
        && ngx_http_ecodoc_cache_get(r, ctx) == NGX_OK)
    {
        ctx->status = NGX_HTTP_ECODOC_ST_OK;
        ctx->done = 1;
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_GATE + NGX_HTTP_ECODOC_ST_OK,
                              1);
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_CACHE_HITS, 1);
        return NGX_OK;
    }

    /*
     * a cookie: its session's record, renewed, is all a live session
     * needs; anything else is for the GATE script to judge
     */

    if (ctx->sid.len) {
        rc = ngx_http_ecodoc_redis_session(r, &ctx->sid,
                                           ngx_http_ecodoc_gate_session_done);

    } else {
        rc = ngx_http_ecodoc_gate_eval(r, ctx, ngx_http_ecodoc_gate_done);
    }

    if (rc != NGX_OK) {
        ctx->status = NGX_HTTP_ECODOC_ST_ERROR;
        ctx->done = 1;
        return ngx_http_ecodoc_gate_handler(r);
    }

    ctx->waiting = 1;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    return NGX_AGAIN;
}


/* the GATE script: whose certificate and session this is, and their state */

ngx_int_t
ngx_http_ecodoc_gate_eval(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_http_ecodoc_redis_handler_pt handler)
{
    ngx_str_t                     args[3];
    ngx_http_ecodoc_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    args[0] = ctx->sid;
    args[1] = emcf->session_timeout_arg;
    args[2] = emcf->session_lifetime_arg;

    return ngx_http_ecodoc_redis_eval(r, NGX_HTTP_ECODOC_SCRIPT_GATE, args, 3,
                                      handler);
}


/* GETEX's answer: the session's record, or nil */

static void
ngx_http_ecodoc_gate_session_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t               rc;
    ngx_uint_t              initial;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (reply == NULL
        || (reply->type != REDIS_REPLY_STRING
            && reply->type != REDIS_REPLY_NIL))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ecodoc: no usable session record from Redis");
        ctx->status = NGX_HTTP_ECODOC_ST_ERROR;
        ngx_http_ecodoc_gate_finish(r, ctx);
        return;
    }

    rc = NGX_DECLINED;
    initial = 0;

    if (reply->type == REDIS_REPLY_STRING) {
        rc = ngx_http_ecodoc_session_record(r, ctx, (u_char *) reply->str,
                                            reply->len, &initial);
    }

    if (rc == NGX_OK) {
        if (initial) {
            ctx->status = NGX_HTTP_ECODOC_ST_INITIAL;

        } else {
            ctx->status = NGX_HTTP_ECODOC_ST_OK;
        }

        ngx_http_ecodoc_gate_finish(r, ctx);
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ecodoc gate: no live session record, asking the script");

    if (rc == NGX_ERROR
        || ngx_http_ecodoc_gate_eval(r, ctx, ngx_http_ecodoc_gate_done)
           != NGX_OK)
    {
        ctx->status = NGX_HTTP_ECODOC_ST_ERROR;
        ngx_http_ecodoc_gate_finish(r, ctx);
    }
}


/* the GATE script's answer: a verdict, and the user */

static void
ngx_http_ecodoc_gate_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    /* a verdict that lets a request on must name its user */

    if (ngx_http_ecodoc_reply_verdict(r->pool, reply, &ctx->status,
                                      &ctx->user, 1)
        != NGX_OK
        || (ctx->status == NGX_HTTP_ECODOC_ST_OK
            && ngx_http_ecodoc_user_ok(&ctx->user) != NGX_OK))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ecodoc: no usable verdict from Redis");
        ctx->status = NGX_HTTP_ECODOC_ST_ERROR;
        ngx_str_null(&ctx->user);
    }

    ngx_http_ecodoc_gate_finish(r, ctx);
}


static void
ngx_http_ecodoc_gate_finish(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_http_ecodoc_main_conf_t  *emcf;

    ctx->waiting = 0;
    ctx->done = 1;

    r->read_event_handler = ngx_http_block_reading;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    /*
     * a session Redis no longer confirms (ended on another node, or a
     * renewal that failed) is forgotten here too, not served from the
     * cache until its entry expires
     */

    if (emcf->cache) {
        if (ctx->status == NGX_HTTP_ECODOC_ST_OK) {
            ngx_http_ecodoc_cache_put(r, ctx);

        } else {
            ngx_http_ecodoc_cache_forget(r, ctx);
        }
    }

    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_ecodoc_gate_verdict(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_str_t                    to, args;
    ngx_uint_t                   browser, msg, status;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ecodoc gate: %V \"%V\"",
                   &ngx_http_ecodoc_status_names[ctx->status], &ctx->user);

    if (ctx->status == NGX_HTTP_ECODOC_ST_OK) {
        return NGX_DECLINED;      /* let it through */
    }

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);
    browser = r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD);
    ngx_str_null(&args);

    to.len = elcf->pages_uri.len + sizeof("password") - 1;
    to.data = ngx_pnalloc(r->pool, to.len);
    if (to.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(to.data, elcf->pages_uri.data, elcf->pages_uri.len);
    status = NGX_HTTP_FORBIDDEN;

    switch (ctx->status) {

    case NGX_HTTP_ECODOC_ST_UNBOUND:
    case NGX_HTTP_ECODOC_ST_NOUSER:
        to.len = ngx_cpymem(to.data + elcf->pages_uri.len, "signup", 6)
                 - to.data;
        msg = NGX_HTTP_ECODOC_MSG_NOT_SIGNED_UP;
        break;

    case NGX_HTTP_ECODOC_ST_NOSESSION:
        to.len = ngx_cpymem(to.data + elcf->pages_uri.len, "login", 5)
                 - to.data;
        args = r->unparsed_uri;
        msg = NGX_HTTP_ECODOC_MSG_LOGIN_REQUIRED;
        status = NGX_HTTP_UNAUTHORIZED;
        break;

    case NGX_HTTP_ECODOC_ST_INITIAL:
        to.len = ngx_cpymem(to.data + elcf->pages_uri.len, "password", 8)
                 - to.data;
        msg = NGX_HTTP_ECODOC_MSG_CHANGE_REQUIRED;
        break;

    case NGX_HTTP_ECODOC_ST_LOCKED:
        browser = 0;
        msg = NGX_HTTP_ECODOC_MSG_LOCKED;
        break;

    case NGX_HTTP_ECODOC_ST_REVOKED:
        browser = 0;
        msg = NGX_HTTP_ECODOC_MSG_REVOKED;
        break;

    case NGX_HTTP_ECODOC_ST_NOCERT:
        browser = 0;
        msg = NGX_HTTP_ECODOC_MSG_NO_CERT;
        break;

    default:
        browser = 0;
        msg = NGX_HTTP_ECODOC_MSG_UNAVAILABLE;
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (browser) {
        return ngx_http_ecodoc_redirect(r, &to, &args);
    }

    return ngx_http_ecodoc_gate_page(r, ctx, status, msg);
}


static ngx_int_t
ngx_http_ecodoc_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t              *s;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ctx == NULL || !ctx->done
        || ctx->status != NGX_HTTP_ECODOC_ST_OK)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


/* $ecodoc_status: the gate's verdict, where the gate ran */

static ngx_int_t
ngx_http_ecodoc_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ctx == NULL || !ctx->done) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_ecodoc_status_names[ctx->status].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ngx_http_ecodoc_status_names[ctx->status].data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ecodoc_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ecodoc_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_ecodoc_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ecodoc_main_conf_t  *emcf;

    emcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ecodoc_main_conf_t));
    if (emcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     emcf->redis = NULL;
     *     emcf->redis_password = { 0, NULL };
     *     emcf->tls_* = { 0, NULL };
     *     emcf->ssl = NULL;
     *     emcf->sentinel_name = { 0, NULL };
     *     emcf->sentinels = NULL;
     *     emcf->sentinel_password = { 0, NULL };
     *     emcf->prefix = { 0, NULL };
     *     emcf->thread_pool_name = { 0, NULL };
     */

    emcf->redis_db = NGX_CONF_UNSET_UINT;
    emcf->tls = NGX_CONF_UNSET;
    emcf->wait_replicas = NGX_CONF_UNSET_UINT;
    emcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    emcf->max_failures = NGX_CONF_UNSET_UINT;
    emcf->session_timeout = NGX_CONF_UNSET;
    emcf->session_lifetime = NGX_CONF_UNSET;
    emcf->scrypt_ln = NGX_CONF_UNSET_UINT;

    if (ngx_array_init(&emcf->gates, cf->pool, 4,
                       sizeof(ngx_http_ecodoc_gate_t)) != NGX_OK
        || ngx_array_init(&emcf->pages_locs, cf->pool, 4, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&emcf->warned, cf->pool, 4, sizeof(void *))
           != NGX_OK)
    {
        return NULL;
    }

    return emcf;
}


static char *
ngx_http_ecodoc_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ecodoc_main_conf_t  *emcf = conf;

    u_char  *p;

    ngx_conf_init_uint_value(emcf->redis_db, 0);
    ngx_conf_init_msec_value(emcf->redis_timeout, 1000);

    if (ngx_http_ecodoc_redis_check(cf, emcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (emcf->prefix.data == NULL) {
        ngx_str_set(&emcf->prefix, "ecodoc:");
    }

    ngx_conf_init_uint_value(emcf->max_failures, 6);
    ngx_conf_init_value(emcf->session_timeout, 1800);
    ngx_conf_init_value(emcf->session_lifetime, 8 * 3600);

    if (emcf->scrypt_ln == NGX_CONF_UNSET_UINT) {
        emcf->scrypt_ln = ECODOC_SCRYPT_LN;
        emcf->scrypt_r = ECODOC_SCRYPT_R;
        emcf->scrypt_p = ECODOC_SCRYPT_P;
    }

    if (emcf->max_failures == 0 || emcf->max_failures > 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_max_failures\" must be 1..100");
        return NGX_CONF_ERROR;
    }

    if (emcf->session_timeout < 1 || emcf->session_lifetime < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "session timeouts must be at least 1s");
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_INT_T_LEN + 2 * NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    emcf->max_failures_arg.data = p;
    p = ngx_sprintf(p, "%ui", emcf->max_failures);
    emcf->max_failures_arg.len = p - emcf->max_failures_arg.data;

    emcf->session_timeout_arg.data = p;
    p = ngx_sprintf(p, "%T", emcf->session_timeout);
    emcf->session_timeout_arg.len = p - emcf->session_timeout_arg.data;

    emcf->session_lifetime_arg.data = p;
    p = ngx_sprintf(p, "%T", emcf->session_lifetime);
    emcf->session_lifetime_arg.len = p - emcf->session_lifetime_arg.data;

    if (emcf->thread_pool_name.data == NULL) {
        ngx_str_set(&emcf->thread_pool_name, "default");
    }

    /* only the pages hash passwords */

    if (emcf->pages_used) {
        emcf->thread_pool = ngx_thread_pool_add(cf, &emcf->thread_pool_name);
        if (emcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (!emcf->secret_set
        && RAND_bytes(emcf->secret, sizeof(emcf->secret)) != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "RAND_bytes() failed");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ecodoc_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ecodoc_loc_conf_t));
    if (elcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     elcf->pages = 0;
     *     elcf->pages_uri = { 0, NULL };
     *     elcf->forgot_url = { 0, NULL };
     *     elcf->enroll_url = { 0, NULL };
     *     elcf->renewal_url = { 0, NULL };
     *     elcf->template = { 0, NULL };
     */

    elcf->gate = NGX_CONF_UNSET;
    elcf->subject_match = NGX_CONF_UNSET;
    elcf->password_min_length = NGX_CONF_UNSET_UINT;
    elcf->password_rules = NGX_CONF_UNSET_PTR;
    elcf->expiry_notice = NGX_CONF_UNSET;

    return elcf;
}


static char *
ngx_http_ecodoc_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ecodoc_loc_conf_t  *prev = parent;
    ngx_http_ecodoc_loc_conf_t  *conf = child;

    ngx_str_t                    *name;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_ecodoc_main_conf_t  *emcf;

    if (conf->gate == NGX_CONF_UNSET) {
        conf->gate_file = prev->gate_file;
        conf->gate_line = prev->gate_line;
    }

    ngx_conf_merge_value(conf->gate, prev->gate, 0);
    ngx_conf_merge_str_value(conf->pages_uri, prev->pages_uri, "/ecodoc/");
    ngx_conf_merge_value(conf->subject_match, prev->subject_match, 1);
    ngx_conf_merge_uint_value(conf->password_min_length,
                              prev->password_min_length, 12);
    ngx_conf_merge_ptr_value(conf->password_rules, prev->password_rules,
                             NULL);
    ngx_conf_merge_str_value(conf->forgot_url, prev->forgot_url, "");
    ngx_conf_merge_str_value(conf->enroll_url, prev->enroll_url, "");
    ngx_conf_merge_str_value(conf->renewal_url, prev->renewal_url, "");
    ngx_conf_merge_value(conf->expiry_notice, prev->expiry_notice, 30);
    ngx_conf_merge_str_value(conf->template, prev->template, "");

    if (conf->pages_uri.len == 0
        || conf->pages_uri.data[0] != '/'
        || conf->pages_uri.data[conf->pages_uri.len - 1] != '/')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_pages_uri\" must start and end with "
                           "\"/\"");
        return NGX_CONF_ERROR;
    }

    if (conf->expiry_notice > 3650) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_cert_expiry_notice\" must be 0..3650 "
                           "days");
        return NGX_CONF_ERROR;
    }

    if (conf->password_min_length > ECODOC_PASSWD_MAX_INPUT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_password_min_length\" is too large");
        return NGX_CONF_ERROR;
    }

    if (conf->gate == 1 && ngx_http_ecodoc_check_gate(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->pages) {
        emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ecodoc_module);
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        name = ngx_array_push(&emcf->pages_locs);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

#if (NGX_PCRE)
        if (clcf->regex) {
            ngx_str_null(name);         /* may serve any URI: not checked */

        } else
#endif
        {
            *name = clcf->name;
        }
    }

    return NGX_CONF_OK;
}


/*
 * "ecodoc on" in a server that asks for no client certificate refuses
 * everything that gets to the access phase: said once per server.  Where
 * it is on, and which pages it sends browsers to, is kept for the check
 * that some location serves them (ngx_http_ecodoc_check_pages()).
 */

static ngx_int_t
ngx_http_ecodoc_check_gate(ngx_conf_t *cf, ngx_http_ecodoc_loc_conf_t *conf)
{
    void                         **srv;
    ngx_uint_t                     i;
    ngx_http_ecodoc_gate_t        *g;
    ngx_http_ecodoc_main_conf_t   *emcf;
#if (NGX_HTTP_SSL)
    ngx_http_ssl_srv_conf_t       *sscf;
#endif

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ecodoc_module);

    g = emcf->gates.elts;

    for (i = 0; i < emcf->gates.nelts; i++) {
        if (g[i].file.data == conf->gate_file.data
            && g[i].line == conf->gate_line
            && g[i].pages_uri.len == conf->pages_uri.len
            && ngx_strncmp(g[i].pages_uri.data, conf->pages_uri.data,
                           conf->pages_uri.len) == 0)
        {
            break;
        }
    }

    if (i == emcf->gates.nelts) {
        g = ngx_array_push(&emcf->gates);
        if (g == NULL) {
            return NGX_ERROR;
        }

        g->file = conf->gate_file;
        g->line = conf->gate_line;
        g->pages_uri = conf->pages_uri;
    }

#if (NGX_HTTP_SSL)
    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf->verify) {
        return NGX_OK;
    }

    srv = emcf->warned.elts;

    for (i = 0; i < emcf->warned.nelts; i++) {
        if (srv[i] == sscf) {
            return NGX_OK;
        }
    }

    srv = ngx_array_push(&emcf->warned);
    if (srv == NULL) {
        return NGX_ERROR;
    }

    *srv = sscf;
#endif

    ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                  "\"ecodoc on\" in %V:%ui: its server has no "
                  "\"ssl_verify_client\", so no client certificate is "
                  "asked for and the gate refuses every request",
                  &conf->gate_file, conf->gate_line);

    return NGX_OK;
}


/* every gate's pages are served by a location with "ecodoc_pages" */

static ngx_int_t
ngx_http_ecodoc_check_pages(ngx_conf_t *cf)
{
    ngx_str_t                    *loc;
    ngx_uint_t                    i, j;
    ngx_http_ecodoc_gate_t       *g;
    ngx_http_ecodoc_main_conf_t  *emcf;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ecodoc_module);

    g = emcf->gates.elts;
    loc = emcf->pages_locs.elts;

    for (i = 0; i < emcf->gates.nelts; i++) {

        for (j = 0; j < emcf->pages_locs.nelts; j++) {
            if (loc[j].len == 0
                || (loc[j].len <= g[i].pages_uri.len
                    && ngx_strncmp(loc[j].data, g[i].pages_uri.data,
                                   loc[j].len) == 0))
            {
                break;
            }
        }

        if (j == emcf->pages_locs.nelts) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"ecodoc on\" in %V:%ui sends browsers to "
                          "\"%V\", but no location with \"ecodoc_pages\" "
                          "serves it (\"ecodoc_pages_uri\" sets where "
                          "they are)", &g[i].file, g[i].line,
                          &g[i].pages_uri);
        }
    }

    return NGX_OK;
}


static char *
ngx_http_ecodoc_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_loc_conf_t *elcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK) {
        elcf->gate_file = cf->conf_file->file.name;
        elcf->gate_line = cf->conf_file->line;
    }

    return rv;
}


static char *
ngx_http_ecodoc_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_main_conf_t *emcf = conf;

    ngx_str_t  *value;

    if (emcf->redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    emcf->redis = ngx_pcalloc(cf->pool, sizeof(ngx_http_ecodoc_node_t));
    if (emcf->redis == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ecodoc_node(cf, &value[1], emcf->redis) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ecodoc_redis_sentinel NAME host:port ... */

static char *
ngx_http_ecodoc_sentinel(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_main_conf_t *emcf = conf;

    ngx_str_t               *value;
    ngx_uint_t               i;
    ngx_http_ecodoc_node_t  *node;

    if (emcf->sentinels) {
        return "is duplicate";
    }

    value = cf->args->elts;

    emcf->sentinels = ngx_array_create(cf->pool, cf->args->nelts - 2,
                                       sizeof(ngx_http_ecodoc_node_t));
    if (emcf->sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    emcf->sentinel_name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {
        node = ngx_array_push(emcf->sentinels);
        if (node == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(node, sizeof(ngx_http_ecodoc_node_t));

        if (ngx_http_ecodoc_node(cf, &value[i], node) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* ecodoc_redis_wait NUMREPLICAS [TIMEOUT]; 0 is off */

static char *
ngx_http_ecodoc_wait(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_main_conf_t *emcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_msec_t  t;

    if (emcf->wait_replicas != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n > 100) {
        return "has an invalid number of replicas (0..100)";
    }

    if (n == 0) {
        if (cf->args->nelts == 3) {
            return "has a timeout but no replica to wait for";
        }

        emcf->wait_replicas = 0;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts != 3) {
        return "needs a timeout: Redis' WAIT with no timeout waits forever";
    }

    t = ngx_parse_time(&value[2], 0);
    if (t == (ngx_msec_t) NGX_ERROR || t == 0) {
        return "has an invalid timeout (at least 1ms)";
    }

    emcf->wait_replicas = n;
    emcf->wait_timeout = t;

    return NGX_CONF_OK;
}


/*
 * host:port (resolved now: the workers never resolve a name) or
 * unix:/path; the host as written is the name its certificate must have
 */

static ngx_int_t
ngx_http_ecodoc_node(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ecodoc_node_t *node)
{
    ngx_str_t  host;
    ngx_url_t  u;

    if (value->len == 5 && ngx_strncmp(value->data, "unix:", 5) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" has an empty unix socket path", value);
        return NGX_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Redis address \"%V\": %s", value,
                           u.err ? u.err : "host not found");
        return NGX_ERROR;
    }

    node->sockaddr = u.addrs[0].sockaddr;
    node->socklen = u.addrs[0].socklen;
    node->name = u.addrs[0].name;

    if (u.family != AF_UNIX) {
        host = u.host;

        /* "[::1]": the address, which the certificate's IP must match */

        if (host.len > 2 && host.data[0] == '['
            && host.data[host.len - 1] == ']')
        {
            host.data++;
            host.len -= 2;
        }

        node->tls_name.data = ngx_pnalloc(cf->pool, host.len + 1);
        if (node->tls_name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(node->tls_name.data, host.data, host.len);
        node->tls_name.data[host.len] = '\0';
        node->tls_name.len = host.len;
    }

    return NGX_OK;
}


/* the Redis directives together: what excludes what, TLS, WAIT */

static ngx_int_t
ngx_http_ecodoc_redis_check(ngx_conf_t *cf, ngx_http_ecodoc_main_conf_t *emcf)
{
    ngx_str_t                default_redis = ngx_string("127.0.0.1:6379");
    ngx_uint_t               i, n;
    ngx_http_ecodoc_node_t  *node;

    if (emcf->redis && emcf->sentinels) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_redis\" and \"ecodoc_redis_sentinel\" "
                           "exclude each other: the sentinels name the "
                           "master");
        return NGX_ERROR;
    }

    if (emcf->sentinels == NULL && emcf->sentinel_password.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_redis_sentinel_password\" without "
                           "\"ecodoc_redis_sentinel\"");
        return NGX_ERROR;
    }

    if (emcf->redis == NULL && emcf->sentinels == NULL) {
        emcf->redis = ngx_pcalloc(cf->pool, sizeof(ngx_http_ecodoc_node_t));
        if (emcf->redis == NULL
            || ngx_http_ecodoc_node(cf, &default_redis, emcf->redis)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_conf_init_value(emcf->tls, 0);

    /*
     * a sentinel names the master the gate trusts with every verdict: it
     * must be one we know (TLS, or the sentinels' password), and over TLS
     * the master's certificate is checked against a name of ours, not
     * against the address a sentinel gave
     */

    if (emcf->sentinels && !emcf->tls && emcf->sentinel_password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_redis_sentinel\" needs "
                           "\"ecodoc_redis_tls on\" or "
                           "\"ecodoc_redis_sentinel_password\": an "
                           "unauthenticated sentinel could name any server "
                           "as the master");
        return NGX_ERROR;
    }

    if (emcf->sentinels && emcf->tls && emcf->tls_name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_redis_sentinel\" with "
                           "\"ecodoc_redis_tls on\" needs "
                           "\"ecodoc_redis_tls_name\": the master's "
                           "certificate must not be checked against the "
                           "address a sentinel names");
        return NGX_ERROR;
    }

    ngx_conf_merge_bitmask_value(emcf->tls_protocols, emcf->tls_protocols,
                                 (NGX_CONF_BITMASK_SET|NGX_SSL_TLSv1_2
                                  |NGX_SSL_TLSv1_3));

    if (!emcf->tls) {
        if (emcf->tls_trusted.len || emcf->tls_certificate.len
            || emcf->tls_key.len || emcf->tls_name.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ecodoc_redis_tls_*\" settings without "
                               "\"ecodoc_redis_tls on\": Redis would be "
                               "spoken to in clear");
            return NGX_ERROR;
        }

    } else {
        if (ngx_http_ecodoc_link_ssl(cf, emcf) != NGX_OK) {
            return NGX_ERROR;
        }

        /* one name for every node, or each node's host */

        node = emcf->sentinels ? emcf->sentinels->elts : emcf->redis;
        n = emcf->sentinels ? emcf->sentinels->nelts : 1;

        for (i = 0; i < n; i++) {
            if (emcf->tls_name.len) {
                node[i].tls_name = emcf->tls_name;

            } else if (node[i].tls_name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" over TLS needs "
                                   "\"ecodoc_redis_tls_name\": the name its "
                                   "certificate has", &node[i].name);
                return NGX_ERROR;
            }
        }
    }

    if (emcf->wait_replicas == NGX_CONF_UNSET_UINT) {
        emcf->wait_replicas = 0;
    }

    /* WAIT holds the one connection of a worker: every command behind it */

    if (emcf->wait_replicas && emcf->wait_timeout >= emcf->redis_timeout) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ecodoc_redis_wait\" timeout %Mms is not less "
                           "than \"ecodoc_redis_timeout\" %Mms: WAIT blocks "
                           "the worker's Redis connection, and every "
                           "command behind it, for up to that timeout",
                           emcf->wait_timeout, emcf->redis_timeout);
        return NGX_ERROR;
    }

    if (emcf->sentinels && emcf->wait_replicas == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"ecodoc_redis_sentinel\" without "
                           "\"ecodoc_redis_wait\": a failover may lose the "
                           "last wrong passwords counted, and a lock");
    }

    return NGX_OK;
}


static char *
ngx_http_ecodoc_scrypt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_main_conf_t *emcf = conf;

    ngx_int_t   ln, rr, p;
    ngx_str_t  *value;

    if (emcf->scrypt_ln != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ln = ngx_atoi(value[1].data, value[1].len);
    rr = ngx_atoi(value[2].data, value[2].len);
    p = ngx_atoi(value[3].data, value[3].len);

    if (ln < 10 || ln > 22 || rr < 1 || rr > 32 || p < 1 || p > 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid scrypt parameters: log2(N) must be "
                           "10..22, r 1..32, p 1..16");
        return NGX_CONF_ERROR;
    }

    emcf->scrypt_ln = ln;
    emcf->scrypt_r = rr;
    emcf->scrypt_p = p;

    return NGX_CONF_OK;
}


static char *
ngx_http_ecodoc_pages(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_loc_conf_t *elcf = conf;

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_ecodoc_main_conf_t  *emcf;

    if (elcf->pages) {
        return "is duplicate";
    }

    elcf->pages = 1;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ecodoc_module);
    emcf->pages_used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ecodoc_pages_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ecodoc_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ecodoc_strip_headers;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ecodoc_gate_handler;

    if (ngx_http_ecodoc_check_pages(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ecodoc_conn_index == -1) {
        ngx_http_ecodoc_conn_index = SSL_get_ex_new_index(0, NULL, NULL,
                                                   NULL,
                                                   ngx_http_ecodoc_conn_free);
        if (ngx_http_ecodoc_conn_index == -1) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "SSL_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ecodoc_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ecodoc_metrics_init(cycle);

    /* the cache manager and loader serve no request: no Redis, no sentinel */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    return ngx_http_ecodoc_redis_init(cycle);
}


static void
ngx_http_ecodoc_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ecodoc_redis_exit(cycle);
}
