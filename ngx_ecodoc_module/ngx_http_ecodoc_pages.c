/*
 * The pages' flows: sign-up, login, password change, logout and "forgot",
 * from the request through the Redis scripts to the page that answers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


/*
 * While every slot of a user's password checks is taken, a request waits:
 * woken when a check of that user ends in this worker.  Slots held by
 * other workers (or nginx hosts) end unseen: while this worker holds none,
 * a waiter also tries again after 100, 200, 400, 800, then every 1000 ms,
 * and every 2000 ms while it does, plus up to half again at random so
 * that waiters spread; it gives up after 30 s.
 */
#define NGX_HTTP_ECODOC_RETRY_MSEC   100
#define NGX_HTTP_ECODOC_RETRY_SHIFT  3
#define NGX_HTTP_ECODOC_RETRY_CAP    1000
#define NGX_HTTP_ECODOC_RETRY_HELD   2000
#define NGX_HTTP_ECODOC_WAIT_MAX     30000


/* the scripts' name of a page's password check, by ngx_http_ecodoc_page_e */

static ngx_str_t  ngx_http_ecodoc_modes[] = {
    ngx_null_string,
    ngx_string("signup"),
    ngx_string("login"),
    ngx_string("password")
};


/* this worker's requests waiting for a slot, oldest first */

static ngx_queue_t  ngx_http_ecodoc_slot_waiting;

/* the slots this worker's password checks hold now */

static ngx_uint_t   ngx_http_ecodoc_slots_held;


static ngx_http_ecodoc_field_t  ngx_http_ecodoc_signup_fields[] = {
    { "user", "text", NGX_HTTP_ECODOC_L_USER, "username",
      offsetof(ngx_http_ecodoc_ctx_t, f_user) },
    { "password", "password", NGX_HTTP_ECODOC_L_INITIAL_PASSWORD,
      "current-password", offsetof(ngx_http_ecodoc_ctx_t, f_password) },
    { NULL, NULL, 0, NULL, 0 }
};

static ngx_http_ecodoc_field_t  ngx_http_ecodoc_login_fields[] = {
    { "user", "text", NGX_HTTP_ECODOC_L_USER, "username",
      offsetof(ngx_http_ecodoc_ctx_t, f_user) },
    { "password", "password", NGX_HTTP_ECODOC_L_PASSWORD,
      "current-password", offsetof(ngx_http_ecodoc_ctx_t, f_password) },
    { NULL, NULL, 0, NULL, 0 }
};

static ngx_http_ecodoc_field_t  ngx_http_ecodoc_password_fields[] = {
    { "current", "password", NGX_HTTP_ECODOC_L_CURRENT, "current-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_password) },
    { "new", "password", NGX_HTTP_ECODOC_L_NEW, "new-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_new) },
    { "new2", "password", NGX_HTTP_ECODOC_L_NEW2, "new-password",
      offsetof(ngx_http_ecodoc_ctx_t, f_new2) },
    { NULL, NULL, 0, NULL, 0 }
};

static ngx_http_ecodoc_field_t  ngx_http_ecodoc_no_fields[] = {
    { NULL, NULL, 0, NULL, 0 }
};


/* each page by ngx_http_ecodoc_page_e: its name in the URI and its form */

ngx_http_ecodoc_page_t  ngx_http_ecodoc_page_table[] = {
    { ngx_null_string, ngx_http_ecodoc_no_fields,
      NGX_HTTP_ECODOC_T_ERROR, 0, 0 },
    { ngx_string("signup"), ngx_http_ecodoc_signup_fields,
      NGX_HTTP_ECODOC_T_SIGNUP, NGX_HTTP_ECODOC_MSG_SIGNUP_INTRO,
      NGX_HTTP_ECODOC_B_SIGNUP },
    { ngx_string("login"), ngx_http_ecodoc_login_fields,
      NGX_HTTP_ECODOC_T_LOGIN, NGX_HTTP_ECODOC_MSG_LOGIN_INTRO,
      NGX_HTTP_ECODOC_B_LOGIN },
    { ngx_string("password"), ngx_http_ecodoc_password_fields,
      NGX_HTTP_ECODOC_T_PASSWORD, NGX_HTTP_ECODOC_MSG_PW_INTRO,
      NGX_HTTP_ECODOC_B_CHANGE },
    { ngx_string("logout"), ngx_http_ecodoc_no_fields,
      NGX_HTTP_ECODOC_T_LOGOUT, NGX_HTTP_ECODOC_MSG_LOGOUT_CONFIRM,
      NGX_HTTP_ECODOC_B_LOGOUT },
    { ngx_string("forgot"), ngx_http_ecodoc_no_fields,
      NGX_HTTP_ECODOC_T_FORGOT, NGX_HTTP_ECODOC_MSG_FORGOT, 0 },
    { ngx_string("certificate"), ngx_http_ecodoc_no_fields,
      NGX_HTTP_ECODOC_T_CERT_REQUIRED, NGX_HTTP_ECODOC_MSG_NO_CERT, 0 }
};


static ngx_uint_t ngx_http_ecodoc_page_of(ngx_http_request_t *r);
static ngx_int_t ngx_http_ecodoc_session_check(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static ngx_int_t ngx_http_ecodoc_password_change(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_form_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_ecodoc_form_act(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static ngx_int_t ngx_http_ecodoc_subject_is(ngx_http_request_t *r,
    ngx_str_t *user);

static ngx_int_t ngx_http_ecodoc_reserve(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_reserve_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_slot_wait(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_slot_release(ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_slot_unqueue(ngx_http_ecodoc_ctx_t *ctx);
static ngx_http_ecodoc_ctx_t *ngx_http_ecodoc_slot_waiter(
    ngx_http_ecodoc_ctx_t *ctx);
static ngx_str_t *ngx_http_ecodoc_check_user(ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_retry(ngx_event_t *ev);
static void ngx_http_ecodoc_give_back(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
static void ngx_http_ecodoc_checked(ngx_http_request_t *r);
static void ngx_http_ecodoc_finish_args(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *args);
static void ngx_http_ecodoc_finish_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_logout_done(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_ecodoc_session_done(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_ecodoc_refusal(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_ecodoc_status_e status);
static void ngx_http_ecodoc_outcome(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_ecodoc_result_e result);
static ngx_int_t ngx_http_ecodoc_unavailable(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);


ngx_int_t
ngx_http_ecodoc_pages_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    next, root;
    ngx_http_ecodoc_ctx_t       *ctx;

    ctx = ngx_http_ecodoc_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->page = ngx_http_ecodoc_page_of(r);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))
        || ((ctx->page == NGX_HTTP_ECODOC_PAGE_FORGOT
             || ctx->page == NGX_HTTP_ECODOC_PAGE_CERT)
            && r->method == NGX_HTTP_POST))
    {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_NOT_ALLOWED,
                                       NGX_HTTP_ECODOC_T_ERROR,
                                       NGX_HTTP_ECODOC_MSG_METHOD, 0);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_NONE) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_NOT_FOUND,
                                       NGX_HTTP_ECODOC_T_ERROR,
                                       NGX_HTTP_ECODOC_MSG_NOT_FOUND, 0);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_FORGOT) {
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK,
                                       NGX_HTTP_ECODOC_T_FORGOT,
                                       NGX_HTTP_ECODOC_MSG_FORGOT,
                                       NGX_HTTP_ECODOC_A_TO_LOGIN);
    }

    rc = ngx_http_ecodoc_fingerprint(r, ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_REFUSED);
        return ngx_http_ecodoc_cert_page(r, ctx, NGX_HTTP_FORBIDDEN);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_CERT) {

        /* verified, yet refused by nginx (ssl_ocsp): no loop through "/" */

        if (r->error_page) {
            return ngx_http_ecodoc_cert_page(r, ctx, NGX_HTTP_FORBIDDEN);
        }

        /* the certificate is good now: on to the service */

        ngx_str_set(&root, "/");
        return ngx_http_ecodoc_redirect(r, &root, NULL);
    }

    ngx_http_ecodoc_session_cookie(r, ctx);

    if (r->method == NGX_HTTP_POST) {

        if (r->headers_in.content_length_n > NGX_HTTP_ECODOC_FORM_MAX) {
            ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
            return ngx_http_ecodoc_message(r, ctx,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           NGX_HTTP_ECODOC_T_ERROR,
                                           NGX_HTTP_ECODOC_MSG_TOO_LARGE, 0);
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r, ngx_http_ecodoc_form_read);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
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
        return ngx_http_ecodoc_form_page(r, ctx, NGX_HTTP_OK, 0, NULL, NULL);
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
        return ngx_http_ecodoc_unavailable(r, ctx);
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
    ngx_int_t                 rc;
    ngx_str_t                 user;
    ngx_http_ecodoc_ctx_t    *ctx;
    ngx_http_ecodoc_status_e  status;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    (void) ngx_http_ecodoc_reply_verdict(r->pool, reply, &status, &user, 1);

    if (status == NGX_HTTP_ECODOC_ST_OK
        || status == NGX_HTTP_ECODOC_ST_INITIAL)
    {
        ctx->user = user;
        ctx->initial = (status == NGX_HTTP_ECODOC_ST_INITIAL);

        if (r->method == NGX_HTTP_POST) {
            rc = ngx_http_ecodoc_password_change(r, ctx);

            if (rc == NGX_DONE) {
                return;
            }

        } else {
            rc = ngx_http_ecodoc_form_page(r, ctx, NGX_HTTP_OK, 0, NULL, NULL);
        }

    } else {
        rc = ngx_http_ecodoc_refusal(r, ctx, status);
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
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
        return ngx_http_ecodoc_message(r, ctx, rc, NGX_HTTP_ECODOC_T_ERROR,
                                       rc == NGX_HTTP_BAD_REQUEST
                                       ? NGX_HTTP_ECODOC_MSG_CONTENT_TYPE
                                       : NGX_HTTP_ECODOC_MSG_TOO_LARGE, 0);
    }

    if (ngx_http_ecodoc_form_parse(r, ctx, &body) != NGX_OK) {
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_BAD_REQUEST,
                                       NGX_HTTP_ECODOC_T_ERROR,
                                       NGX_HTTP_ECODOC_MSG_MALFORMED, 0);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD && ctx->sid.len == 0) {
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_REFUSED);
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                       NGX_HTTP_ECODOC_T_ERROR,
                                       NGX_HTTP_ECODOC_MSG_LOGIN_REQUIRED,
                                       NGX_HTTP_ECODOC_A_TO_LOGIN);
    }

    if (ngx_http_ecodoc_same_origin(r) != NGX_OK
        || ngx_http_ecodoc_csrf_check(r, ctx) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ecodoc: refused a cross-site or stale form POST");
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
        return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_FORBIDDEN,
                                       NGX_HTTP_ECODOC_T_ERROR,
                                       NGX_HTTP_ECODOC_MSG_FORGED, 0);
    }

    switch (ctx->page) {

    case NGX_HTTP_ECODOC_PAGE_LOGOUT:
        if (ngx_http_ecodoc_redis_eval(r, NGX_HTTP_ECODOC_SCRIPT_LOGOUT,
                                       &ctx->sid, 1,
                                       ngx_http_ecodoc_logout_done)
            != NGX_OK)
        {
            return ngx_http_ecodoc_unavailable(r, ctx);
        }

        return NGX_DONE;

    case NGX_HTTP_ECODOC_PAGE_PASSWORD:
        return ngx_http_ecodoc_session_check(r, ctx);

    default: /* sign-up, login */

        if (ngx_http_ecodoc_user_ok(&ctx->f_user) != NGX_OK) {
            ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
            return ngx_http_ecodoc_form_page(r, ctx, NGX_HTTP_BAD_REQUEST,
                                             NGX_HTTP_ECODOC_MSG_BAD_USER,
                                             "user", NULL);
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
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_ERROR);
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
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_INVALID_FORM);
        return ngx_http_ecodoc_form_page(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    NGX_HTTP_ECODOC_MSG_PW_MISMATCH + rc - 1,
                                    rc == 3 ? "current" : "new", &detail);
    }

    if (ngx_http_ecodoc_random_hex(ctx->resid, NGX_HTTP_ECODOC_RESID_LEN)
        != NGX_OK)
    {
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_ERROR);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ecodoc_reserve(r, ctx);
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


/* whose password is checked: the session's user on the password page */

static ngx_str_t *
ngx_http_ecodoc_check_user(ngx_http_ecodoc_ctx_t *ctx)
{
    return (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD) ? &ctx->user
                                                        : &ctx->f_user;
}


/* reserves a password check in Redis; waits and retries while it is busy */

static ngx_int_t
ngx_http_ecodoc_reserve(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_str_t                    args[7];
    ngx_http_ecodoc_main_conf_t *emcf;

    /*
     * others of this worker already wait for a slot of this user: so does
     * this one, behind them, without asking Redis again
     */

    if (ctx->tries == 0 && ngx_http_ecodoc_slot_waiter(ctx) != NULL) {
        ctx->tries = 1;
        ctx->wait_start = ngx_current_msec;
        ngx_http_ecodoc_slot_wait(r, ctx);
        return NGX_DONE;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    args[0] = ngx_http_ecodoc_modes[ctx->page];
    args[1] = *ngx_http_ecodoc_check_user(ctx);
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
        return ngx_http_ecodoc_unavailable(r, ctx);
    }

    return NGX_DONE;
}


static void
ngx_http_ecodoc_reserve_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                 rc;
    ngx_str_t                 extra[2];
    ngx_http_ecodoc_ctx_t    *ctx;
    ngx_http_ecodoc_status_e  status;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    (void) ngx_http_ecodoc_reply_verdict(r->pool, reply, &status, extra, 2);

    if (reply == NULL && ctx->unconfirmed == NGX_HTTP_ECODOC_ST_OK) {
        ngx_http_ecodoc_give_back(r, ctx);
    }

    if (status == NGX_HTTP_ECODOC_ST_OK) {
        ctx->holds_slot = 1;
        ngx_http_ecodoc_slots_held++;

        ctx->stored = extra[0];
        ctx->initial = !(extra[1].len == 1 && extra[1].data[0] == '0');

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

    if (ctx->tries++ == 0) {
        ctx->wait_start = ngx_current_msec;
    }

    if (status == NGX_HTTP_ECODOC_ST_BUSY
        && ngx_current_msec - ctx->wait_start < NGX_HTTP_ECODOC_WAIT_MAX)
    {
        ngx_http_ecodoc_slot_wait(r, ctx);
        return;
    }

    rc = ngx_http_ecodoc_refusal(r, ctx, status);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_ecodoc_slot_wait(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_msec_t  delay;

    if (ngx_http_ecodoc_slot_waiting.next == NULL) {
        ngx_queue_init(&ngx_http_ecodoc_slot_waiting);
    }

    if (ngx_http_ecodoc_slots_held) {
        delay = NGX_HTTP_ECODOC_RETRY_HELD;

    } else {
        delay = NGX_HTTP_ECODOC_RETRY_MSEC
                << ngx_min(ctx->tries - 1, NGX_HTTP_ECODOC_RETRY_SHIFT);
        delay = ngx_min(delay, NGX_HTTP_ECODOC_RETRY_CAP);
    }

    delay += (ngx_msec_t) ngx_random() % (delay / 2 + 1);

    ngx_queue_insert_tail(&ngx_http_ecodoc_slot_waiting, &ctx->slot_queue);
    ctx->queued = 1;

    ctx->retry.handler = ngx_http_ecodoc_retry;
    ctx->retry.data = r;
    ctx->retry.log = r->connection->log;
    ngx_add_timer(&ctx->retry, delay);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ecodoc: waiting for a password check slot, try %ui, "
                   "%M ms at most", ctx->tries, delay);
}


/*
 * The request is through with slots (its pool goes): no longer waiting,
 * out of the queue, its timer and wake-up gone, its slot given back
 */

void
ngx_http_ecodoc_slot_leave(ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_http_ecodoc_slot_release(ctx);
    ngx_http_ecodoc_slot_unqueue(ctx);
}


static void
ngx_http_ecodoc_slot_unqueue(ngx_http_ecodoc_ctx_t *ctx)
{
    if (ctx->queued) {
        ngx_queue_remove(&ctx->slot_queue);
        ctx->queued = 0;
    }

    if (ctx->retry.timer_set) {
        ngx_del_timer(&ctx->retry);
    }

    if (ctx->retry.posted) {
        ngx_delete_posted_event(&ctx->retry);
    }
}


/*
 * The check of ctx is through (finished in Redis, or never to be): the
 * first request of this worker waiting for a slot of the same user goes
 */

static void
ngx_http_ecodoc_slot_release(ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_http_ecodoc_ctx_t  *w;

    if (!ctx->holds_slot) {
        return;
    }

    ctx->holds_slot = 0;
    ngx_http_ecodoc_slots_held--;

    w = ngx_http_ecodoc_slot_waiter(ctx);

    if (w) {
        ngx_http_ecodoc_slot_unqueue(w);
        ngx_post_event(&w->retry, &ngx_posted_events);
    }
}


/* the first request of this worker waiting for a slot of ctx's user */

static ngx_http_ecodoc_ctx_t *
ngx_http_ecodoc_slot_waiter(ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_str_t              *user, *u;
    ngx_queue_t            *q;
    ngx_http_ecodoc_ctx_t  *w;

    if (ngx_http_ecodoc_slot_waiting.next == NULL) {
        return NULL;
    }

    user = ngx_http_ecodoc_check_user(ctx);

    for (q = ngx_queue_head(&ngx_http_ecodoc_slot_waiting);
         q != ngx_queue_sentinel(&ngx_http_ecodoc_slot_waiting);
         q = ngx_queue_next(q))
    {
        w = ngx_queue_data(q, ngx_http_ecodoc_ctx_t, slot_queue);
        u = ngx_http_ecodoc_check_user(w);

        if (u->len == user->len
            && ngx_strncmp(u->data, user->data, user->len) == 0)
        {
            return w;
        }
    }

    return NULL;
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

    ngx_http_ecodoc_slot_unqueue(ctx);

    rc = ngx_http_ecodoc_reserve(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * A reservation made while too few replicas confirmed it (WAIT): the
 * request is answered 503 with nothing checked, and the reservation is
 * given back at once, counting nothing, instead of lapsing into a failure.
 * Best effort, with no WAIT: lost in a failover, it lapses all the same.
 */

static void
ngx_http_ecodoc_give_back(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_str_t  args[11];

    ctx->verified = -1;
    ngx_http_ecodoc_finish_args(r, ctx, args);

    if (ngx_http_ecodoc_redis_post(r, NGX_HTTP_ECODOC_SCRIPT_FINISH, args, 11)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ecodoc: the reservation of \"%V\" cannot be given "
                      "back: it lapses into a failure",
                      ngx_http_ecodoc_check_user(ctx));
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "ecodoc: the reservation of \"%V\" given back, nothing "
                  "checked", ngx_http_ecodoc_check_user(ctx));
}


/* the thread is through: record the outcome in Redis */

static void
ngx_http_ecodoc_checked(ngx_http_request_t *r)
{
    ngx_str_t               args[11];
    ngx_http_ecodoc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ctx->hashing) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ngx_http_ecodoc_session_new(ctx) != NGX_OK) {
        ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_ERROR);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_ecodoc_finish_args(r, ctx, args);

    if (ngx_http_ecodoc_redis_eval(r, NGX_HTTP_ECODOC_SCRIPT_FINISH, args, 11,
                                   ngx_http_ecodoc_finish_done)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, ngx_http_ecodoc_unavailable(r, ctx));
    }
}


/* finish.lua's arguments: the outcome is ctx->verified's */

static void
ngx_http_ecodoc_finish_args(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_str_t *args)
{
    ngx_http_ecodoc_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    args[0] = ngx_http_ecodoc_modes[ctx->page];
    args[1] = *ngx_http_ecodoc_check_user(ctx);
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
}


static void
ngx_http_ecodoc_finish_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                    rc;
    ngx_str_t                    extra, to;
    ngx_http_ecodoc_ctx_t       *ctx;
    ngx_http_ecodoc_status_e     status;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);
    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    /*
     * "ok" and whether the password is the initial one; "locked" and "1"
     * when this very check locked the user
     */

    (void) ngx_http_ecodoc_reply_verdict(r->pool, reply, &status, &extra, 1);

    /* the reservation is given back, whatever the verdict */

    ngx_http_ecodoc_slot_release(ctx);

    if (status != NGX_HTTP_ECODOC_ST_OK) {
        if (status == NGX_HTTP_ECODOC_ST_FAILED && extra.len) {
            rc = ngx_atoi(extra.data, extra.len);
            ctx->failures = (rc == NGX_ERROR) ? 0 : (ngx_uint_t) rc;
        }

        if (status == NGX_HTTP_ECODOC_ST_LOCKED
            && extra.len == 1 && extra.data[0] == '1')
        {
            ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_LOCKOUTS, 1);
        }

        ngx_http_finalize_request(r, ngx_http_ecodoc_refusal(r, ctx, status));
        return;
    }

    ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_DONE);

    if (ctx->page != NGX_HTTP_ECODOC_PAGE_SIGNUP) {
        ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_SESSIONS, 1);
    }

    switch (ctx->page) {

    case NGX_HTTP_ECODOC_PAGE_SIGNUP:
        rc = ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK,
                                     NGX_HTTP_ECODOC_T_SIGNUP,
                                     NGX_HTTP_ECODOC_MSG_SIGNUP_DONE,
                                     NGX_HTTP_ECODOC_A_TO_LOGIN);
        break;

    case NGX_HTTP_ECODOC_PAGE_LOGIN:
        if (ngx_http_ecodoc_session_set_cookie(r, ctx, 0) != NGX_OK) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        if (extra.len == 1 && extra.data[0] == '0') {
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

        rc = ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK,
                                     NGX_HTTP_ECODOC_T_PASSWORD,
                                     NGX_HTTP_ECODOC_MSG_PW_DONE,
                                     NGX_HTTP_ECODOC_A_TO_SERVICE);
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_ecodoc_logout_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                 rc;
    ngx_str_t                 user;
    ngx_http_ecodoc_ctx_t    *ctx;
    ngx_http_ecodoc_status_e  status;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_reply_verdict(r->pool, reply, &status, &user, 1)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, ngx_http_ecodoc_unavailable(r, ctx));
        return;
    }

    /* "nosession": already ended; the cookie goes all the same */

    ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_DONE);

    ngx_http_ecodoc_cache_forget(r, ctx);

    if (ngx_http_ecodoc_session_set_cookie(r, ctx, 1) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_ecodoc_message(r, ctx, NGX_HTTP_OK, NGX_HTTP_ECODOC_T_LOGOUT,
                                 NGX_HTTP_ECODOC_MSG_LOGOUT_DONE,
                                 NGX_HTTP_ECODOC_A_TO_LOGIN);

    ngx_http_finalize_request(r, rc);
}


/* a verdict of a script other than "ok", as the page the user sees */

static ngx_int_t
ngx_http_ecodoc_refusal(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_http_ecodoc_status_e status)
{
    ngx_str_t                    to;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    /* the verdicts answered on the form, by ngx_http_ecodoc_status_e */

    static struct {
        ngx_uint_t   code;
        ngx_uint_t   msg;
        const char  *field;
    } refusals[NGX_HTTP_ECODOC_ST_N] = {
        [NGX_HTTP_ECODOC_ST_FAILED] = { NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_ECODOC_MSG_BAD_PASSWORD, "password" },
        [NGX_HTTP_ECODOC_ST_NOUSER] = { NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_ECODOC_MSG_BAD_PASSWORD, "password" },
        [NGX_HTTP_ECODOC_ST_CERT_BOUND] = { NGX_HTTP_CONFLICT,
            NGX_HTTP_ECODOC_MSG_CERT_BOUND, NULL },
        [NGX_HTTP_ECODOC_ST_USER_BOUND] = { NGX_HTTP_CONFLICT,
            NGX_HTTP_ECODOC_MSG_USER_BOUND, "user" },
        [NGX_HTTP_ECODOC_ST_SUBJECT] = { NGX_HTTP_FORBIDDEN,
            NGX_HTTP_ECODOC_MSG_SUBJECT, "user" },
        [NGX_HTTP_ECODOC_ST_WRONG_CERT] = { NGX_HTTP_FORBIDDEN,
            NGX_HTTP_ECODOC_MSG_WRONG_CERT, "user" },
        [NGX_HTTP_ECODOC_ST_BUSY] = { NGX_HTTP_SERVICE_UNAVAILABLE,
            NGX_HTTP_ECODOC_MSG_BUSY, NULL },
        [NGX_HTTP_ECODOC_ST_CHANGED] = { NGX_HTTP_SERVICE_UNAVAILABLE,
            NGX_HTTP_ECODOC_MSG_BUSY, NULL }
    };

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ecodoc: page refused: %V",
                  &ngx_http_ecodoc_status_names[status]);

    ngx_http_ecodoc_outcome(r, ctx,
                            status == NGX_HTTP_ECODOC_ST_FAILED
                            ? NGX_HTTP_ECODOC_R_WRONG_PASSWORD
                            : status == NGX_HTTP_ECODOC_ST_LOCKED
                            ? NGX_HTTP_ECODOC_R_LOCKED
                            : (status == NGX_HTTP_ECODOC_ST_ERROR
                               || status == NGX_HTTP_ECODOC_ST_BUSY)
                            ? NGX_HTTP_ECODOC_R_ERROR
                            : NGX_HTTP_ECODOC_R_REFUSED);

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    switch (status) {

    case NGX_HTTP_ECODOC_ST_LOCKED:
        return ngx_http_ecodoc_gate_page(r, ctx, NGX_HTTP_FORBIDDEN,
                                         NGX_HTTP_ECODOC_MSG_LOCKED);

    case NGX_HTTP_ECODOC_ST_REVOKED:
        return ngx_http_ecodoc_gate_page(r, ctx, NGX_HTTP_FORBIDDEN,
                                         NGX_HTTP_ECODOC_MSG_REVOKED);

    case NGX_HTTP_ECODOC_ST_NOSESSION:
    case NGX_HTTP_ECODOC_ST_UNBOUND:
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                           NGX_HTTP_ECODOC_T_ERROR,
                                           NGX_HTTP_ECODOC_MSG_LOGIN_REQUIRED,
                                           NGX_HTTP_ECODOC_A_TO_LOGIN);
        }

        to.len = elcf->pages_uri.len + sizeof("signup") - 1;
        to.data = ngx_pnalloc(r->pool, to.len);
        if (to.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        to.len = ngx_sprintf(to.data, "%V%s", &elcf->pages_uri,
                             status == NGX_HTTP_ECODOC_ST_NOSESSION
                             ? "login" : "signup")
                 - to.data;

        return ngx_http_ecodoc_redirect(r, &to, NULL);

    case NGX_HTTP_ECODOC_ST_FAILED:
        if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD) {
            return ngx_http_ecodoc_form_page(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                             NGX_HTTP_ECODOC_MSG_PW_WRONG,
                                             "current", NULL);
        }

        break;

    default:
        break;
    }

    if (refusals[status].code) {
        return ngx_http_ecodoc_form_page(r, ctx, refusals[status].code,
                                         refusals[status].msg,
                                         refusals[status].field, NULL);
    }

    return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NGX_HTTP_ECODOC_T_ERROR,
                                   NGX_HTTP_ECODOC_MSG_UNAVAILABLE, 0);
}


/* the 503 of a Redis that could not be asked */

static ngx_int_t
ngx_http_ecodoc_unavailable(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    ngx_http_ecodoc_outcome(r, ctx, NGX_HTTP_ECODOC_R_ERROR);

    return ngx_http_ecodoc_message(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NGX_HTTP_ECODOC_T_ERROR,
                                   NGX_HTTP_ECODOC_MSG_UNAVAILABLE, 0);
}


/* what a posted form came to, counted once (ecodoc_metrics) */

static void
ngx_http_ecodoc_outcome(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_http_ecodoc_result_e result)
{
    if (r->method != NGX_HTTP_POST || ctx->counted
        || ctx->page < NGX_HTTP_ECODOC_PAGE_SIGNUP
        || ctx->page > NGX_HTTP_ECODOC_PAGE_LOGOUT)
    {
        return;
    }

    ctx->counted = 1;

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_PAGES
                          + (ctx->page - NGX_HTTP_ECODOC_PAGE_SIGNUP)
                            * NGX_HTTP_ECODOC_R_N
                          + result, 1);
}
