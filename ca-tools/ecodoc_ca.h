/*
 * ecodoc-ca: what every command file shares: the run context, exit codes,
 * the command table and option parser, messages and small checks.
 */

#ifndef ECODOC_CA_H
#define ECODOC_CA_H

#include <stddef.h>
#include <time.h>


#define ECODOC_CA_OK          0
#define ECODOC_CA_ERROR       1      /* runtime error: message on stderr */
#define ECODOC_CA_USAGE       2      /* bad command line or input */
#define ECODOC_CA_UNCONFIRMED 3      /* written to the master, but fewer
                                        replicas than --redis-wait took it */

#define ECODOC_CA_USER_MAX    64
#define ECODOC_CA_PREFIX_MAX  256
#define ECODOC_CA_TIME_LEN    32     /* "1970-01-01T00:00:00.000Z" + NUL */
#define ECODOC_CA_COST_MIN    10     /* --cost: scrypt N = 2^LN */
#define ECODOC_CA_COST_MAX    20      /* 1 GiB with r = 8: ecodoc_passwd.c */


typedef struct ecodoc_ca_redis_s  ecodoc_ca_redis_t;

typedef struct {
    const char           *redis_addr;        /* as given, or NULL */
    const char           *redis_password;    /* never printed */
    long                  db;
    const char           *prefix;

    const char           *sentinel;          /* NAME@HOST:PORT,... */
    const char           *sentinel_password;
    const char           *tls_ca;            /* TLS when set */
    const char           *tls_cert;
    const char           *tls_key;
    const char           *tls_name;          /* default: the host */
    const char           *wait;              /* N[:MS], or NULL */

    ecodoc_ca_redis_t    *redis;             /* ecodoc_ca_redis_config() */
} ecodoc_ca_t;


/* argv[0] is the command's own name */
typedef int (*ecodoc_ca_handler_pt)(ecodoc_ca_t *ca, int argc, char **argv);

typedef struct {
    const char            *name;
    ecodoc_ca_handler_pt   handler;
    const char            *usage;            /* arguments after the name */
} ecodoc_ca_command_t;


/* an option; a flag (no argument) stores "1" into *value */
typedef struct {
    const char   *name;
    int           has_arg;
    const char  **value;
} ecodoc_ca_option_t;


/* runs the command named by argv[0] from a NULL-terminated table */
int ecodoc_ca_dispatch(ecodoc_ca_t *ca, const ecodoc_ca_command_t *cmds,
    const char *what, int argc, char **argv);

/*
 * Parses argv[1..] (argv[0] is the command name).  With next == NULL:
 * options anywhere, exactly npos positional arguments into pos.  With
 * next != NULL: stops at the first non-option and stores its index into
 * *next.  "-h"/"--help" print the usage and exit 0.
 */
int ecodoc_ca_options(int argc, char **argv, const ecodoc_ca_option_t *opts,
    char **pos, int npos, int *next);

void ecodoc_ca_usage(void);

/* "ecodoc-ca: ..." on stderr; the usage variant adds a hint */
void ecodoc_ca_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void ecodoc_ca_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* 1 when s is a user ID; the check variant: 0, or -1 reported (usage) */
int ecodoc_ca_valid_user(const char *s);
int ecodoc_ca_check_user(const char *s);

/* whole decimal number within [min, max]; -1 otherwise (not reported) */
int ecodoc_ca_number(const char *s, long long min, long long max,
    long long *out);

/* --cost LN (NULL: the default); 0, or -1 reported (usage) */
int ecodoc_ca_cost(const char *s, unsigned *ln);

/* ISO 8601 UTC; ms < 0 leaves out the milliseconds */
void ecodoc_ca_iso_time(char buf[ECODOC_CA_TIME_LEN], time_t t, int ms);


/* the commands */
int ecodoc_ca_user(ecodoc_ca_t *ca, int argc, char **argv);
int ecodoc_ca_audit(ecodoc_ca_t *ca, int argc, char **argv);
int ecodoc_ca_metrics(ecodoc_ca_t *ca, int argc, char **argv);
int ecodoc_ca_enroll_server(ecodoc_ca_t *ca, int argc, char **argv);

#endif /* ECODOC_CA_H */
