/*
 * ecodoc-ca enroll-server: what the files of the enrollment site share:
 * the site, the request being answered, the texts and each file's calls.
 */

#ifndef ECODOC_CA_SITE_H
#define ECODOC_CA_SITE_H

#include "ecodoc_ca.h"
#include "ecodoc_ca_http.h"
#include "ecodoc_ca_pki.h"


#define ECODOC_CA_SITE_PREFIX    "/enroll/"
#define ECODOC_CA_COOKIE         "__Host-enroll"
#define ECODOC_CA_CSRF_COOKIE    "__Host-enroll-csrf"
#define ECODOC_CA_P12_MIN        8
#define ECODOC_CA_P12_MAX        128


typedef struct {
    ecodoc_ca_t      *ca;
    ecodoc_ca_pki_t  *pki;
    const char       *site_url;
    long              days;
    unsigned          check_wait;    /* s a STEP1 waits for its check */
} ecodoc_ca_site_t;


/* one request: what every page needs */
typedef struct {
    ecodoc_ca_site_t   *site;
    ecodoc_ca_req_t    *req;
    ecodoc_ca_resp_t   *resp;
    int                 en;
    const char         *addr;
    int                 post;
} ecodoc_ca_page_t;


/* the texts of ecodoc_ca_site_texts.c */
typedef enum {
    ECODOC_CA_T_TITLE = 0,
    ECODOC_CA_T_INTRO,
    ECODOC_CA_T_STEP1,
    ECODOC_CA_T_STEP2,
    ECODOC_CA_T_STEP3,
    ECODOC_CA_T_STEP4,
    ECODOC_CA_T_WRONG,
    ECODOC_CA_T_USED,
    ECODOC_CA_T_EXPIRED,
    ECODOC_CA_T_LOCKED,
    ECODOC_CA_T_NOSESSION,
    ECODOC_CA_T_CSRF,
    ECODOC_CA_T_MALFORMED,
    ECODOC_CA_T_BADUSER,
    ECODOC_CA_T_MISMATCH,
    ECODOC_CA_T_SHORT,
    ECODOC_CA_T_CSR,
    ECODOC_CA_T_UNAVAILABLE,
    ECODOC_CA_T_BUSY,
    ECODOC_CA_T_NOTFOUND,
    ECODOC_CA_T_METHOD,
    ECODOC_CA_T_NOCERT,
    ECODOC_CA_T_NEXT,
    ECODOC_CA_T_USER,
    ECODOC_CA_T_PASSWORD,
    ECODOC_CA_T_CHOOSE,
    ECODOC_CA_T_ISSUED,
    ECODOC_CA_T_TO_STEP4,
    ECODOC_CA_T_MATCH,
    ECODOC_CA_T_NOMATCH,
    ECODOC_CA_T_DB_VALID,
    ECODOC_CA_T_DB_REVOKED,
    ECODOC_CA_T_DB_EXPIRED,
    ECODOC_CA_T_DB_UNKNOWN,
    ECODOC_CA_T_DONE,
    ECODOC_CA_T_SERVICE,
    ECODOC_CA_T_TO_SIGNUP,
    ECODOC_CA_T_KEY_LEGEND,
    ECODOC_CA_T_P12_HEAD,
    ECODOC_CA_T_P12_INTRO,
    ECODOC_CA_T_P12_PASSWORD,
    ECODOC_CA_T_P12_AGAIN,
    ECODOC_CA_T_P12_ISSUE,
    ECODOC_CA_T_CSR_HEAD,
    ECODOC_CA_T_CSR_INTRO,
    ECODOC_CA_T_CSR_LABEL,
    ECODOC_CA_T_CSR_ISSUE,
    ECODOC_CA_T_DOWNLOAD,
    ECODOC_CA_T_SUBJECT,
    ECODOC_CA_T_SERIAL,
    ECODOC_CA_T_FINGERPRINT,
    ECODOC_CA_T_NOT_AFTER,
    ECODOC_CA_T_MAX
} ecodoc_ca_text_e;


/* ecodoc_ca_site_texts.c */

/* a text in the page's language */
const char *ecodoc_ca_text(int en, ecodoc_ca_text_e t);

#define ECODOC_CA_T(pg, t)  ecodoc_ca_text((pg)->en, t)

/* the key types of STEP2: { value, Japanese, English }, NULL-terminated */
extern const char  *ecodoc_ca_key_types[][3];

/* how to install the certificate, as HTML */
const char *ecodoc_ca_howto(int en);


/* ecodoc_ca_site_html.c: the pages */

/* the page up to its STEP heading (step 0: none), and its end */
void ecodoc_ca_page_start(ecodoc_ca_page_t *pg, int status, int step);
void ecodoc_ca_page_end(ecodoc_ca_page_t *pg);

/* a message about the whole page (not about one field) */
void ecodoc_ca_page_msg(ecodoc_ca_page_t *pg, const char *text,
    const char *more);

/* a page with only a message (and a way back to STEP1) */
void ecodoc_ca_page_error(ecodoc_ca_page_t *pg, int status,
    ecodoc_ca_text_e t);

void ecodoc_ca_page_redirect(ecodoc_ca_page_t *pg, const char *to);
void ecodoc_ca_set_cookie(ecodoc_ca_page_t *pg, const char *name,
    const char *value, const char *max_age);

/*
 * STEP1's form with a new csrf cookie; msg (ECODOC_CA_T_MAX: none) is
 * shown beside the field named field, or above the form without one;
 * user, when valid, is kept
 */
void ecodoc_ca_step1_form(ecodoc_ca_page_t *pg, int status,
    ecodoc_ca_text_e msg, const char *field, const char *user);

/* STEP2's form */
void ecodoc_ca_step2_form(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s);

/*
 * STEP3's two forms; msg (and more), when given, is shown beside the
 * field named field, or above the forms without one
 */
void ecodoc_ca_step3_forms(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s,
    int status, const char *msg, const char *more, const char *field);

/* STEP3 after issuance: the PEM (CSR path), the way on to STEP4 */
void ecodoc_ca_step3_done(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s);

/* STEP4: the certificate presented and the verdict on it */
void ecodoc_ca_step4_page(ecodoc_ca_page_t *pg, const char *subject,
    const char *serial, const char *fp, const char *not_after,
    ecodoc_ca_text_e verdict);


/* ecodoc_ca_site_form.c: what a request sends */

/* a field of the POSTed form, malloc'ed, or NULL */
char *ecodoc_ca_field(ecodoc_ca_page_t *pg, const char *name);

/* a POST's form: urlencoded, with the csrf that expect names; 0 or sent */
int ecodoc_ca_form_ok(ecodoc_ca_page_t *pg, const char *expect);

/* the client certificate nginx verified and passed on, or NULL */
X509 *ecodoc_ca_client_cert(ecodoc_ca_page_t *pg);

#endif /* ECODOC_CA_SITE_H */
