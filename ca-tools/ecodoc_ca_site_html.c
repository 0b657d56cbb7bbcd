/*
 * ecodoc-ca enroll-server: the enrollment site's pages as HTML: the frame,
 * the forms of STEP1-3 with their errors, STEP4, messages and redirects.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ecodoc_web.h"
#include "ecodoc_ca_site.h"


static void ecodoc_ca_form_start(ecodoc_ca_page_t *pg, const char *action,
    const char *csrf);
static void ecodoc_ca_form_end(ecodoc_ca_page_t *pg, const char *button);
static void ecodoc_ca_form_input(ecodoc_ca_page_t *pg, const char *name,
    const char *type, const char *label, const char *extra,
    const char *value, const char *error, const char *more);
static void ecodoc_ca_heading(ecodoc_ca_page_t *pg, ecodoc_ca_text_e head,
    ecodoc_ca_text_e intro);
static void ecodoc_ca_row(ecodoc_ca_page_t *pg, const char *id,
    ecodoc_ca_text_e t, const char *value);


/*
 * page frame: the look of the gate's own pages (ecodoc_web.h), and what
 * only this site has: a wider main, the steps, key types, tables, PEM
 */

static const char  ecodoc_ca_style[] =
    ECODOC_WEB_STYLE
    "main{max-width:44rem}\n"
    "h2{font-size:1.2rem;margin:1.6rem 0 .6rem;padding-bottom:.3rem;"
    "border-bottom:2px solid #0b3d6e}\n"
    "h3{font-size:1.05rem;margin:1.6rem 0 .4rem}\n"
    ".steps{margin:.6rem 0;padding:.6rem .8rem .6rem 2.2rem;"
    "background:#f3f5f7;border-radius:4px;color:#4a535c}\n"
    ".steps li[aria-current=step]{color:#0b3d6e;font-weight:bold}\n"
    "fieldset{margin:1rem 0 0;border:1px solid #c5ccd3;border-radius:4px;"
    "padding:.4rem 1rem .8rem}\n"
    "legend{font-weight:bold;padding:0 .3rem}\n"
    "fieldset label{margin:.5rem 0;font-weight:normal}\n"
    "input[type=radio]{margin-right:.5rem}\n"
    "textarea{font-family:ui-monospace,monospace;font-size:.9rem}\n"
    "p.error:not([id$=-error]){background:#fdecee;"
    "border-left:4px solid #b00020;padding:.8rem}\n"
    "pre{white-space:pre-wrap;word-break:break-all;background:#f3f5f7;"
    "padding:.8rem;border-radius:4px;font-size:.85rem}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "th,td{text-align:left;vertical-align:top;padding:.5rem .6rem;"
    "border-bottom:1px solid #dde2e6}\n"
    "th{white-space:nowrap;background:#f3f5f7}\n"
    "td{word-break:break-all}\n"
    "dt{font-weight:bold;margin-top:.8rem}\n"
    "dd{margin-left:1rem}\n"
    "code{overflow-wrap:anywhere}\n"
    "@media (max-width:36rem){th,td{display:block}"
    "th{border-bottom:0;padding-bottom:.1rem}td{padding-top:.1rem}}\n";


void
ecodoc_ca_page_start(ecodoc_ca_page_t *pg, int status, int step)
{
    int  i;

    pg->resp->status = status;
    ecodoc_ca_resp_header(pg->resp, "Content-Type: text/html; charset=utf-8");

    ecodoc_ca_resp_puts(pg->resp, "<!DOCTYPE html>\n<html lang=\"");
    ecodoc_ca_resp_puts(pg->resp, pg->en ? "en" : "ja");
    ecodoc_ca_resp_puts(pg->resp,
        "\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n<title>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_TITLE));
    ecodoc_ca_resp_puts(pg->resp, " | ");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_SERVICE));
    ecodoc_ca_resp_puts(pg->resp, "</title>\n");

    if (pg->refresh != NULL) {
        ecodoc_ca_resp_puts(pg->resp, "<meta http-equiv=\"refresh\" "
                            "content=\"0;url=");
        ecodoc_ca_resp_html(pg->resp, pg->refresh);
        ecodoc_ca_resp_puts(pg->resp, "\">\n");
    }

    ecodoc_ca_resp_puts(pg->resp, "<style>\n");
    ecodoc_ca_resp_puts(pg->resp, ecodoc_ca_style);
    ecodoc_ca_resp_puts(pg->resp, "</style>\n</head>\n<body>\n<header>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_SERVICE));
    ecodoc_ca_resp_puts(pg->resp, "</header>\n<main>\n<h1>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_TITLE));
    ecodoc_ca_resp_puts(pg->resp, "</h1>\n<p>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_INTRO));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n<ol class=\"steps\">\n");

    for (i = 1; i <= 4; i++) {
        ecodoc_ca_resp_puts(pg->resp, i == step
                                      ? "<li aria-current=\"step\">"
                                      : "<li>");
        ecodoc_ca_resp_html(pg->resp,
                            ECODOC_CA_T(pg, ECODOC_CA_T_STEP1 + i - 1));
        ecodoc_ca_resp_puts(pg->resp, "</li>\n");
    }

    ecodoc_ca_resp_puts(pg->resp, "</ol>\n");

    if (step >= 1) {
        ecodoc_ca_resp_puts(pg->resp, "<h2>");
        ecodoc_ca_resp_html(pg->resp,
                            ECODOC_CA_T(pg, ECODOC_CA_T_STEP1 + step - 1));
        ecodoc_ca_resp_puts(pg->resp, "</h2>\n");
    }
}


void
ecodoc_ca_page_end(ecodoc_ca_page_t *pg)
{
    ecodoc_ca_resp_puts(pg->resp, "</main>\n</body>\n</html>\n");
}


/* a message about the whole page (not about one field) */

void
ecodoc_ca_page_msg(ecodoc_ca_page_t *pg, const char *text, const char *more)
{
    ecodoc_ca_resp_puts(pg->resp, "<p class=\"error\" role=\"alert\" "
                        "id=\"message\">");
    ecodoc_ca_resp_html(pg->resp, text);

    if (more != NULL) {
        ecodoc_ca_resp_html(pg->resp, more);
    }

    ecodoc_ca_resp_puts(pg->resp, "</p>\n");
}


/* a page with only a message (and a way back) */

void
ecodoc_ca_page_error(ecodoc_ca_page_t *pg, int status, ecodoc_ca_text_e t)
{
    ecodoc_ca_page_start(pg, status, 0);
    ecodoc_ca_page_msg(pg, ECODOC_CA_T(pg, t), NULL);

    if (pg->renewal) {
        ecodoc_ca_page_link(pg, ECODOC_CA_RENEW_PAGE,
                            ECODOC_CA_T_RENEW_AGAIN);

    } else {
        ecodoc_ca_page_link(pg, ECODOC_CA_SITE_PREFIX, ECODOC_CA_T_STEP1);
    }

    ecodoc_ca_page_end(pg);
}


void
ecodoc_ca_page_link(ecodoc_ca_page_t *pg, const char *href,
    ecodoc_ca_text_e t)
{
    ecodoc_ca_resp_puts(pg->resp, "<p><a href=\"");
    ecodoc_ca_resp_html(pg->resp, href);
    ecodoc_ca_resp_puts(pg->resp, "\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, t));
    ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
}


void
ecodoc_ca_page_redirect(ecodoc_ca_page_t *pg, const char *to)
{
    pg->resp->status = 303;
    ecodoc_ca_resp_header(pg->resp, "Location: %s", to);
    ecodoc_ca_resp_header(pg->resp, "Content-Type: text/plain");
}


static void
ecodoc_ca_form_start(ecodoc_ca_page_t *pg, const char *action,
    const char *csrf)
{
    ecodoc_ca_resp_puts(pg->resp, "<form method=\"post\" action=\"");
    ecodoc_ca_resp_html(pg->resp, action);
    ecodoc_ca_resp_puts(pg->resp, "\">\n<input type=\"hidden\" name=\"csrf\" "
                        "value=\"");
    ecodoc_ca_resp_html(pg->resp, csrf);
    ecodoc_ca_resp_puts(pg->resp, "\">\n");
}


static void
ecodoc_ca_form_end(ecodoc_ca_page_t *pg, const char *button)
{
    ecodoc_ca_resp_puts(pg->resp, "<button type=\"submit\">");
    ecodoc_ca_resp_html(pg->resp, button);
    ecodoc_ca_resp_puts(pg->resp, "</button>\n</form>\n");
}


/*
 * a labelled field (type "textarea" for a textarea), its label above it;
 * error, when given, is the message about this field, shown beside it
 */

static void
ecodoc_ca_form_input(ecodoc_ca_page_t *pg, const char *name,
    const char *type, const char *label, const char *extra,
    const char *value, const char *error, const char *more)
{
    int  area;

    area = strcmp(type, "textarea") == 0;

    ecodoc_ca_resp_puts(pg->resp, "<label for=\"");
    ecodoc_ca_resp_puts(pg->resp, name);
    ecodoc_ca_resp_puts(pg->resp, "\">");
    ecodoc_ca_resp_html(pg->resp, label);
    ecodoc_ca_resp_puts(pg->resp, "</label>\n");

    if (error != NULL) {
        ecodoc_ca_resp_puts(pg->resp, "<p class=\"error\" role=\"alert\" "
                            "id=\"");
        ecodoc_ca_resp_puts(pg->resp, name);
        ecodoc_ca_resp_puts(pg->resp, "-error\">");
        ecodoc_ca_resp_html(pg->resp, error);

        if (more != NULL) {
            ecodoc_ca_resp_html(pg->resp, more);
        }

        ecodoc_ca_resp_puts(pg->resp, "</p>\n");
    }

    if (area) {
        ecodoc_ca_resp_puts(pg->resp, "<textarea");

    } else {
        ecodoc_ca_resp_puts(pg->resp, "<input type=\"");
        ecodoc_ca_resp_puts(pg->resp, type);
        ecodoc_ca_resp_puts(pg->resp, "\"");
    }

    ecodoc_ca_resp_puts(pg->resp, " id=\"");
    ecodoc_ca_resp_puts(pg->resp, name);
    ecodoc_ca_resp_puts(pg->resp, "\" name=\"");
    ecodoc_ca_resp_puts(pg->resp, name);
    ecodoc_ca_resp_puts(pg->resp, "\" required ");
    ecodoc_ca_resp_puts(pg->resp, extra);

    if (error != NULL) {
        ecodoc_ca_resp_puts(pg->resp, " aria-invalid=\"true\" "
                            "aria-describedby=\"");
        ecodoc_ca_resp_puts(pg->resp, name);
        ecodoc_ca_resp_puts(pg->resp, "-error\" autofocus");
    }

    if (value != NULL && !area) {
        ecodoc_ca_resp_puts(pg->resp, " value=\"");
        ecodoc_ca_resp_html(pg->resp, value);
        ecodoc_ca_resp_puts(pg->resp, "\"");
    }

    ecodoc_ca_resp_puts(pg->resp, area ? "></textarea>\n" : ">\n");
}


/* a part of a page: its heading and a paragraph */

static void
ecodoc_ca_heading(ecodoc_ca_page_t *pg, ecodoc_ca_text_e head,
    ecodoc_ca_text_e intro)
{
    ecodoc_ca_resp_puts(pg->resp, "<h3>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, head));
    ecodoc_ca_resp_puts(pg->resp, "</h3>\n<p>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, intro));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");
}


void
ecodoc_ca_set_cookie(ecodoc_ca_page_t *pg, const char *name,
    const char *value, const char *max_age)
{
    ecodoc_ca_resp_header(pg->resp, "Set-Cookie: %s=%s; Path=/; Secure; "
                          "HttpOnly; SameSite=Strict; Max-Age=%s", name,
                          value, max_age);
}


/* STEP1's form, with a new csrf cookie */

void
ecodoc_ca_step1_form(ecodoc_ca_page_t *pg, int status,
    ecodoc_ca_text_e msg, const char *field, const char *user)
{
    char        csrf[ECODOC_CA_TOKEN_LEN];
    const char  *text;

    if (ecodoc_ca_token(csrf) != 0) {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return;
    }

    ecodoc_ca_set_cookie(pg, ECODOC_CA_CSRF_COOKIE, csrf, "3600");

    ecodoc_ca_page_start(pg, status, 1);

    text = (msg != ECODOC_CA_T_MAX) ? ECODOC_CA_T(pg, msg) : NULL;

    if (text != NULL && field == NULL) {
        ecodoc_ca_page_msg(pg, text, NULL);
    }

    if (user != NULL && !ecodoc_ca_valid_user(user)) {
        user = NULL;
    }

    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step1", csrf);
    ecodoc_ca_form_input(pg, "user", "text",
                         ECODOC_CA_T(pg, ECODOC_CA_T_USER),
                         "maxlength=\"64\" autocomplete=\"username\"", user,
                         field != NULL && strcmp(field, "user") == 0
                         ? text : NULL, NULL);
    ecodoc_ca_form_input(pg, "password", "password",
                         ECODOC_CA_T(pg, ECODOC_CA_T_PASSWORD),
                         "autocomplete=\"off\"", NULL,
                         field != NULL && strcmp(field, "password") == 0
                         ? text : NULL, NULL);
    ecodoc_ca_form_end(pg, ECODOC_CA_T(pg, ECODOC_CA_T_NEXT));
    ecodoc_ca_page_end(pg);
}


/* STEP2's form */

void
ecodoc_ca_step2_form(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s)
{
    int  i;

    ecodoc_ca_page_start(pg, 200, 2);
    ecodoc_ca_resp_puts(pg->resp, "<p>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_CHOOSE));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");
    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step2", s->csrf);
    ecodoc_ca_resp_puts(pg->resp, "<fieldset>\n<legend>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_KEY_LEGEND));
    ecodoc_ca_resp_puts(pg->resp, "</legend>\n");

    for (i = 0; ecodoc_ca_key_types[i][0] != NULL; i++) {
        ecodoc_ca_resp_puts(pg->resp, "<label><input type=\"radio\" "
                            "name=\"key\" value=\"");
        ecodoc_ca_resp_puts(pg->resp, ecodoc_ca_key_types[i][0]);
        ecodoc_ca_resp_puts(pg->resp, i == 0 ? "\" checked> " : "\"> ");
        ecodoc_ca_resp_html(pg->resp, ecodoc_ca_key_types[i][1 + pg->en]);
        ecodoc_ca_resp_puts(pg->resp, "</label>\n");
    }

    ecodoc_ca_resp_puts(pg->resp, "</fieldset>\n");
    ecodoc_ca_form_end(pg, ECODOC_CA_T(pg, ECODOC_CA_T_NEXT));
    ecodoc_ca_page_end(pg);
}


/* STEP3's two forms */

void
ecodoc_ca_step3_forms(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s,
    int status, const char *msg, const char *more, const char *field)
{
#define ECODOC_CA_ERR_AT(name)                                                \
    (msg != NULL && field != NULL && strcmp(field, name) == 0 ? msg : NULL)

    ecodoc_ca_page_start(pg, status, 3);

    if (msg != NULL && field == NULL) {
        ecodoc_ca_page_msg(pg, msg, more);
    }

    ecodoc_ca_heading(pg, ECODOC_CA_T_P12_HEAD, ECODOC_CA_T_P12_INTRO);
    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step3", s->csrf);
    ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" name=\"mode\" "
                        "value=\"p12\">\n");

    /* for password managers: whose password this is */
    ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" "
                        "autocomplete=\"username\" value=\"");
    ecodoc_ca_resp_html(pg->resp, s->user);
    ecodoc_ca_resp_puts(pg->resp, "\">\n");

    ecodoc_ca_form_input(pg, "p12pw", "password",
                         ECODOC_CA_T(pg, ECODOC_CA_T_P12_PASSWORD),
                         "minlength=\"8\" maxlength=\"128\" "
                         "autocomplete=\"new-password\"", NULL,
                         ECODOC_CA_ERR_AT("p12pw"), more);
    ecodoc_ca_form_input(pg, "p12pw2", "password",
                         ECODOC_CA_T(pg, ECODOC_CA_T_P12_AGAIN),
                         "minlength=\"8\" maxlength=\"128\" "
                         "autocomplete=\"new-password\"", NULL,
                         ECODOC_CA_ERR_AT("p12pw2"), more);
    ecodoc_ca_form_end(pg, ECODOC_CA_T(pg, ECODOC_CA_T_P12_ISSUE));

    ecodoc_ca_heading(pg, ECODOC_CA_T_CSR_HEAD, ECODOC_CA_T_CSR_INTRO);
    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step3", s->csrf);
    ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" name=\"mode\" "
                        "value=\"csr\">\n");
    ecodoc_ca_form_input(pg, "csr", "textarea",
                         ECODOC_CA_T(pg, ECODOC_CA_T_CSR_LABEL),
                         "rows=\"12\" cols=\"66\" spellcheck=\"false\"", NULL,
                         ECODOC_CA_ERR_AT("csr"), more);
    ecodoc_ca_form_end(pg, ECODOC_CA_T(pg, ECODOC_CA_T_CSR_ISSUE));

    ecodoc_ca_resp_puts(pg->resp, ecodoc_ca_howto(pg->en));
    ecodoc_ca_page_end(pg);

#undef ECODOC_CA_ERR_AT
}


/* STEP3 after issuance: the PKCS#12 or the PEM, the way on to STEP4 */

void
ecodoc_ca_step3_done(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s)
{
    /* the PKCS#12's download starts by itself the first time only */
    pg->refresh = (s->p12 != NULL && !s->p12_taken)
                  ? ECODOC_CA_SITE_PREFIX "certificate.p12" : NULL;

    ecodoc_ca_page_start(pg, 200, 3);
    ecodoc_ca_resp_puts(pg->resp, "<p id=\"issued\" class=\"done\" "
                        "role=\"status\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, s->p12 != NULL
                                                  ? ECODOC_CA_T_P12_READY
                                                  : ECODOC_CA_T_ISSUED));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");

    if (s->p12 != NULL) {
        ecodoc_ca_resp_puts(pg->resp, "<p>");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_P12_AUTO));
        ecodoc_ca_resp_puts(pg->resp, "</p>\n<p><a id=\"download\" href=\""
                            ECODOC_CA_SITE_PREFIX "certificate.p12\">");
        ecodoc_ca_resp_html(pg->resp,
                            ECODOC_CA_T(pg, ECODOC_CA_T_P12_DOWNLOAD));
        ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");

    } else if (s->pem != NULL) {
        ecodoc_ca_resp_puts(pg->resp, "<pre id=\"certificate\">");
        ecodoc_ca_resp_html(pg->resp, s->pem);
        ecodoc_ca_resp_puts(pg->resp, "</pre>\n<p><a id=\"download\" href=\""
                            ECODOC_CA_SITE_PREFIX "certificate.pem\">");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_DOWNLOAD));
        ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
    }

    ecodoc_ca_page_link(pg, ECODOC_CA_SITE_PREFIX "step4",
                        ECODOC_CA_T_TO_STEP4);
    ecodoc_ca_resp_puts(pg->resp, ecodoc_ca_howto(pg->en));
    ecodoc_ca_page_end(pg);
}


/* STEP4: the certificate presented and the verdict on it */

void
ecodoc_ca_step4_page(ecodoc_ca_page_t *pg, const char *subject,
    const char *serial, const char *fp, time_t not_after,
    ecodoc_ca_text_e verdict)
{
    int   ok;
    char  date[64], days[24];

    ok = verdict == ECODOC_CA_T_MATCH || verdict == ECODOC_CA_T_DB_VALID;

    ecodoc_ca_date(pg->en, not_after, date, sizeof(date));
    snprintf(days, sizeof(days), "%lld",
             (long long) (not_after - time(NULL)) / 86400);

    ecodoc_ca_page_start(pg, 200, 4);
    ecodoc_ca_resp_puts(pg->resp, "<table>\n");
    ecodoc_ca_row(pg, "subject", ECODOC_CA_T_SUBJECT, subject);
    ecodoc_ca_row(pg, "serial", ECODOC_CA_T_SERIAL, serial);
    ecodoc_ca_row(pg, "fingerprint", ECODOC_CA_T_FINGERPRINT, fp);
    ecodoc_ca_row(pg, "not-after", ECODOC_CA_T_NOT_AFTER, date);

    if (not_after > time(NULL)) {
        ecodoc_ca_row(pg, "days-left", ECODOC_CA_T_DAYS_LEFT, days);
    }

    ecodoc_ca_resp_puts(pg->resp, "</table>\n<p id=\"verdict\" class=\"");
    ecodoc_ca_resp_puts(pg->resp, ok ? "ok done\" role=\"status"
                                     : "no error\" role=\"alert");
    ecodoc_ca_resp_puts(pg->resp, "\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, verdict));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");

    if (ok) {
        ecodoc_ca_resp_puts(pg->resp, "<p>");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_DONE));
        ecodoc_ca_resp_puts(pg->resp, "</p>\n<p><a href=\"");
        ecodoc_ca_resp_html(pg->resp, pg->site->site_url);
        ecodoc_ca_resp_puts(pg->resp, "/ecodoc/signup\">");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_TO_SIGNUP));
        ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");

    } else {
        ecodoc_ca_page_link(pg, ECODOC_CA_SITE_PREFIX "install",
                            ECODOC_CA_T_INSTALL);
    }

    ecodoc_ca_page_end(pg);
}


/* the installation instructions, with the way to STEP4 */

void
ecodoc_ca_install_page(ecodoc_ca_page_t *pg, int status,
    ecodoc_ca_text_e msg)
{
    ecodoc_ca_page_start(pg, status, msg != ECODOC_CA_T_MAX ? 4 : 0);

    if (msg != ECODOC_CA_T_MAX) {
        ecodoc_ca_page_msg(pg, ECODOC_CA_T(pg, msg), NULL);
    }

    ecodoc_ca_resp_puts(pg->resp, ecodoc_ca_howto(pg->en));
    ecodoc_ca_page_link(pg, ECODOC_CA_SITE_PREFIX "step4",
                        ECODOC_CA_T_TO_STEP4);
    ecodoc_ca_page_link(pg, ECODOC_CA_SITE_PREFIX, ECODOC_CA_T_STEP1);
    ecodoc_ca_page_end(pg);
}


/* the renewal page */

void
ecodoc_ca_renew_page(ecodoc_ca_page_t *pg, int status, const char *user,
    time_t not_after, ecodoc_ca_text_e msg, const char *field, int form)
{
    char         csrf[ECODOC_CA_TOKEN_LEN], date[64];
    const char  *text;

    if (form) {
        if (ecodoc_ca_token(csrf) != 0) {
            ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
            return;
        }

        ecodoc_ca_set_cookie(pg, ECODOC_CA_CSRF_COOKIE, csrf, "3600");
    }

    ecodoc_ca_page_start(pg, status, 0);
    ecodoc_ca_resp_puts(pg->resp, "<h2>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_RENEW));
    ecodoc_ca_resp_puts(pg->resp, "</h2>\n<p>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_RENEW_INTRO));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");

    text = (msg != ECODOC_CA_T_MAX) ? ECODOC_CA_T(pg, msg) : NULL;

    if (text != NULL && (field == NULL || !form)) {
        ecodoc_ca_page_msg(pg, text, NULL);
    }

    if (user != NULL) {
        ecodoc_ca_date(pg->en, not_after, date, sizeof(date));
        ecodoc_ca_resp_puts(pg->resp, "<table>\n");
        ecodoc_ca_row(pg, "user", ECODOC_CA_T_USER, user);
        ecodoc_ca_row(pg, "not-after", ECODOC_CA_T_CURRENT, date);
        ecodoc_ca_resp_puts(pg->resp, "</table>\n");
    }

    if (msg == ECODOC_CA_T_RENEW_LOGIN) {
        ecodoc_ca_resp_puts(pg->resp, "<p><a href=\"");
        ecodoc_ca_resp_html(pg->resp, pg->site->site_url);
        ecodoc_ca_resp_puts(pg->resp, "/ecodoc/login?next="
                            ECODOC_CA_RENEW_PAGE "\">");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_TO_LOGIN));
        ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
    }

    if (form) {
        ecodoc_ca_form_start(pg, ECODOC_CA_RENEW_PAGE, csrf);

        /* for password managers: whose password this is */
        ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" "
                            "autocomplete=\"username\" value=\"");
        ecodoc_ca_resp_html(pg->resp, user != NULL ? user : "");
        ecodoc_ca_resp_puts(pg->resp, "\">\n");

        ecodoc_ca_form_input(pg, "password", "password",
                             ECODOC_CA_T(pg, ECODOC_CA_T_RENEW_PASSWORD),
                             "autocomplete=\"current-password\"", NULL,
                             field != NULL ? text : NULL, NULL);
        ecodoc_ca_form_end(pg, ECODOC_CA_T(pg, ECODOC_CA_T_RENEW_BUTTON));
    }

    ecodoc_ca_page_end(pg);
}


static void
ecodoc_ca_row(ecodoc_ca_page_t *pg, const char *id, ecodoc_ca_text_e t,
    const char *value)
{
    ecodoc_ca_resp_puts(pg->resp, "<tr><th>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, t));
    ecodoc_ca_resp_puts(pg->resp, "</th><td id=\"");
    ecodoc_ca_resp_puts(pg->resp, id);
    ecodoc_ca_resp_puts(pg->resp, "\">");
    ecodoc_ca_resp_html(pg->resp, value);
    ecodoc_ca_resp_puts(pg->resp, "</td></tr>\n");
}
