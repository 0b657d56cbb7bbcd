/*
 * ecodoc-ca metrics: what Redis holds, counted with one SCAN in bounded
 * memory and printed in Prometheus' text format (node_exporter textfile).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_METRICS_DAYS  "30"


/* the keys counted, by what follows the prefix */

typedef enum {
    ECODOC_CA_M_USERS = 0,
    ECODOC_CA_M_LOCKED,
    ECODOC_CA_M_BOUND,
    ECODOC_CA_M_SESSIONS,
    ECODOC_CA_M_CODES,
    ECODOC_CA_M_EXPIRING,
    ECODOC_CA_M_N
} ecodoc_ca_metric_e;


typedef struct {
    long long   now;                 /* Redis' clock */
    long long   window;              /* --days, in seconds */
    long long   n[ECODOC_CA_M_N];
    char        base[ECODOC_CA_KEY_LEN];
    size_t      blen;
} ecodoc_ca_metrics_t;


/* a key asked about in a batch: the reply is read as this kind says */

typedef enum {
    ECODOC_CA_ASK_USER = 0,
    ECODOC_CA_ASK_CODE,
    ECODOC_CA_ASK_CERT
} ecodoc_ca_ask_e;


static const struct {
    const char  *name;
    const char  *help;
} ecodoc_ca_metric_names[ECODOC_CA_M_N] = {
    { "ecodoc_users", "Users (P user:U)." },
    { "ecodoc_users_locked", "Users locked, by wrong passwords or not yet "
      "unlocked." },
    { "ecodoc_certificates_bound", "Certificates bound to a user by a "
      "sign-up (P cert:FP)." },
    { "ecodoc_sessions", "Live sessions (P sess:SID)." },
    { "ecodoc_enroll_codes_outstanding", "Certificate passwords that can "
      "still be redeemed: unused, unexpired, tries left." },
    { "ecodoc_certificates_expiring", "Certificates issued by ecodoc-ca, "
      "not revoked, that expire within the next days (label days)." }
};


/* the fields read of a key, by ecodoc_ca_ask_e */

static const struct {
    int          n;
    const char  *field[3];
} ecodoc_ca_metrics_asks[] = {
    { 1, { "locked", NULL, NULL } },
    { 3, { "used", "expires", "tries" } },
    { 2, { "not_after", "revoked", NULL } }
};


/*
 * One batch of keys: the ones that are counted as they are, and a
 * pipeline of one HMGET for each that must be read.
 */

static int
ecodoc_ca_metrics_batch(ecodoc_ca_t *ca, const redisReply *keys, void *data)
{
    ecodoc_ca_metrics_t *m = data;

    size_t            i, n;
    long long         t;
    redisReply       *r;
    const char       *s, *argv[5];
    ecodoc_ca_ask_e  *ask;

    ask = malloc((keys->elements + 1) * sizeof(ecodoc_ca_ask_e));
    if (ask == NULL) {
        ecodoc_ca_error("out of memory");
        return -1;
    }

    n = 0;

    for (i = 0; i < keys->elements; i++) {
        s = keys->element[i]->str;

        if (strncmp(s, m->base, m->blen) != 0) {
            continue;
        }

        s += m->blen;

        if (strncmp(s, "user:", 5) == 0 && strchr(s + 5, ':') == NULL) {
            m->n[ECODOC_CA_M_USERS]++;
            ask[n] = ECODOC_CA_ASK_USER;

        } else if (strncmp(s, "enroll:", 7) == 0) {
            ask[n] = ECODOC_CA_ASK_CODE;

        } else if (strncmp(s, "certinfo:", 9) == 0) {
            ask[n] = ECODOC_CA_ASK_CERT;

        } else {
            if (strncmp(s, "cert:", 5) == 0) {
                m->n[ECODOC_CA_M_BOUND]++;

            } else if (strncmp(s, "sess:", 5) == 0) {
                m->n[ECODOC_CA_M_SESSIONS]++;
            }

            continue;
        }

        argv[0] = "HMGET";
        argv[1] = keys->element[i]->str;
        memcpy(&argv[2], ecodoc_ca_metrics_asks[ask[n]].field,
               ecodoc_ca_metrics_asks[ask[n]].n * sizeof(char *));

        if (ecodoc_ca_redis_append(ca, 2 + ecodoc_ca_metrics_asks[ask[n]].n,
                                   argv)
            != ECODOC_CA_OK)
        {
            free(ask);
            return -1;
        }

        n++;
    }

    for (i = 0; i < n; i++) {
        r = ecodoc_ca_redis_reply(ca, REDIS_REPLY_ARRAY, "HMGET");
        if (r == NULL) {
            free(ask);
            return -1;
        }

        if (r->elements != (size_t) ecodoc_ca_metrics_asks[ask[i]].n) {
            ecodoc_ca_error("unexpected reply to Redis HMGET");
            freeReplyObject(r);
            free(ask);
            return -1;
        }

        switch (ask[i]) {

        case ECODOC_CA_ASK_USER:
            s = r->element[0]->str;

            if (s != NULL && strcmp(s, "0") != 0) {
                m->n[ECODOC_CA_M_LOCKED]++;
            }

            break;

        case ECODOC_CA_ASK_CODE:
            s = r->element[0]->str;
            t = (r->element[1]->str != NULL)
                ? strtoll(r->element[1]->str, NULL, 10) : 0;

            if ((s == NULL || strcmp(s, "1") != 0) && t > m->now
                && r->element[2]->str != NULL
                && strtoll(r->element[2]->str, NULL, 10)
                   < ECODOC_CA_ENROLL_TRIES)
            {
                m->n[ECODOC_CA_M_CODES]++;
            }

            break;

        case ECODOC_CA_ASK_CERT:
            t = (r->element[0]->str != NULL)
                ? strtoll(r->element[0]->str, NULL, 10) : 0;

            if (r->element[1]->str == NULL
                && t > m->now && t <= m->now + m->window)
            {
                m->n[ECODOC_CA_M_EXPIRING]++;
            }

            break;
        }

        freeReplyObject(r);
    }

    free(ask);

    return 0;
}


int
ecodoc_ca_metrics(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                  i;
    long long            days;
    redisReply          *r;
    const char          *days_s, *args[1];
    ecodoc_ca_metrics_t  m;

    ecodoc_ca_option_t  opts[] = {
        { "--days", 1, &days_s },
        { NULL, 0, NULL }
    };

    days_s = ECODOC_CA_METRICS_DAYS;

    if (ecodoc_ca_options(argc, argv, opts, NULL, 0, NULL) != ECODOC_CA_OK) {
        return ECODOC_CA_USAGE;
    }

    if (ecodoc_ca_number(days_s, 1, 3650, &days) != 0) {
        ecodoc_ca_usage_error("invalid --days \"%s\": use 1..3650", days_s);
        return ECODOC_CA_USAGE;
    }

    memset(&m, 0, sizeof(ecodoc_ca_metrics_t));

    m.window = days * 86400;

    /* Redis' time, as every script takes it */

    args[0] = "TIME";

    r = ecodoc_ca_redis_command(ca, REDIS_REPLY_ARRAY, 1, args);
    if (r == NULL) {
        return ECODOC_CA_ERROR;
    }

    if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        ecodoc_ca_error("unexpected reply to Redis TIME");
        freeReplyObject(r);
        return ECODOC_CA_ERROR;
    }

    m.now = atoll(r->element[0]->str);
    freeReplyObject(r);

    ecodoc_ca_redis_key(ca, m.base, "", "", "");
    m.blen = strlen(m.base);

    if (ecodoc_ca_redis_scan(ca, "*", ecodoc_ca_metrics_batch, &m) != 0) {
        return ECODOC_CA_ERROR;
    }

    for (i = 0; i < ECODOC_CA_M_N; i++) {
        printf("# HELP %s %s\n# TYPE %s gauge\n",
               ecodoc_ca_metric_names[i].name, ecodoc_ca_metric_names[i].help,
               ecodoc_ca_metric_names[i].name);

        if (i == ECODOC_CA_M_EXPIRING) {
            printf("%s{days=\"%lld\"} %lld\n",
                   ecodoc_ca_metric_names[i].name, days, m.n[i]);

        } else {
            printf("%s %lld\n", ecodoc_ca_metric_names[i].name, m.n[i]);
        }
    }

    return ECODOC_CA_OK;
}
