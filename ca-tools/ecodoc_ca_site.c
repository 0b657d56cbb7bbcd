/*
 * ecodoc-ca enroll-server: the enrollment site's steps (STEP1-4), from the
 * request through Redis and the CA to the page, and the command itself.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ecodoc_ca_redis.h"
#include "ecodoc_ca_site.h"


#define ECODOC_CA_CHECK_WAIT   5     /* s, default of --check-wait */
#define ECODOC_CA_POST_PAGES   5     /* of ecodoc_ca_site_route()'s */
#define ECODOC_CA_RENEWAL      30    /* days, default of --renewal */


int
ecodoc_ca_site_lock(ecodoc_ca_site_t *site)
{
    int              rc;
    struct timespec  deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += site->check_wait;

    do {
        rc = pthread_mutex_timedlock(site->check, &deadline);
    } while (rc == EINTR);

    if (rc != 0) {
        if (rc != ETIMEDOUT) {
            ecodoc_ca_http_log("cannot wait for a check: %s", strerror(rc));
        }

        return ECODOC_CA_LOCK_BUSY;
    }

    return 0;
}


void
ecodoc_ca_site_unlock(ecodoc_ca_site_t *site)
{
    pthread_mutex_unlock(site->check);
}


static void
ecodoc_ca_step1_post(ecodoc_ca_page_t *pg)
{
    char              *user, *pw, token[ECODOC_CA_TOKEN_LEN];
    ecodoc_ca_code_e   code;
    ecodoc_ca_esess_t  s;

    if (ecodoc_ca_form_cookie_ok(pg) != 0) {
        return;
    }

    user = ecodoc_ca_field(pg, "user");
    pw = ecodoc_ca_field(pg, "password");

    if (user == NULL || pw == NULL || pw[0] == '\0' || strlen(pw) > 1024) {
        ecodoc_ca_step1_form(pg, 400, ECODOC_CA_T_MALFORMED, NULL, user);
        goto done;
    }

    if (!ecodoc_ca_valid_user(user)) {
        ecodoc_ca_step1_form(pg, 400, ECODOC_CA_T_BADUSER, "user", user);
        goto done;
    }

    /*
     * one scrypt check at a time across the server's threads: each takes
     * 128 MiB, and anyone may ask for one; a flood makes the others wait
     * --check-wait seconds at most, then says so
     */

    if (ecodoc_ca_site_lock(pg->site) == ECODOC_CA_LOCK_BUSY) {
        ecodoc_ca_http_log("STEP1 for %s: no check within %u s", user,
                           pg->site->check_wait);
        ecodoc_ca_resp_header(pg->resp, "Retry-After: %u",
                              pg->site->check_wait);
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_BUSY);
        goto done;
    }

    code = ecodoc_ca_enroll_check(pg->site->ca, user, pw, strlen(pw),
                                  pg->addr, token, &s);
    ecodoc_ca_site_unlock(pg->site);

    switch (code) {
    case ECODOC_CA_CODE_OK:
        ecodoc_ca_set_cookie(pg, ECODOC_CA_COOKIE, token,
                             ECODOC_CA_SESSION_TTL);
        ecodoc_ca_page_redirect(pg, ECODOC_CA_SITE_PREFIX "step2");
        ecodoc_ca_http_log("STEP1 passed for %s", user);
        break;
    case ECODOC_CA_CODE_USED:
        ecodoc_ca_step1_form(pg, 403, ECODOC_CA_T_USED, "password", user);
        break;
    case ECODOC_CA_CODE_EXPIRED:
        ecodoc_ca_step1_form(pg, 403, ECODOC_CA_T_EXPIRED, "password",
                             user);
        break;
    case ECODOC_CA_CODE_LOCKED:
        ecodoc_ca_step1_form(pg, 403, ECODOC_CA_T_LOCKED, NULL, user);
        break;
    case ECODOC_CA_CODE_ERROR:
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        break;
    default:
        ecodoc_ca_step1_form(pg, 401, ECODOC_CA_T_WRONG, "password", user);
    }

    OPENSSL_cleanse(token, sizeof(token));

done:

    if (pw != NULL) {
        OPENSSL_cleanse(pw, strlen(pw));
    }

    free(user);
    free(pw);
}


/* the session of the cookie: 1 found, 0 none (page sent), -1 sent */

static int
ecodoc_ca_session(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s, int quiet)
{
    int    rc;
    char  *token;

    token = ecodoc_ca_http_cookie(pg->req, ECODOC_CA_COOKIE);
    rc = (token != NULL) ? ecodoc_ca_enroll_session(pg->site->ca, token, s)
                         : 0;
    free(token);

    if (rc < 0) {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return -1;
    }

    pg->renewal = rc == 1 && s->renew[0] != '\0';

    if (rc == 0 && !quiet) {
        if (pg->post) {
            ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_NOSESSION);

        } else {
            ecodoc_ca_page_redirect(pg, ECODOC_CA_SITE_PREFIX);
        }
    }

    return rc;
}


/* STEP2 */

static void
ecodoc_ca_step2(ecodoc_ca_page_t *pg)
{
    int                i;
    char              *key;
    ecodoc_ca_esess_t  s;

    if (ecodoc_ca_session(pg, &s, 0) != 1) {
        return;
    }

    if (s.fp[0] != '\0') {
        ecodoc_ca_page_redirect(pg, ECODOC_CA_SITE_PREFIX "step3");
        goto done;
    }

    if (pg->post) {
        if (ecodoc_ca_form_ok(pg, s.csrf) != 0) {
            goto done;
        }

        key = ecodoc_ca_field(pg, "key");

        for (i = 0; key != NULL && ecodoc_ca_key_types[i][0] != NULL; i++) {
            if (strcmp(key, ecodoc_ca_key_types[i][0]) == 0) {
                break;
            }
        }

        if (key == NULL || ecodoc_ca_key_types[i][0] == NULL) {
            ecodoc_ca_page_error(pg, 400, ECODOC_CA_T_MALFORMED);

        } else {
            switch (ecodoc_ca_enroll_set(pg->site->ca, &s, "key", key)) {
            case 0:
                ecodoc_ca_page_redirect(pg, ECODOC_CA_SITE_PREFIX "step3");
                break;
            case 1:
                ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_NOSESSION);
                break;
            default:
                ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
            }
        }

        free(key);
        goto done;
    }

    ecodoc_ca_step2_form(pg, &s);

done:

    ecodoc_ca_enroll_session_free(&s);
}


/* STEP3 */

/*
 * Consumes (or with check, only tries) the certificate password: 0, or -1
 * with the page that says why not sent.
 */

static int
ecodoc_ca_step3_redeem(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s,
    int check)
{
    switch (ecodoc_ca_enroll_redeem(pg->site->ca, s, check)) {
    case ECODOC_CA_CODE_OK:
        return 0;
    case ECODOC_CA_CODE_EXPIRED:
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_EXPIRED);
        return -1;
    case ECODOC_CA_CODE_LOCKED:
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_LOCKED);
        return -1;
    case ECODOC_CA_CODE_NOSESSION:
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_NOSESSION);
        return -1;
    case ECODOC_CA_CODE_CANCELLED:
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_CANCELLED);
        return -1;
    case ECODOC_CA_CODE_ERROR:
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return -1;
    default:
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_USED);
        return -1;
    }
}


/* consumes the certificate password and signs; the certificate or sent */

static X509 *
ecodoc_ca_step3_issue(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s,
    EVP_PKEY *key)
{
    X509  *x;
    char  *pem;

    if (ecodoc_ca_step3_redeem(pg, s, 0) != 0) {
        return NULL;
    }

    x = ecodoc_ca_sign(pg->site->ca, pg->site->pki, s->user, key,
                       pg->site->days, pg->addr, s->sid);

    if (x == NULL) {
        ecodoc_ca_http_log("issuance for %s failed: %s", s->user,
                           ecodoc_ca_enroll_release(pg->site->ca, s, pg->addr)
                           == ECODOC_CA_CODE_OK
                           ? "its certificate password is usable again"
                           : "its certificate password stays used");
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return NULL;
    }

    ecodoc_ca_cert_fp(x, s->fp);
    pem = ecodoc_ca_cert_pem(x);

    if (pem == NULL || ecodoc_ca_enroll_set(pg->site->ca, s, "pem", pem) != 0
        || ecodoc_ca_enroll_set(pg->site->ca, s, "fp", s->fp) != 0)
    {
        ecodoc_ca_http_log("cannot record the issuance in the session");
    }

    free(s->pem);
    s->pem = pem;
    ecodoc_ca_http_log("issued %s for %s", s->fp, s->user);

    return x;
}


static void
ecodoc_ca_p12_send(ecodoc_ca_page_t *pg, const char *user,
    const unsigned char *der, size_t len)
{
    pg->resp->status = 200;
    ecodoc_ca_resp_header(pg->resp, "Content-Type: application/x-pkcs12");
    ecodoc_ca_resp_header(pg->resp, "Content-Disposition: attachment; "
                          "filename=\"%s.p12\"", user);
    ecodoc_ca_resp_add(pg->resp, (const char *) der, len);
}


static void
ecodoc_ca_step3_p12(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s)
{
    X509           *x;
    char           *pw, *pw2, *b64;
    size_t          len, n;
    EVP_PKEY       *key;
    unsigned char  *der;

    pw = ecodoc_ca_field(pg, "p12pw");
    pw2 = ecodoc_ca_field(pg, "p12pw2");
    b64 = NULL;
    key = NULL;
    der = NULL;
    x = NULL;

    if (pw == NULL || pw2 == NULL) {
        ecodoc_ca_page_error(pg, 400, ECODOC_CA_T_MALFORMED);
        goto done;
    }

    n = strlen(pw);

    if (strcmp(pw, pw2) != 0) {
        ecodoc_ca_step3_forms(pg, s, 400, ECODOC_CA_T(pg, ECODOC_CA_T_MISMATCH),
                              NULL, "p12pw2");
        goto done;
    }

    if (n < ECODOC_CA_P12_MIN || n > ECODOC_CA_P12_MAX) {
        ecodoc_ca_step3_forms(pg, s, 400, ECODOC_CA_T(pg, ECODOC_CA_T_SHORT),
                              NULL, "p12pw");
        goto done;
    }

    /*
     * the key before the password is consumed, so that a slow RSA key
     * does not hold a used password; but not for a password that could
     * not be consumed anyway (a stale session: seconds of CPU for nothing)
     */

    if (ecodoc_ca_step3_redeem(pg, s, 1) != 0) {
        goto done;
    }

    key = ecodoc_ca_keygen(s->key[0] != '\0' ? s->key : "ec");
    if (key == NULL) {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        goto done;
    }

    x = ecodoc_ca_step3_issue(pg, s, key);
    if (x == NULL) {
        goto done;
    }

    if (ecodoc_ca_p12(key, x, s->user, pw, 0, &der, &len) != 0) {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        goto done;
    }

    /*
     * the file waits in the session (encrypted with the password just
     * set) for the result page, which starts its download: the form is
     * answered with a page that says what happened, never left on screen
     */

    b64 = malloc(4 * ((len + 2) / 3) + 1);

    if (b64 != NULL
        && EVP_EncodeBlock((unsigned char *) b64, der, (int) len) > 0
        && ecodoc_ca_enroll_set(pg->site->ca, s, "p12", b64) == 0)
    {
        ecodoc_ca_page_redirect(pg, ECODOC_CA_SITE_PREFIX "step3");

    } else {
        /* the certificate is issued: deliver it anyway, here and now */
        ecodoc_ca_http_log("cannot keep the PKCS#12 in the session: sent "
                           "in the answer");
        ecodoc_ca_p12_send(pg, s->user, der, len);
    }

    if (b64 != NULL) {
        OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
    }

done:

    if (pw != NULL) {
        OPENSSL_cleanse(pw, strlen(pw));
    }

    if (pw2 != NULL) {
        OPENSSL_cleanse(pw2, strlen(pw2));
    }

    free(pw);
    free(pw2);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
}


static void
ecodoc_ca_step3_csr(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s)
{
    X509        *x;
    char        *csr;
    EVP_PKEY    *key;
    const char  *problem;

    csr = ecodoc_ca_field(pg, "csr");

    if (csr == NULL) {
        ecodoc_ca_page_error(pg, 400, ECODOC_CA_T_MALFORMED);
        return;
    }

    /* checked before the certificate password is used */
    key = ecodoc_ca_csr_key(csr, strlen(csr), &problem);
    free(csr);

    if (key == NULL) {
        ecodoc_ca_step3_forms(pg, s, 400, ECODOC_CA_T(pg, ECODOC_CA_T_CSR),
                              problem, "csr");
        return;
    }

    x = ecodoc_ca_step3_issue(pg, s, key);
    EVP_PKEY_free(key);

    if (x != NULL) {
        ecodoc_ca_step3_done(pg, s);
        X509_free(x);
    }
}


static void
ecodoc_ca_step3(ecodoc_ca_page_t *pg)
{
    char              *mode;
    ecodoc_ca_esess_t  s;

    if (ecodoc_ca_session(pg, &s, 0) != 1) {
        return;
    }

    if (!pg->post) {
        if (s.fp[0] != '\0') {
            ecodoc_ca_step3_done(pg, &s);

        } else {
            ecodoc_ca_step3_forms(pg, &s, 200, NULL, NULL, NULL);
        }

        goto done;
    }

    if (ecodoc_ca_form_ok(pg, s.csrf) != 0) {
        goto done;
    }

    if (s.fp[0] != '\0') {
        ecodoc_ca_page_error(pg, 403, ECODOC_CA_T_USED);
        goto done;
    }

    mode = ecodoc_ca_field(pg, "mode");

    if (mode != NULL && strcmp(mode, "p12") == 0) {
        ecodoc_ca_step3_p12(pg, &s);

    } else if (mode != NULL && strcmp(mode, "csr") == 0) {
        ecodoc_ca_step3_csr(pg, &s);

    } else {
        ecodoc_ca_page_error(pg, 400, ECODOC_CA_T_MALFORMED);
    }

    free(mode);

done:

    ecodoc_ca_enroll_session_free(&s);
}


static void
ecodoc_ca_certificate_pem(ecodoc_ca_page_t *pg)
{
    ecodoc_ca_esess_t  s;

    if (ecodoc_ca_session(pg, &s, 0) != 1) {
        return;
    }

    if (s.pem == NULL) {
        ecodoc_ca_page_error(pg, 404, ECODOC_CA_T_NOTFOUND);

    } else {
        ecodoc_ca_resp_header(pg->resp, "Content-Type: "
                              "application/x-pem-file");
        ecodoc_ca_resp_header(pg->resp, "Content-Disposition: attachment; "
                              "filename=\"%s.crt\"", s.user);
        ecodoc_ca_resp_puts(pg->resp, s.pem);
    }

    ecodoc_ca_enroll_session_free(&s);
}


/* the PKCS#12 issued in this session, as often as asked while it lasts */

static void
ecodoc_ca_certificate_p12(ecodoc_ca_page_t *pg)
{
    int                n;
    size_t             len;
    unsigned char     *der;
    ecodoc_ca_esess_t  s;

    if (ecodoc_ca_session(pg, &s, 0) != 1) {
        return;
    }

    len = (s.p12 != NULL) ? strlen(s.p12) : 0;
    der = (len > 0) ? malloc(len) : NULL;
    n = (der != NULL) ? EVP_DecodeBlock(der, (unsigned char *) s.p12,
                                        (int) len)
                      : -1;

    if (s.p12 == NULL) {
        ecodoc_ca_page_error(pg, 404, ECODOC_CA_T_NOTFOUND);

    } else if (n <= 0) {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);

    } else {
        /* EVP_DecodeBlock counts the padding's zero bytes in */
        n -= (s.p12[len - 1] == '=') + (len > 1 && s.p12[len - 2] == '=');

        if (!s.p12_taken
            && ecodoc_ca_enroll_set(pg->site->ca, &s, "p12_taken", "1") != 0)
        {
            ecodoc_ca_http_log("cannot note the download in the session");
        }

        ecodoc_ca_p12_send(pg, s.user, der, (size_t) n);
        ecodoc_ca_http_log("PKCS#12 of %s downloaded", s.user);
    }

    if (der != NULL) {
        OPENSSL_cleanse(der, len);
        free(der);
    }

    ecodoc_ca_enroll_session_free(&s);
}


/* STEP4 */

/* the state of a certificate in the CA database */

static ecodoc_ca_text_e
ecodoc_ca_db_state(ecodoc_ca_page_t *pg, const char *fp)
{
    size_t            i;
    ecodoc_ca_db_t    db;
    ecodoc_ca_text_e  t;

    if (ecodoc_ca_db_lock(pg->site->pki) != 0) {
        return ECODOC_CA_T_UNAVAILABLE;
    }

    if (ecodoc_ca_db_read(pg->site->pki, &db) != 0) {
        ecodoc_ca_db_unlock(pg->site->pki);
        return ECODOC_CA_T_UNAVAILABLE;
    }

    ecodoc_ca_db_unlock(pg->site->pki);

    t = ECODOC_CA_T_DB_UNKNOWN;

    for (i = 0; i < db.n; i++) {
        if (strcmp(db.rec[i].fp, fp) == 0) {
            t = (db.rec[i].status == 'R') ? ECODOC_CA_T_DB_REVOKED
                : (db.rec[i].not_after < (long long) time(NULL))
                ? ECODOC_CA_T_DB_EXPIRED : ECODOC_CA_T_DB_VALID;
            break;
        }
    }

    ecodoc_ca_db_free(&db);

    return t;
}


static void
ecodoc_ca_step4(ecodoc_ca_page_t *pg)
{
    int                rc;
    X509              *x;
    time_t             na;
    char               fp[ECODOC_CA_FP_LEN], serial[ECODOC_CA_SERIAL_LEN],
                       subject[ECODOC_CA_SUBJECT_MAX];
    ecodoc_ca_esess_t  s;
    ecodoc_ca_text_e   verdict;

    x = ecodoc_ca_client_cert(pg);

    if (x == NULL) {
        /* no certificate yet: how to install it, again */
        ecodoc_ca_install_page(pg, 403, ECODOC_CA_T_NOCERT);
        return;
    }

    ecodoc_ca_cert_fp(x, fp);
    ecodoc_ca_cert_serial(x, serial);
    ecodoc_ca_cert_subject(x, subject, sizeof(subject));
    na = (time_t) ecodoc_ca_cert_not_after(x);
    X509_free(x);

    rc = ecodoc_ca_session(pg, &s, 1);
    if (rc < 0) {
        return;
    }

    if (rc == 1 && s.fp[0] != '\0') {
        verdict = strcmp(s.fp, fp) == 0 ? ECODOC_CA_T_MATCH
                                        : ECODOC_CA_T_NOMATCH;

    } else {
        verdict = ecodoc_ca_db_state(pg, fp);
    }

    if (rc == 1) {
        ecodoc_ca_enroll_session_free(&s);
    }

    ecodoc_ca_step4_page(pg, subject, serial, fp, na, verdict);
}


/* the router */

static void
ecodoc_ca_site_route(ecodoc_ca_site_t *site, ecodoc_ca_req_t *req,
    ecodoc_ca_resp_t *resp)
{
    int                i, get_only;
    const char        *page, *m;
    ecodoc_ca_page_t   pg;

    /* the first ECODOC_CA_POST_PAGES take a POST */
    static const char  *pages[] = {
        "", "step1", "step2", "step3", "renew",
        "step4", "install", "certificate.pem", "certificate.p12", NULL
    };

    pg.site = site;
    pg.req = req;
    pg.resp = resp;
    pg.en = ecodoc_ca_http_english(req);
    pg.addr = ecodoc_ca_http_header(req, "X-Real-IP");
    pg.addr = (pg.addr != NULL && strlen(pg.addr) < 64) ? pg.addr : "-";

    m = req->method;
    pg.post = strcmp(m, "POST") == 0;
    pg.renewal = 0;
    pg.refresh = NULL;

    if (strncmp(req->path, ECODOC_CA_SITE_PREFIX,
                sizeof(ECODOC_CA_SITE_PREFIX) - 1) != 0)
    {
        ecodoc_ca_page_error(&pg, 404, ECODOC_CA_T_NOTFOUND);
        return;
    }

    page = req->path + sizeof(ECODOC_CA_SITE_PREFIX) - 1;

    /* the pages that take a POST, then those that only show */

    for (i = 0; pages[i] != NULL; i++) {
        if (strcmp(page, pages[i]) == 0) {
            break;
        }
    }

    if (pages[i] == NULL) {
        ecodoc_ca_page_error(&pg, 404, ECODOC_CA_T_NOTFOUND);
        return;
    }

    get_only = i >= ECODOC_CA_POST_PAGES;

    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0
        && (!pg.post || get_only))
    {
        ecodoc_ca_resp_header(resp, "Allow: %s", get_only
                              ? "GET, HEAD" : "GET, HEAD, POST");
        ecodoc_ca_page_error(&pg, 405, ECODOC_CA_T_METHOD);
        return;
    }

    if (page[0] == '\0' || strcmp(page, "step1") == 0) {
        if (pg.post) {
            ecodoc_ca_step1_post(&pg);
        } else {
            ecodoc_ca_step1_form(&pg, 200, ECODOC_CA_T_MAX, NULL, NULL);
        }

    } else if (strcmp(page, "step2") == 0) {
        ecodoc_ca_step2(&pg);

    } else if (strcmp(page, "step3") == 0) {
        ecodoc_ca_step3(&pg);

    } else if (strcmp(page, "step4") == 0) {
        ecodoc_ca_step4(&pg);

    } else if (strcmp(page, "renew") == 0) {
        ecodoc_ca_renew(&pg);

    } else if (strcmp(page, "install") == 0) {
        ecodoc_ca_install_page(&pg, 200, ECODOC_CA_T_MAX);

    } else if (strcmp(page, "certificate.p12") == 0) {
        ecodoc_ca_certificate_p12(&pg);

    } else {
        ecodoc_ca_certificate_pem(&pg);
    }
}


/*
 * A request, in its connection's thread: with a Redis connection (and its
 * TLS context) and a hold on the CA database of its own, for no Redis
 * client state is for two threads; all closed and freed when answered.
 */

static void
ecodoc_ca_site_handler(void *ctx, ecodoc_ca_req_t *req,
    ecodoc_ca_resp_t *resp)
{
    ecodoc_ca_t       ca;
    ecodoc_ca_pki_t   pki;
    ecodoc_ca_site_t  site;

    site = *(ecodoc_ca_site_t *) ctx;

    /* the settings passed at the start: only memory can fail here */
    ca = *site.ca;
    if (ecodoc_ca_redis_config(&ca) != ECODOC_CA_OK) {
        resp->failed = 1;
        return;
    }

    site.ca = &ca;

    pki = *site.pki;
    pki.lock_fd = -1;
    site.pki = &pki;

    ecodoc_ca_site_route(&site, req, resp);

    ecodoc_ca_redis_free(&ca);
    ecodoc_ca_db_unlock(&pki);
}


/* enroll-server --dir DIR --listen unix:PATH [...] */

int
ecodoc_ca_enroll_server(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                rc;
    long long          days, mode, wait, renewal, max, lifetime;
    const char        *dir, *passfile, *listen, *site_url, *days_s, *mode_s,
                      *wait_s, *renewal_s, *max_s, *lifetime_s;
    pthread_mutex_t    check;
    ecodoc_ca_pki_t    pki;
    ecodoc_ca_site_t   site;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &dir },
        { "--passphrase-file", 1, &passfile },
        { "--listen", 1, &listen },
        { "--site-url", 1, &site_url },
        { "--days", 1, &days_s },
        { "--socket-mode", 1, &mode_s },
        { "--check-wait", 1, &wait_s },
        { "--renewal", 1, &renewal_s },
        { "--max-failures", 1, &max_s },
        { "--session-lifetime", 1, &lifetime_s },
        { NULL, 0, NULL }
    };

    dir = NULL;
    passfile = NULL;
    listen = NULL;
    site_url = NULL;
    days_s = NULL;
    mode_s = "0660";
    wait_s = NULL;
    renewal_s = NULL;
    max_s = NULL;
    lifetime_s = NULL;
    days = ECODOC_CA_DEFAULT_DAYS;
    wait = ECODOC_CA_CHECK_WAIT;
    renewal = ECODOC_CA_RENEWAL;
    max = 6;
    lifetime = 8 * 3600;

    if (ecodoc_ca_options(argc, argv, opts, NULL, 0, NULL) != ECODOC_CA_OK
        || (dir = ecodoc_ca_dir(dir)) == NULL)
    {
        return ECODOC_CA_USAGE;
    }

    if (listen == NULL || strncmp(listen, "unix:", 5) != 0
        || listen[5] != '/')
    {
        ecodoc_ca_usage_error("enroll-server: give --listen unix:/path.sock");
        return ECODOC_CA_USAGE;
    }

    if (days_s != NULL && ecodoc_ca_number(days_s, 1, 3650, &days) != 0) {
        ecodoc_ca_usage_error("invalid --days \"%s\": use 1..3650", days_s);
        return ECODOC_CA_USAGE;
    }

    if (wait_s != NULL && ecodoc_ca_number(wait_s, 1, 60, &wait) != 0) {
        ecodoc_ca_usage_error("invalid --check-wait \"%s\": use 1..60",
                              wait_s);
        return ECODOC_CA_USAGE;
    }

    if (renewal_s != NULL) {
        if (strcmp(renewal_s, "off") == 0) {
            renewal = ECODOC_CA_RENEWAL_OFF;

        } else if (strcmp(renewal_s, "on") == 0) {
            renewal = ECODOC_CA_RENEWAL_ANY;

        } else if (ecodoc_ca_number(renewal_s, 1, 3650, &renewal) != 0) {
            ecodoc_ca_usage_error("invalid --renewal \"%s\": use off, on or "
                                  "days 1..3650", renewal_s);
            return ECODOC_CA_USAGE;
        }
    }

    if (max_s != NULL && ecodoc_ca_number(max_s, 1, 100, &max) != 0) {
        ecodoc_ca_usage_error("invalid --max-failures \"%s\": use 1..100",
                              max_s);
        return ECODOC_CA_USAGE;
    }

    if (lifetime_s != NULL
        && ecodoc_ca_number(lifetime_s, 60, 366 * 86400, &lifetime) != 0)
    {
        ecodoc_ca_usage_error("invalid --session-lifetime \"%s\": use "
                              "60..31622400 seconds", lifetime_s);
        return ECODOC_CA_USAGE;
    }

    mode = strtoll(mode_s, NULL, 8);

    if (strspn(mode_s, "01234567") != strlen(mode_s) || mode_s[0] == '\0'
        || mode > 0777)
    {
        ecodoc_ca_usage_error("invalid --socket-mode \"%s\": use octal, "
                              "e.g. 0660", mode_s);
        return ECODOC_CA_USAGE;
    }

    if (ecodoc_ca_pki_load(&pki, dir, passfile, 1) != 0) {
        ecodoc_ca_pki_free(&pki);
        return ECODOC_CA_ERROR;
    }

    site.ca = ca;
    site.pki = &pki;
    site.site_url = ecodoc_ca_site_url(site_url);
    site.days = (long) days;
    site.check_wait = (unsigned) wait;
    site.renewal = (long) renewal;
    site.max_failures = (unsigned) max;
    site.lifetime = (long) lifetime;
    site.check = &check;

    pthread_mutex_init(&check, NULL);

    /* each request opens its own Redis connection */
    ecodoc_ca_redis_close(ca);

    rc = ecodoc_ca_http_serve(listen + 5, (int) mode, ecodoc_ca_site_handler,
                              &site);

    pthread_mutex_destroy(&check);
    ecodoc_ca_pki_free(&pki);

    return rc == 0 ? ECODOC_CA_OK : ECODOC_CA_ERROR;
}
