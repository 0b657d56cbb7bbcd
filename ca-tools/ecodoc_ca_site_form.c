/*
 * ecodoc-ca enroll-server: what a request to the enrollment site sends:
 * its form's fields and csrf token, and the client certificate nginx saw.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ecodoc_ca_site.h"


static int ecodoc_ca_same_token(const char *a, const char *b);


/* constant-time comparison of two NUL-terminated tokens */

static int
ecodoc_ca_same_token(const char *a, const char *b)
{
    size_t  n;

    n = strlen(a);

    return a[0] != '\0' && n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}


char *
ecodoc_ca_field(ecodoc_ca_page_t *pg, const char *name)
{
    return ecodoc_ca_http_field(pg->req->body, pg->req->body_len, name);
}


/* a POST's form: urlencoded, with the csrf that expect names; 0 or sent */

int
ecodoc_ca_form_ok(ecodoc_ca_page_t *pg, const char *expect)
{
    int          ok;
    char        *csrf;
    const char  *ct;

    ct = ecodoc_ca_http_header(pg->req, "Content-Type");

    if (ct == NULL
        || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0
        || (ct[33] != '\0' && ct[33] != ';'))
    {
        ecodoc_ca_page_error(pg, 400, ECODOC_CA_T_MALFORMED);
        return -1;
    }

    csrf = ecodoc_ca_field(pg, "csrf");
    ok = csrf != NULL && expect != NULL && ecodoc_ca_same_token(csrf, expect);
    free(csrf);

    if (!ok) {
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_CSRF);
        return -1;
    }

    return 0;
}


/* a POST of a form whose csrf token is in the csrf cookie (STEP1, renew) */

int
ecodoc_ca_form_cookie_ok(ecodoc_ca_page_t *pg)
{
    int    rc;
    char  *cookie;

    cookie = ecodoc_ca_http_cookie(pg->req, ECODOC_CA_CSRF_COOKIE);
    rc = ecodoc_ca_form_ok(pg, cookie);
    free(cookie);

    return rc;
}


/* the certificate nginx verified, from the headers it sets */

X509 *
ecodoc_ca_client_cert(ecodoc_ca_page_t *pg)
{
    BIO         *b;
    X509        *x;
    char        *pem;
    const char  *v;

    /* nginx's word that it verified the chain, then the certificate */

    v = ecodoc_ca_http_header(pg->req, "X-Ecodoc-Client-Verify");
    if (v == NULL || strcmp(v, "SUCCESS") != 0) {
        return NULL;
    }

    v = ecodoc_ca_http_header(pg->req, "X-Ecodoc-Client-Cert");
    if (v == NULL || v[0] == '\0') {
        return NULL;
    }

    pem = strdup(v);
    if (pem == NULL || ecodoc_ca_http_unescape(pem, 0) != 0) {
        free(pem);
        return NULL;
    }

    b = BIO_new_mem_buf(pem, -1);
    x = (b != NULL) ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(pem);
    ERR_clear_error();

    return x;
}
