/*
 * ecodoc-ca enroll-server: the enrollment site (証明書発行サイト), STEP1-4
 * pages in Japanese and English, and the command that starts it.
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_http.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


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
    ECODOC_CA_T_MAX
} ecodoc_ca_text_e;


static const char  *ecodoc_ca_text[ECODOC_CA_T_MAX][2] = {
    { "証明書発行サイト", "Certificate enrollment site" },
    { "証明書発行は次の手順で行います。",
      "The certificate is issued in these steps." },
    { "【STEP1】認証情報/パスワードを入力",
      "[STEP1] Enter your user ID and certificate password" },
    { "【STEP2】鍵の種類とKey長を選択",
      "[STEP2] Choose the key type and length" },
    { "【STEP3】証明書を受け取る", "[STEP3] Receive the certificate" },
    { "【STEP4】証明書の確認", "[STEP4] Check the certificate" },
    { "ユーザIDまたは認証情報パスワードが正しくありません。",
      "The user ID or certificate password is incorrect." },
    { "この認証情報パスワードは使用済みです。証明書の再発行は管理者に"
      "ご連絡ください。",
      "This certificate password has already been used. Please contact "
      "your administrator for a new one." },
    { "この認証情報パスワードは有効期限が切れています。管理者にご連絡"
      "ください。",
      "This certificate password has expired. Please contact your "
      "administrator." },
    { "認証情報パスワードを続けて間違えたため、このユーザIDの証明書発行は"
      "ロックされています。管理者にご連絡ください。",
      "Too many wrong certificate passwords: enrollment for this user ID "
      "is locked. Please contact your administrator." },
    { "発行手続きの有効期限が切れました。STEP1 からやり直してください。",
      "Your enrollment session has expired. Please start again at STEP1." },
    { "不正なリクエストです。ページを読み込み直してください。",
      "Invalid request. Please reload the page." },
    { "リクエストが正しくありません。", "The request is malformed." },
    { "ユーザIDが正しくありません。", "The user ID is not valid." },
    { "2つのパスワードが一致しません。", "The two passwords differ." },
    { "パスワードは8文字以上128文字以下にしてください。",
      "The password must be 8 to 128 characters long." },
    { "CSR を受け付けられません: ", "The CSR is refused: " },
    { "ただいまご利用になれません。しばらくしてからもう一度お試しください。",
      "The service is temporarily unavailable. Please try again later." },
    { "ページが見つかりません。", "Page not found." },
    { "このメソッドは使えません。", "Method not allowed." },
    { "クライアント証明書が提示されていません。証明書をインストールした"
      "ブラウザで、証明書を選択してこのページを開いてください。",
      "No client certificate was presented. Open this page in the browser "
      "where you installed the certificate, and choose it when asked." },
    { "次へ", "Next" },
    { "ユーザID", "User ID" },
    { "認証情報パスワード", "Certificate password" },
    { "鍵の種類と長さを選択し、[次へ]ボタンを押してください。RSA 4096 bit "
      "の鍵の生成には時間がかかる場合があります。",
      "Choose the key type and length and press [Next]. Making an RSA "
      "4096-bit key may take a while." },
    { "証明書を発行しました。認証情報パスワードは使用済みになりました。",
      "Your certificate has been issued. The certificate password has now "
      "been used." },
    { "証明書をインストールしたら、STEP4 で確認してください。",
      "When the certificate is installed, check it at STEP4." },
    { "この証明書は、今回の手続きで発行した証明書です。",
      "This is the certificate issued in this enrollment." },
    { "この証明書は、今回の手続きで発行した証明書ではありません。",
      "This is not the certificate issued in this enrollment." },
    { "この証明書は本サービスの認証局が発行した有効な証明書です。",
      "This certificate was issued by this service's CA and is valid." },
    { "この証明書は失効しています。", "This certificate has been revoked." },
    { "この証明書は有効期限が切れています。",
      "This certificate has expired." },
    { "この証明書は本サービスの認証局の台帳にありません。",
      "This certificate is not in this service's CA database." },
    { "以上で、証明書発行は完了しました。次はサインアップです。",
      "Certificate enrollment is complete. Next: sign up." },
    { "エコ文書サービス", "Ecodoc document service" },
    { "サインアップへ進む", "Go to sign-up" },
    { "鍵の種類と長さ", "Key type and length" },
};


#define ECODOC_CA_T(pg, t)  ecodoc_ca_text[t][(pg)->en]


static const char  *ecodoc_ca_key_types[][3] = {
    { "ec", "ECDSA P-256 (推奨)", "ECDSA P-256 (recommended)" },
    { "rsa2048", "RSA 2048 bit", "RSA 2048 bit" },
    { "rsa3072", "RSA 3072 bit", "RSA 3072 bit" },
    { "rsa4096", "RSA 4096 bit", "RSA 4096 bit" },
    { NULL, NULL, NULL }
};


/* page frame: the look of the gate's own pages (ngx_http_ecodoc_pages.c) */

static const char  ecodoc_ca_style[] =
    "body{margin:0;font-family:system-ui,-apple-system,\"Segoe UI\","
    "\"Hiragino Sans\",\"Noto Sans CJK JP\",sans-serif;background:#f3f5f7;"
    "color:#1b1f23;line-height:1.6}\n"
    "header{background:#0b3d6e;color:#fff;padding:.8rem 1.2rem;"
    "font-weight:bold}\n"
    "main{max-width:44rem;margin:2rem auto;background:#fff;"
    "padding:1.5rem 2rem;border-radius:8px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}\n"
    "h1{font-size:1.4rem;margin-top:0}\n"
    "h2{font-size:1.2rem;margin:1.6rem 0 .6rem;padding-bottom:.3rem;"
    "border-bottom:2px solid #0b3d6e}\n"
    "h3{font-size:1.05rem;margin:1.6rem 0 .4rem}\n"
    ".steps{margin:.6rem 0;padding:.6rem .8rem .6rem 2.2rem;"
    "background:#f3f5f7;border-radius:4px;color:#4a535c}\n"
    ".steps li[aria-current=step]{color:#0b3d6e;font-weight:bold}\n"
    "label{display:block;margin:1rem 0 .3rem;font-weight:bold}\n"
    "fieldset{margin:1rem 0 0;border:1px solid #c5ccd3;border-radius:4px;"
    "padding:.4rem 1rem .8rem}\n"
    "legend{font-weight:bold;padding:0 .3rem}\n"
    "fieldset label{margin:.5rem 0;font-weight:normal}\n"
    "input[type=radio]{margin-right:.5rem}\n"
    "input[type=text],input[type=password],textarea{width:100%;"
    "box-sizing:border-box;padding:.6rem;font-size:1rem;"
    "border:1px solid #77818b;border-radius:4px}\n"
    "textarea{font-family:ui-monospace,monospace;font-size:.9rem}\n"
    "[aria-invalid=true]{border:2px solid #b00020}\n"
    "input:focus,textarea:focus,button:focus,a:focus{outline:3px solid "
    "#f0b429;outline-offset:2px}\n"
    "button{margin-top:1.4rem;padding:.7rem 1.8rem;font-size:1rem;"
    "background:#0b5cad;color:#fff;border:0;border-radius:4px;"
    "cursor:pointer}\n"
    ".error{color:#b00020;font-weight:bold;margin:.3rem 0}\n"
    "p.error:not([id$=-error]){background:#fdecee;"
    "border-left:4px solid #b00020;padding:.8rem}\n"
    ".done{background:#e6f4ea;border-left:4px solid #1e7e34;padding:.8rem}\n"
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
    "@media (max-width:36rem){main{margin:0;border-radius:0;padding:1rem}"
    "th,td{display:block}th{border-bottom:0;padding-bottom:.1rem}"
    "td{padding-top:.1rem}}\n";


static void
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
    ecodoc_ca_resp_puts(pg->resp, "</title>\n<style>\n");
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


static void
ecodoc_ca_page_end(ecodoc_ca_page_t *pg)
{
    ecodoc_ca_resp_puts(pg->resp, "</main>\n</body>\n</html>\n");
}


/* a message about the whole page (not about one field) */

static void
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


/* a page with only a message (and a way back to STEP1) */

static void
ecodoc_ca_page_error(ecodoc_ca_page_t *pg, int status, ecodoc_ca_text_e t)
{
    ecodoc_ca_page_start(pg, status, 0);
    ecodoc_ca_page_msg(pg, ECODOC_CA_T(pg, t), NULL);
    ecodoc_ca_resp_puts(pg->resp, "<p><a href=\"" ECODOC_CA_SITE_PREFIX
                        "\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_STEP1));
    ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
    ecodoc_ca_page_end(pg);
}


static void
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


/* constant-time comparison of two NUL-terminated tokens */

static int
ecodoc_ca_same_token(const char *a, const char *b)
{
    size_t  n;

    n = strlen(a);

    return a[0] != '\0' && n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}


static char *
ecodoc_ca_field(ecodoc_ca_page_t *pg, const char *name)
{
    return ecodoc_ca_http_field(pg->req->body, pg->req->body_len, name);
}


/* a POST's form: urlencoded, with the csrf that expect names; 0 or sent */

static int
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


static void
ecodoc_ca_set_cookie(ecodoc_ca_page_t *pg, const char *name,
    const char *value, const char *max_age)
{
    ecodoc_ca_resp_header(pg->resp, "Set-Cookie: %s=%s; Path=/; Secure; "
                          "HttpOnly; SameSite=Strict; Max-Age=%s", name,
                          value, max_age);
}


/* STEP1 */

/*
 * the form; msg (ECODOC_CA_T_MAX: none) is shown beside the field named
 * field, or above the form without one; user, when valid, is kept
 */

static void
ecodoc_ca_step1_form(ecodoc_ca_page_t *pg, int status, ecodoc_ca_text_e msg,
    const char *field, const char *user)
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


/* an exclusive lock, held until its descriptor is closed; -1 without one */

static int
ecodoc_ca_site_lock(ecodoc_ca_site_t *site)
{
    int   fd;
    char  path[1200];

    snprintf(path, sizeof(path), "%s/.check.lock", site->pki->dir);

    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd != -1 && flock(fd, LOCK_EX) != 0) {
        close(fd);
        fd = -1;
    }

    if (fd == -1) {
        ecodoc_ca_http_log("cannot lock %s: checking without it", path);
    }

    return fd;
}


static void
ecodoc_ca_step1_post(ecodoc_ca_page_t *pg)
{
    int                rc, lock;
    char              *cookie, *user, *pw, token[ECODOC_CA_TOKEN_LEN];
    ecodoc_ca_code_e   code;
    ecodoc_ca_esess_t  s;

    cookie = ecodoc_ca_http_cookie(pg->req, ECODOC_CA_CSRF_COOKIE);
    rc = ecodoc_ca_form_ok(pg, cookie);
    free(cookie);

    if (rc != 0) {
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
     * one scrypt check at a time across the server's children: each takes
     * 128 MiB, and anyone may ask for one
     */

    lock = ecodoc_ca_site_lock(pg->site);
    code = ecodoc_ca_enroll_check(pg->site->ca, user, pw, strlen(pw),
                                  pg->addr, token, &s);
    if (lock != -1) {
        close(lock);
    }

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

    ecodoc_ca_page_start(pg, 200, 2);
    ecodoc_ca_resp_puts(pg->resp, "<p>");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_CHOOSE));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");
    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step2", s.csrf);
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

done:

    ecodoc_ca_enroll_session_free(&s);
}


/* STEP3 */

static const char  ecodoc_ca_howto_ja[] =
    "<h3>証明書のインストール方法</h3>\n"
    "<dl>\n"
    "<dt>Windows (Edge, Chrome)</dt><dd>ダウンロードした .p12 ファイルを"
    "ダブルクリックし、「証明書のインポート ウィザード」で保存場所に"
    "「現在のユーザー」を選び、STEP3 で設定したパスワードを入力します。"
    "証明書ストアは「証明書の種類に基づいて、自動的に証明書ストアを選択する」"
    "のまま[完了]を押します。</dd>\n"
    "<dt>macOS (Safari, Chrome)</dt><dd>.p12 ファイルをダブルクリックし、"
    "キーチェーン「ログイン」に追加します。パスワードを入力すると、"
    "「自分の証明書」に表示されます。</dd>\n"
    "<dt>Firefox (Windows, macOS, Linux)</dt><dd>設定 → プライバシーと"
    "セキュリティ → 証明書 → [証明書を表示] → 「あなたの証明書」タブ → "
    "[インポート] で .p12 ファイルを選び、パスワードを入力します。</dd>\n"
    "<dt>Chrome (Linux)</dt><dd>設定 → プライバシーとセキュリティ → "
    "セキュリティ → [証明書の管理] → 「あなたの証明書」 → [インポート] で "
    ".p12 ファイルを選び、パスワードを入力します(コマンドでは "
    "<code>pk12util -d sql:$HOME/.pki/nssdb -i ファイル.p12</code>)。</dd>\n"
    "<dt>CSR を使った場合</dt><dd>受け取った証明書と手元の秘密鍵から "
    "<code>openssl pkcs12 -export -inkey key.pem -in cert.pem -out "
    "cert.p12</code> で .p12 ファイルを作り、上の手順でインポートします。"
    "</dd>\n"
    "</dl>\n";

static const char  ecodoc_ca_howto_en[] =
    "<h3>Installing the certificate</h3>\n"
    "<dl>\n"
    "<dt>Windows (Edge, Chrome)</dt><dd>Double-click the downloaded .p12 "
    "file. In the Certificate Import Wizard choose \"Current User\", enter "
    "the password you set in STEP3, keep \"Automatically select the "
    "certificate store\" and press Finish.</dd>\n"
    "<dt>macOS (Safari, Chrome)</dt><dd>Double-click the .p12 file and add "
    "it to the \"login\" keychain; after the password it appears under "
    "\"My Certificates\".</dd>\n"
    "<dt>Firefox (Windows, macOS, Linux)</dt><dd>Settings &rarr; Privacy "
    "&amp; Security &rarr; Certificates &rarr; View Certificates &rarr; "
    "Your Certificates &rarr; Import, choose the .p12 file and enter the "
    "password.</dd>\n"
    "<dt>Chrome (Linux)</dt><dd>Settings &rarr; Privacy and security "
    "&rarr; Security &rarr; Manage certificates &rarr; Your certificates "
    "&rarr; Import, choose the .p12 file and enter the password (or "
    "<code>pk12util -d sql:$HOME/.pki/nssdb -i file.p12</code>).</dd>\n"
    "<dt>With a CSR</dt><dd>Make a .p12 from the certificate and your "
    "private key with <code>openssl pkcs12 -export -inkey key.pem -in "
    "cert.pem -out cert.p12</code> and import it as above.</dd>\n"
    "</dl>\n";


/*
 * the two forms; msg (and more), when given, is shown beside the field
 * named field, or above the forms without one
 */

static void
ecodoc_ca_step3_forms(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s,
    int status, const char *msg, const char *more, const char *field)
{
#define ECODOC_CA_ERR_AT(name)                                                \
    (msg != NULL && field != NULL && strcmp(field, name) == 0 ? msg : NULL)

    ecodoc_ca_page_start(pg, status, 3);

    if (msg != NULL && field == NULL) {
        ecodoc_ca_page_msg(pg, msg, more);
    }

    ecodoc_ca_resp_puts(pg->resp, pg->en
        ? "<h3>(a) Download a PKCS#12 file (key made by this site)</h3>\n"
          "<p>Set a password that protects the file; you need it when "
          "you import the file.</p>\n"
        : "<h3>(a) PKCS#12 ファイルをダウンロード(鍵はこのサイトで生成)"
          "</h3>\n<p>ファイルを保護するパスワードを設定してください。"
          "インポートするときに必要です。</p>\n");
    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step3", s->csrf);
    ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" name=\"mode\" "
                        "value=\"p12\">\n");

    /* for password managers: whose password this is */
    ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" "
                        "autocomplete=\"username\" value=\"");
    ecodoc_ca_resp_html(pg->resp, s->user);
    ecodoc_ca_resp_puts(pg->resp, "\">\n");

    ecodoc_ca_form_input(pg, "p12pw", "password",
                         pg->en ? "PKCS#12 password" : "PKCS#12 パスワード",
                         "minlength=\"8\" maxlength=\"128\" "
                         "autocomplete=\"new-password\"", NULL,
                         ECODOC_CA_ERR_AT("p12pw"), more);
    ecodoc_ca_form_input(pg, "p12pw2", "password",
                         pg->en ? "Again" : "もう一度",
                         "minlength=\"8\" maxlength=\"128\" "
                         "autocomplete=\"new-password\"", NULL,
                         ECODOC_CA_ERR_AT("p12pw2"), more);
    ecodoc_ca_form_end(pg, pg->en ? "Issue and download the PKCS#12"
                                  : "PKCS#12 を発行してダウンロード");

    ecodoc_ca_resp_puts(pg->resp, pg->en
        ? "<h3>(b) Or paste a certificate signing request (PEM)</h3>\n"
          "<p>ECDSA P-256/P-384 or RSA of 2048 bits or more; the subject "
          "is set by this site.</p>\n"
        : "<h3>(b) または CSR(PEM)を貼り付ける</h3>\n<p>鍵は ECDSA "
          "P-256/P-384 か 2048 bit 以上の RSA。サブジェクトはこのサイトが"
          "設定します。</p>\n");
    ecodoc_ca_form_start(pg, ECODOC_CA_SITE_PREFIX "step3", s->csrf);
    ecodoc_ca_resp_puts(pg->resp, "<input type=\"hidden\" name=\"mode\" "
                        "value=\"csr\">\n");
    ecodoc_ca_form_input(pg, "csr", "textarea", "CSR (PEM)",
                         "rows=\"12\" cols=\"66\" spellcheck=\"false\"", NULL,
                         ECODOC_CA_ERR_AT("csr"), more);
    ecodoc_ca_form_end(pg, pg->en ? "Issue from the CSR" : "CSR から発行");

    ecodoc_ca_resp_puts(pg->resp, pg->en ? ecodoc_ca_howto_en
                                         : ecodoc_ca_howto_ja);
    ecodoc_ca_page_end(pg);

#undef ECODOC_CA_ERR_AT
}


/* STEP3 after issuance: the PEM (CSR path), the way on to STEP4 */

static void
ecodoc_ca_step3_done(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s)
{
    ecodoc_ca_page_start(pg, 200, 3);
    ecodoc_ca_resp_puts(pg->resp, "<p id=\"issued\" class=\"done\" "
                        "role=\"status\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_ISSUED));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");

    if (s->pem != NULL) {
        ecodoc_ca_resp_puts(pg->resp, "<pre id=\"certificate\">");
        ecodoc_ca_resp_html(pg->resp, s->pem);
        ecodoc_ca_resp_puts(pg->resp, "</pre>\n<p><a href=\""
                            ECODOC_CA_SITE_PREFIX "certificate.pem\">");
        ecodoc_ca_resp_puts(pg->resp, pg->en ? "Download the certificate"
                                             : "証明書をダウンロード");
        ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
    }

    ecodoc_ca_resp_puts(pg->resp, "<p><a href=\"" ECODOC_CA_SITE_PREFIX
                        "step4\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_TO_STEP4));
    ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
    ecodoc_ca_resp_puts(pg->resp, pg->en ? ecodoc_ca_howto_en
                                         : ecodoc_ca_howto_ja);
    ecodoc_ca_page_end(pg);
}


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
ecodoc_ca_step3_p12(ecodoc_ca_page_t *pg, ecodoc_ca_esess_t *s)
{
    X509           *x;
    char           *pw, *pw2;
    size_t          len, n;
    EVP_PKEY       *key;
    unsigned char  *der;

    pw = ecodoc_ca_field(pg, "p12pw");
    pw2 = ecodoc_ca_field(pg, "p12pw2");
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

    pg->resp->status = 200;
    ecodoc_ca_resp_header(pg->resp, "Content-Type: application/x-pkcs12");
    ecodoc_ca_resp_header(pg->resp, "Content-Disposition: attachment; "
                          "filename=\"%s.p12\"", s->user);
    ecodoc_ca_resp_add(pg->resp, (char *) der, len);

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


/* STEP4 */

static X509 *
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
ecodoc_ca_row(ecodoc_ca_page_t *pg, const char *id, const char *ja,
    const char *en, const char *value)
{
    ecodoc_ca_resp_puts(pg->resp, "<tr><th>");
    ecodoc_ca_resp_html(pg->resp, pg->en ? en : ja);
    ecodoc_ca_resp_puts(pg->resp, "</th><td id=\"");
    ecodoc_ca_resp_puts(pg->resp, id);
    ecodoc_ca_resp_puts(pg->resp, "\">");
    ecodoc_ca_resp_html(pg->resp, value);
    ecodoc_ca_resp_puts(pg->resp, "</td></tr>\n");
}


static void
ecodoc_ca_step4(ecodoc_ca_page_t *pg)
{
    int                rc;
    X509              *x;
    char               fp[ECODOC_CA_FP_LEN], serial[ECODOC_CA_SERIAL_LEN],
                       subject[ECODOC_CA_SUBJECT_MAX], na[ECODOC_CA_TIME_LEN];
    ecodoc_ca_esess_t  s;
    ecodoc_ca_text_e   verdict;

    x = ecodoc_ca_client_cert(pg);

    if (x == NULL) {
        ecodoc_ca_page_start(pg, 403, 4);
        ecodoc_ca_page_msg(pg, ECODOC_CA_T(pg, ECODOC_CA_T_NOCERT), NULL);
        ecodoc_ca_page_end(pg);
        return;
    }

    ecodoc_ca_cert_fp(x, fp);
    ecodoc_ca_cert_serial(x, serial);
    ecodoc_ca_cert_subject(x, subject, sizeof(subject));
    ecodoc_ca_iso_time(na, (time_t) ecodoc_ca_cert_not_after(x), -1);
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

    ecodoc_ca_page_start(pg, 200, 4);
    ecodoc_ca_resp_puts(pg->resp, "<table>\n");
    ecodoc_ca_row(pg, "subject", "サブジェクト", "Subject", subject);
    ecodoc_ca_row(pg, "serial", "シリアル番号", "Serial number", serial);
    ecodoc_ca_row(pg, "fingerprint", "SHA-256 フィンガープリント",
                  "SHA-256 fingerprint", fp);
    ecodoc_ca_row(pg, "not-after", "有効期限", "Valid until", na);
    ecodoc_ca_resp_puts(pg->resp, "</table>\n<p id=\"verdict\" class=\"");
    ecodoc_ca_resp_puts(pg->resp,
                        (verdict == ECODOC_CA_T_MATCH
                         || verdict == ECODOC_CA_T_DB_VALID)
                        ? "ok done\" role=\"status"
                        : "no error\" role=\"alert");
    ecodoc_ca_resp_puts(pg->resp, "\">");
    ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, verdict));
    ecodoc_ca_resp_puts(pg->resp, "</p>\n");

    if (verdict == ECODOC_CA_T_MATCH || verdict == ECODOC_CA_T_DB_VALID) {
        ecodoc_ca_resp_puts(pg->resp, "<p>");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_DONE));
        ecodoc_ca_resp_puts(pg->resp, "</p>\n<p><a href=\"");
        ecodoc_ca_resp_html(pg->resp, pg->site->site_url);
        ecodoc_ca_resp_puts(pg->resp, "/ecodoc/signup\">");
        ecodoc_ca_resp_html(pg->resp, ECODOC_CA_T(pg, ECODOC_CA_T_TO_SIGNUP));
        ecodoc_ca_resp_puts(pg->resp, "</a></p>\n");
    }

    ecodoc_ca_page_end(pg);
}


/* the router */

static void
ecodoc_ca_site_handler(void *ctx, ecodoc_ca_req_t *req,
    ecodoc_ca_resp_t *resp)
{
    const char        *page, *m;
    ecodoc_ca_page_t   pg;

    pg.site = ctx;
    pg.req = req;
    pg.resp = resp;
    pg.en = ecodoc_ca_http_english(req);
    pg.addr = ecodoc_ca_http_header(req, "X-Real-IP");
    pg.addr = (pg.addr != NULL && strlen(pg.addr) < 64) ? pg.addr : "-";

    m = req->method;
    pg.post = strcmp(m, "POST") == 0;

    if (strncmp(req->path, ECODOC_CA_SITE_PREFIX,
                sizeof(ECODOC_CA_SITE_PREFIX) - 1) != 0)
    {
        ecodoc_ca_page_error(&pg, 404, ECODOC_CA_T_NOTFOUND);
        return;
    }

    page = req->path + sizeof(ECODOC_CA_SITE_PREFIX) - 1;

    if (strcmp(page, "") != 0 && strcmp(page, "step1") != 0
        && strcmp(page, "step2") != 0 && strcmp(page, "step3") != 0
        && strcmp(page, "step4") != 0
        && strcmp(page, "certificate.pem") != 0)
    {
        ecodoc_ca_page_error(&pg, 404, ECODOC_CA_T_NOTFOUND);
        return;
    }

    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0
        && (!pg.post || strcmp(page, "step4") == 0
            || strcmp(page, "certificate.pem") == 0))
    {
        ecodoc_ca_resp_header(resp, "Allow: %s", strcmp(page, "step4") == 0
                              || strcmp(page, "certificate.pem") == 0
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

    } else {
        ecodoc_ca_certificate_pem(&pg);
    }
}


/* enroll-server --dir DIR --listen unix:PATH [...] */

int
ecodoc_ca_enroll_server(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                rc;
    long long          days, mode;
    const char        *dir, *passfile, *listen, *site_url, *days_s, *mode_s;
    ecodoc_ca_pki_t    pki;
    ecodoc_ca_site_t   site;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &dir },
        { "--passphrase-file", 1, &passfile },
        { "--listen", 1, &listen },
        { "--site-url", 1, &site_url },
        { "--days", 1, &days_s },
        { "--socket-mode", 1, &mode_s },
        { NULL, 0, NULL }
    };

    dir = NULL;
    passfile = NULL;
    listen = NULL;
    site_url = NULL;
    days_s = NULL;
    mode_s = "0660";
    days = ECODOC_CA_DEFAULT_DAYS;

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

    /* each connection's process opens its own Redis connection */
    ecodoc_ca_redis_close(ca);

    rc = ecodoc_ca_http_serve(listen + 5, (int) mode, ecodoc_ca_site_handler,
                              &site);

    ecodoc_ca_pki_free(&pki);

    return rc == 0 ? ECODOC_CA_OK : ECODOC_CA_ERROR;
}
