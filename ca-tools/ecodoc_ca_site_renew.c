/*
 * ecodoc-ca enroll-server: renewal with the current certificate: the
 * gate's session of it and the password typed again open an enrollment.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ecodoc_passwd.h"
#include "ecodoc_lua.h"
#include "ecodoc_ca_redis.h"
#include "ecodoc_ca_site.h"


#define ECODOC_CA_GATE_TOKEN_LEN  43     /* the gate's cookie: 256 bits */
#define ECODOC_CA_B64URL                                                     \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


/* who asks for a renewal */
typedef struct {
    char        fp[ECODOC_CA_FP_LEN];        /* the certificate presented */
    time_t      not_after;
    char        sid[ECODOC_CA_FP_LEN];       /* its session at the gate */
    char        user[ECODOC_CA_USER_MAX + 1];
} ecodoc_ca_renewal_t;


static int ecodoc_ca_renew_who(ecodoc_ca_page_t *pg,
    ecodoc_ca_renewal_t *rn);
static int ecodoc_ca_renew_session(ecodoc_ca_page_t *pg,
    ecodoc_ca_renewal_t *rn);
static void ecodoc_ca_renew_post(ecodoc_ca_page_t *pg,
    ecodoc_ca_renewal_t *rn);
static void ecodoc_ca_renew_check(ecodoc_ca_page_t *pg,
    ecodoc_ca_renewal_t *rn, const char *pw);
static void ecodoc_ca_renew_verdict(ecodoc_ca_page_t *pg,
    ecodoc_ca_renewal_t *rn, const char *v);
static void ecodoc_ca_renew_refuse(ecodoc_ca_page_t *pg,
    ecodoc_ca_renewal_t *rn, int status, ecodoc_ca_text_e t);


void
ecodoc_ca_renew(ecodoc_ca_page_t *pg)
{
    ecodoc_ca_renewal_t  rn;

    if (ecodoc_ca_renew_who(pg, &rn) != 0) {
        return;
    }

    if (pg->post) {
        ecodoc_ca_renew_post(pg, &rn);
        return;
    }

    ecodoc_ca_renew_page(pg, 200, rn.user, rn.not_after, ECODOC_CA_T_MAX,
                         NULL, 1);
}


/*
 * Who asks: the certificate nginx verified, and the gate's session of it
 * (read here to say who and what to do; lua/reserve.lua and lua/finish.lua
 * decide).  0 with rn filled in; else the page that says why not is sent.
 */

static int
ecodoc_ca_renew_who(ecodoc_ca_page_t *pg, ecodoc_ca_renewal_t *rn)
{
    X509  *x;
    long   window;

    memset(rn, 0, sizeof(*rn));

    if (pg->site->renewal == ECODOC_CA_RENEWAL_OFF) {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_OFF);
        return -1;
    }

    x = ecodoc_ca_client_cert(pg);

    if (x == NULL) {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_NOCERT);
        return -1;
    }

    ecodoc_ca_cert_fp(x, rn->fp);
    rn->not_after = (time_t) ecodoc_ca_cert_not_after(x);
    X509_free(x);

    switch (ecodoc_ca_renew_session(pg, rn)) {
    case 1:
        break;
    case 0:
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_LOGIN);
        return -1;
    default:
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return -1;
    }

    window = pg->site->renewal;

    if (window > 0 && rn->not_after - time(NULL) > window * 86400) {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_EARLY);
        return -1;
    }

    return 0;
}


/*
 * The gate's session of the cookie, as lua/lib.lua stores it: "FP CREATED
 * INITIAL USER".  1 when it is this certificate's, past the initial
 * password (rn->sid, rn->user set); 0 not; -1 Redis failed.
 */

static int
ecodoc_ca_renew_session(ecodoc_ca_page_t *pg, ecodoc_ca_renewal_t *rn)
{
    int          ok;
    char        *token, key[ECODOC_CA_KEY_LEN];
    const char  *argv[2], *v, *u;
    redisReply  *r;

    token = ecodoc_ca_http_cookie(pg->req, ECODOC_CA_GATE_COOKIE);

    ok = token != NULL && strlen(token) == ECODOC_CA_GATE_TOKEN_LEN
         && strspn(token, ECODOC_CA_B64URL) == ECODOC_CA_GATE_TOKEN_LEN;

    if (ok) {
        ecodoc_ca_sid(token, rn->sid);
        OPENSSL_cleanse(token, strlen(token));
    }

    free(token);

    if (!ok) {
        return 0;
    }

    ecodoc_ca_redis_key(pg->site->ca, key, "sess:", rn->sid, "");
    argv[0] = "GET";
    argv[1] = key;

    r = ecodoc_ca_redis_command(pg->site->ca, ECODOC_CA_REPLY_ANY, 2, argv);
    if (r == NULL) {
        return -1;
    }

    v = (r->type == REDIS_REPLY_STRING) ? r->str : "";
    u = v + ECODOC_CA_FP_LEN - 1;

    ok = strlen(v) > ECODOC_CA_FP_LEN
         && strncmp(v, rn->fp, ECODOC_CA_FP_LEN - 1) == 0 && *u == ' ';

    if (ok) {
        u += 1 + strspn(u + 1, "0123456789");
        ok = strncmp(u, " 0 ", 3) == 0 && ecodoc_ca_valid_user(u + 3);
    }

    if (ok) {
        snprintf(rn->user, sizeof(rn->user), "%s", u + 3);
    }

    freeReplyObject(r);

    return ok;
}


static void
ecodoc_ca_renew_post(ecodoc_ca_page_t *pg, ecodoc_ca_renewal_t *rn)
{
    char  *pw;

    if (ecodoc_ca_form_cookie_ok(pg) != 0) {
        return;
    }

    pw = ecodoc_ca_field(pg, "password");

    if (pw == NULL || pw[0] == '\0' || strlen(pw) > 1024) {
        ecodoc_ca_renew_page(pg, 400, rn->user, rn->not_after,
                             ECODOC_CA_T_MALFORMED, NULL, 1);
        goto done;
    }

    /* one scrypt check at a time, as STEP1's */

    if (ecodoc_ca_site_lock(pg->site) == ECODOC_CA_LOCK_BUSY) {
        ecodoc_ca_resp_header(pg->resp, "Retry-After: %u",
                              pg->site->check_wait);
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_BUSY);
        goto done;
    }

    ecodoc_ca_renew_check(pg, rn, pw);
    ecodoc_ca_site_unlock(pg->site);

done:

    if (pw != NULL) {
        OPENSSL_cleanse(pw, strlen(pw));
    }

    free(pw);
}


/*
 * The password checked as the gate checks one (lua/reserve.lua, then
 * lua/finish.lua, mode renew: a slot of the user's max failures, the
 * failure counted, the lock): right, the enrollment session is made and
 * STEP2 follows.
 */

static void
ecodoc_ca_renew_check(ecodoc_ca_page_t *pg, ecodoc_ca_renewal_t *rn,
    const char *pw)
{
    int            i, right;
    char           max[16], lifetime[24], na[24], window[24], rid[33],
                   token[ECODOC_CA_TOKEN_LEN], csrf[ECODOC_CA_TOKEN_LEN],
                   esid[ECODOC_CA_FP_LEN], *hash;
    redisReply    *r;
    const char    *args[11];
    unsigned char  raw[16];

    if (RAND_bytes(raw, sizeof(raw)) != 1 || ecodoc_ca_token(token) != 0
        || ecodoc_ca_token(csrf) != 0)
    {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return;
    }

    for (i = 0; i < 16; i++) {
        sprintf(rid + 2 * i, "%02x", raw[i]);
    }

    ecodoc_ca_sid(token, esid);
    snprintf(max, sizeof(max), "%u", pg->site->max_failures);
    snprintf(lifetime, sizeof(lifetime), "%ld", pg->site->lifetime);
    snprintf(na, sizeof(na), "%lld", (long long) rn->not_after);
    snprintf(window, sizeof(window), "%ld", pg->site->renewal > 0
             ? pg->site->renewal * 86400 : 0);

    args[0] = "renew";
    args[1] = rn->user;
    args[2] = max;
    args[3] = rid;
    args[4] = "1";
    args[5] = rn->sid;
    args[6] = lifetime;
    args[7] = na;
    args[8] = pg->site->renewal > 0 ? window : "";

    r = ecodoc_ca_redis_script(pg->site->ca, ecodoc_lua_reserve,
                               REDIS_REPLY_ARRAY, pg->addr, rn->fp, 9, args);

    if (r == NULL || ecodoc_ca_redis_strings(r, 1) != 0 || r->elements < 1
        || (strcmp(r->element[0]->str, "ok") == 0 && r->elements != 3))
    {
        if (r != NULL) {
            freeReplyObject(r);
        }

        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return;
    }

    if (strcmp(r->element[0]->str, "ok") != 0) {
        ecodoc_ca_renew_verdict(pg, rn, r->element[0]->str);
        freeReplyObject(r);
        return;
    }

    hash = strdup(r->element[1]->str);
    freeReplyObject(r);

    if (hash == NULL) {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return;
    }

    right = ecodoc_passwd_verify(pw, strlen(pw), hash, strlen(hash));

    args[0] = "renew";
    args[1] = rn->user;
    args[2] = max;
    args[3] = rid;
    args[4] = right == 1 ? "1" : right == 0 ? "0" : "e";
    args[5] = esid;
    args[6] = ECODOC_CA_SESSION_TTL;
    args[7] = csrf;
    args[8] = rn->sid;
    args[9] = hash;
    args[10] = lifetime;

    r = ecodoc_ca_redis_script(pg->site->ca, ecodoc_lua_finish,
                               REDIS_REPLY_ARRAY, pg->addr, rn->fp, 11, args);
    free(hash);

    if (r == NULL || ecodoc_ca_redis_strings(r, 1) != 0 || r->elements < 1) {
        if (r != NULL) {
            freeReplyObject(r);
        }

        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_UNAVAILABLE);
        return;
    }

    if (strcmp(r->element[0]->str, "ok") == 0) {
        ecodoc_ca_set_cookie(pg, ECODOC_CA_COOKIE, token,
                             ECODOC_CA_SESSION_TTL);
        ecodoc_ca_page_redirect(pg, ECODOC_CA_SITE_PREFIX "step2");
        ecodoc_ca_http_log("renewal of %s for %s", rn->fp, rn->user);

    } else {
        ecodoc_ca_renew_verdict(pg, rn, r->element[0]->str);
    }

    freeReplyObject(r);
    OPENSSL_cleanse(token, sizeof(token));
}


/* the page for a verdict of lua/reserve.lua or lua/finish.lua */

static void
ecodoc_ca_renew_verdict(ecodoc_ca_page_t *pg, ecodoc_ca_renewal_t *rn,
    const char *v)
{
    ecodoc_ca_http_log("renewal for %s refused: %s", rn->user, v);

    if (strcmp(v, "failed") == 0) {
        ecodoc_ca_renew_page(pg, 401, rn->user, rn->not_after,
                             ECODOC_CA_T_RENEW_WRONG, "password", 1);

    } else if (strcmp(v, "locked") == 0) {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_LOCKED);

    } else if (strcmp(v, "early") == 0) {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_EARLY);

    } else if (strcmp(v, "nosession") == 0) {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_LOGIN);

    } else if (strcmp(v, "busy") == 0 || strcmp(v, "changed") == 0
               || strcmp(v, "error") == 0)
    {
        ecodoc_ca_page_error(pg, 503, ECODOC_CA_T_BUSY);

    } else {
        ecodoc_ca_renew_refuse(pg, rn, 403, ECODOC_CA_T_RENEW_DENIED);
    }
}


/* the page that says why not, without the form */

static void
ecodoc_ca_renew_refuse(ecodoc_ca_page_t *pg, ecodoc_ca_renewal_t *rn,
    int status, ecodoc_ca_text_e t)
{
    ecodoc_ca_renew_page(pg, status, rn->user[0] != '\0' ? rn->user : NULL,
                         rn->not_after, t, NULL, 0);
}
