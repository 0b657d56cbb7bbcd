/*
 * Fuzz harness: what the enrollment site decodes from a request: its form
 * fields and their checks, cookies, Accept-Language, the client certificate.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ecodoc_ca_site.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ca_site_fields(ecodoc_ca_page_t *pg);


static const char  *ca_site_names[] = {
    "user", "password", "key", "mode", "p12pw", "p12pw2", "csr", "csrf",
    NULL
};


/*
 * The input is a request as the site sees it after its HTTP layer:
 * "Name: value" lines, an empty line, the body (without a NUL, which that
 * layer refuses).  Each line is a header (its bytes as they come); the
 * page then reads what the site's pages read.
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                i, en;
    X509              *x;
    char              *buf, *p, *end, *nl, *colon, *v;
    char               fp[ECODOC_CA_FP_LEN], serial[ECODOC_CA_SERIAL_LEN],
                       subject[ECODOC_CA_SUBJECT_MAX];
    ecodoc_ca_req_t    req;
    ecodoc_ca_resp_t   resp;
    ecodoc_ca_site_t   site;
    ecodoc_ca_page_t   pg;

    if (size > 65536) {
        return 0;
    }

    buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data, size);
    buf[size] = '\0';

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    memset(&site, 0, sizeof(site));

    req.method = "POST";
    req.path = "/enroll/step1";
    req.body = "";

    p = buf;
    end = buf + size;

    while (p < end && req.nheaders < ECODOC_CA_HTTP_NHEADERS) {
        nl = memchr(p, '\n', end - p);

        if (nl == p) {
            req.body = p + 1;
            req.body_len = end - p - 1;
            break;
        }

        if (nl != NULL) {
            *nl = '\0';
        }

        colon = strchr(p, ':');
        if (colon != NULL) {
            *colon++ = '\0';
            colon += (*colon == ' ');
            req.name[req.nheaders] = p;
            req.value[req.nheaders++] = colon;
        }

        if (nl == NULL) {
            break;
        }

        p = nl + 1;
    }

    /* the HTTP layer refuses a body with a NUL in it */

    if (memchr(req.body, '\0', req.body_len) != NULL) {
        free(buf);
        return 0;
    }

    site.site_url = "https://enroll.example.com/enroll/";
    site.days = 30;

    memset(&pg, 0, sizeof(pg));
    pg.site = &site;
    pg.req = &req;
    pg.resp = &resp;
    pg.en = ecodoc_ca_http_english(&req);
    pg.addr = "-";
    pg.post = 1;

    ca_site_fields(&pg);

    /* the csrf double submit: the cookie's token, the form's */

    (void) ecodoc_ca_form_cookie_ok(&pg);

    v = ecodoc_ca_http_cookie(&req, ECODOC_CA_COOKIE);
    free(v);

    v = ecodoc_ca_http_cookie(&req, ECODOC_CA_GATE_COOKIE);
    free(v);

    /* STEP4: the certificate nginx passed on, as the page shows it */

    x = ecodoc_ca_client_cert(&pg);

    if (x != NULL) {
        ecodoc_ca_cert_fp(x, fp);
        ecodoc_ca_cert_serial(x, serial);
        ecodoc_ca_cert_subject(x, subject, sizeof(subject));
        (void) ecodoc_ca_cert_not_after(x);
        X509_free(x);
    }

    en = ecodoc_ca_http_english(&req);
    if (en != 0 && en != 1) {
        abort();
    }

    for (i = 0; i < req.nheaders; i++) {
        (void) ecodoc_ca_http_header(&req, req.name[i]);
    }

    free(resp.body);
    free(buf);
    ERR_clear_error();

    return 0;
}


/* each field the pages read, and the checks of the user ID */

static void
ca_site_fields(ecodoc_ca_page_t *pg)
{
    int          i;
    char        *v;

    for (i = 0; ca_site_names[i] != NULL; i++) {
        v = ecodoc_ca_field(pg, ca_site_names[i]);

        if (v == NULL) {
            continue;
        }

        /* decoded: never longer than the body, no NUL inside */

        if (strlen(v) > pg->req->body_len) {
            abort();
        }

        if (strcmp(ca_site_names[i], "user") == 0) {
            (void) ecodoc_ca_valid_user(v);
        }

        free(v);
    }
}
