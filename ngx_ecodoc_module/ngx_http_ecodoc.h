/*
 * Types and functions shared by the files of ngx_http_ecodoc_module: the
 * configuration, the per-request context and each file's entry points.
 */

#ifndef _NGX_HTTP_ECODOC_H_INCLUDED_
#define _NGX_HTTP_ECODOC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>

#include "ecodoc_passwd.h"
#include "ecodoc_web.h"


#define NGX_HTTP_ECODOC_DIGEST_LEN    32     /* SHA-256 */
#define NGX_HTTP_ECODOC_FP_LEN        64     /* hex SHA-256 */
#define NGX_HTTP_ECODOC_TOKEN_LEN     43     /* base64url of 32 bytes */
#define NGX_HTTP_ECODOC_SID_LEN       64     /* hex SHA-256 of the token */
#define NGX_HTTP_ECODOC_RESID_LEN     32
#define NGX_HTTP_ECODOC_USER_MAX      64
#define NGX_HTTP_ECODOC_FORM_MAX      4096

#define NGX_HTTP_ECODOC_COOKIE        "__Host-ecodoc"


/* the module's Redis scripts (lua/NAME.lua) */

typedef enum {
    NGX_HTTP_ECODOC_SCRIPT_GATE = 0,
    NGX_HTTP_ECODOC_SCRIPT_RESERVE,
    NGX_HTTP_ECODOC_SCRIPT_FINISH,
    NGX_HTTP_ECODOC_SCRIPT_LOGOUT,
    NGX_HTTP_ECODOC_SCRIPT_N
} ngx_http_ecodoc_script_e;


/*
 * What the gate or a script decided: the scripts (lua/) answer with these
 * names, turned into the enum where the reply is read.
 */

typedef enum {
    NGX_HTTP_ECODOC_ST_ERROR = 0,         /* no usable answer: fail closed */
    NGX_HTTP_ECODOC_ST_OK,
    NGX_HTTP_ECODOC_ST_INITIAL,           /* only the password change */
    NGX_HTTP_ECODOC_ST_NOCERT,
    NGX_HTTP_ECODOC_ST_NOSESSION,
    NGX_HTTP_ECODOC_ST_REVOKED,
    NGX_HTTP_ECODOC_ST_UNBOUND,           /* not bound to this user ID */
    NGX_HTTP_ECODOC_ST_NOUSER,            /* no such user (deleted) */
    NGX_HTTP_ECODOC_ST_LOCKED,
    NGX_HTTP_ECODOC_ST_CERT_BOUND,        /* sign-up: bound already */
    NGX_HTTP_ECODOC_ST_USER_BOUND,        /* sign-up: another certificate */
    NGX_HTTP_ECODOC_ST_SUBJECT,           /* sign-up: not this user's */
    NGX_HTTP_ECODOC_ST_WRONG_CERT,        /* login: bound to another */
    NGX_HTTP_ECODOC_ST_BUSY,              /* every check slot is taken */
    NGX_HTTP_ECODOC_ST_FAILED,            /* a wrong password counted */
    NGX_HTTP_ECODOC_ST_CHANGED,           /* reset while it was checked */
    NGX_HTTP_ECODOC_ST_N
} ngx_http_ecodoc_status_e;

/* the gate's verdicts are the first of them, to LOCKED */
#define NGX_HTTP_ECODOC_GATE_N        (NGX_HTTP_ECODOC_ST_LOCKED + 1)


/* the pages of ecodoc_pages, by the last segment of the URI */

typedef enum {
    NGX_HTTP_ECODOC_PAGE_NONE = 0,
    NGX_HTTP_ECODOC_PAGE_SIGNUP,
    NGX_HTTP_ECODOC_PAGE_LOGIN,
    NGX_HTTP_ECODOC_PAGE_PASSWORD,
    NGX_HTTP_ECODOC_PAGE_LOGOUT,
    NGX_HTTP_ECODOC_PAGE_FORGOT,
    NGX_HTTP_ECODOC_PAGE_CERT             /* error_page 495 496 */
} ngx_http_ecodoc_page_e;


/* why a certificate or its user is refused, each a page of its own */

typedef enum {
    NGX_HTTP_ECODOC_PROBLEM_NO_CERT = 0,  /* none sent */
    NGX_HTTP_ECODOC_PROBLEM_EXPIRED,
    NGX_HTTP_ECODOC_PROBLEM_OTHER_CA,     /* not issued by the service's CA */
    NGX_HTTP_ECODOC_PROBLEM_REVOKED,      /* in Redis, or by ssl_crl */
    NGX_HTTP_ECODOC_PROBLEM_INVALID,      /* any other verification error */
    NGX_HTTP_ECODOC_PROBLEM_LOCKED
} ngx_http_ecodoc_problem_e;


/* the texts of ngx_http_ecodoc_texts.c; the gate's own refusals first */

typedef enum {
    NGX_HTTP_ECODOC_MSG_NO_CERT = 0,
    NGX_HTTP_ECODOC_MSG_REVOKED,
    NGX_HTTP_ECODOC_MSG_LOCKED,
    NGX_HTTP_ECODOC_MSG_UNAVAILABLE,
    NGX_HTTP_ECODOC_MSG_NOT_SIGNED_UP,
    NGX_HTTP_ECODOC_MSG_LOGIN_REQUIRED,
    NGX_HTTP_ECODOC_MSG_CHANGE_REQUIRED,
    NGX_HTTP_ECODOC_MSG_SIGNUP_INTRO,
    NGX_HTTP_ECODOC_MSG_SIGNUP_DONE,
    NGX_HTTP_ECODOC_MSG_LOGIN_INTRO,
    NGX_HTTP_ECODOC_MSG_BAD_PASSWORD,
    NGX_HTTP_ECODOC_MSG_CERT_BOUND,
    NGX_HTTP_ECODOC_MSG_USER_BOUND,
    NGX_HTTP_ECODOC_MSG_SUBJECT,
    NGX_HTTP_ECODOC_MSG_WRONG_CERT,
    NGX_HTTP_ECODOC_MSG_MALFORMED,
    NGX_HTTP_ECODOC_MSG_BAD_USER,
    NGX_HTTP_ECODOC_MSG_TOO_LARGE,
    NGX_HTTP_ECODOC_MSG_FORGED,
    NGX_HTTP_ECODOC_MSG_BUSY,
    NGX_HTTP_ECODOC_MSG_PW_INTRO,
    NGX_HTTP_ECODOC_MSG_PW_INITIAL_INTRO,
    NGX_HTTP_ECODOC_MSG_PW_MISMATCH,
    NGX_HTTP_ECODOC_MSG_PW_SHORT,
    NGX_HTTP_ECODOC_MSG_PW_SAME,
    NGX_HTTP_ECODOC_MSG_PW_USER,
    NGX_HTTP_ECODOC_MSG_PW_RULE,
    NGX_HTTP_ECODOC_MSG_PW_WRONG,
    NGX_HTTP_ECODOC_MSG_PW_DONE,
    NGX_HTTP_ECODOC_MSG_LOGOUT_CONFIRM,
    NGX_HTTP_ECODOC_MSG_LOGOUT_DONE,
    NGX_HTTP_ECODOC_MSG_FORGOT,
    NGX_HTTP_ECODOC_MSG_NOT_FOUND,
    NGX_HTTP_ECODOC_MSG_METHOD,
    NGX_HTTP_ECODOC_MSG_CONTENT_TYPE,
    NGX_HTTP_ECODOC_MSG_NO_CERT_DO,
    NGX_HTTP_ECODOC_MSG_CERT_EXPIRED,
    NGX_HTTP_ECODOC_MSG_CERT_EXPIRED_DO,
    NGX_HTTP_ECODOC_MSG_CERT_OTHER_CA,
    NGX_HTTP_ECODOC_MSG_CERT_OTHER_CA_DO,
    NGX_HTTP_ECODOC_MSG_REVOKED_DO,
    NGX_HTTP_ECODOC_MSG_CERT_INVALID,
    NGX_HTTP_ECODOC_MSG_CERT_INVALID_DO,
    NGX_HTTP_ECODOC_MSG_LOCKED_DO,
    NGX_HTTP_ECODOC_MSG_TRIES_LEFT,
    NGX_HTTP_ECODOC_MSG_EXPIRY,
    NGX_HTTP_ECODOC_MSG_EXPIRY_TODAY,
    NGX_HTTP_ECODOC_MSG_EXPIRY_RENEW,
    NGX_HTTP_ECODOC_MSG_EXPIRY_ASK,
    NGX_HTTP_ECODOC_MSG_PW_RULES,
    NGX_HTTP_ECODOC_MSG_PW_RULE_LENGTH,
    NGX_HTTP_ECODOC_MSG_PW_RULE_OTHER,

    /* titles, labels, buttons and links */
    NGX_HTTP_ECODOC_T_SERVICE,
    NGX_HTTP_ECODOC_T_SIGNUP,
    NGX_HTTP_ECODOC_T_LOGIN,
    NGX_HTTP_ECODOC_T_PASSWORD,
    NGX_HTTP_ECODOC_T_PASSWORD_INITIAL,
    NGX_HTTP_ECODOC_T_LOGOUT,
    NGX_HTTP_ECODOC_T_FORGOT,
    NGX_HTTP_ECODOC_T_ERROR,
    NGX_HTTP_ECODOC_T_CERT_REQUIRED,
    NGX_HTTP_ECODOC_T_CERT_EXPIRED,
    NGX_HTTP_ECODOC_T_CERT_OTHER_CA,
    NGX_HTTP_ECODOC_T_CERT_REVOKED,
    NGX_HTTP_ECODOC_T_CERT_INVALID,
    NGX_HTTP_ECODOC_T_LOCKED,
    NGX_HTTP_ECODOC_L_USER,
    NGX_HTTP_ECODOC_L_PASSWORD,
    NGX_HTTP_ECODOC_L_INITIAL_PASSWORD,
    NGX_HTTP_ECODOC_L_CURRENT,
    NGX_HTTP_ECODOC_L_NEW,
    NGX_HTTP_ECODOC_L_NEW2,
    NGX_HTTP_ECODOC_B_SIGNUP,
    NGX_HTTP_ECODOC_B_LOGIN,
    NGX_HTTP_ECODOC_B_CHANGE,
    NGX_HTTP_ECODOC_B_LOGOUT,
    NGX_HTTP_ECODOC_A_TO_LOGIN,
    NGX_HTTP_ECODOC_A_FORGOT,
    NGX_HTTP_ECODOC_A_TO_SERVICE,
    NGX_HTTP_ECODOC_A_CONTACT,
    NGX_HTTP_ECODOC_A_ENROLL,
    NGX_HTTP_ECODOC_A_RENEW,

    NGX_HTTP_ECODOC_TEXT_N
} ngx_http_ecodoc_text_e;


/* a field of a page's form, and each page by ngx_http_ecodoc_page_e */

typedef struct {
    const char                  *name;
    const char                  *type;
    ngx_uint_t                   label;
    const char                  *autocomplete;
    size_t                       offset;      /* in ngx_http_ecodoc_ctx_t */
} ngx_http_ecodoc_field_t;


typedef struct {
    ngx_str_t                    name;        /* in the URI */
    ngx_http_ecodoc_field_t     *fields;
    ngx_uint_t                   title;
    ngx_uint_t                   intro;
    ngx_uint_t                   button;
} ngx_http_ecodoc_page_t;


typedef struct {
    ngx_regex_t                 *regex;
    ngx_str_t                    message[2];  /* Japanese, English */
} ngx_http_ecodoc_rule_t;


/* a Redis or a sentinel: its address, and the name its certificate has */

typedef struct {
    struct sockaddr             *sockaddr;
    socklen_t                    socklen;
    ngx_str_t                    name;           /* for the logs */
    ngx_str_t                    tls_name;       /* NUL-terminated */
} ngx_http_ecodoc_node_t;


typedef struct {
    ngx_http_ecodoc_node_t      *redis;          /* NULL with sentinels */
    ngx_str_t                    redis_password;
    ngx_uint_t                   redis_db;
    ngx_msec_t                   redis_timeout;
    ngx_str_t                    prefix;

    /* ecodoc_redis_tls*: one TLS context for Redis and the sentinels */
    ngx_flag_t                   tls;
    ngx_str_t                    tls_trusted;
    ngx_str_t                    tls_certificate;
    ngx_str_t                    tls_key;
    ngx_str_t                    tls_name;
    ngx_uint_t                   tls_protocols;
    ngx_ssl_t                   *ssl;            /* NULL without TLS */

    /* ecodoc_redis_sentinel: the master's name and the sentinels */
    ngx_str_t                    sentinel_name;
    ngx_array_t                 *sentinels;      /* ngx_http_ecodoc_node_t */
    ngx_str_t                    sentinel_password;

    /* ecodoc_redis_wait: replicas that must have a security write */
    ngx_uint_t                   wait_replicas;  /* 0: off */
    ngx_msec_t                   wait_timeout;

    ngx_uint_t                   max_failures;
    time_t                       session_timeout;
    time_t                       session_lifetime;

    /* the three as script arguments, formatted once */
    ngx_str_t                    max_failures_arg;
    ngx_str_t                    session_timeout_arg;
    ngx_str_t                    session_lifetime_arg;

    ngx_uint_t                   scrypt_ln;
    ngx_uint_t                   scrypt_r;
    ngx_uint_t                   scrypt_p;
    ngx_str_t                    thread_pool_name;
    ngx_thread_pool_t           *thread_pool;

    ngx_shm_zone_t              *cache;          /* ecodoc_cache, or NULL */
    ngx_msec_t                   cache_valid;

    ngx_shm_zone_t              *metrics;        /* ecodoc_metrics, or NULL */

    u_char                       secret[32];     /* form tokens */
    ngx_flag_t                   secret_set;     /* ecodoc_secret_file */
    ngx_flag_t                   pages_used;

    /* for the checks of nginx -t: where the gate is on, the pages' places */
    ngx_array_t                  gates;          /* ngx_http_ecodoc_gate_t */
    ngx_array_t                  pages_locs;     /* ngx_str_t */
    ngx_array_t                  warned;         /* void *, servers */
} ngx_http_ecodoc_main_conf_t;


/* where "ecodoc on" was written, and the pages its browsers are sent to */

typedef struct {
    ngx_str_t                    file;
    ngx_uint_t                   line;
    ngx_str_t                    pages_uri;
} ngx_http_ecodoc_gate_t;


typedef struct {
    ngx_flag_t                   gate;
    ngx_str_t                    gate_file;      /* where it was set */
    ngx_uint_t                   gate_line;
    ngx_flag_t                   pages;
    ngx_str_t                    pages_uri;
    ngx_flag_t                   subject_match;
    ngx_uint_t                   password_min_length;
    ngx_array_t                 *password_rules; /* ngx_http_ecodoc_rule_t */
    ngx_str_t                    forgot_url;
    ngx_str_t                    enroll_url;
    ngx_str_t                    renewal_url;
    ngx_int_t                    expiry_notice;  /* days, 0 off */
    ngx_str_t                    template;       /* layout, or empty */
} ngx_http_ecodoc_loc_conf_t;


/* kept with the TLS connection: its certificate and the last cookie seen */

typedef struct {
    u_char                       fp[NGX_HTTP_ECODOC_FP_LEN];
    u_char                       token[NGX_HTTP_ECODOC_TOKEN_LEN];
    u_char                       sid[NGX_HTTP_ECODOC_SID_LEN];
    /* the same two in binary, for the cache */
    u_char                       fp_bin[NGX_HTTP_ECODOC_DIGEST_LEN];
    u_char                       sid_bin[NGX_HTTP_ECODOC_DIGEST_LEN];
    ngx_uint_t                   has_token;
    time_t                       not_after;      /* 0 unknown */
} ngx_http_ecodoc_conn_t;


typedef struct ngx_http_ecodoc_ctx_s  ngx_http_ecodoc_ctx_t;


/*
 * A connection to a Redis or a sentinel (ngx_http_ecodoc_link.c): a reply
 * handler gets its command's reply (NULL: the link closed first) and
 * returns NGX_DONE to keep it (it frees it then), anything else to let the
 * link free it.
 */

typedef struct ngx_http_ecodoc_link_s  ngx_http_ecodoc_link_t;

typedef ngx_int_t (*ngx_http_ecodoc_link_pt)(ngx_http_ecodoc_link_t *link,
    redisReply *reply, void *data);

typedef struct {
    ngx_http_ecodoc_link_pt      handler;
    void                        *data;
} ngx_http_ecodoc_link_entry_t;

struct ngx_http_ecodoc_link_s {
    ngx_peer_connection_t        peer;           /* connection: NULL closed */
    ngx_http_ecodoc_node_t      *node;
    const char                  *what;           /* "Redis", "sentinel" */
    ngx_ssl_t                   *ssl;            /* NULL: no TLS */
    ngx_msec_t                   timeout;        /* to connect and verify */
    redisReader                 *reader;

    u_char                      *out;            /* commands not yet sent */
    size_t                       out_size;
    size_t                       out_pos;
    size_t                       out_last;
    size_t                       out_fence;      /* the end sent, fenced */

    ngx_http_ecodoc_link_entry_t *fifo;          /* a ring */
    ngx_uint_t                   fifo_size;
    ngx_uint_t                   fifo_head;
    ngx_uint_t                   fifo_n;

    ngx_http_ecodoc_link_pt      push;           /* pub/sub messages */
    void                       (*opened)(ngx_http_ecodoc_link_t *link);
    void                       (*closed)(ngx_http_ecodoc_link_t *link);
    void                        *data;
    unsigned                     up:1;           /* connected, verified */
    unsigned                     fenced:1;
};

typedef void (*ngx_http_ecodoc_redis_handler_pt)(ngx_http_request_t *r,
    redisReply *reply);


struct ngx_http_ecodoc_ctx_s {
    ngx_http_ecodoc_conn_t      *conn;
    ngx_str_t                    fp;
    ngx_str_t                    sid;            /* from the cookie, or "" */
    u_char                       sid_bin[NGX_HTTP_ECODOC_DIGEST_LEN];
    ngx_str_t                    user;           /* as the gate found it */
    ngx_http_ecodoc_status_e     status;         /* the gate's verdict */

    ngx_uint_t                   page;
    ngx_uint_t                   lang;           /* 0 ja, 1 en */
    unsigned                     lang_known:1;

    /* the form */
    ngx_str_t                    f_user;
    ngx_str_t                    f_password;
    ngx_str_t                    f_new;
    ngx_str_t                    f_new2;
    ngx_str_t                    f_next;
    ngx_str_t                    f_csrf;

    /* a password check in progress */
    ngx_str_t                    stored;
    u_char                       resid[NGX_HTTP_ECODOC_RESID_LEN];
    u_char                       token[NGX_HTTP_ECODOC_TOKEN_LEN];
    u_char                       new_sid[NGX_HTTP_ECODOC_SID_LEN];
    char                         new_hash[ECODOC_PASSWD_LEN];
    ngx_int_t                    verified;       /* 1, 0, or -1 error */
    ngx_uint_t                   tries;
    ngx_msec_t                   wait_start;
    ngx_uint_t                   failures;       /* after a wrong password */

    ngx_event_t                  redis_timer;
    void                        *redis_cmd;
    /* the verdict of a script whose write WAIT did not confirm */
    ngx_http_ecodoc_status_e     unconfirmed;
    ngx_event_t                  retry;
    ngx_queue_t                  slot_queue;     /* waiting for a slot */

    unsigned                     initial:1;      /* the initial password */
    unsigned                     queued:1;       /* in slot_queue */
    unsigned                     holds_slot:1;   /* a reservation */
    unsigned                     subject_differs:1;
    unsigned                     waiting:1;
    unsigned                     done:1;
    unsigned                     hashing:1;
    unsigned                     counted:1;      /* the form's outcome */
};


/*
 * The counters of ecodoc_metrics: one ngx_atomic_t of each in every
 * worker's slot (ngx_http_ecodoc_metrics.c).  A family's counters follow
 * one another: by its label's value, or a histogram's buckets (the last
 * +Inf) and then its sum in microseconds.
 */

/* what a posted form came to, by page (signup .. logout) */

typedef enum {
    NGX_HTTP_ECODOC_R_DONE = 0,
    NGX_HTTP_ECODOC_R_WRONG_PASSWORD,
    NGX_HTTP_ECODOC_R_REFUSED,
    NGX_HTTP_ECODOC_R_LOCKED,
    NGX_HTTP_ECODOC_R_INVALID_FORM,
    NGX_HTTP_ECODOC_R_ERROR,
    NGX_HTTP_ECODOC_R_N
} ngx_http_ecodoc_result_e;

#define NGX_HTTP_ECODOC_FORMS_N       4

/* Redis commands by kind: the scripts (ngx_http_ecodoc_script_e), then */
#define NGX_HTTP_ECODOC_CMD_SESSION   NGX_HTTP_ECODOC_SCRIPT_N
#define NGX_HTTP_ECODOC_CMD_PING      (NGX_HTTP_ECODOC_SCRIPT_N + 1)
#define NGX_HTTP_ECODOC_CMD_SETUP     (NGX_HTTP_ECODOC_SCRIPT_N + 2)
#define NGX_HTTP_ECODOC_CMD_N         (NGX_HTTP_ECODOC_SCRIPT_N + 3)

/* why a command got no answer */
#define NGX_HTTP_ECODOC_ERR_UNAVAILABLE  0    /* not sent: no connection */
#define NGX_HTTP_ECODOC_ERR_LOST         1    /* the connection went */
#define NGX_HTTP_ECODOC_ERR_REPLY        2    /* an error reply */
#define NGX_HTTP_ECODOC_ERR_N            3

#define NGX_HTTP_ECODOC_LATENCY_BUCKETS  13
#define NGX_HTTP_ECODOC_HASH_BUCKETS     12

typedef enum {
    NGX_HTTP_ECODOC_M_GATE = 0,
    NGX_HTTP_ECODOC_M_CACHE_HITS = NGX_HTTP_ECODOC_M_GATE
                                   + NGX_HTTP_ECODOC_GATE_N,
    NGX_HTTP_ECODOC_M_PAGES,
    NGX_HTTP_ECODOC_M_LOCKOUTS = NGX_HTTP_ECODOC_M_PAGES
                                 + NGX_HTTP_ECODOC_FORMS_N
                                   * NGX_HTTP_ECODOC_R_N,
    NGX_HTTP_ECODOC_M_SESSIONS,
    NGX_HTTP_ECODOC_M_COMMANDS,
    NGX_HTTP_ECODOC_M_ERRORS = NGX_HTTP_ECODOC_M_COMMANDS
                               + NGX_HTTP_ECODOC_CMD_N,
    NGX_HTTP_ECODOC_M_TIMEOUTS = NGX_HTTP_ECODOC_M_ERRORS
                                 + NGX_HTTP_ECODOC_ERR_N,
    NGX_HTTP_ECODOC_M_RECONNECTS,
    NGX_HTTP_ECODOC_M_LATENCY,
    NGX_HTTP_ECODOC_M_HASHES = NGX_HTTP_ECODOC_M_LATENCY
                               + NGX_HTTP_ECODOC_LATENCY_BUCKETS + 1,
    NGX_HTTP_ECODOC_M_HASHES_STARTED,
    NGX_HTTP_ECODOC_M_HASHES_DONE,
    NGX_HTTP_ECODOC_M_HASH_TIME,
    NGX_HTTP_ECODOC_M_N = NGX_HTTP_ECODOC_M_HASH_TIME
                          + NGX_HTTP_ECODOC_HASH_BUCKETS + 1
} ngx_http_ecodoc_metric_e;

/* adds to this worker's slot: no lock; nothing without ecodoc_metrics */
#define ngx_http_ecodoc_count(m, n)                                           \
    (ngx_http_ecodoc_metrics                                                  \
     ? (void) ngx_atomic_fetch_add(&ngx_http_ecodoc_metrics[m], n)           \
     : (void) 0)


extern ngx_module_t  ngx_http_ecodoc_module;


/* ngx_http_ecodoc_module.c */
ngx_http_ecodoc_ctx_t *ngx_http_ecodoc_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_ecodoc_fingerprint(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
ngx_int_t ngx_http_ecodoc_gate_eval(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_ecodoc_redis_handler_pt handler);

/* ngx_http_ecodoc_link.c */
ngx_int_t ngx_http_ecodoc_link_open(ngx_http_ecodoc_link_t *link,
    ngx_http_ecodoc_node_t *node, ngx_log_t *log);
ngx_int_t ngx_http_ecodoc_link_send(ngx_http_ecodoc_link_t *link, u_char *buf,
    size_t len, ngx_uint_t nreplies, ngx_http_ecodoc_link_pt handler,
    void *data);
void ngx_http_ecodoc_link_fence(ngx_http_ecodoc_link_t *link);
void ngx_http_ecodoc_link_unfence(ngx_http_ecodoc_link_t *link);
ngx_int_t ngx_http_ecodoc_link_command(ngx_http_ecodoc_link_t *link, int argc,
    const char **argv, const size_t *argvlen, ngx_http_ecodoc_link_pt handler,
    void *data);
void ngx_http_ecodoc_link_close(ngx_http_ecodoc_link_t *link, ngx_uint_t level,
    const char *why);
void ngx_http_ecodoc_link_free(ngx_http_ecodoc_link_t *link);
ngx_int_t ngx_http_ecodoc_link_ssl(ngx_conf_t *cf,
    ngx_http_ecodoc_main_conf_t *emcf);

/* ngx_http_ecodoc_sentinel.c */
ngx_int_t ngx_http_ecodoc_sentinel_init(ngx_cycle_t *cycle);
void ngx_http_ecodoc_sentinel_exit(void);
ngx_http_ecodoc_node_t *ngx_http_ecodoc_sentinel_master(void);
void ngx_http_ecodoc_sentinel_lost(void);

/* ngx_http_ecodoc_redis.c */
void ngx_http_ecodoc_redis_master(ngx_uint_t moved);
ngx_int_t ngx_http_ecodoc_redis_init(ngx_cycle_t *cycle);
void ngx_http_ecodoc_redis_exit(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ecodoc_redis_eval(ngx_http_request_t *r,
    ngx_http_ecodoc_script_e script, ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_ecodoc_redis_handler_pt handler);
ngx_int_t ngx_http_ecodoc_redis_post(ngx_http_request_t *r,
    ngx_http_ecodoc_script_e script, ngx_str_t *args, ngx_uint_t nargs);
ngx_int_t ngx_http_ecodoc_redis_session(ngx_http_request_t *r, ngx_str_t *sid,
    ngx_http_ecodoc_redis_handler_pt handler);
void ngx_http_ecodoc_redis_cancel(ngx_http_ecodoc_ctx_t *ctx);
ngx_int_t ngx_http_ecodoc_redis_ping(ngx_http_request_t *r,
    ngx_http_ecodoc_redis_handler_pt handler);
ngx_uint_t ngx_http_ecodoc_redis_answered(ngx_msec_t within);
ngx_int_t ngx_http_ecodoc_reply_verdict(ngx_pool_t *pool, redisReply *reply,
    ngx_http_ecodoc_status_e *status, ngx_str_t *extra, ngx_uint_t nextra);
extern ngx_str_t  ngx_http_ecodoc_status_names[];

/* ngx_http_ecodoc_cache.c */
ngx_int_t ngx_http_ecodoc_cache_get(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
void ngx_http_ecodoc_cache_put(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
void ngx_http_ecodoc_cache_forget(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
char *ngx_http_ecodoc_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* ngx_http_ecodoc_session.c */
char *ngx_http_ecodoc_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_ecodoc_session_cookie(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
ngx_int_t ngx_http_ecodoc_session_record(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, u_char *p, size_t len, ngx_uint_t *initial);
ngx_int_t ngx_http_ecodoc_session_new(ngx_http_ecodoc_ctx_t *ctx);
ngx_int_t ngx_http_ecodoc_session_set_cookie(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_flag_t clear);
ngx_int_t ngx_http_ecodoc_csrf_make(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *token);
ngx_int_t ngx_http_ecodoc_csrf_check(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);
ngx_int_t ngx_http_ecodoc_random_hex(u_char *dst, size_t len);

/* ngx_http_ecodoc_password.c */
ngx_int_t ngx_http_ecodoc_password_check(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_http_event_handler_pt done);
ngx_int_t ngx_http_ecodoc_password_policy(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *error);
char *ngx_http_ecodoc_password_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ecodoc_pages.c */
extern ngx_http_ecodoc_page_t  ngx_http_ecodoc_page_table[];
ngx_int_t ngx_http_ecodoc_pages_handler(ngx_http_request_t *r);
void ngx_http_ecodoc_slot_leave(ngx_http_ecodoc_ctx_t *ctx);

/* ngx_http_ecodoc_texts.c */
const char *ngx_http_ecodoc_text(ngx_uint_t lang, ngx_uint_t text);
ngx_uint_t ngx_http_ecodoc_lang(ngx_http_request_t *r);
ngx_uint_t ngx_http_ecodoc_ctx_lang(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx);

/* ngx_http_ecodoc_html.c */
ngx_int_t ngx_http_ecodoc_form_page(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t msg,
    const char *field, ngx_str_t *detail);
ngx_int_t ngx_http_ecodoc_message(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t title,
    ngx_uint_t msg, ngx_uint_t link);
ngx_int_t ngx_http_ecodoc_gate_page(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status, ngx_uint_t msg);
ngx_int_t ngx_http_ecodoc_problem_page(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status,
    ngx_http_ecodoc_problem_e problem, time_t date, const char *reason);
ngx_int_t ngx_http_ecodoc_redirect(ngx_http_request_t *r, ngx_str_t *to,
    ngx_str_t *args);
char *ngx_http_ecodoc_template(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ecodoc_cert.c */
time_t ngx_http_ecodoc_cert_not_after(X509 *cert);
time_t ngx_http_ecodoc_cert_days(time_t not_after);
ngx_int_t ngx_http_ecodoc_cert_page(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_uint_t status);
ngx_int_t ngx_http_ecodoc_cert_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* ngx_http_ecodoc_metrics.c */
extern ngx_atomic_t  *ngx_http_ecodoc_metrics;
void ngx_http_ecodoc_metrics_init(ngx_cycle_t *cycle);
uint64_t ngx_http_ecodoc_metrics_usec(void);
void ngx_http_ecodoc_metrics_time(ngx_uint_t h, uint64_t usec);
char *ngx_http_ecodoc_metrics_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ecodoc_health_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_ecodoc_form.c */
ngx_int_t ngx_http_ecodoc_form_body(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_ecodoc_form_parse(ngx_http_request_t *r,
    ngx_http_ecodoc_ctx_t *ctx, ngx_str_t *body);
ngx_int_t ngx_http_ecodoc_unescape(ngx_pool_t *pool, u_char *p, u_char *end,
    ngx_str_t *out);
ngx_int_t ngx_http_ecodoc_user_ok(ngx_str_t *s);
ngx_int_t ngx_http_ecodoc_next_ok(ngx_str_t *s);
ngx_int_t ngx_http_ecodoc_same_origin(ngx_http_request_t *r);


#endif /* _NGX_HTTP_ECODOC_H_INCLUDED_ */
