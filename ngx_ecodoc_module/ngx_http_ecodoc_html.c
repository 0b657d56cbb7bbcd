/*
 * The pages as HTML: the layout (or the operator's template), the forms
 * with their errors beside the fields, the message pages and redirects.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


#define NGX_HTTP_ECODOC_PAGE_SIZE    16384


typedef struct {
    u_char                      *start;
    u_char                      *pos;
    u_char                      *end;
    ngx_uint_t                   lang;
    /* what the texts' {date}, {n} and {max} stand for */
    time_t                       date;
    ngx_uint_t                   n;
    ngx_uint_t                   max;
    unsigned                     overflow:1;
} ngx_http_ecodoc_out_t;


/* each page of ngx_http_ecodoc_problem_e: what happened, what to do */

static struct {
    ngx_uint_t                   title;
    ngx_uint_t                   msg;
    ngx_uint_t                   next_step;
    ngx_uint_t                   link;        /* A_ENROLL, A_TO_LOGIN or 0 */
} ngx_http_ecodoc_problems[] = {
    { NGX_HTTP_ECODOC_T_CERT_REQUIRED, NGX_HTTP_ECODOC_MSG_NO_CERT,
      NGX_HTTP_ECODOC_MSG_NO_CERT_DO, NGX_HTTP_ECODOC_A_ENROLL },
    { NGX_HTTP_ECODOC_T_CERT_EXPIRED, NGX_HTTP_ECODOC_MSG_CERT_EXPIRED,
      NGX_HTTP_ECODOC_MSG_CERT_EXPIRED_DO, NGX_HTTP_ECODOC_A_ENROLL },
    { NGX_HTTP_ECODOC_T_CERT_OTHER_CA, NGX_HTTP_ECODOC_MSG_CERT_OTHER_CA,
      NGX_HTTP_ECODOC_MSG_CERT_OTHER_CA_DO, NGX_HTTP_ECODOC_A_ENROLL },
    { NGX_HTTP_ECODOC_T_CERT_REVOKED, NGX_HTTP_ECODOC_MSG_REVOKED,
      NGX_HTTP_ECODOC_MSG_REVOKED_DO, NGX_HTTP_ECODOC_A_ENROLL },
    { NGX_HTTP_ECODOC_T_CERT_INVALID, NGX_HTTP_ECODOC_MSG_CERT_INVALID,
      NGX_HTTP_ECODOC_MSG_CERT_INVALID_DO, 0 },
    { NGX_HTTP_ECODOC_T_LOCKED, NGX_HTTP_ECODOC_MSG_LOCKED,
      NGX_HTTP_ECODOC_MSG_LOCKED_DO, NGX_HTTP_ECODOC_A_TO_LOGIN }
};


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
static void ngx_http_ecodoc_put_link(ngx_http_ecodoc_out_t *out,
    ngx_str_t *base, const char *page, ngx_uint_t text);
static void ngx_http_ecodoc_put_url(ngx_http_ecodoc_out_t *out,
    ngx_str_t *url, ngx_uint_t text);
static void ngx_http_ecodoc_put_date(ngx_http_ecodoc_out_t *out, time_t t);
static void ngx_http_ecodoc_put_notice(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_ecodoc_out_t *out,
    ngx_uint_t status);
static void ngx_http_ecodoc_put_rules(ngx_http_request_t *r,
    ngx_http_ecodoc_out_t *out);


static const char  ngx_http_ecodoc_layout[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\">\n<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\">\n"
    "<title>{{title}} | {{service}}</title>\n<style>\n"
    ECODOC_WEB_STYLE
    "</style>\n</head>\n<body>\n<header>{{service}}</header>\n"
    "<main>\n<h1>{{title}}</h1>\n{{content}}</main>\n</body>\n</html>\n";


/* the page's form, with an error message beside the field it concerns */

ngx_int_t
ngx_http_ecodoc_form_page(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t msg,
    const char *field, ngx_str_t *detail)
{
    u_char                      *p;
    ngx_str_t                    csrf, *value;
    ngx_uint_t                   title, intro, err;
    ngx_http_ecodoc_out_t        out;
    ngx_http_ecodoc_page_t      *page;
    ngx_http_ecodoc_field_t     *f;
    ngx_http_ecodoc_loc_conf_t  *elcf;
    ngx_http_ecodoc_main_conf_t *emcf;
    u_char                       num[NGX_INT_T_LEN];

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);
    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    page = &ngx_http_ecodoc_page_table[ctx->page];
    f = page->fields;
    title = page->title;
    intro = page->intro;

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD && ctx->initial) {
        title = NGX_HTTP_ECODOC_T_PASSWORD_INITIAL;
        intro = NGX_HTTP_ECODOC_MSG_PW_INITIAL_INTRO;
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
        ngx_http_ecodoc_put_text(&out, NGX_HTTP_ECODOC_L_USER);
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
            ngx_http_ecodoc_put(&out,
                                "<p class=\"error\" role=\"alert\" id=\"");
            ngx_http_ecodoc_put(&out, f->name);
            ngx_http_ecodoc_put(&out, "-error\">");
            ngx_http_ecodoc_put_text(&out, msg);

            if (msg == NGX_HTTP_ECODOC_MSG_PW_SHORT) {
                p = ngx_sprintf(num, "%ui", elcf->password_min_length);
                ngx_http_ecodoc_put_str(&out, num, p - num);
            }

            if (detail && detail->len) {
                ngx_http_ecodoc_put_html(&out, detail->data, detail->len);
            }

            /* a wrong password counted: how many more lock the user ID */

            if ((msg == NGX_HTTP_ECODOC_MSG_BAD_PASSWORD
                 || msg == NGX_HTTP_ECODOC_MSG_PW_WRONG)
                && ctx->failures && ctx->failures < emcf->max_failures)
            {
                out.n = emcf->max_failures - ctx->failures;
                out.max = emcf->max_failures;
                ngx_http_ecodoc_put(&out, out.lang ? " " : "");
                ngx_http_ecodoc_put_text(&out,
                                         NGX_HTTP_ECODOC_MSG_TRIES_LEFT);
            }

            ngx_http_ecodoc_put(&out, "</p>\n");
        }

        /* the new password's rules, from the start */

        if (ngx_strcmp(f->name, "new") == 0) {
            ngx_http_ecodoc_put_rules(r, &out);
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
            ngx_http_ecodoc_put(&out, "-error");

            if (ngx_strcmp(f->name, "new") == 0) {
                ngx_http_ecodoc_put(&out, " new-rules");
            }

            ngx_http_ecodoc_put(&out, "\" autofocus");

        } else if (ngx_strcmp(f->name, "new") == 0) {
            ngx_http_ecodoc_put(&out, " aria-describedby=\"new-rules\"");
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
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "forgot",
                                 NGX_HTTP_ECODOC_A_FORGOT);
    }

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_SIGNUP) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "login",
                                 NGX_HTTP_ECODOC_A_TO_LOGIN);
    }

    /* a way out of the password change, the forced one too */

    if (ctx->page == NGX_HTTP_ECODOC_PAGE_PASSWORD) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "logout",
                                 NGX_HTTP_ECODOC_B_LOGOUT);
    }

    return ngx_http_ecodoc_send(r, ctx, status, title, &out);
}


/* a page with one message and, optionally, one link onwards */

ngx_int_t
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

    if (msg == NGX_HTTP_ECODOC_MSG_FORGOT) {
        ngx_http_ecodoc_put_url(&out, &elcf->forgot_url,
                                NGX_HTTP_ECODOC_A_CONTACT);
    }

    if (link == NGX_HTTP_ECODOC_A_TO_LOGIN) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "login", link);

    } else if (link == NGX_HTTP_ECODOC_A_TO_SERVICE) {
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

        if (ctx->page == NGX_HTTP_ECODOC_PAGE_FORGOT
            || ctx->page == NGX_HTTP_ECODOC_PAGE_CERT)
        {
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
    switch (msg) {

    case NGX_HTTP_ECODOC_MSG_NO_CERT:
        return ngx_http_ecodoc_cert_page(r, ctx, status);

    case NGX_HTTP_ECODOC_MSG_REVOKED:
        return ngx_http_ecodoc_problem_page(r, ctx, status,
                                            NGX_HTTP_ECODOC_PROBLEM_REVOKED,
                                            0, NULL);

    case NGX_HTTP_ECODOC_MSG_LOCKED:
        return ngx_http_ecodoc_problem_page(r, ctx, status,
                                            NGX_HTTP_ECODOC_PROBLEM_LOCKED,
                                            0, NULL);

    default:
        return ngx_http_ecodoc_message(r, ctx, status,
                                       NGX_HTTP_ECODOC_T_ERROR, msg, 0);
    }
}


/*
 * A certificate or user refused: a heading that names the problem, what
 * happened (with the date, when given, and the verifier's reason), what
 * to do, and the links onwards that the configuration knows
 */

ngx_int_t
ngx_http_ecodoc_problem_page(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status,
    ngx_http_ecodoc_problem_e problem, time_t date, const char *reason)
{
    ngx_uint_t                   link;
    ngx_http_ecodoc_out_t        out;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (ngx_http_ecodoc_out_init(r, ctx, &out, NGX_HTTP_ECODOC_PAGE_SIZE)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out.date = date;

    ngx_http_ecodoc_put(&out, "<p class=\"error\" role=\"alert\">");
    ngx_http_ecodoc_put_text(&out, ngx_http_ecodoc_problems[problem].msg);

    if (reason) {
        ngx_http_ecodoc_put(&out, " (");
        ngx_http_ecodoc_put_html(&out, (u_char *) reason, ngx_strlen(reason));
        ngx_http_ecodoc_put(&out, ")");
    }

    ngx_http_ecodoc_put(&out, "</p>\n<p>");
    ngx_http_ecodoc_put_text(&out, ngx_http_ecodoc_problems[problem].next_step);
    ngx_http_ecodoc_put(&out, "</p>\n");

    link = ngx_http_ecodoc_problems[problem].link;

    if (link == NGX_HTTP_ECODOC_A_ENROLL) {
        ngx_http_ecodoc_put_url(&out, &elcf->enroll_url, link);

    } else if (link == NGX_HTTP_ECODOC_A_TO_LOGIN) {
        ngx_http_ecodoc_put_link(&out, &elcf->pages_uri, "login", link);
    }

    ngx_http_ecodoc_put_url(&out, &elcf->forgot_url,
                            NGX_HTTP_ECODOC_A_CONTACT);

    return ngx_http_ecodoc_send(r, ctx, status,
                                ngx_http_ecodoc_problems[problem].title, &out);
}


/* lays the content into the layout (or the operator's template), sends it */

static ngx_int_t
ngx_http_ecodoc_send(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_uint_t status, ngx_uint_t title, ngx_http_ecodoc_out_t *content)
{
    u_char                      *p, *end, *open, *close;
    ngx_str_t                    name, layout, type;
    ngx_table_elt_t             *h;
    ngx_http_ecodoc_out_t        out;
    ngx_http_complex_value_t     cv;
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
            ngx_http_ecodoc_put_text(&out, NGX_HTTP_ECODOC_T_SERVICE);

        } else if (name.len == 7
                   && ngx_strncmp(name.data, "content", 7) == 0)
        {
            ngx_http_ecodoc_put_notice(r, ctx, &out, status);
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

    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));
    cv.value.data = out.start;
    cv.value.len = out.pos - out.start;

    ngx_str_set(&type, "text/html");
    ngx_str_set(&r->headers_out.charset, "utf-8");

    return ngx_http_send_response(r, status, &type, &cv);
}


static ngx_int_t
ngx_http_ecodoc_out_init(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_http_ecodoc_out_t *out, size_t size)
{
    ngx_memzero(out, sizeof(ngx_http_ecodoc_out_t));

    out->lang = ngx_http_ecodoc_ctx_lang(r, ctx);

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

    /* every value goes into text or a quoted attribute */

    n = ecodoc_web_escape_html(NULL, s, len);

    if ((size_t) (out->end - out->pos) < n) {
        out->overflow = 1;
        return;
    }

    out->pos += ecodoc_web_escape_html(out->pos, s, len);
}


/* a text of the page's language, its {date}, {n} and {max} filled in */

static void
ngx_http_ecodoc_put_text(ngx_http_ecodoc_out_t *out, ngx_uint_t msg)
{
    u_char      *p, *end, *open, *close, num[NGX_INT_T_LEN];
    size_t       len;
    const char  *s;

    s = ngx_http_ecodoc_text(out->lang, msg);
    p = (u_char *) s;
    end = p + ngx_strlen(s);

    while (p < end) {
        open = ngx_strlchr(p, end, '{');
        close = open ? ngx_strlchr(open, end, '}') : NULL;

        if (close == NULL) {
            ngx_http_ecodoc_put_html(out, p, end - p);
            return;
        }

        ngx_http_ecodoc_put_html(out, p, open - p);

        len = close - open + 1;
        p = close + 1;

        if (len == sizeof("{date}") - 1
            && ngx_strncmp(open, "{date}", len) == 0)
        {
            ngx_http_ecodoc_put_date(out, out->date);

        } else if (len == sizeof("{n}") - 1
                   && ngx_strncmp(open, "{n}", len) == 0)
        {
            ngx_http_ecodoc_put_str(out, num,
                                    ngx_sprintf(num, "%ui", out->n) - num);

        } else if (len == sizeof("{max}") - 1
                   && ngx_strncmp(open, "{max}", len) == 0)
        {
            ngx_http_ecodoc_put_str(out, num,
                                    ngx_sprintf(num, "%ui", out->max) - num);

        } else {
            ngx_http_ecodoc_put_html(out, open, len);
        }
    }
}


/*
 * A date and time as people read them, in the server's time zone (named):
 * "2027年12月29日 22:46（JST）", "29 December 2027, 22:46 JST"
 */

static void
ngx_http_ecodoc_put_date(ngx_http_ecodoc_out_t *out, time_t t)
{
    u_char     *p;
    size_t      n;
    struct tm   tm;
    u_char      buf[128], zone[32];

    static const char  *months[] = {
        "January", "February", "March", "April", "May", "June", "July",
        "August", "September", "October", "November", "December"
    };

    ngx_libc_localtime(t, &tm);

    n = strftime((char *) zone, sizeof(zone), "%Z", &tm);
    zone[n] = '\0';

    if (out->lang == 0) {
        p = ngx_snprintf(buf, sizeof(buf), "%d年%d月%d日 %02d:%02d（%s）",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, zone);

    } else {
        p = ngx_snprintf(buf, sizeof(buf), "%d %s %d, %02d:%02d %s",
                         tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                         tm.tm_hour, tm.tm_min, zone);
    }

    ngx_http_ecodoc_put_html(out, buf, p - buf);
}


/*
 * In the last ecodoc_cert_expiry_notice days of the verified certificate,
 * a notice above the page's content: its date, and the renewal page or
 * the administrator.  Not on the pages that refuse (403) or fail (5xx).
 */

static void
ngx_http_ecodoc_put_notice(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx,
    ngx_http_ecodoc_out_t *out, ngx_uint_t status)
{
    time_t                       left;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (elcf->expiry_notice == 0 || ctx->conn == NULL
        || ctx->conn->not_after == 0
        || status == NGX_HTTP_FORBIDDEN
        || status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
    {
        return;
    }

    left = ctx->conn->not_after - ngx_time();

    if (left >= (time_t) elcf->expiry_notice * 86400) {
        return;
    }

    out->date = ctx->conn->not_after;
    out->n = ngx_http_ecodoc_cert_days(ctx->conn->not_after);

    ngx_http_ecodoc_put(out, "<div class=\"notice\" id=\"expiry\"><p>");
    ngx_http_ecodoc_put_text(out, out->n ? NGX_HTTP_ECODOC_MSG_EXPIRY
                                         : NGX_HTTP_ECODOC_MSG_EXPIRY_TODAY);
    ngx_http_ecodoc_put(out, out->lang ? " " : "");
    ngx_http_ecodoc_put_text(out, elcf->renewal_url.len
                                  ? NGX_HTTP_ECODOC_MSG_EXPIRY_RENEW
                                  : NGX_HTTP_ECODOC_MSG_EXPIRY_ASK);
    ngx_http_ecodoc_put(out, "</p>\n");
    ngx_http_ecodoc_put_url(out, &elcf->renewal_url, NGX_HTTP_ECODOC_A_RENEW);
    ngx_http_ecodoc_put(out, "</div>\n");
}


/* the new password's rules, in the page's language; id "new-rules" */

static void
ngx_http_ecodoc_put_rules(ngx_http_request_t *r, ngx_http_ecodoc_out_t *out)
{
    ngx_uint_t                   i;
    ngx_str_t                   *m;
    ngx_http_ecodoc_rule_t      *rule;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    out->n = elcf->password_min_length;

    ngx_http_ecodoc_put(out, "<div class=\"rules\" id=\"new-rules\">");
    ngx_http_ecodoc_put_text(out, NGX_HTTP_ECODOC_MSG_PW_RULES);
    ngx_http_ecodoc_put(out, "\n<ul>\n<li>");
    ngx_http_ecodoc_put_text(out, NGX_HTTP_ECODOC_MSG_PW_RULE_LENGTH);
    ngx_http_ecodoc_put(out, "</li>\n");

    if (elcf->password_rules) {
        rule = elcf->password_rules->elts;

        for (i = 0; i < elcf->password_rules->nelts; i++) {
            m = &rule[i].message[out->lang];

            ngx_http_ecodoc_put(out, "<li>");
            ngx_http_ecodoc_put_html(out, m->data, m->len);
            ngx_http_ecodoc_put(out, "</li>\n");
        }
    }

    ngx_http_ecodoc_put(out, "<li>");
    ngx_http_ecodoc_put_text(out, NGX_HTTP_ECODOC_MSG_PW_RULE_OTHER);
    ngx_http_ecodoc_put(out, "</li>\n</ul></div>\n");
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


/* a link to a configured URL; nothing when it is not configured */

static void
ngx_http_ecodoc_put_url(ngx_http_ecodoc_out_t *out, ngx_str_t *url,
    ngx_uint_t text)
{
    if (url->len) {
        ngx_http_ecodoc_put_link(out, url, "", text);
    }
}


/*
 * 303 See Other to a path of this server; args, when given, become a
 * "next" parameter, escaped as an argument.
 */

ngx_int_t
ngx_http_ecodoc_redirect(ngx_http_request_t *r, ngx_str_t *to,
    ngx_str_t *args)
{
    u_char           *p;
    size_t            len;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       cl;
    ngx_table_elt_t  *h;

    static u_char     body[] = "<!DOCTYPE html>\n<title>303</title>\n";

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = to->len;

    if (args && args->len) {
        len += sizeof("?next=") - 1 + args->len
               + 2 * ngx_escape_uri(NULL, args->data, args->len,
                                    NGX_ESCAPE_ARGS);
    }

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
        p = (u_char *) ngx_escape_uri(p, args->data, args->len,
                                      NGX_ESCAPE_ARGS);
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
