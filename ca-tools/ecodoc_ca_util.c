/*
 * ecodoc-ca: messages on stderr and the small checks every command uses:
 * user IDs, whole numbers, scrypt costs, ISO 8601 times.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecodoc_passwd.h"
#include "ecodoc_ca.h"


static void
ecodoc_ca_verror(const char *fmt, va_list args)
{
    fputs("ecodoc-ca: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
}


void
ecodoc_ca_error(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ecodoc_ca_verror(fmt, args);
    va_end(args);
}


void
ecodoc_ca_usage_error(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ecodoc_ca_verror(fmt, args);
    va_end(args);

    fputs("Try 'ecodoc-ca --help'.\n", stderr);
}


/* the length of the longest valid start of s */

static size_t
ecodoc_ca_user_span(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (strchr("._@-", s[i]) == NULL
            && !(s[i] >= 'A' && s[i] <= 'Z')
            && !(s[i] >= 'a' && s[i] <= 'z')
            && !(s[i] >= '0' && s[i] <= '9'))
        {
            break;
        }
    }

    return i;
}


int
ecodoc_ca_valid_user(const char *s)
{
    size_t  len;

    len = ecodoc_ca_user_span(s);

    return len >= 1 && len <= ECODOC_CA_USER_MAX && s[len] == '\0';
}


int
ecodoc_ca_check_user(const char *s)
{
    size_t  i;

    if (ecodoc_ca_valid_user(s)) {
        return 0;
    }

    i = ecodoc_ca_user_span(s);

    if (s[0] == '\0') {
        ecodoc_ca_usage_error("empty user ID");

    } else if (s[i] == '\0') {
        ecodoc_ca_usage_error("invalid user ID: longer than %d characters",
                              ECODOC_CA_USER_MAX);

    } else if (s[i] < 0x20 || s[i] >= 0x7f) {
        ecodoc_ca_usage_error("invalid user ID: it contains a control or "
                              "non-ASCII character; use 1-%d characters of "
                              "A-Z a-z 0-9 . _ @ -", ECODOC_CA_USER_MAX);

    } else {
        ecodoc_ca_usage_error("invalid user ID \"%s\": use 1-%d characters "
                              "of A-Z a-z 0-9 . _ @ -", s,
                              ECODOC_CA_USER_MAX);
    }

    return -1;
}


int
ecodoc_ca_number(const char *s, long long min, long long max,
    long long *out)
{
    char       *end;
    long long   v;

    if (s == NULL || !(s[0] >= '0' && s[0] <= '9')) {
        return -1;
    }

    errno = 0;
    v = strtoll(s, &end, 10);

    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }

    *out = v;

    return 0;
}


int
ecodoc_ca_cost(const char *s, unsigned *ln)
{
    long long  v;

    if (s == NULL) {
        *ln = ECODOC_SCRYPT_LN;
        return 0;
    }

    if (ecodoc_ca_number(s, ECODOC_CA_COST_MIN, ECODOC_CA_COST_MAX, &v)
        != 0)
    {
        ecodoc_ca_usage_error("invalid --cost \"%s\": use %d..%d", s,
                              ECODOC_CA_COST_MIN, ECODOC_CA_COST_MAX);
        return -1;
    }

    *ln = (unsigned) v;

    return 0;
}


void
ecodoc_ca_iso_time(char buf[ECODOC_CA_TIME_LEN], time_t t, int ms)
{
    struct tm  tm;

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, ECODOC_CA_TIME_LEN, "?");
        return;
    }

    if (ms < 0) {
        strftime(buf, ECODOC_CA_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return;
    }

    strftime(buf, ECODOC_CA_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), ECODOC_CA_TIME_LEN - strlen(buf), ".%03dZ",
             ms % 1000);
}
