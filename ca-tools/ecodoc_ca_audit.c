/*
 * ecodoc-ca audit: prints the newest records of the audit stream, oldest
 * first, one line each, with anything unprintable escaped.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_AUDIT_COUNT  "20"


static const char  *ecodoc_ca_audit_fields[] = {
    "event", "user", "fp", "addr", "detail", NULL
};


/*
 * One field: "-" when empty or missing; control characters, backslashes
 * and (but in the last field, free text) spaces as \xHH, so that a line
 * splits on spaces into the same fields whatever was recorded.
 */

static void
ecodoc_ca_audit_field(const char *s, int last)
{
    unsigned char  c;

    if (s == NULL || s[0] == '\0') {
        fputs("-", stdout);
        return;
    }

    for ( /* void */ ; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if (c < 0x20 || c == 0x7f || c == '\\' || (c == ' ' && !last)) {
            printf("\\x%02x", c);

        } else {
            putchar(c);
        }
    }
}


/* one XRANGE entry: [ID, [field, value, ...]]; -1 when malformed */

static int
ecodoc_ca_audit_entry(const redisReply *e)
{
    int                  i;
    char                 t[ECODOC_CA_TIME_LEN], *end;
    unsigned long long   ms;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || e->element[0]->type != REDIS_REPLY_STRING
        || ecodoc_ca_redis_strings(e->element[1], 2) != 0)
    {
        return -1;
    }

    ms = strtoull(e->element[0]->str, &end, 10);
    if (end == e->element[0]->str || *end != '-') {
        return -1;
    }

    ecodoc_ca_iso_time(t, (time_t) (ms / 1000), (int) (ms % 1000));
    fputs(t, stdout);

    for (i = 0; ecodoc_ca_audit_fields[i] != NULL; i++) {
        putchar(' ');
        ecodoc_ca_audit_field(ecodoc_ca_redis_field(e->element[1],
                                  ecodoc_ca_audit_fields[i]),
                              ecodoc_ca_audit_fields[i + 1] == NULL);
    }

    putchar('\n');

    return 0;
}


int
ecodoc_ca_audit(ecodoc_ca_t *ca, int argc, char **argv)
{
    int          rc;
    char         key[ECODOC_CA_KEY_LEN];
    size_t       i;
    long long    n;
    redisReply  *r;
    const char  *count, *args[6];

    ecodoc_ca_option_t  opts[] = {
        { "--count", 1, &count },
        { NULL, 0, NULL }
    };

    count = ECODOC_CA_AUDIT_COUNT;

    if (ecodoc_ca_options(argc, argv, opts, NULL, 0, NULL) != ECODOC_CA_OK) {
        return ECODOC_CA_USAGE;
    }

    if (ecodoc_ca_number(count, 1, 1000000, &n) != 0) {
        ecodoc_ca_usage_error("invalid --count \"%s\": use 1..1000000",
                              count);
        return ECODOC_CA_USAGE;
    }

    ecodoc_ca_redis_key(ca, key, "audit", "", "");

    args[0] = "XREVRANGE";
    args[1] = key;
    args[2] = "+";
    args[3] = "-";
    args[4] = "COUNT";
    args[5] = count;

    r = ecodoc_ca_redis_call(ca, REDIS_REPLY_ARRAY, 6, args);
    if (r == NULL) {
        return ECODOC_CA_ERROR;
    }

    rc = ECODOC_CA_OK;

    for (i = r->elements; i > 0; i--) {
        if (ecodoc_ca_audit_entry(r->element[i - 1]) != 0) {
            ecodoc_ca_error("malformed audit record");
            rc = ECODOC_CA_ERROR;
        }
    }

    freeReplyObject(r);

    return rc;
}
