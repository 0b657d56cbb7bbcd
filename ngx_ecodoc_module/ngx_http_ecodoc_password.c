/*
 * Passwords in the module: scrypt checks and new hashes in an nginx thread
 * pool so no worker blocks, and the policy a new password must meet.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_ecodoc.h"

#if (NGX_LINUX)
#include <sys/resource.h>
#include <sys/syscall.h>
#endif


/*
 * Hashing yields to the event loops: a hashing thread runs only on CPU time
 * that no thread of normal priority wants (SCHED_IDLE), at the lowest nice
 * where that is refused.  A login storm so slows logins, not the gate.
 */
#define NGX_HTTP_ECODOC_THREAD_NICE  19


typedef struct {
    ngx_str_t                  password;
    ngx_str_t                  stored;
    ngx_str_t                  new_password;
    unsigned                   ln, r, p;
    int                        verified;
    int                        hashed;
    uint64_t                   usec;        /* the thread's, with metrics */
    char                       new_hash[ECODOC_PASSWD_LEN];
} ngx_http_ecodoc_job_t;


static void ngx_http_ecodoc_password_yield(void);
static void ngx_http_ecodoc_password_thread(void *data, ngx_log_t *log);
static void ngx_http_ecodoc_password_done(ngx_event_t *ev);


/*
 * Checks ctx->f_password against ctx->stored and, when right and a new
 * password was given, hashes it; "done" runs when the thread is through.
 */

ngx_int_t
ngx_http_ecodoc_password_check(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_event_handler_pt done)
{
    ngx_thread_task_t            *task;
    ngx_http_ecodoc_job_t        *job;
    ngx_http_ecodoc_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_ecodoc_job_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    job = task->ctx;
    job->password = ctx->f_password;
    job->stored = ctx->stored;
    job->new_password = ctx->f_new;
    job->ln = emcf->scrypt_ln;
    job->r = emcf->scrypt_r;
    job->p = emcf->scrypt_p;

    task->handler = ngx_http_ecodoc_password_thread;
    task->event.handler = ngx_http_ecodoc_password_done;
    task->event.data = r;

    if (ngx_thread_task_post(emcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_HASHES, 1);

    /* the request may not go away while a thread reads its memory */

    r->main->blocked++;
    r->aio = 1;
    ctx->hashing = 1;
    r->write_event_handler = done;

    return NGX_OK;
}


/* per thread on Linux; the same every time, so cheap to repeat */

static void
ngx_http_ecodoc_password_yield(void)
{
#if (NGX_LINUX)
    struct sched_param  sp;

    ngx_memzero(&sp, sizeof(struct sched_param));

    if (sched_setscheduler(0, SCHED_IDLE, &sp) == -1) {
        (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid),
                           NGX_HTTP_ECODOC_THREAD_NICE);
    }
#endif
}


static void
ngx_http_ecodoc_password_thread(void *data, ngx_log_t *log)
{
    ngx_http_ecodoc_job_t  *job = data;

    uint64_t  start;

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_HASHES_STARTED, 1);
    start = ngx_http_ecodoc_metrics ? ngx_http_ecodoc_metrics_usec() : 0;

    ngx_http_ecodoc_password_yield();

    job->verified = ecodoc_passwd_verify((char *) job->password.data,
                                         job->password.len,
                                         (char *) job->stored.data,
                                         job->stored.len);

    if (job->verified == 1 && job->new_password.len) {
        job->hashed = ecodoc_passwd_hash((char *) job->new_password.data,
                                         job->new_password.len, job->ln,
                                         job->r, job->p, job->new_hash) == 0;
        if (!job->hashed) {
            job->verified = -1;
        }
    }

    if (ngx_http_ecodoc_metrics) {
        job->usec = ngx_http_ecodoc_metrics_usec() - start;
    }

    /*
     * nginx does not join its threads at a worker's exit: an exit task
     * lets the worker go on before the thread has finished, and the
     * worker's exit(), through OpenSSL's atexit handler, would free this
     * thread's OpenSSL state while the thread's own destructors free it
     * too (a double free or a leak at exit under make test-asan). So the
     * thread gives its state back after each check: the next one sets it
     * up again, a few microseconds beside scrypt's milliseconds.
     */

    OPENSSL_thread_stop();

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "ecodoc: password check in thread: %d", job->verified);
}


static void
ngx_http_ecodoc_password_done(ngx_event_t *ev)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_thread_task_t      *task;
    ngx_http_ecodoc_job_t  *job;
    ngx_http_ecodoc_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;
    task = (ngx_thread_task_t *) ((u_char *) ev
                                  - offsetof(ngx_thread_task_t, event));
    job = task->ctx;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ecodoc_module);

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    ctx->hashing = 0;
    ctx->verified = job->verified;

    ngx_http_ecodoc_count(NGX_HTTP_ECODOC_M_HASHES_DONE, 1);
    ngx_http_ecodoc_metrics_time(NGX_HTTP_ECODOC_M_HASH_TIME, job->usec);

    if (job->verified == -1) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "ecodoc: password of \"%V\" not checked: a malformed "
                      "stored hash, parameters over the memory limit, or "
                      "scrypt failed", &ctx->f_user);
    }

    if (job->hashed) {
        ngx_memcpy(ctx->new_hash, job->new_hash, ECODOC_PASSWD_LEN);
    }

    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


/*
 * 0 when the new password may be used; otherwise the broken rule: 1 the two
 * differ, 2 too short, 3 same as the current one, 4 the user ID, 5 a rule
 * of ecodoc_password_require (its message in *error).
 */

ngx_int_t
ngx_http_ecodoc_password_policy(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *error)
{
    u_char                      *p;
    size_t                       chars;
    ngx_uint_t                   i;
    ngx_http_ecodoc_rule_t      *rule;
    ngx_http_ecodoc_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_ecodoc_module);

    if (ctx->f_new.len != ctx->f_new2.len
        || ngx_strncmp(ctx->f_new.data, ctx->f_new2.data, ctx->f_new.len)
           != 0)
    {
        return 1;
    }

    p = ctx->f_new.data;
    chars = ngx_utf8_length(p, ctx->f_new.len);

    if (chars < elcf->password_min_length) {
        return 2;
    }

    if (ctx->f_new.len == ctx->f_password.len
        && ngx_strncmp(ctx->f_new.data, ctx->f_password.data,
                       ctx->f_new.len) == 0)
    {
        return 3;
    }

    if (ctx->f_new.len == ctx->f_user.len
        && ngx_strncasecmp(ctx->f_new.data, ctx->f_user.data, ctx->f_new.len)
           == 0)
    {
        return 4;
    }

    if (elcf->password_rules == NULL) {
        return 0;
    }

    rule = elcf->password_rules->elts;

    for (i = 0; i < elcf->password_rules->nelts; i++) {
        if (ngx_regex_exec(rule[i].regex, &ctx->f_new, NULL, 0)
            == NGX_REGEX_NO_MATCHED)
        {
            *error = rule[i].message[ngx_http_ecodoc_ctx_lang(r, ctx)];
            return 5;
        }
    }

    return 0;
}


char *
ngx_http_ecodoc_password_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_loc_conf_t *elcf = conf;

    ngx_str_t               *value;
    ngx_regex_compile_t      rc;
    ngx_http_ecodoc_rule_t  *rule;
    u_char                   errstr[NGX_MAX_CONF_ERRSTR];

    value = cf->args->elts;

    if (elcf->password_rules == NGX_CONF_UNSET_PTR) {
        elcf->password_rules = ngx_array_create(cf->pool, 4,
                                               sizeof(ngx_http_ecodoc_rule_t));
        if (elcf->password_rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(elcf->password_rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    /* one message for both languages, or the Japanese and the English */

    rule->regex = rc.regex;
    rule->message[0] = value[2];
    rule->message[1] = value[cf->args->nelts - 1];

    return NGX_CONF_OK;
}
