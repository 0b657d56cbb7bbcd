/*
 * The client certificate as the pages and variables see it: its expiry
 * ($ecodoc_cert_expires), and why one was refused, as the page that says so.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/x509.h>

#include "ngx_http_ecodoc.h"


/* the certificate's notAfter; 0 if it cannot be read */

time_t
ngx_http_ecodoc_cert_not_after(X509 *cert)
{
    struct tm         tm;
    const ASN1_TIME  *t;

    t = X509_get0_notAfter(cert);

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }

    return timegm(&tm);
}


/* whole days left, as nginx's $ssl_client_v_remain: 0 on the last day */

time_t
ngx_http_ecodoc_cert_days(time_t not_after)
{
    time_t  now;

    now = ngx_time();

    return (not_after > now) ? (not_after - now) / 86400 : 0;
}


/*
 * The page for a connection without a verified certificate: none sent,
 * expired, from another CA, revoked by ssl_crl, or failed otherwise (also
 * a verified one that nginx refused, for ssl_ocsp).  The peer certificate
 * is still readable after a failed verification.
 */

ngx_int_t
ngx_http_ecodoc_cert_page(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_uint_t status)
{
    X509                       *cert;
    long                        rc;
    time_t                      not_after;
    const char                 *reason;
    ngx_http_ecodoc_problem_e   problem;

    cert = NULL;
    rc = X509_V_OK;

    if (r->connection->ssl) {
        cert = SSL_get_peer_certificate(r->connection->ssl->connection);
        rc = SSL_get_verify_result(r->connection->ssl->connection);
    }

    if (cert == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ecodoc: no client certificate sent");

        return ngx_http_ecodoc_problem_page(r, ctx, status,
                                            NGX_HTTP_ECODOC_PROBLEM_NO_CERT,
                                            0, NULL);
    }

    not_after = ngx_http_ecodoc_cert_not_after(cert);
    X509_free(cert);

    reason = NULL;

    switch (rc) {

    case X509_V_ERR_CERT_HAS_EXPIRED:
        problem = NGX_HTTP_ECODOC_PROBLEM_EXPIRED;
        break;

    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        problem = NGX_HTTP_ECODOC_PROBLEM_OTHER_CA;
        break;

    case X509_V_ERR_CERT_REVOKED:
        problem = NGX_HTTP_ECODOC_PROBLEM_REVOKED;
        break;

    case X509_V_OK:
        problem = NGX_HTTP_ECODOC_PROBLEM_INVALID;
        break;

    default:
        problem = NGX_HTTP_ECODOC_PROBLEM_INVALID;
        reason = X509_verify_cert_error_string(rc);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ecodoc: client certificate refused: %l:%s", rc,
                  X509_verify_cert_error_string(rc));

    return ngx_http_ecodoc_problem_page(r, ctx, status, problem,
                                        not_after, reason);
}


/*
 * $ecodoc_cert_expires (data 0): whole days left of the verified client
 * certificate; $ecodoc_cert_not_after (data 1): its notAfter in ISO 8601,
 * UTC.  Not found without a verified certificate.
 */

ngx_int_t
ngx_http_ecodoc_cert_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                 *p;
    time_t                  t;
    ngx_tm_t                tm;
    ngx_int_t               rc;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_ecodoc_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_ecodoc_fingerprint(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK || ctx->conn->not_after == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    t = ctx->conn->not_after;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + sizeof("-12-31T23:59:59Z"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    if (data == 0) {
        p = ngx_sprintf(p, "%T", ngx_http_ecodoc_cert_days(t));

    } else {
        ngx_gmtime(t, &tm);
        p = ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
