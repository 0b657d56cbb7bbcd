/*
 * The pages: sign-up, login, password change, logout and "forgot", their
 * forms and the steps of each POST, in Japanese and English.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


#define NGX_HTTP_ECODOC_PAGE_SIZE    16384
#define NGX_HTTP_ECODOC_NEXT_MAX     2048
#define NGX_HTTP_ECODOC_RETRY_MSEC   50
#define NGX_HTTP_ECODOC_RETRY_MAX    60


/* the texts; the gate's own messages come first (ngx_http_ecodoc.h) */

enum {
    MSG_NO_CERT = NGX_HTTP_ECODOC_MSG_NO_CERT,
    MSG_REVOKED = NGX_HTTP_ECODOC_MSG_REVOKED,
    MSG_LOCKED = NGX_HTTP_ECODOC_MSG_LOCKED,
    MSG_UNAVAILABLE = NGX_HTTP_ECODOC_MSG_UNAVAILABLE,
    MSG_NOT_SIGNED_UP = NGX_HTTP_ECODOC_MSG_NOT_SIGNED_UP,
    MSG_LOGIN_REQUIRED = NGX_HTTP_ECODOC_MSG_LOGIN_REQUIRED,
    MSG_CHANGE_REQUIRED = NGX_HTTP_ECODOC_MSG_CHANGE_REQUIRED,
    MSG_SIGNUP_INTRO,
    MSG_SIGNUP_DONE,
    MSG_LOGIN_INTRO,
    MSG_BAD_PASSWORD,
    MSG_CERT_BOUND,
    MSG_USER_BOUND,
    MSG_SUBJECT,
    MSG_WRONG_CERT,
    MSG_MALFORMED,
    MSG_BAD_USER,
    MSG_TOO_LARGE,
    MSG_FORGED,
    MSG_BUSY,
    MSG_PW_INTRO,
    MSG_PW_INITIAL_INTRO,
    MSG_PW_MISMATCH,
    MSG_PW_SHORT,
    MSG_PW_SAME,
    MSG_PW_USER,
    MSG_PW_RULE,
    MSG_PW_WRONG,
    MSG_PW_DONE,
    MSG_LOGOUT_CONFIRM,
    MSG_LOGOUT_DONE,
    MSG_FORGOT,
    MSG_NOT_FOUND,
    MSG_METHOD,
    MSG_CONTENT_TYPE,

    T_SERVICE,
    T_SIGNUP,
    T_LOGIN,
    T_PASSWORD,
    T_PASSWORD_INITIAL,
    T_LOGOUT,
    T_FORGOT,
    T_ERROR,
    L_USER,
    L_PASSWORD,
    L_INITIAL_PASSWORD,
    L_CURRENT,
    L_NEW,
    L_NEW2,
    B_SIGNUP,
    B_LOGIN,
    B_CHANGE,
    B_LOGOUT,
    A_TO_LOGIN,
    A_FORGOT,
    A_TO_SERVICE,
    A_CONTACT,

    MSG_N
};


static const char  *ngx_http_ecodoc_text[MSG_N][2] = {
    { "クライアント証明書が必要です。証明書発行サイトで発行された証明書を"
      "選択してください。",
      "Client certificate required: please choose the certificate issued "
      "by the enrollment site." },
    { "この証明書は失効しています。管理者にご連絡ください。",
      "This certificate has been revoked. Please contact your "
      "administrator." },
    { "ユーザIDがロックされています。管理者にご連絡ください。",
      "This user ID is locked. Please contact your administrator." },
    { "ただいまサービスをご利用いただけません。しばらくしてから再度"
      "お試しください。",
      "The service is temporarily unavailable. Please try again later." },
    { "この証明書はまだサインアップされていません。",
      "This certificate has not been signed up yet." },
    { "ログインしてください。", "Please log in." },
    { "初期パスワードを変更してください。",
      "Please change your initial password." },
    { "通知メールに記載された「ユーザID」と、管理者より通知された"
      "「初期パスワード」を入力し、「サインアップ」をクリックしてください。",
      "Enter the user ID from the notice e-mail and the initial password "
      "from your administrator, then click \"Sign up\"." },
    { "サインアップが完了しました。", "Sign-up is complete." },
    { "ログインするユーザIDとパスワードを入力してから「ログイン」ボタンを"
      "クリックしてください。",
      "Enter your user ID and password, then click \"Log in\"." },
    { "ユーザIDまたはパスワードが正しくありません。",
      "The user ID or password is incorrect." },
    { "この証明書はすでにサインアップ済みです。",
      "This certificate has already been signed up." },
    { "このユーザIDは別の証明書でサインアップ済みです。",
      "This user ID has already been signed up with another certificate." },
    { "この証明書はこのユーザID用に発行されたものではありません。",
      "This certificate was not issued for this user ID." },
    { "この証明書ではこのユーザIDでログインできません。",
      "This certificate is not registered for this user ID." },
    { "リクエストの形式が正しくありません。", "The request is malformed." },
    { "ユーザIDの形式が正しくありません。", "The user ID is not valid." },
    { "入力が大きすぎます。", "The form is too large." },
    { "不正なリクエストです。ページを再読み込みしてからやり直してください。",
      "Invalid request. Please reload the page and try again." },
    { "ただいま混み合っています。もう一度お試しください。",
      "Please try again." },
    { "現在のパスワードと新しいパスワードを入力してください。",
      "Enter your current password and the new one." },
    { "初期パスワードを任意のパスワードに変更してください。変更するまで"
      "サービスはご利用いただけません。",
      "Please replace your initial password with one of your own. The "
      "service is available once it has been changed." },
    { "新しいパスワードが一致しません。", "The new passwords do not match." },
    { "新しいパスワードが短すぎます。必要な文字数: ",
      "The new password is too short. Minimum length: " },
    { "新しいパスワードは現在のパスワードと異なるものにしてください。",
      "The new password must differ from the current one." },
    { "ユーザIDをパスワードにすることはできません。",
      "The password may not be the user ID." },
    { "新しいパスワードが条件を満たしていません: ",
      "The new password does not meet this rule: " },
    { "現在のパスワードが正しくありません。",
      "The current password is incorrect." },
    { "パスワードを変更しました。", "Your password has been changed." },
    { "ログアウトしますか。", "Do you want to log out?" },
    { "ログアウトしました。", "You have been logged out." },
    { "パスワードを忘れた場合は、管理者にご連絡ください。",
      "If you have forgotten your password, please contact your "
      "administrator." },
    { "ページが見つかりません。", "Page not found." },
    { "この操作は許可されていません。", "This method is not allowed." },
    { "フォームの形式が正しくありません。",
      "The form must be sent as application/x-www-form-urlencoded." },

    { "エコ文書サービス", "Ecodoc document service" },
    { "サインアップ", "Sign up" },
    { "ログイン", "Log in" },
    { "パスワード変更", "Change password" },
    { "初期パスワード変更", "Change your initial password" },
    { "ログアウト", "Log out" },
    { "パスワードを忘れた方", "Forgot your password" },
    { "エラー", "Error" },
    { "ユーザID", "User ID" },
    { "パスワード", "Password" },
    { "初期パスワード", "Initial password" },
    { "現在のパスワード", "Current password" },
    { "新しいパスワード", "New password" },
    { "新しいパスワード（確認）", "New password (again)" },
    { "サインアップ", "Sign up" },
    { "ログイン", "Log in" },
    { "変更する", "Change" },
    { "ログアウト", "Log out" },
    { "ログインへ", "Go to login" },
    { "パスワードを忘れた方", "Forgot your password?" },
    { "サービスへ", "Go to the service" },
    { "お問い合わせ先", "Contact" }
};


static const char  ngx_http_ecodoc_layout[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\">\n<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\">\n"
    "<title>{{title}} | {{service}}</title>\n<style>\n"
    "body{margin:0;font-family:system-ui,-apple-system,\"Segoe UI\","
    "\"Hiragino Sans\",\"Noto Sans CJK JP\",sans-serif;background:#f3f5f7;"
    "color:#1b1f23;line-height:1.6}\n"
    "header{background:#0b3d6e;color:#fff;padding:.8rem 1.2rem;"
    "font-weight:bold}\n"
    "main{max-width:34rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;"
    "border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}\n"
    "h1{font-size:1.4rem;margin-top:0}\n"
    "label{display:block;margin:1rem 0 .3rem;font-weight:bold}\n"
    "input[type=text],input[type=password]{width:100%;box-sizing:border-box;"
    "padding:.6rem;font-size:1rem;border:1px solid #77818b;border-radius:4px}\n"
    "input[aria-invalid=true]{border:2px solid #b00020}\n"
    "input:focus,button:focus,a:focus{outline:3px solid #f0b429;"
    "outline-offset:2px}\n"
    "button{margin-top:1.4rem;padding:.7rem 1.8rem;font-size:1rem;"
    "background:#0b5cad;color:#fff;border:0;border-radius:4px;"
    "cursor:pointer}\n"
    ".error{color:#b00020;font-weight:bold;margin:.3rem 0}\n"
    ".done{background:#e6f4ea;border-left:4px solid #1e7e34;padding:.8rem}\n"
    "@media (max-width:36rem){main{margin:0;border-radius:0;"
    "padding:1rem}}\n"
    "</style>\n</head>\n<body>\n<header>{{service}}</header>\n"
    "<main>\n<h1>{{title}}</h1>\n{{content}}</main>\n</body>\n</html>\n";


/* the scripts' name of a page's password check, by ngx_http_ecodoc_page_e */

static ngx_str_t  ngx_http_ecodoc_modes[] = {
    ngx_null_string,
    ngx_string("signup"),
    ngx_string("login"),
    ngx_string("password")
};


typedef struct {
    u_char                      *start;
    u_char                      *pos;
    u_char                      *end;
    ngx_uint_t                   lang;
    unsigned                     overflow:1;
} ngx_http_ecodoc_out_t;


typedef struct {
    const char                  *name;
    const char                  *type;
    ngx_uint_t                   label;
    const char                  *autocomplete;
    size_t                       offset;      /* in ngx_http_ecodoc_ctx_t */
} ngx_http_ecodoc_field_t;


static ngx_http_ecodoc_field_t  ngx_http_ecodoc_signup_fields[] = {
    { "user", "text", L_USER, "username",
      offsetof(ngx_http_ecodoc_ctx_t, f_user) },
    { "password", "password", L_INITIAL_PASSWORD, "current-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_password) },
    { NULL, NULL, 0, NULL, 0 }
};

static ngx_http_ecodoc_field_t  ngx_http_ecodoc_login_fields[] = {
    { "user", "text", L_USER, "username",
      offsetof(ngx_http_ecodoc_ctx_t, f_user) },
    { "password", "password", L_PASSWORD, "current-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_password) },
    { NULL, NULL, 0, NULL, 0 }
};

static ngx_http_ecodoc_field_t  ngx_http_ecodoc_password_fields[] = {
    { "current", "password", L_CURRENT, "current-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_password) },
    { "new", "password", L_NEW, "new-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_new) },
    { "new2", "password", L_NEW2, "new-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_new2) },
    { NULL, NULL, 0, NULL, 0 }
};

static ngx_http_ecodoc_field_t  ngx_http_ecodoc_no_fields[] = {
    { NULL, NULL, 0, NULL, 0 }
};


/* each page by ngx_http_ecodoc_page_e: its name in the URI and its form */

typedef struct {
    ngx_str_t                    name;
    ngx_http_ecodoc_field_t     *fields;
    ngx_uint_t                   title;
    ngx_uint_t                   intro;
    ngx_uint_t                   button;
} ngx_http_ecodoc_page_t;


static ngx_http_ecodoc_page_t  ngx_http_ecodoc_page_table[] = {
    { ngx_null_string, ngx_http_ecodoc_no_fields, T_ERROR, 0, 0 },
    { ngx_string("signup"), ngx_http_ecodoc_signup_fields, T_SIGNUP,
      MSG_SIGNUP_INTRO, B_SIGNUP },
    { ngx_string("login"), ngx_http_ecodoc_login_fields, T_LOGIN,
      MSG_LOGIN_INTRO, B_LOGIN },
    { ngx_string("password"), ngx_http_ecodoc_password_fields, T_PASSWORD,
      MSG_PW_INTRO, B_CHANGE },
    { ngx_string("logout"), ngx_http_ecodoc_no_fields, T_LOGOUT,
      MSG_LOGOUT_CONFIRM, B_LOGOUT },
    { ngx_string("forgot"), ngx_http_ecodoc_no_fields, T_FORGOT,
      MSG_FORGOT, 0 }
};


static ngx_uint_t ngx_http_ecodoc_page_of(ngx_http_request_t *r);
static ngx_int_t ngx_http_ecodoc_session_check(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static ngx_int_t ngx_http_ecodoc_password_change(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_form_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_ecodoc_form_act(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static ngx_int_t ngx_http_ecodoc_form_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_ecodoc_form_parse(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_ecodoc_unescape(ngx_pool_t *pool, u_char *p,
    u_char *end, ngx_str_t *out);
static ngx_int_t ngx_http_ecodoc_text_ok(ngx_str_t *s, size_t max);
static ngx_int_t ngx_http_ecodoc_next_ok(ngx_str_t *s);
static ngx_int_t ngx_http_ecodoc_same_origin(ngx_http_request_t *r);
static ngx_int_t ngx_http_ecodoc_subject_is(ngx_http_request_t *r,
    ngx_str_t *user);

static ngx_int_t ngx_http_ecodoc_reserve(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_reserve_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_retry(ngx_event_t *ev);
static void ngx_http_ecodoc_checked(ngx_http_request_t *r);
static void ngx_http_ecodoc_finish_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_logout_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_session_done(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_ecodoc_refusal(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *status);

static ngx_int_t ngx_http_ecodoc_form(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t msg,
    const char *field, ngx_str_t *detail);
static ngx_int_t ngx_http_ecodoc_message(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t title,
    ngx_uint_t msg, ngx_uint_t link);
static ngx_int_t ngx_http_ecodoc_send(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t title,
    ngx_http_ecodoc_out_t *content);
static ngx_int_t ngx_http_ecodoc_out_init(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_ecodoc_out_t *out, size_t size);
static void ngx_http_ecodoc_put(ngx_http_ecodoc_out_t *out, const char *s);
static void ngx_http_ecodoc_put_str(ngx_http_ecodoc_out_t *out, u_char *s,
    size_t len);
static void ngx_http_ecodoc_put_html(ngx_http_ecodoc_out_t *out, u_char *s,
    size_t len);
static void ngx_http_ecodoc_put_text(ngx_http_ecodoc_out_t *out,
    ngx_uint_t msg);
static size_t ngx_http_ecodoc_count(u_char *s, size_t len, u_char c);
static void ngx_http_ecodoc_put_link(ngx_http_ecodoc_out_t *out,
    ngx_str_t *base, const char *page, ngx_uint_t text);


ngx_int_t
ngx_http_ecodoc_pages_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    next;
    ngx_http_ecodoc_ctx_t       *ctx;

    ctx = ngx_http_ecodoc_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->page = ngx_http_ecodoc_page_of(r);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))
        || (ctx->page == NGX_HTTP_ECODOC_PAGE_FORGOT
            && r->method == NGX_HTTP_POST))
    {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_NOT_ALLOWED, T_ERROR,
                                       MSG_METHOD, 0);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_NONE) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_NOT_FOUND, T_ERROR,
                                       MSG_NOT_FOUND, 0);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_FORGOT) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK, T_FORGOT,
                                       MSG_FORGOT, A_TO_LOGIN);
    }

    rc = ngx_http_ecodoc_fingerprint(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_FORBIDDEN, T_ERROR,
                                       MSG_NO_CERT, 0);
    }

    ngx_http_ecodoc_session_cookie(r, ctx);

    if (r->method == NGX_HTTP_POST) {

        if (r->headers_in.content_length_n > NGX_HTTP_ECODOC_FORM_MAX) {
            return ngx_http_ecodoc_message(r, ctx,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           T_ERROR, MSG_TOO_LARGE, 0);
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r, ngx_http_ecodoc_form_read);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    /* GET and HEAD show the form */

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_LOGIN
        && ngx_http_arg(r, (u_char *) "next", 4, &next) == NGX_OK
        && ngx_http_ecodoc_unescape(r->pool, next.data, next.data + next.len,
                                    &ctx->f_next) == NGX_OK
        && ngx_http_ecodoc_next_ok(&ctx->f_next) != NGX_OK)
    {
        ngx_str_null(&ctx->f_next);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_SIGNUP
        || ctx->page == NGX_HTTP_ECODOC_PAGE_LOGIN)
    {
        return ngx_http_ecodoc_form(r, ctx, NGX_HTTP_OK, 0, NULL, NULL);
    }

    /* the password and logout pages need a session */

    return ngx_http_ecodoc_session_check(r, ctx);
}


/* asks the gate's script whose session this is, for the pages needing one */

static ngx_int_t
ngx_http_ecodoc_session_check(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx)
{
    if (ngx_http_ecodoc_gate_eval(r, ctx, ngx_http_ecodoc_session_done)
        != NGX_OK)
    {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       T_ERROR, MSG_UNAVAILABLE, 0);
    }

    if (r->method != NGX_HTTP_POST) {
        r->main->count++;     /* the POST has it from reading the body */
    }

    return NGX_DONE;
}


static ngx_uint_t
ngx_http_ecodoc_page_of(ngx_http_request_t *r)
{
    u_char      *p, *end;
    ngx_str_t    name;
    ngx_uint_t   i;

    end = r->uri.data + r->uri.len;
    p = end;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    name.data = p;
    name.len = end - p;

    for (i = 1; i < sizeof(ngx_http_ecodoc_page_table)
                    / sizeof(ngx_http_ecodoc_page_t); i++)
    {
        if (name.len == ngx_http_ecodoc_page_table[i].name.len
            && ngx_strncmp(name.data, ngx_http_ecodoc_page_table[i].name.data,
                           name.len) == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_ECODOC_PAGE_NONE;
}


static void
ngx_http_ecodoc_session_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t               rc;
    ngx_str_t               status, user;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_reply_status(r->pool, reply, &status, &user, 1)
        != NGX_OK)
    {
        ngx_str_set(&status, "error");
    }

    if (ngx_strcmp(status.data, "ok") == 0
        || ngx_strcmp(status.data, "initial") == 0)
    {
        ctx->user = user;
        ctx->initial = status;

        if (r->method == NGX_HTTP_POST) {
            rc = ngx_http_ecodoc_password_change(r, ctx);

            if (rc == NGX_DONE) {
                return;
            }

        } else {
            rc = ngx_http_ecodoc_form(r, ctx, NGX_HTTP_OK, 0, NULL, NULL);
        }

    } else {
        rc = ngx_http_ecodoc_refusal(r, ctx, &status);
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_ecodoc_form_read(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    rc = ngx_http_ecodoc_form_act(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* a POST: checks the form, then starts the page's step; NGX_DONE if begun */

static ngx_int_t
ngx_http_ecodoc_form_act(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    body;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    rc = ngx_http_ecodoc_form_body(r, &body);

    if (rc != NGX_OK) {
        return ngx_http_ecodoc_message(r, ctx, rc, T_ERROR,
                                       rc == NGX_HTTP_BAD_REQUEST
                                       ? MSG_CONTENT_TYPE : MSG_TOO_LARGE, 0);
    }

    if (ngx_http_ecodoc_form_parse(r, ctx, &body) != NGX_OK) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_BAD_REQUEST, T_ERROR,
                                       MSG_MALFORMED, 0);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD && ctx->sid.len == 0) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                       T_ERROR, MSG_LOGIN_REQUIRED,
                                       A_TO_LOGIN);
    }

    if (ngx_http_ecodoc_same_origin(r) != NGX_OK
        || ngx_http_ecodoc_csrf_check(r, ctx) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ecodoc: refused a cross-site or stale form POST");
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_FORBIDDEN, T_ERROR,
                                       MSG_FORGED, 0);
    }

    switch (ctx->page) {

    case NGX_HTTP_ECODOC_PAGE_LOGOUT:
        if (ngx_http_ecodoc_redis_eval(r, NGX_HTTP_ECODOC_SCRIPT_LOGOUT,
                                       &ctx->sid, 1,
                                       ngx_http_ecodoc_logout_done)
            != NGX_OK)
        {
            return ngx_http_ecodoc_message(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           T_ERROR, MSG_UNAVAILABLE, 0);
        }

        return NGX_DONE;

    case NGX_HTTP_ECODOC_PAGE_PASSWORD:
        return ngx_http_ecodoc_session_check(r, ctx);

    default: /* sign-up, login */

        if (ngx_http_ecodoc_user_ok(&ctx->f_user) != NGX_OK) {
            return ngx_http_ecodoc_form(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        MSG_BAD_USER, "user", NULL);
        }

        if (ctx->page == NGX_HTTP_ECODOC_PAGE_SIGNUP
            && elcf->subject_match
            && ngx_http_ecodoc_subject_is(r, &ctx->f_user) != NGX_OK)
        {
            ctx->subject_differs = 1;
        }

        if (ctx->f_next.len && ngx_http_ecodoc_next_ok(&ctx->f_next) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ecodoc: ignored an off-site \"next\"");
            ngx_str_null(&ctx->f_next);
        }
    }

    if (ngx_http_ecodoc_random_hex(ctx->resid, NGX_HTTP_ECODOC_RESID_LEN)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ecodoc_reserve(r, ctx);
}


/* the session is known: the policy first, then the current password */

static ngx_int_t
ngx_http_ecodoc_password_change(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  detail;

    ngx_str_null(&detail);

    ctx->f_user = ctx->user;
    rc = ngx_http_ecodoc_password_policy(r, ctx, &detail);

    if (rc != 0) {
        return ngx_http_ecodoc_form(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    MSG_PW_MISMATCH + rc - 1,
                                    rc == 3 ? "current" : "new", &detail);
    }

    if (ngx_http_ecodoc_random_hex(ctx->resid, NGX_HTTP_ECODOC_RESID_LEN)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ecodoc_reserve(r, ctx);
}


/* the body in one piece: 400 wrong type, 413 too large */

static ngx_int_t
ngx_http_ecodoc_form_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_str_t    *type;
    ngx_chain_t  *cl;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    if (r->headers_in.content_type == NULL) {
        return NGX_HTTP_BAD_REQUEST;
    }

    type = &r->headers_in.content_type->value;

    if (type->len < form.len
        || ngx_strncasecmp(type->data, form.data, form.len) != 0
        || (type->len > form.len && type->data[form.len] != ';'
            && type->data[form.len] != ' '))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (b->in_file || !ngx_buf_in_memory(b)) {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        len += b->last - b->pos;
    }

    if (len > NGX_HTTP_ECODOC_FORM_MAX) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    body->len = len;
    body->data = ngx_pnalloc(r->pool, len + 1);
    if (body->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body->data;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


/*
 * Splits "a=1&b=2", decoding strictly; a field twice, a pair without '=',
 * a bad escape or a missing field of the page's form is malformed.
 */

static ngx_int_t
ngx_http_ecodoc_form_parse(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_str_t *body)
{
    u_char                   *p, *end, *amp, *eq;
    ngx_str_t                 name, value, *dst;
    ngx_uint_t                i;
    ngx_http_ecodoc_field_t  *f, *fields;

    static ngx_http_ecodoc_field_t  extra[] = {
        { "csrf", NULL, 0, NULL, offsetof(ngx_http_ecodoc_ctx_t, f_csrf) },
        { "next", NULL, 0, NULL, offsetof(ngx_http_ecodoc_ctx_t, f_next) },
        { NULL, NULL, 0, NULL, 0 }
    };

    fields = ngx_http_ecodoc_page_table[ctx->page].fields;

    p = body->data;
    end = p + body->len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if (eq == NULL
            || ngx_http_ecodoc_unescape(r->pool, p, eq, &name) != NGX_OK
            || ngx_http_ecodoc_unescape(r->pool, eq + 1, amp, &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = amp + 1;

        for (i = 0; i < 2; i++) {
            for (f = i ? extra : fields; f->name; f++) {
                if (name.len != ngx_strlen(f->name)
                    || ngx_strncmp(name.data, f->name, name.len) != 0)
                {
                    continue;
                }

                dst = (ngx_str_t *) ((u_char *) ctx + f->offset);

                if (dst->data) {
                    return NGX_ERROR;
                }

                *dst = value;
            }
        }
    }

    for (f = fields; f->name; f++) {
        dst = (ngx_str_t *) ((u_char *) ctx + f->offset);

        if (dst->data == NULL || dst->len == 0
            || ngx_http_ecodoc_text_ok(dst, ECODOC_PASSWD_MAX_INPUT) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* %XX and '+' decoding that refuses what a browser never sends */

static ngx_int_t
ngx_http_ecodoc_unescape(ngx_pool_t *pool, u_char *p, u_char *end,
    ngx_str_t *out)
{
    u_char     *d;
    ngx_int_t   hi, lo;

    d = ngx_pnalloc(pool, end - p + 1);
    if (d == NULL) {
        return NGX_ERROR;
    }

    out->data = d;

    while (p < end) {
        if (*p == '+') {
            *d++ = ' ';
            p++;

        } else if (*p == '%') {
            if (end - p < 3) {
                return NGX_ERROR;
            }

            hi = ngx_hextoi(p + 1, 1);
            lo = ngx_hextoi(p + 2, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                return NGX_ERROR;
            }

            *d++ = (u_char) (hi << 4 | lo);
            p += 3;

        } else {
            *d++ = *p++;
        }
    }

    out->len = d - out->data;
    *d = '\0';

    return NGX_OK;
}


/* well-formed UTF-8 without control characters, at most max bytes */

static ngx_int_t
ngx_http_ecodoc_text_ok(ngx_str_t *s, size_t max)
{
    u_char      *p, *end;
    uint32_t     c, min;
    ngx_uint_t   n, i;

    if (s->len > max) {
        return NGX_DECLINED;
    }

    p = s->data;
    end = p + s->len;

    while (p < end) {
        c = *p++;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return NGX_DECLINED;
            }

            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1; c &= 0x1f; min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; c &= 0x0f; min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; c &= 0x07; min = 0x10000;

        } else {
            return NGX_DECLINED;
        }

        if ((size_t) (end - p) < n) {
            return NGX_DECLINED;
        }

        for (i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return NGX_DECLINED;
            }

            c = c << 6 | (p[i] & 0x3f);
        }

        p += n;

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)
            || c < 0xa0)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a user ID: 1-64 of [A-Za-z0-9._@-], safe in a header and a key */

ngx_int_t
ngx_http_ecodoc_user_ok(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_ECODOC_USER_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < s->len; i++) {
        if (!((s->data[i] >= 'a' && s->data[i] <= 'z')
              || (s->data[i] >= 'A' && s->data[i] <= 'Z')
              || (s->data[i] >= '0' && s->data[i] <= '9')
              || s->data[i] == '.' || s->data[i] == '_'
              || s->data[i] == '@' || s->data[i] == '-'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* "next" may only be a path on this server: "/x", never "//x" or "/\x" */

static ngx_int_t
ngx_http_ecodoc_next_ok(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_ECODOC_NEXT_MAX
        || s->data[0] != '/'
        || (s->len > 1 && (s->data[1] == '/' || s->data[1] == '\\')))
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] <= 0x20 || s->data[i] >= 0x7f || s->data[i] == '\\') {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * A browser sends Origin with every POST; when it is there it must be this
 * server.  Without it, Sec-Fetch-Site must not say another site.
 */

static ngx_int_t
ngx_http_ecodoc_same_origin(ngx_http_request_t *r)
{
    u_char           *p;
    ngx_str_t        *host, *origin, *site;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    origin = NULL;
    site = NULL;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == 6
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin", 6) == 0)
            {
                if (origin) {
                    return NGX_DECLINED;
                }

                origin = &h[i].value;

            } else if (h[i].key.len == 14
                       && ngx_strncasecmp(h[i].key.data,
                                          (u_char *) "Sec-Fetch-Site", 14)
                          == 0)
            {
                site = &h[i].value;
            }
        }
    }

    if (origin == NULL) {
        if (site && !(site->len == 11
                      && ngx_strncmp(site->data, "same-origin", 11) == 0)
            && !(site->len == 4 && ngx_strncmp(site->data, "none", 4) == 0))
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (r->headers_in.host == NULL) {
        return NGX_DECLINED;
    }

    host = &r->headers_in.host->value;
    p = origin->data;

    if (origin->len != sizeof("https://") - 1 + host->len
        || ngx_strncasecmp(p, (u_char *) "https://", 8) != 0
        || ngx_strncasecmp(p + 8, host->data, host->len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ecodoc: Origin \"%V\" is not this server",
                      origin);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the certificate's subject CN must be the user ID, exactly and alone */

static ngx_int_t
ngx_http_ecodoc_subject_is(ngx_http_request_t *r, ngx_str_t *user)
{
    int               i, len;
    X509             *cert;
    X509_NAME        *name;
    unsigned char    *cn;
    ngx_int_t         rc;

    cert = SSL_get_peer_certificate(r->connection->ssl->connection);
    if (cert == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;
    name = X509_get_subject_name(cert);
    i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);

    if (i >= 0 && X509_NAME_get_index_by_NID(name, NID_commonName, i) < 0) {
        len = ASN1_STRING_to_UTF8(&cn,
                  X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));

        if (len >= 0) {
            if ((size_t) len == user->len
                && ngx_strncmp(cn, user->data, user->len) == 0)
            {
                rc = NGX_OK;
            }

            OPENSSL_free(cn);
        }
    }

    X509_free(cert);

    return rc;
}


/* reserves a password check in Redis; waits and retries while it is busy */

static ngx_int_t
ngx_http_ecodoc_reserve(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_str_t                    args[7];
    ngx_http_ecodoc_main_conf_t *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    args[0] = ngx_http_ecodoc_modes[ctx->page];
    args[1] = ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD ? ctx->user
                                                         : ctx->f_user;
    args[2] = emcf->max_failures_arg;
    args[3].data = ctx->resid;
    args[3].len = NGX_HTTP_ECODOC_RESID_LEN;
    ngx_str_set(&args[4], "1");
    args[5] = ctx->sid;
    args[6] = emcf->session_lifetime_arg;

    if (ctx->subject_differs) {
        ngx_str_set(&args[4], "0");
    }

    if (ngx_http_ecodoc_redis_eval(r, NGX_HTTP_ECODOC_SCRIPT_RESERVE, args, 7,
                                   ngx_http_ecodoc_reserve_done)
        != NGX_OK)
    {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       T_ERROR, MSG_UNAVAILABLE, 0);
    }

    return NGX_DONE;
}


static void
ngx_http_ecodoc_reserve_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t               rc;
    ngx_str_t               status, extra[2];
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_reply_status(r->pool, reply, &status, extra, 2)
        != NGX_OK)
    {
        ngx_str_set(&status, "error");
    }

    if (ngx_strcmp(status.data, "ok") == 0) {
        ctx->stored = extra[0];
        ctx->initial = extra[1];

        if (ctx->stored.len
            && ngx_http_ecodoc_password_check(r, ctx, ngx_http_ecodoc_checked)
               == NGX_OK)
        {
            return;
        }

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ecodoc: cannot check the password of \"%V\"",
                      &ctx->f_user);

        /* gives the reservation back, counting nothing */

        ctx->verified = -1;
        ngx_http_ecodoc_checked(r);
        return;
    }

    if (ngx_strcmp(status.data, "busy") == 0
        && ctx->tries++ < NGX_HTTP_ECODOC_RETRY_MAX)
    {
        ctx->retry.handler = ngx_http_ecodoc_retry;
        ctx->retry.data = r;
        ctx->retry.log = r->connection->log;
        ngx_add_timer(&ctx->retry, NGX_HTTP_ECODOC_RETRY_MSEC);
        return;
    }

    rc = ngx_http_ecodoc_refusal(r, ctx, &status);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_ecodoc_retry(ngx_event_t *ev)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_ecodoc_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    rc = ngx_http_ecodoc_reserve(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


/* the thread is through: record the outcome in Redis */

static void
ngx_http_ecodoc_checked(ngx_http_request_t *r)
{
    ngx_str_t                    args[11];
    ngx_http_ecodoc_ctx_t       *ctx;
    ngx_http_ecodoc_main_conf_t *emcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ctx->hashing) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_session_new(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    args[0] = ngx_http_ecodoc_modes[ctx->page];
    args[1] = ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD ? ctx->user
                                                         : ctx->f_user;
    args[2] = emcf->max_failures_arg;
    args[3].data = ctx->resid;
    args[3].len = NGX_HTTP_ECODOC_RESID_LEN;
    ngx_str_set(&args[4], "e");

    if (ctx->verified == 1) {
        ngx_str_set(&args[4], "1");

    } else if (ctx->verified == 0) {
        ngx_str_set(&args[4], "0");
    }

    args[5].data = ctx->new_sid;
    args[5].len = NGX_HTTP_ECODOC_SID_LEN;
    args[6] = emcf->session_timeout_arg;
    args[7].data = (u_char *) ctx->new_hash;
    args[7].len = ngx_strlen(ctx->new_hash);
    args[8] = ctx->sid;
    args[9] = ctx->stored;
    args[10] = emcf->session_lifetime_arg;

    if (ngx_http_ecodoc_redis_eval(r, NGX_HTTP_ECODOC_SCRIPT_FINISH, args, 11,
                                   ngx_http_ecodoc_finish_done)
        != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    T_ERROR, MSG_UNAVAILABLE, 0));
    }
}


static void
ngx_http_ecodoc_finish_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                    rc;
    ngx_str_t                    status, initial, to;
    ngx_http_ecodoc_ctx_t       *ctx;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);
    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_reply_status(r->pool, reply, &status, &initial, 1)
        != NGX_OK)
    {
        ngx_str_set(&status, "error");
    }

    if (ngx_strcmp(status.data, "ok") != 0) {
        ngx_http_finalize_request(r,
                                  ngx_http_ecodoc_refusal(r, ctx, &status));
        return;
    }

    switch (ctx->page) {

    case NGX_HTTP_ECODOC_PAGE_SIGNUP:
        rc = ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK, T_SIGNUP,
                                     MSG_SIGNUP_DONE, A_TO_LOGIN);
        break;

    case NGX_HTTP_ECODOC_PAGE_LOGIN:
        if (ngx_http_ecodoc_session_set_cookie(r, ctx, 0) != NGX_OK) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        if (initial.len == 1 && initial.data[0] == '0') {
            to = ctx->f_next;

            if (to.len == 0) {
                ngx_str_set(&to, "/");
            }

        } else {
            to.len = elcf->pages_uri.len + sizeof("password") - 1;
            to.data = ngx_pnalloc(r->pool, to.len);
            if (to.data == NULL) {
                rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
                break;
            }

            ngx_memcpy(ngx_cpymem(to.data, elcf->pages_uri.data,
                                  elcf->pages_uri.len),
                       "password", 8);
        }

        rc = ngx_http_ecodoc_redirect(r, &to, NULL);
        break;

    default: /* password */
        ngx_http_ecodoc_cache_forget(r, ctx);

        if (ngx_http_ecodoc_session_set_cookie(r, ctx, 0) != NGX_OK) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        rc = ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK, T_PASSWORD,
                                     MSG_PW_DONE, A_TO_SERVICE);
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_ecodoc_logout_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t               rc;
    ngx_str_t               status, user;
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_reply_status(r->pool, reply, &status, &user, 1)
        != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    T_ERROR, MSG_UNAVAILABLE, 0));
        return;
    }

    /* "nosession": already ended; the cookie goes all the same */

    ngx_http_ecodoc_cache_forget(r, ctx);

    if (ngx_http_ecodoc_session_set_cookie(r, ctx, 1) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK, T_LOGOUT,
                                 MSG_LOGOUT_DONE, A_TO_LOGIN);

    ngx_http_finalize_request(r, rc);
}


/* a verdict of a script other than "ok", as the page the user sees */

static ngx_int_t
ngx_http_ecodoc_refusal(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_str_t *status)
{
    ngx_str_t                    to;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    static struct {
        const char  *status;
        ngx_uint_t   code;
        ngx_uint_t   msg;
        const char  *field;
    } refusals[] = {
        { "failed", NGX_HTTP_UNAUTHORIZED, MSG_BAD_PASSWORD, "password" },
        { "nouser", NGX_HTTP_UNAUTHORIZED, MSG_BAD_PASSWORD, "password" },
        { "cert_bound", NGX_HTTP_CONFLICT, MSG_CERT_BOUND, NULL },
        { "user_bound", NGX_HTTP_CONFLICT, MSG_USER_BOUND, "user" },
        { "subject", NGX_HTTP_FORBIDDEN, MSG_SUBJECT, "user" },
        { "wrong_cert", NGX_HTTP_FORBIDDEN, MSG_WRONG_CERT, "user" },
        { "busy", NGX_HTTP_SERVICE_UNAVAILABLE, MSG_BUSY, NULL },
        { "changed", NGX_HTTP_SERVICE_UNAVAILABLE, MSG_BUSY, NULL },
        { NULL, 0, 0, NULL }
    };

    ngx_uint_t  i;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ecodoc: page refused: %V", status);

    if (ngx_strcmp(status->data, "locked") == 0) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_FORBIDDEN, T_ERROR,
                                       MSG_LOCKED, 0);
    }

    if (ngx_strcmp(status->data, "revoked") == 0) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_FORBIDDEN, T_ERROR,
                                       MSG_REVOKED, 0);
    }

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (ngx_strcmp(status->data, "nosession") == 0
        || ngx_strcmp(status->data, "unbound") == 0)
    {
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                           T_ERROR, MSG_LOGIN_REQUIRED,
                                           A_TO_LOGIN);
        }

        to.len = elcf->pages_uri.len + sizeof("signup") - 1;
        to.data = ngx_pnalloc(r->pool, to.len);
        if (to.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        to.len = ngx_sprintf(to.data, "%V%s", &elcf->pages_uri,
                             status->data[0] == 'n' ? "login" : "signup")
                 - to.data;

        return ngx_http_ecodoc_redirect(r, &to, NULL);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD
        && ngx_strcmp(status->data, "failed") == 0)
    {
        return ngx_http_ecodoc_form(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                    MSG_PW_WRONG, "current", NULL);
    }

    for (i = 0; refusals[i].status; i++) {
        if (ngx_strcmp(status->data, refusals[i].status) == 0) {
            return ngx_http_ecodoc_form(r, ctx, refusals[i].code,
                                        refusals[i].msg, refusals[i].field,
                                        NULL);
        }
    }

    return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   T_ERROR, MSG_UNAVAILABLE, 0);
}


/* the page's form, with an error message beside the field it concerns */

static ngx_int_t
ngx_http_ecodoc_form(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_uint_t status, ngx_uint_t msg, const char *field, ngx_str_t *detail)
{
    u_char                      *p;
    ngx_str_t                    csrf, *value;
    ngx_uint_t                   title, intro, err;
    ngx_http_ecodoc_out_t        out;
    ngx_http_ecodoc_page_t      *page;
    ngx_http_ecodoc_field_t     *f;
    ngx_http_ecodoc_loc_conf_t  *elcf;
    u_char                       num[NGX_INT_T_LEN];

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    page = &ngx_http_ecodoc_page_table[ctx->page];
    f = page->fields;
    title = page->title;
    intro = page->intro;

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD
        && ctx->initial.len && ctx->initial.data[0] != 'o'
        && ctx->initial.data[0] != '0')
    {
        title = T_PASSWORD_INITIAL;
        intro = MSG_PW_INITIAL_INTRO;
    }

    if (ngx_http_ecodoc_csrf_make(r, ctx, &csrf) != NGX_OK
        || ngx_http_ecodoc_out_init(r, ctx, &out, NGX_HTTP_ECODOC_PAGE_SIZE)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ecodoc_put(&out, "<p>");
    ngx_http_ecodoc_put_text(&out, intro);
    ngx_http_ecodoc_put(&out, "</p>\n");

    err = msg && field == NULL;

    if (err) {
        ngx_http_ecodoc_put(&out, "<p class=\"error\" role=\"alert\">");
        ngx_http_ecodoc_put_text(&out, msg);
        ngx_http_ecodoc_put(&out, "</p>\n");
    }

    ngx_http_ecodoc_put(&out, "<form method=\"post\" action=\"");
    ngx_http_ecodoc_put_html(&out, elcf->pages_uri.data, elcf->pages_uri.len);
    ngx_http_ecodoc_put_str(&out, page->name.data, page->name.len);
    ngx_http_ecodoc_put(&out, "\" novalidate>\n"
                        "<input type=\"hidden\" name=\"csrf\" value=\"");
    ngx_http_ecodoc_put_html(&out, csrf.data, csrf.len);
    ngx_http_ecodoc_put(&out, "\">\n");

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_LOGIN && ctx->f_next.len) {
        ngx_http_ecodoc_put(&out,
                            "<input type=\"hidden\" name=\"next\" value=\"");
        ngx_http_ecodoc_put_html(&out, ctx->f_next.data, ctx->f_next.len);
        ngx_http_ecodoc_put(&out, "\">\n");
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD && ctx->user.len) {
        ngx_http_ecodoc_put(&out, "<p>");
        ngx_http_ecodoc_put_text(&out, L_USER);
        ngx_http_ecodoc_put(&out, ": <strong id=\"user\">");
        ngx_http_ecodoc_put_html(&out, ctx->user.data, ctx->user.len);
        ngx_http_ecodoc_put(&out, "</strong></p>\n");
    }

    for ( /* void */ ; f->name; f++) {
        err = field && ngx_strcmp(field, f->name) == 0;

        ngx_http_ecodoc_put(&out, "<label for=\"");
        ngx_http_ecodoc_put(&out, f->name);
        ngx_http_ecodoc_put(&out, "\">");
        ngx_http_ecodoc_put_text(&out, f->label);
        ngx_http_ecodoc_put(&out, "</label>\n");

        if (err) {
            ngx_http_ecodoc_put(&out, "<p class=\"error\" role=\"alert\" id=\"");
            ngx_http_ecodoc_put(&out, f->name);
            ngx_http_ecodoc_put(&out, "-error\">");
            ngx_http_ecodoc_put_text(&out, msg);

            if (msg == MSG_PW_SHORT) {
                p = ngx_sprintf(num, "%ui", elcf->password_min_length);
                ngx_http_ecodoc_put_str(&out, num, p - num);
            }

            if (detail && detail->len) {
                ngx_http_ecodoc_put_html(&out, detail->data, detail->len);
            }

            ngx_http_ecodoc_put(&out, "</p>\n");
        }

        ngx_http_ecodoc_put(&out, "<input type=\"");
        ngx_http_ecodoc_put(&out, f->type);
        ngx_http_ecodoc_put(&out, "\" id=\"");
        ngx_http_ecodoc_put(&out, f->name);
        ngx_http_ecodoc_put(&out, "\" name=\"");
        ngx_http_ecodoc_put(&out, f->name);
        ngx_http_ecodoc_put(&out, "\" autocomplete=\"");
        ngx_http_ecodoc_put(&out, f->autocomplete);
        ngx_http_ecodoc_put(&out, "\" required");

        if (err) {
            ngx_http_ecodoc_put(&out, " aria-invalid=\"true\" "
                                "aria-describedby=\"");
            ngx_http_ecodoc_put(&out, f->name);
            ngx_http_ecodoc_put(&out, "-error\" autofocus");
        }

        value = (ngx_str_t *) ((u_char *) ctx + f->offset);

        if (f->type[0] == 't' && value->len
            && ngx_http_ecodoc_user_ok(value) == NGX_OK)
        {
            ngx_http_ecodoc_put(&out, " value=\"");
            ngx_http_ecodoc_put_html(&out, value->data, value->len);
            ngx_http_ecodoc_put(&out, "\"");
        }

        ngx_http_ecodoc_put(&out, ">\n");
    }

    ngx_http_ecodoc_put(&out, "<button type=\"submit\">");
    ngx_http_ecodoc_put_text(&out, page->button);
    ngx_http_ecodoc_put(&out, "</button>\n</form>\n");

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_LOGIN) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "forgot", A_FORGOT);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_SIGNUP) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "login", A_TO_LOGIN);
    }

    return ngx_http_ecodoc_send(r, ctx, status, title, &out);
}


/* a page with one message and, optionally, one link onwards */

static ngx_int_t
ngx_http_ecodoc_message(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_uint_t status, ngx_uint_t title, ngx_uint_t msg, ngx_uint_t link)
{
    ngx_str_t                    root;
    ngx_table_elt_t             *allow;
    ngx_http_ecodoc_out_t        out;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_out_init(r, ctx, &out, NGX_HTTP_ECODOC_PAGE_SIZE)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ecodoc_put(&out, status == NGX_HTTP_OK
                              ? "<p class=\"done\" role=\"status\">"
                              : "<p class=\"error\" role=\"alert\">");
    ngx_http_ecodoc_put_text(&out, msg);
    ngx_http_ecodoc_put(&out, "</p>\n");

    if (msg == MSG_FORGOT && elcf->forgot_url.len) {
        ngx_http_ecodoc_put(&out, "<p><a href=\"");
        ngx_http_ecodoc_put_html(&out, elcf->forgot_url.data,
                                 elcf->forgot_url.len);
        ngx_http_ecodoc_put(&out, "\">");
        ngx_http_ecodoc_put_text(&out, A_CONTACT);
        ngx_http_ecodoc_put(&out, "</a></p>\n");
    }

    if (link == A_TO_LOGIN) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "login", link);

    } else if (link == A_TO_SERVICE) {
        ngx_str_set(&root, "/");
        ngx_http_ecodoc_put_link(&out, &root, "", link);
    }

    if (status == NGX_HTTP_NOT_ALLOWED) {
        allow = ngx_list_push(&r->headers_out.headers);
        if (allow == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow->hash = 1;
        ngx_str_set(&allow->key, "Allow");

        if (ctx->page == NGX_HTTP_ECODOC_PAGE_FORGOT) {
            ngx_str_set(&allow->value, "GET, HEAD");

        } else {
            ngx_str_set(&allow->value, "GET, HEAD, POST");
        }
    }

    return ngx_http_ecodoc_send(r, ctx, status, title, &out);
}


/* the gate's refusals, as pages */

ngx_int_t
ngx_http_ecodoc_gate_page(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_uint_t status, ngx_uint_t msg)
{
    return ngx_http_ecodoc_message(r, ctx, status, T_ERROR, msg, 0);
}


/* lays the content into the layout (or the operator's template), sends it */

static ngx_int_t
ngx_http_ecodoc_send(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_uint_t status, ngx_uint_t title, ngx_http_ecodoc_out_t *content)
{
    u_char                      *p, *end, *open, *close;
    ngx_int_t                    rc;
    ngx_str_t                    name, layout;
    ngx_buf_t                   *b;
    ngx_chain_t                  cl;
    ngx_table_elt_t             *h;
    ngx_http_ecodoc_out_t        out;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    static struct {
        ngx_str_t  key;
        ngx_str_t  value;
    } headers[] = {
        { ngx_string("Cache-Control"), ngx_string("no-store") },
        { ngx_string("Content-Security-Policy"),
          ngx_string("default-src 'none'; style-src 'unsafe-inline'; "
                     "img-src 'self'; form-action 'self'; "
                     "frame-ancestors 'none'; base-uri 'none'") },
        { ngx_string("X-Frame-Options"), ngx_string("DENY") },
        { ngx_string("X-Content-Type-Options"), ngx_string("nosniff") },
        /* not "no-referrer": browsers then send "Origin: null" with POSTs */
        { ngx_string("Referrer-Policy"), ngx_string("same-origin") },
        { ngx_null_string, ngx_null_string }
    };

    ngx_uint_t  i;

    if (content->overflow) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ecodoc: page larger than its buffer");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (elcf->template.len) {
        layout = elcf->template;

    } else {
        layout.data = (u_char *) ngx_http_ecodoc_layout;
        layout.len = sizeof(ngx_http_ecodoc_layout) - 1;
    }

    if (ngx_http_ecodoc_out_init(r, ctx, &out, layout.len
                                 + (content->pos - content->start) + 1024)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = layout.data;
    end = p + layout.len;

    while (p < end) {
        open = ngx_strlcasestrn(p, end, (u_char *) "{{", 2 - 1);

        if (open == NULL) {
            ngx_http_ecodoc_put_str(&out, p, end - p);
            break;
        }

        ngx_http_ecodoc_put_str(&out, p, open - p);

        close = ngx_strlcasestrn(open + 2, end, (u_char *) "}}", 2 - 1);
        if (close == NULL) {
            ngx_http_ecodoc_put_str(&out, open, end - open);
            break;
        }

        name.data = open + 2;
        name.len = close - name.data;
        p = close + 2;

        if (name.len == 4 && ngx_strncmp(name.data, "lang", 4) == 0) {
            ngx_http_ecodoc_put(&out, ctx->lang ? "en" : "ja");

        } else if (name.len == 5 && ngx_strncmp(name.data, "title", 5) == 0) {
            ngx_http_ecodoc_put_text(&out, title);

        } else if (name.len == 7
                   && ngx_strncmp(name.data, "service", 7) == 0)
        {
            ngx_http_ecodoc_put_text(&out, T_SERVICE);

        } else if (name.len == 7
                   && ngx_strncmp(name.data, "content", 7) == 0)
        {
            ngx_http_ecodoc_put_str(&out, content->start,
                                    content->pos - content->start);
        }
    }

    if (out.overflow) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; headers[i].key.len; i++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = headers[i].key;
        h->value = headers[i].value;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->start = out.start;
    b->pos = out.start;
    b->last = out.pos;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/html") - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


static ngx_int_t
ngx_http_ecodoc_out_init(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_http_ecodoc_out_t *out, size_t size)
{
    ngx_memzero(out, sizeof(ngx_http_ecodoc_out_t));

    if (!ctx->lang_known) {
        ctx->lang = ngx_http_ecodoc_lang(r);
        ctx->lang_known = 1;
    }

    out->lang = ctx->lang;

    out->start = ngx_pnalloc(r->pool, size);
    if (out->start == NULL) {
        return NGX_ERROR;
    }

    out->pos = out->start;
    out->end = out->start + size;

    return NGX_OK;
}


static void
ngx_http_ecodoc_put(ngx_http_ecodoc_out_t *out, const char *s)
{
    ngx_http_ecodoc_put_str(out, (u_char *) s, ngx_strlen(s));
}


static void
ngx_http_ecodoc_put_str(ngx_http_ecodoc_out_t *out, u_char *s, size_t len)
{
    if ((size_t) (out->end - out->pos) < len) {
        out->overflow = 1;
        return;
    }

    out->pos = ngx_cpymem(out->pos, s, len);
}


static void
ngx_http_ecodoc_put_html(ngx_http_ecodoc_out_t *out, u_char *s, size_t len)
{
    size_t  n;

    /* ngx_escape_html() counts '<', '>', '&' and '"'; we escape '\'' too */

    n = len + ngx_escape_html(NULL, s, len)
        + 4 * ngx_http_ecodoc_count(s, len, '\'');

    if ((size_t) (out->end - out->pos) < n) {
        out->overflow = 1;
        return;
    }

    while (len--) {
        switch (*s) {
        case '<':
            out->pos = ngx_cpymem(out->pos, "&lt;", 4);
            break;
        case '>':
            out->pos = ngx_cpymem(out->pos, "&gt;", 4);
            break;
        case '&':
            out->pos = ngx_cpymem(out->pos, "&amp;", 5);
            break;
        case '"':
            out->pos = ngx_cpymem(out->pos, "&quot;", 6);
            break;
        case '\'':
            out->pos = ngx_cpymem(out->pos, "&#39;", 5);
            break;
        default:
            *out->pos++ = *s;
        }

        s++;
    }
}


static size_t
ngx_http_ecodoc_count(u_char *s, size_t len, u_char c)
{
    size_t  n;

    for (n = 0; len--; s++) {
        n += (*s == c);
    }

    return n;
}


static void
ngx_http_ecodoc_put_text(ngx_http_ecodoc_out_t *out, ngx_uint_t msg)
{
    const char  *s;

    s = ngx_http_ecodoc_text[msg][out->lang];

    ngx_http_ecodoc_put_html(out, (u_char *) s, ngx_strlen(s));
}


static void
ngx_http_ecodoc_put_link(ngx_http_ecodoc_out_t *out, ngx_str_t *base,
    const char *page, ngx_uint_t text)
{
    ngx_http_ecodoc_put(out, "<p><a href=\"");
    ngx_http_ecodoc_put_html(out, base->data, base->len);
    ngx_http_ecodoc_put(out, page);
    ngx_http_ecodoc_put(out, "\">");
    ngx_http_ecodoc_put_text(out, text);
    ngx_http_ecodoc_put(out, "</a></p>\n");
}


/*
 * 303 See Other to a path of this server; args, when given, become a
 * "next" parameter, percent-encoded but for unreserved characters and '/'.
 */

ngx_int_t
ngx_http_ecodoc_redirect(ngx_http_request_t *r, ngx_str_t *to,
    ngx_str_t *args)
{
    u_char           *p, c;
    size_t            len, i;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       cl;
    ngx_table_elt_t  *h;

    static u_char     hex[] = "0123456789ABCDEF";
    static u_char     body[] = "<!DOCTYPE html>\n<title>303</title>\n";

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = to->len + (args ? sizeof("?next=") - 1 + 3 * args->len : 0);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;

    p = ngx_cpymem(p, to->data, to->len);

    if (args && args->len) {
        p = ngx_cpymem(p, "?next=", 6);

        for (i = 0; i < args->len; i++) {
            c = ngx_tolower(args->data[i]);

            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                || c == '/' || c == '-' || c == '.' || c == '_' || c == '~')
            {
                *p++ = args->data[i];

            } else {
                *p++ = '%';
                *p++ = hex[args->data[i] >> 4];
                *p++ = hex[args->data[i] & 0xf];
            }
        }
    }

    h->value.len = p - h->value.data;

    /* not through r->headers_out.location: no rewriting to absolute URLs */

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body;
    b->last = body + sizeof(body) - 1;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_SEE_OTHER;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/html") - 1;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


/* English when Accept-Language rates "en" above "ja"; Japanese otherwise */

ngx_uint_t
ngx_http_ecodoc_lang(ngx_http_request_t *r)
{
    u_char           *p, *end, *tag, *q;
    ngx_int_t         weight, best[2];
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    best[0] = -1;
    best[1] = -1;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len != sizeof("Accept-Language") - 1
                || ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "Accept-Language",
                                   h[i].key.len) != 0)
            {
                continue;
            }

            p = h[i].value.data;
            end = p + h[i].value.len;

            while (p < end) {
                while (p < end && (*p == ' ' || *p == ',')) {
                    p++;
                }

                tag = p;

                while (p < end && *p != ',' && *p != ';' && *p != ' ') {
                    p++;
                }

                weight = 1000;
                q = ngx_strlcasestrn(p, end, (u_char *) "q=", 2 - 1);

                if (q && (ngx_strlchr(p, q, ',') == NULL)) {
                    weight = (q + 2 < end && q[2] == '1') ? 1000
                             : (q + 4 < end && q[3] == '.')
                             ? (q[4] - '0') * 100 : 0;
                }

                if (p - tag >= 2) {
                    if (ngx_strncasecmp(tag, (u_char *) "ja", 2) == 0
                        && (p - tag == 2 || tag[2] == '-'))
                    {
                        best[0] = ngx_max(best[0], weight);

                    } else if (ngx_strncasecmp(tag, (u_char *) "en", 2) == 0
                               && (p - tag == 2 || tag[2] == '-'))
                    {
                        best[1] = ngx_max(best[1], weight);
                    }
                }

                while (p < end && *p != ',') {
                    p++;
                }
            }
        }
    }

    return best[1] > best[0] ? 1 : 0;
}


char *
ngx_http_ecodoc_template(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_loc_conf_t *elcf = conf;

    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t       *value, name;
    ngx_file_info_t  fi;

    if (elcf->template.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 1024 * 1024)
    {
        ngx_close_file(fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "template \"%V\" is unreadable or over 1M", &name);
        return NGX_CONF_ERROR;
    }

    elcf->template.len = ngx_file_size(&fi);
    elcf->template.data = ngx_pnalloc(cf->pool, elcf->template.len + 1);

    if (elcf->template.data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, elcf->template.data, elcf->template.len);
    ngx_close_file(fd);

    if (n != (ssize_t) elcf->template.len
        || ngx_strlcasestrn(elcf->template.data,
                            elcf->template.data + elcf->template.len,
                            (u_char *) "{{content}}", 11 - 1) == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "template \"%V\" must contain {{content}}", &name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
