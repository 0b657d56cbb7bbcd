/*
 * What operators see: the counters in shared memory (a slot per worker,
 * atomic adds), the ecodoc_metrics page that sums them and ecodoc_health.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


/*
 * Worker N adds to slot N % SLOTS, so workers never write the same cache
 * line; adds are atomic all the same, since during a reload an old worker
 * and its successor share a slot.  The zone's size does not depend on the
 * configuration: a reload always finds it again, and the counts go on.
 */
#define NGX_HTTP_ECODOC_METRICS_SLOTS   64
#define NGX_HTTP_ECODOC_METRICS_STRIDE                                        \
    ngx_align(NGX_HTTP_ECODOC_M_N * sizeof(ngx_atomic_t), 128)
#define NGX_HTTP_ECODOC_METRICS_SIZE                                          \
    (NGX_HTTP_ECODOC_METRICS_SLOTS * NGX_HTTP_ECODOC_METRICS_STRIDE          \
     + 16 * ngx_pagesize)

/* Redis "answered recently": within this, ecodoc_health asks nothing */
#define NGX_HTTP_ECODOC_HEALTH_RECENT   1000


typedef enum {
    NGX_HTTP_ECODOC_COUNTER = 0,
    NGX_HTTP_ECODOC_GAUGE_DIFF,          /* first minus second */
    NGX_HTTP_ECODOC_HISTOGRAM            /* buckets, then the sum in us */
} ngx_http_ecodoc_metric_type_e;


/* a metric family: up to two labels, series = n1 x n2 counters */

typedef struct {
    ngx_str_t                        name;
    const char                      *help;
    ngx_http_ecodoc_metric_type_e    type;
    ngx_uint_t                       first;
    ngx_uint_t                       second;    /* GAUGE_DIFF */
    const char                      *label1;
    ngx_str_t                       *values1;
    ngx_uint_t                       n1;        /* or the buckets */
    const char                      *label2;
    ngx_str_t                       *values2;
    ngx_uint_t                       n2;
    const uint64_t                  *bounds;    /* HISTOGRAM, in us */
} ngx_http_ecodoc_family_t;


static ngx_int_t ngx_http_ecodoc_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_ecodoc_metrics_family(u_char *p, u_char *last,
    ngx_http_ecodoc_family_t *f, ngx_atomic_uint_t *sum);
static ngx_int_t ngx_http_ecodoc_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_ecodoc_endpoint(ngx_conf_t *cf,
    ngx_http_ecodoc_loc_conf_t *elcf, ngx_http_handler_pt handler);
static ngx_int_t ngx_http_ecodoc_health_handler(ngx_http_request_t *r);
static void ngx_http_ecodoc_health_done(ngx_http_request_t *r,
    redisReply *reply);
static ngx_int_t ngx_http_ecodoc_health_page(ngx_http_request_t *r,
    ngx_uint_t up);
static ngx_int_t ngx_http_ecodoc_plain(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_str_t *body);


/* this worker's slot, or NULL when no location has ecodoc_metrics */

ngx_atomic_t  *ngx_http_ecodoc_metrics;


static ngx_str_t  ngx_http_ecodoc_pages_names[] = {
    ngx_string("signup"),
    ngx_string("login"),
    ngx_string("password"),
    ngx_string("logout")
};


/* by ngx_http_ecodoc_result_e */

static ngx_str_t  ngx_http_ecodoc_result_names[] = {
    ngx_string("done"),
    ngx_string("wrong_password"),
    ngx_string("refused"),
    ngx_string("locked"),
    ngx_string("invalid_form"),
    ngx_string("error")
};


/* by kind: ngx_http_ecodoc_script_e, then NGX_HTTP_ECODOC_CMD_* */

static ngx_str_t  ngx_http_ecodoc_command_names[] = {
    ngx_string("gate"),
    ngx_string("reserve"),
    ngx_string("finish"),
    ngx_string("logout"),
    ngx_string("session"),
    ngx_string("ping"),
    ngx_string("setup")
};


/* by NGX_HTTP_ECODOC_ERR_* */

static ngx_str_t  ngx_http_ecodoc_error_names[] = {
    ngx_string("unavailable"),
    ngx_string("lost"),
    ngx_string("reply")
};


/* the upper bounds of the buckets but +Inf, in us, and as "le" says them */

static const uint64_t  ngx_http_ecodoc_redis_bounds[] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000
};

static const uint64_t  ngx_http_ecodoc_hash_bounds[] = {
    10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    5000000, 10000000, 30000000
};


static ngx_http_ecodoc_family_t  ngx_http_ecodoc_families[] = {

    { ngx_string("ecodoc_gate_requests_total"),
      "Requests judged by the gate, by its verdict ($ecodoc_status).",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_GATE, 0,
      "verdict", ngx_http_ecodoc_status_names, NGX_HTTP_ECODOC_GATE_N,
      NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_gate_cache_hits_total"),
      "Requests the gate let through on an ecodoc_cache entry, "
      "without asking Redis.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_CACHE_HITS, 0,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_page_submissions_total"),
      "Forms posted to the pages, by page and result.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_PAGES, 0,
      "page", ngx_http_ecodoc_pages_names, NGX_HTTP_ECODOC_FORMS_N,
      "result", ngx_http_ecodoc_result_names, NGX_HTTP_ECODOC_R_N, NULL },

    { ngx_string("ecodoc_lockouts_total"),
      "Users locked by their last allowed wrong password.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_LOCKOUTS, 0,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_sessions_created_total"),
      "Sessions created by logins and password changes.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_SESSIONS, 0,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_redis_commands_total"),
      "Commands sent to Redis, by kind: a script, the session's GETEX, "
      "the health check's PING, a new connection's setup.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_COMMANDS, 0,
      "command", ngx_http_ecodoc_command_names, NGX_HTTP_ECODOC_CMD_N,
      NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_redis_errors_total"),
      "Commands that got no answer: not sent for want of a connection, "
      "the connection lost before the answer, or an error reply.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_ERRORS, 0,
      "reason", ngx_http_ecodoc_error_names, NGX_HTTP_ECODOC_ERR_N,
      NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_redis_timeouts_total"),
      "Commands not answered within ecodoc_redis_timeout.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_TIMEOUTS, 0,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_redis_reconnects_total"),
      "Connections to Redis made again after a worker's earlier one "
      "was lost.",
      NGX_HTTP_ECODOC_COUNTER, NGX_HTTP_ECODOC_M_RECONNECTS, 0,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_redis_latency_seconds"),
      "Time from sending a command to Redis to its answer.",
      NGX_HTTP_ECODOC_HISTOGRAM, NGX_HTTP_ECODOC_M_LATENCY, 0,
      NULL, NULL, NGX_HTTP_ECODOC_LATENCY_BUCKETS, NULL, NULL, 1,
      ngx_http_ecodoc_redis_bounds },

    { ngx_string("ecodoc_password_hashes_in_flight"),
      "Password checks posted to the thread pool and not yet through.",
      NGX_HTTP_ECODOC_GAUGE_DIFF, NGX_HTTP_ECODOC_M_HASHES,
      NGX_HTTP_ECODOC_M_HASHES_DONE,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_password_hashes_waiting"),
      "Password checks posted to the thread pool that no thread has "
      "started yet.",
      NGX_HTTP_ECODOC_GAUGE_DIFF, NGX_HTTP_ECODOC_M_HASHES,
      NGX_HTTP_ECODOC_M_HASHES_STARTED,
      NULL, NULL, 1, NULL, NULL, 1, NULL },

    { ngx_string("ecodoc_password_hash_duration_seconds"),
      "Time a thread took to check a password (and hash a new one).",
      NGX_HTTP_ECODOC_HISTOGRAM, NGX_HTTP_ECODOC_M_HASH_TIME, 0,
      NULL, NULL, NGX_HTTP_ECODOC_HASH_BUCKETS, NULL, NULL, 1,
      ngx_http_ecodoc_hash_bounds }
};


/* microseconds of a monotonic clock; threads may call it */

uint64_t
ngx_http_ecodoc_metrics_usec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/* counts usec into histogram h (NGX_HTTP_ECODOC_M_LATENCY or _HASH_TIME) */

void
ngx_http_ecodoc_metrics_time(ngx_uint_t h, uint64_t usec)
{
    ngx_uint_t       i, n;
    const uint64_t  *bounds;

    if (ngx_http_ecodoc_metrics == NULL) {
        return;
    }

    if (h == NGX_HTTP_ECODOC_M_LATENCY) {
        bounds = ngx_http_ecodoc_redis_bounds;
        n = NGX_HTTP_ECODOC_LATENCY_BUCKETS;

    } else {
        bounds = ngx_http_ecodoc_hash_bounds;
        n = NGX_HTTP_ECODOC_HASH_BUCKETS;
    }

    for (i = 0; i < n - 1 && usec > bounds[i]; i++) { /* void */ }

    (void) ngx_atomic_fetch_add(&ngx_http_ecodoc_metrics[h + i], 1);
    (void) ngx_atomic_fetch_add(&ngx_http_ecodoc_metrics[h + n],
                                (ngx_atomic_int_t) usec);
}


/* this worker's slot of the cycle's zone, when there is one */

void
ngx_http_ecodoc_metrics_init(ngx_cycle_t *cycle)
{
    ngx_http_ecodoc_main_conf_t  *emcf;

    ngx_http_ecodoc_metrics = NULL;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return;
    }

    emcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_ecodoc_module);

    if (emcf->metrics == NULL) {
        return;
    }

    ngx_http_ecodoc_metrics = (ngx_atomic_t *)
        ((u_char *) emcf->metrics->data
         + (ngx_worker % NGX_HTTP_ECODOC_METRICS_SLOTS)
           * NGX_HTTP_ECODOC_METRICS_STRIDE);
}


/* the page of ecodoc_metrics: every slot summed, in Prometheus' text */

static ngx_int_t
ngx_http_ecodoc_metrics_handler(ngx_http_request_t *r)
{
    u_char                       *buf, *p, *slot;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_str_t                     body;
    ngx_uint_t                    i, j;
    ngx_atomic_uint_t            *sum;
    ngx_http_ecodoc_family_t     *f;
    ngx_http_ecodoc_main_conf_t  *emcf;

    static ngx_str_t  type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    sum = ngx_pcalloc(r->pool, NGX_HTTP_ECODOC_M_N * sizeof(ngx_atomic_uint_t));
    if (sum == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < NGX_HTTP_ECODOC_METRICS_SLOTS; i++) {
        slot = (u_char *) emcf->metrics->data
               + i * NGX_HTTP_ECODOC_METRICS_STRIDE;

        for (j = 0; j < NGX_HTTP_ECODOC_M_N; j++) {
            sum[j] += ((ngx_atomic_t *) slot)[j];
        }
    }

    /* a line is never longer than 160 bytes but for the help */

    len = 0;

    for (f = ngx_http_ecodoc_families;
         f < ngx_http_ecodoc_families + sizeof(ngx_http_ecodoc_families)
                                        / sizeof(ngx_http_ecodoc_family_t);
         f++)
    {
        len += 2 * 160 + ngx_strlen(f->help) + (f->n1 * f->n2 + 2) * 160;
    }

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;

    for (f = ngx_http_ecodoc_families;
         f < ngx_http_ecodoc_families + sizeof(ngx_http_ecodoc_families)
                                        / sizeof(ngx_http_ecodoc_family_t);
         f++)
    {
        p = ngx_http_ecodoc_metrics_family(p, buf + len, f, sum);
    }

    body.data = buf;
    body.len = p - buf;

    return ngx_http_ecodoc_plain(r, NGX_HTTP_OK, &type, &body);
}


static u_char *
ngx_http_ecodoc_metrics_family(u_char *p, u_char *last,
    ngx_http_ecodoc_family_t *f, ngx_atomic_uint_t *sum)
{
    ngx_uint_t          i, j;
    ngx_atomic_uint_t   v, count;

    static const char  *types[] = { "counter", "gauge", "histogram" };

    p = ngx_slprintf(p, last, "# HELP %V %s\n# TYPE %V %s\n",
                     &f->name, f->help, &f->name, types[f->type]);

    switch (f->type) {

    case NGX_HTTP_ECODOC_GAUGE_DIFF:
        v = sum[f->first] - sum[f->second];
        return ngx_slprintf(p, last, "%V %uA\n", &f->name,
                            (ngx_atomic_int_t) v > 0 ? v : 0);

    case NGX_HTTP_ECODOC_HISTOGRAM:
        count = 0;

        for (i = 0; i < f->n1; i++) {
            count += sum[f->first + i];

            if (i < f->n1 - 1) {
                p = ngx_slprintf(p, last, "%V_bucket{le=\"%uL.%06uL\"} %uA\n",
                                 &f->name, f->bounds[i] / 1000000,
                                 f->bounds[i] % 1000000, count);
            } else {
                p = ngx_slprintf(p, last, "%V_bucket{le=\"+Inf\"} %uA\n",
                                 &f->name, count);
            }
        }

        v = sum[f->first + f->n1];

        return ngx_slprintf(p, last, "%V_sum %uA.%06uA\n%V_count %uA\n",
                            &f->name, v / 1000000, v % 1000000,
                            &f->name, count);

    default: /* NGX_HTTP_ECODOC_COUNTER */
        break;
    }

    for (i = 0; i < f->n1; i++) {
        for (j = 0; j < f->n2; j++) {
            v = sum[f->first + i * f->n2 + j];

            if (f->label1 == NULL) {
                p = ngx_slprintf(p, last, "%V %uA\n", &f->name, v);

            } else if (f->label2 == NULL) {
                p = ngx_slprintf(p, last, "%V{%s=\"%V\"} %uA\n", &f->name,
                                 f->label1, &f->values1[i], v);

            } else {
                p = ngx_slprintf(p, last, "%V{%s=\"%V\",%s=\"%V\"} %uA\n",
                                 &f->name, f->label1, &f->values1[i],
                                 f->label2, &f->values2[j], v);
            }
        }
    }

    return p;
}


static ngx_int_t
ngx_http_ecodoc_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        shm_zone->data = data;       /* a reload: the same counters go on */
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shm_zone->data = ngx_slab_calloc(shpool, NGX_HTTP_ECODOC_METRICS_SLOTS
                                             * NGX_HTTP_ECODOC_METRICS_STRIDE);
    if (shm_zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm_zone->data;

    return NGX_OK;
}


/* ecodoc_metrics;  the zone is made with the first of them */

char *
ngx_http_ecodoc_metrics_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                         *rv;
    ngx_str_t                     name;
    ngx_http_ecodoc_main_conf_t  *emcf;

    rv = ngx_http_ecodoc_endpoint(cf, conf, ngx_http_ecodoc_metrics_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ecodoc_module);

    if (emcf->metrics) {
        return NGX_CONF_OK;
    }

    ngx_str_set(&name, "ecodoc_metrics");

    emcf->metrics = ngx_shared_memory_add(cf, &name,
                                          NGX_HTTP_ECODOC_METRICS_SIZE,
                                          &ngx_http_ecodoc_module);
    if (emcf->metrics == NULL) {
        return NGX_CONF_ERROR;
    }

    if (emcf->metrics->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    emcf->metrics->init = ngx_http_ecodoc_metrics_init_zone;
    emcf->metrics->data = emcf;      /* taken; the counters once made */

    return NGX_CONF_OK;
}


/* ecodoc_health; */

char *
ngx_http_ecodoc_health_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_ecodoc_endpoint(cf, conf, ngx_http_ecodoc_health_handler);
}


/* the location's content handler; the module's own pages are never gated */

static char *
ngx_http_ecodoc_endpoint(ngx_conf_t *cf, ngx_http_ecodoc_loc_conf_t *elcf,
    ngx_http_handler_pt handler)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    if (elcf->gate == 1) {
        return "cannot be used where \"ecodoc\" is on";
    }

    clcf->handler = handler;
    elcf->gate = 0;

    return NGX_CONF_OK;
}


/*
 * 200 when this worker's Redis connection answered within the last second;
 * otherwise a PING (connecting first if need be) decides, within
 * ecodoc_redis_timeout.
 */

static ngx_int_t
ngx_http_ecodoc_health_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_ecodoc_redis_answered(NGX_HTTP_ECODOC_HEALTH_RECENT)) {
        return ngx_http_ecodoc_health_page(r, 1);
    }

    if (ngx_http_ecodoc_get_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_ecodoc_redis_ping(r, ngx_http_ecodoc_health_done)
        != NGX_OK)
    {
        return ngx_http_ecodoc_health_page(r, 0);
    }

    r->main->count++;

    return NGX_DONE;
}


/* the PING's answer, or NULL on an error, a lost connection, a timeout */

static void
ngx_http_ecodoc_health_done(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_finalize_request(r,
                              ngx_http_ecodoc_health_page(r, reply != NULL));
}


static ngx_int_t
ngx_http_ecodoc_health_page(ngx_http_request_t *r, ngx_uint_t up)
{
    static ngx_str_t  type = ngx_string("text/plain");
    static ngx_str_t  ok = ngx_string("ok\n");
    static ngx_str_t  down = ngx_string("Redis unavailable\n");

    return ngx_http_ecodoc_plain(r, up ? NGX_HTTP_OK
                                      : NGX_HTTP_SERVICE_UNAVAILABLE,
                                &type, up ? &ok : &down);
}


static ngx_int_t
ngx_http_ecodoc_plain(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_http_complex_value_t  cv;

    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));

    cv.value = *body;

    return ngx_http_send_response(r, status, type, &cv);
}
