/*
 * ecodoc-ca enroll-server: what the files of the enrollment site share:
 * the site, the request being answered, the texts and each file's calls.
 */

#ifndef ECODOC_CA_SITE_H
#define ECODOC_CA_SITE_H

#include <pthread.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_http.h"
#include "ecodoc_ca_pki.h"


#define ECODOC_CA_SITE_PREFIX    "/enroll/"
#define ECODOC_CA_COOKIE         "__Host-enroll"
#define ECODOC_CA_CSRF_COOKIE    "__Host-enroll-csrf"
#define ECODOC_CA_GATE_COOKIE    "__Host-ecodoc"     /* the gate's session */
#define ECODOC_CA_RENEW_PAGE     ECODOC_CA_SITE_PREFIX "renew"
#define ECODOC_CA_RENEWAL_OFF    -1
#define ECODOC_CA_RENEWAL_ANY    0
#define ECODOC_CA_LOCK_BUSY      -2
#define ECODOC_CA_P12_MIN        8
#define ECODOC_CA_P12_MAX        128


typedef struct {
    ecodoc_ca_t      *ca;
    ecodoc_ca_pki_t  *pki;
    const char       *site_url;
    long              days;
    unsigned          check_wait;    /* s a STEP1 waits for its check */
    long              renewal;       /* days before expiry, _OFF, _ANY */
    unsigned          max_failures;  /* the gate's ecodoc_max_failures */
    long              lifetime;      /* the gate's ecodoc_session_lifetime */
    pthread_mutex_t  *check;         /* held by the STEP1 being checked */
} ecodoc_ca_site_t;


/* one request: what every page needs */
typedef struct {
    ecodoc_ca_site_t   *site;
    ecodoc_ca_req_t    *req;
    ecodoc_ca_resp_t   *resp;
    int                 en;
    const char         *addr;
    int                 post;
    int                 renewal;     /* a renewal's enrollment session */
    const char         *refresh;     /* a URL the page goes on to, or NULL */
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
    ECODOC_CA_T_CANCELLED,
    ECODOC_CA_T_P12_READY,
    ECODOC_CA_T_P12_DOWNLOAD,
    ECODOC_CA_T_P12_AUTO,
    ECODOC_CA_T_INSTALL,
    ECODOC_CA_T_DAYS_LEFT,
    ECODOC_CA_T_RENEW,
    ECODOC_CA_T_RENEW_INTRO,
    ECODOC_CA_T_RENEW_OFF,
    ECODOC_CA_T_RENEW_EARLY,
    ECODOC_CA_T_RENEW_LOGIN,
    ECODOC_CA_T_TO_LOGIN,
    ECODOC_CA_T_RENEW_DENIED,
    ECODOC_CA_T_RENEW_PASSWORD,
    ECODOC_CA_T_RENEW_WRONG,
    ECODOC_CA_T_RENEW_LOCKED,
    ECODOC_CA_T_RENEW_BUTTON,
    ECODOC_CA_T_RENEW_AGAIN,
    ECODOC_CA_T_CURRENT,
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

/* a date and time (UTC) as people read it in the page's language */
void ecodoc_ca_date(int en, time_t t, char *buf, size_t size);


/* ecodoc_ca_site_html.c: the pages */

/* the page up to its STEP heading (step 0: none), and its end */
void ecodoc_ca_page_start(ecodoc_ca_page_t *pg, int status, int step);
void ecodoc_ca_page_end(ecodoc_ca_page_t *pg);

/* a message about the whole page (not about one field) */
void ecodoc_ca_page_msg(ecodoc_ca_page_t *pg, const char *text,
    const char *more);

/* a page with only a message (and a way back to STEP1, or to the
 * renewal page for a renewal) */
void ecodoc_ca_page_error(ecodoc_ca_page_t *pg, int status,
    ecodoc_ca_text_e t);

/* a paragraph with a link */
void ecodoc_ca_page_link(ecodoc_ca_page_t *pg, const char *href,
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

/*
 * STEP3 after issuance: the PKCS#12 file to download (its download
 * started once), or the PEM (CSR path); the way on to STEP4
 */
void ecodoc_ca_step3_done(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s);

/* STEP4: the certificate presented and the verdict on it */
void ecodoc_ca_step4_page(ecodoc_ca_page_t *pg, const char *subject,
    const char *serial, const char *fp, time_t not_after,
    ecodoc_ca_text_e verdict);

/* the installation instructions on their own, with the way to STEP4 */
void ecodoc_ca_install_page(ecodoc_ca_page_t *pg, int status,
    ecodoc_ca_text_e msg);

/*
 * The renewal page: who, the current certificate's expiry, and the
 * password form, or (msg without form) why not; field names the field
 * msg is about
 */
void ecodoc_ca_renew_page(ecodoc_ca_page_t *pg, int status,
    const char *user, time_t not_after, ecodoc_ca_text_e msg,
    const char *field, int form);


/* ecodoc_ca_site.c */

/*
 * one password check at a time across the server's threads: 0 when it is
 * this one's turn (ecodoc_ca_site_unlock() ends it), ECODOC_CA_LOCK_BUSY
 * when --check-wait seconds went by first
 */
int ecodoc_ca_site_lock(ecodoc_ca_site_t *site);
void ecodoc_ca_site_unlock(ecodoc_ca_site_t *site);


/* ecodoc_ca_site_renew.c: renewal with the current certificate */

void ecodoc_ca_renew(ecodoc_ca_page_t *pg);


/* ecodoc_ca_site_form.c: what a request sends */

/* a field of the POSTed form, malloc'ed, or NULL */
char *ecodoc_ca_field(ecodoc_ca_page_t *pg, const char *name);

/* a POST's form: urlencoded, with the csrf that expect names; 0 or sent */
int ecodoc_ca_form_ok(ecodoc_ca_page_t *pg, const char *expect);

/* the same with the token of the csrf cookie (STEP1's, the renewal's) */
int ecodoc_ca_form_cookie_ok(ecodoc_ca_page_t *pg);

/* the client certificate nginx verified and passed on, or NULL */
X509 *ecodoc_ca_client_cert(ecodoc_ca_page_t *pg);

#endif /* ECODOC_CA_SITE_H */
