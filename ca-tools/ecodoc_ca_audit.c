/*
 * ecodoc-ca audit: prints the newest security events (P audit) and the
 * refusals counted per minute (P refused:*), merged, oldest first.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecodoc_ca.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_AUDIT_COUNT  "20"


/* one line to print, by the time it happened */

typedef struct {
    unsigned long long   ms;
    size_t               seq;       /* the order found, within one ms */
    char                *text;
} ecodoc_ca_audit_line_t;

typedef struct {
    ecodoc_ca_audit_line_t  *line;
    size_t                   n;
    size_t                   size;
} ecodoc_ca_audit_lines_t;


/*
 * One field: "-" when empty or missing; control characters, backslashes
 * and (but in the last field, free text) spaces as \xHH, so that a line
 * splits on spaces into the same fields whatever was recorded.
 */

static void
ecodoc_ca_audit_field(FILE *out, const char *s, size_t len, int last)
{
    size_t         i;
    unsigned char  c;

    if (s == NULL || len == 0) {
        fputs(" -", out);
        return;
    }

    putc(' ', out);

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c < 0x20 || c == 0x7f || c == '\\' || (c == ' ' && !last)) {
            fprintf(out, "\\x%02x", c);

        } else {
            putc(c, out);
        }
    }
}


static void
ecodoc_ca_audit_str(FILE *out, const char *s, int last)
{
    ecodoc_ca_audit_field(out, s, s != NULL ? strlen(s) : 0, last);
}


/* adds the line "TIME EVENT USER FP ADDR DETAIL"; -1 out of memory */

static int
ecodoc_ca_audit_add(ecodoc_ca_audit_lines_t *lines, unsigned long long ms,
    const char *event, const char *user, size_t ulen, const char *fp,
    size_t fplen, const char *addr, size_t alen, const char *detail)
{
    char                    t[ECODOC_CA_TIME_LEN];
    FILE                   *out;
    size_t                  size;
    ecodoc_ca_audit_line_t *l;

    if (lines->n == lines->size) {
        size = lines->size ? 2 * lines->size : 64;
        l = realloc(lines->line, size * sizeof(ecodoc_ca_audit_line_t));
        if (l == NULL) {
            return -1;
        }

        lines->line = l;
        lines->size = size;
    }

    l = &lines->line[lines->n];
    l->ms = ms;
    l->seq = lines->n;
    l->text = NULL;

    out = open_memstream(&l->text, &size);
    if (out == NULL) {
        return -1;
    }

    ecodoc_ca_iso_time(t, (time_t) (ms / 1000), (int) (ms % 1000));
    fputs(t, out);
    ecodoc_ca_audit_str(out, event, 0);
    ecodoc_ca_audit_field(out, user, ulen, 0);
    ecodoc_ca_audit_field(out, fp, fplen, 0);
    ecodoc_ca_audit_field(out, addr, alen, 0);
    ecodoc_ca_audit_str(out, detail, 1);

    if (fclose(out) != 0) {
        free(l->text);
        return -1;
    }

    lines->n++;

    return 0;
}


/* one XRANGE entry: [ID, [field, value, ...]]; -1 when malformed */

static int
ecodoc_ca_audit_entry(ecodoc_ca_audit_lines_t *lines, const redisReply *e)
{
    char                *end;
    const char          *user, *fp, *addr;
    const redisReply    *f;
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

    f = e->element[1];
    user = ecodoc_ca_redis_field(f, "user");
    fp = ecodoc_ca_redis_field(f, "fp");
    addr = ecodoc_ca_redis_field(f, "addr");

    return ecodoc_ca_audit_add(lines, ms, ecodoc_ca_redis_field(f, "event"),
                               user, user ? strlen(user) : 0,
                               fp, fp ? strlen(fp) : 0,
                               addr, addr ? strlen(addr) : 0,
                               ecodoc_ca_redis_field(f, "detail"));
}


/*
 * One minute's refusals: the hash of "WHO EVENT" -> count and
 * "WHO EVENT last" -> "MS ADDR USER DETAIL" of the last one, MS its time
 * in milliseconds, which the line carries; -1 when malformed
 */

static int
ecodoc_ca_audit_minute(ecodoc_ca_audit_lines_t *lines, const redisReply *h)
{
    int          rc;
    char         name[512], detail[600], *end;
    size_t       i, wlen;
    long long    t;
    const char  *field, *ev, *last, *addr, *user, *text;

    if (ecodoc_ca_redis_strings(h, 2) != 0) {
        return -1;
    }

    for (i = 0; i < h->elements; i += 2) {
        field = h->element[i]->str;
        ev = strchr(field, ' ');

        if (ev == NULL || strchr(ev + 1, ' ') != NULL) {
            continue;                 /* a "... last" field, or malformed */
        }

        if (snprintf(name, sizeof(name), "%s last", field)
            >= (int) sizeof(name))
        {
            return -1;
        }

        last = ecodoc_ca_redis_field(h, name);
        t = (last != NULL) ? strtoll(last, &end, 10) : 0;
        addr = (last != NULL && *end == ' ') ? end + 1 : NULL;
        user = (addr != NULL) ? strchr(addr, ' ') : NULL;
        text = (user != NULL) ? strchr(user + 1, ' ') : NULL;

        if (text == NULL || t <= 0) {
            return -1;
        }

        snprintf(detail, sizeof(detail), "refused %s times in this minute; "
                 "the last: %s", h->element[i + 1]->str, text + 1);

        wlen = ev - field;

        /* WHO is a fingerprint, or the address of a client without one */
        rc = ecodoc_ca_audit_add(lines, (unsigned long long) t,
                                 ev + 1, user + 1, text - user - 1,
                                 field, wlen == 64 ? wlen : 0,
                                 addr, user - addr, detail);
        if (rc != 0) {
            return -1;
        }
    }

    return 0;
}


/* the minutes of refusals among the newest count: HGETALL each */

static int
ecodoc_ca_audit_refusals(ecodoc_ca_t *ca, ecodoc_ca_audit_lines_t *lines,
    const char *count)
{
    int          rc;
    char         key[ECODOC_CA_KEY_LEN], index[ECODOC_CA_KEY_LEN];
    size_t       i;
    redisReply  *minutes, *h;
    const char  *args[7];

    ecodoc_ca_redis_key(ca, index, "refused", "", "");

    args[0] = "ZREVRANGEBYSCORE";
    args[1] = index;
    args[2] = "+inf";
    args[3] = "-inf";
    args[4] = "LIMIT";
    args[5] = "0";
    args[6] = count;

    minutes = ecodoc_ca_redis_command(ca, REDIS_REPLY_ARRAY, 7, args);
    if (minutes == NULL || ecodoc_ca_redis_strings(minutes, 1) != 0) {
        ecodoc_ca_error("malformed index of refusals");
        freeReplyObject(minutes);
        return -1;
    }

    rc = 0;

    for (i = 0; i < minutes->elements; i++) {
        ecodoc_ca_redis_key(ca, key, "refused:", minutes->element[i]->str, "");
        args[0] = "HGETALL";
        args[1] = key;

        if (ecodoc_ca_redis_append(ca, 2, args) != ECODOC_CA_OK) {
            freeReplyObject(minutes);
            return -1;
        }
    }

    for (i = 0; i < minutes->elements; i++) {
        h = ecodoc_ca_redis_reply(ca, REDIS_REPLY_ARRAY, "HGETALL");
        if (h == NULL) {
            freeReplyObject(minutes);
            return -1;
        }

        if (rc == 0 && ecodoc_ca_audit_minute(lines, h) != 0) {
            ecodoc_ca_error("malformed refusals of minute %s",
                            minutes->element[i]->str);
            rc = -1;
        }

        freeReplyObject(h);
    }

    freeReplyObject(minutes);

    return rc;
}


static int
ecodoc_ca_audit_cmp(const void *a, const void *b)
{
    const ecodoc_ca_audit_line_t  *x = a, *y = b;

    if (x->ms != y->ms) {
        return (x->ms > y->ms) ? 1 : -1;
    }

    return (x->seq > y->seq) - (x->seq < y->seq);
}


int
ecodoc_ca_audit(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                       rc;
    char                      key[ECODOC_CA_KEY_LEN];
    size_t                    i, first;
    long long                 n;
    redisReply               *r;
    const char               *count, *args[6];
    ecodoc_ca_audit_lines_t   lines;

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

    r = ecodoc_ca_redis_command(ca, REDIS_REPLY_ARRAY, 6, args);
    if (r == NULL) {
        return ECODOC_CA_ERROR;
    }

    memset(&lines, 0, sizeof(lines));
    rc = ECODOC_CA_OK;

    for (i = r->elements; i > 0; i--) {
        if (ecodoc_ca_audit_entry(&lines, r->element[i - 1]) != 0) {
            ecodoc_ca_error("malformed audit record");
            rc = ECODOC_CA_ERROR;
        }
    }

    freeReplyObject(r);

    if (ecodoc_ca_audit_refusals(ca, &lines, count) != 0) {
        rc = ECODOC_CA_ERROR;
    }

    /* the newest count of both, oldest first */

    if (lines.n > 1) {   /* qsort() of NULL, even with 0, is undefined */
        qsort(lines.line, lines.n, sizeof(ecodoc_ca_audit_line_t),
              ecodoc_ca_audit_cmp);
    }

    first = (lines.n > (size_t) n) ? lines.n - (size_t) n : 0;

    for (i = 0; i < lines.n; i++) {
        if (i >= first) {
            puts(lines.line[i].text);
        }

        free(lines.line[i].text);
    }

    free(lines.line);

    return rc;
}
