/*
 * Fuzz harness: a POSTed form as the module reads it: the body and its type
 * (ngx_http_ecodoc_form_body), its decoding and the field checks.
 */

#include "../ngx_fuzz.h"


static ngx_http_ecodoc_rule_t  form_rule;
static ngx_array_t             form_rules;


/* once: a password rule, as ecodoc_password_require "[0-9]" makes it */

static void
form_rule_init(void)
{
    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_pool_t          *pool;
    ngx_regex_compile_t  rc;

    pool = ngx_create_pool(4096, &ngx_fuzz_log);
    if (pool == NULL) {
        abort();
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));
    ngx_str_set(&rc.pattern, "[0-9]");
    rc.pool = pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        abort();
    }

    form_rule.regex = rc.regex;
    ngx_str_set(&form_rule.message[0], "数字を含めてください");
    ngx_str_set(&form_rule.message[1], "a digit");

    form_rules.elts = &form_rule;
    form_rules.nelts = 1;
    ngx_fuzz_elcf.password_rules = &form_rules;
}


/*
 * The input: a byte choosing the page (signup, login, password), the
 * Content-Type (none if empty), a newline, then the body, which comes in
 * two buffers split where the second byte says (a body may come in
 * several).
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                 *p, *end, *nl, *split;
    ngx_str_t               body, detail;
    ngx_buf_t              *b1, *b2;
    ngx_pool_t             *pool;
    ngx_chain_t            *c1, *c2;
    ngx_http_request_t     *r;
    ngx_http_ecodoc_ctx_t   ctx;

    if (size < 2) {
        return 0;
    }

    r = ngx_fuzz_request();
    if (r == NULL) {
        return 0;
    }

    if (form_rules.nelts == 0) {
        form_rule_init();
    }

    pool = r->pool;

    ngx_memzero(&ctx, sizeof(ngx_http_ecodoc_ctx_t));
    ctx.page = NGX_HTTP_ECODOC_PAGE_SIGNUP + data[0] % 3;

    p = (u_char *) data + 2;
    end = (u_char *) data + size;

    nl = ngx_strlchr(p, end, '\n');
    if (nl == NULL) {
        nl = end;
    }

    /* an empty first line: no Content-Type at all */

    if (nl > p) {
        r->headers_in.content_type = ngx_fuzz_header(r, "Content-Type", p,
                                                     nl - p);
        if (r->headers_in.content_type == NULL) {
            goto done;
        }
    }

    /* the body: two buffers in memory, copied so that ASan sees their ends */

    p = (nl < end) ? nl + 1 : end;
    split = p + ((end > p) ? data[1] % (end - p + 1) : 0);

    r->request_body = ngx_pcalloc(pool, sizeof(ngx_http_request_body_t));
    b1 = ngx_create_temp_buf(pool, ngx_max(split - p, 1));
    b2 = ngx_create_temp_buf(pool, ngx_max(end - split, 1));
    c1 = ngx_alloc_chain_link(pool);
    c2 = ngx_alloc_chain_link(pool);

    if (r->request_body == NULL || b1 == NULL || b2 == NULL || c1 == NULL
        || c2 == NULL)
    {
        goto done;
    }

    b1->last = ngx_cpymem(b1->pos, p, split - p);
    b2->last = ngx_cpymem(b2->pos, split, end - split);
    b2->last_buf = 1;

    c1->buf = b1;
    c1->next = c2;
    c2->buf = b2;
    c2->next = NULL;
    r->request_body->bufs = c1;

    /* what ngx_http_ecodoc_form_act() does, in its order */

    if (ngx_http_ecodoc_form_body(r, &body) != NGX_OK
        || ngx_http_ecodoc_form_parse(r, &ctx, &body) != NGX_OK)
    {
        goto done;
    }

    if (ctx.page == NGX_HTTP_ECODOC_PAGE_PASSWORD) {
        ngx_str_set(&ctx.user, "alice.smith");
        ctx.f_user = ctx.user;
        ngx_str_null(&detail);
        (void) ngx_http_ecodoc_password_policy(r, &ctx, &detail);

    } else {
        (void) ngx_http_ecodoc_user_ok(&ctx.f_user);
    }

    if (ctx.f_next.len) {
        (void) ngx_http_ecodoc_next_ok(&ctx.f_next);
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
