/*
 * ecodoc-ca: main, the global options (command line and environment), the
 * usage text, the command table and dispatch, the option parser.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecodoc_passwd.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_DEFAULT_PREFIX  "ecodoc:"

#define ECODOC_CA_STR(x)          ECODOC_CA_STR_(x)
#define ECODOC_CA_STR_(x)         #x


/* a new command: one line here, its usage lines, its handler elsewhere */

static const ecodoc_ca_command_t  ecodoc_ca_commands[] = {

    { "user", ecodoc_ca_user,
      "user add USER [--password-stdin] [--cost LN] [--enroll-url URL]\n"
      "         [--site-url URL] [--enroll-days N]\n"
      "user reset-password USER [--password-stdin] [--cost LN]\n"
      "user show USER\n"
      "user list\n"
      "user unlock USER\n"
      "user delete USER\n" },

    { "audit", ecodoc_ca_audit,
      "audit [--count N]\n" },

    { "metrics", ecodoc_ca_metrics,
      "metrics [--days N]\n" },

    { "init", ecodoc_ca_init,
      "init --dir DIR [--key ec|rsa3072|rsa4096] [--passphrase-file F]\n"
      "     [--subject /O=ORG/CN=NAME] [--org ORG] [--days N]\n" },

    { "issue", ecodoc_ca_issue,
      "issue USER --csr FILE [--out FILE] [--days N]\n"
      "issue USER --p12 OUT [--key ec|ec384|rsa2048|rsa3072|rsa4096]\n"
      "      [--p12-password-file F] [--legacy] [--days N]\n" },

    { "certs", ecodoc_ca_certs,
      "certs [USER]\n"
      "certs --expiring DAYS\n" },

    { "enroll-code", ecodoc_ca_enroll_code,
      "enroll-code USER [--days N] [--cost LN] [--replace]\n" },

    { "enroll-server", ecodoc_ca_enroll_server,
      "enroll-server --listen unix:PATH [--site-url URL] [--days N]\n"
      "              [--socket-mode MODE] [--check-wait S]\n"
      "              [--renewal off|on|DAYS] [--max-failures N]\n"
      "              [--session-lifetime S]\n" },

    { "revoke", ecodoc_ca_revoke,
      "revoke --serial S | --fingerprint FP | --user USER [--reason R]\n" },

    { "crl", ecodoc_ca_crl,
      "crl [--days N]\n" },

    { NULL, NULL, NULL }
};


void
ecodoc_ca_usage(void)
{
    const char                 *p, *nl;
    const ecodoc_ca_command_t  *c;

    fputs("usage: ecodoc-ca [global options] COMMAND [ARGS]\n"
          "\n"
          "commands:\n", stdout);

    for (c = ecodoc_ca_commands; c->name != NULL; c++) {
        for (p = c->usage; *p != '\0'; p = nl + 1) {
            nl = strchr(p, '\n');
            printf("  %.*s\n", (int) (nl - p), p);
        }
    }

    fputs("\n"
          "command options:\n"
          "  --password-stdin       read the password from one line of "
          "stdin instead of\n"
          "                         making a random one\n"
          "  --cost LN              scrypt cost, N = 2^LN (10..20, "
          "default "
          ECODOC_CA_STR(ECODOC_SCRYPT_LN) ")\n"
          "  --count N              how many of the newest audit records "
          "(default 20)\n"
          "  --dir DIR              the CA directory (ECODOC_CA_DIR); init, "
          "issue, certs,\n"
          "                         revoke, crl, enroll-server\n"
          "  --passphrase-file F    the CA key's passphrase, first line "
          "of F\n"
          "                         (ECODOC_CA_PASSPHRASE_FILE)\n"
          "  --days N               init: CA lifetime (3650); issue, "
          "enroll-server: the\n"
          "                         certificate's (397); enroll-code: the "
          "password's (7,\n"
          "                         0 = expired); crl: next update (7); "
          "metrics: the\n"
          "                         certificates expiring within (30)\n"
          "  --site-url URL         the gate's origin (ECODOC_SITE_URL, "
          "default\n"
          "                         https://localhost)\n"
          "  --enroll-url URL       the enrollment site (ECODOC_ENROLL_URL, "
          "default\n"
          "                         SITE-URL/enroll/)\n"
          "  --enroll-days N        user add: the certificate password's "
          "lifetime (7)\n"
          "  --key TYPE             init: the CA key; issue --p12: the "
          "user's key (ec)\n"
          "  --p12-password-file F  the PKCS#12 password (else a random "
          "one is printed)\n"
          "  --legacy               PKCS#12 with 3DES and a SHA-1 MAC, for "
          "old Windows\n"
          "  --socket-mode MODE     enroll-server: the socket's mode "
          "(0660)\n"
          "  --check-wait S         enroll-server: how long a STEP1 waits "
          "for its check\n"
          "                         behind others (5 s), then 503\n"
          "  --replace              enroll-code: the certificate takes "
          "over the user's\n"
          "                         binding at its sign-up, revoking the "
          "old one (a new PC)\n"
          "  --expiring DAYS        certs: the certificates in use that "
          "expire within DAYS\n"
          "  --renewal off|on|DAYS  enroll-server: renewal with the current "
          "certificate:\n"
          "                         off, any time, or in its last DAYS "
          "days (30)\n"
          "  --max-failures N       enroll-server: as ecodoc_max_failures "
          "(6)\n"
          "  --session-lifetime S   enroll-server: as "
          "ecodoc_session_lifetime (28800 s)\n"
          "  --reason R             unspecified, keyCompromise, "
          "affiliationChanged,\n"
          "                         superseded, cessationOfOperation, "
          "privilegeWithdrawn\n"
          "\n"
          "global options (an option wins over its environment variable):\n"
          "  --redis ADDR           host:port or unix:/path "
          "(ECODOC_REDIS, default\n"
          "                         " ECODOC_CA_DEFAULT_REDIS ")\n"
          "  --redis-password PASS  (ECODOC_REDIS_PASSWORD)\n"
          "  --db N                 (ECODOC_REDIS_DB, default 0)\n"
          "  --prefix P             key prefix (ECODOC_PREFIX, default \""
          ECODOC_CA_DEFAULT_PREFIX "\")\n"
          "  --redis-sentinel NAME@HOST:PORT[,HOST:PORT...]\n"
          "                         the master NAME as the sentinels name "
          "it, instead of\n"
          "                         --redis (ECODOC_REDIS_SENTINEL)\n"
          "  --sentinel-password PASS\n"
          "                         the sentinels' own "
          "(ECODOC_SENTINEL_PASSWORD)\n"
          "  --redis-tls-ca FILE    TLS to Redis and the sentinels, "
          "verified against FILE\n"
          "                         (ECODOC_REDIS_TLS_CA)\n"
          "  --redis-tls-cert FILE  a client certificate "
          "(ECODOC_REDIS_TLS_CERT)\n"
          "  --redis-tls-key FILE   its key (ECODOC_REDIS_TLS_KEY)\n"
          "  --redis-tls-name NAME  the name the server's certificate "
          "must bear\n"
          "                         (ECODOC_REDIS_TLS_NAME, default the "
          "host)\n"
          "  --redis-wait N[:MS]    each security-relevant write is done "
          "only once N\n"
          "                         replicas have it within MS ms "
          "(ECODOC_REDIS_WAIT,\n"
          "                         default 0 = off, 1:1000 with a "
          "sentinel)\n"
          "  -h, --help             this text\n"
          "\n"
          "exit status: 0 done, 1 runtime error, 2 usage error, 3 written "
          "to the Redis\n"
          "master but not confirmed by --redis-wait's replicas\n", stdout);
}


int
ecodoc_ca_dispatch(ecodoc_ca_t *ca, const ecodoc_ca_command_t *cmds,
    const char *what, int argc, char **argv)
{
    const ecodoc_ca_command_t  *c;

    if (argc < 1) {
        ecodoc_ca_usage_error("missing %s", what);
        return ECODOC_CA_USAGE;
    }

    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        ecodoc_ca_usage();
        exit(ECODOC_CA_OK);
    }

    for (c = cmds; c->name != NULL; c++) {
        if (strcmp(c->name, argv[0]) == 0) {
            return c->handler(ca, argc, argv);
        }
    }

    ecodoc_ca_usage_error("unknown %s \"%s\"", what, argv[0]);

    return ECODOC_CA_USAGE;
}


static const ecodoc_ca_option_t *
ecodoc_ca_find_option(const ecodoc_ca_option_t *opts, const char *arg,
    size_t len)
{
    const ecodoc_ca_option_t  *o;

    for (o = opts; o->name != NULL; o++) {
        if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0) {
            return o;
        }
    }

    return NULL;
}


int
ecodoc_ca_options(int argc, char **argv, const ecodoc_ca_option_t *opts,
    char **pos, int npos, int *next)
{
    int                        i, n, rest;
    size_t                     len;
    const char                *arg, *eq;
    const ecodoc_ca_option_t  *o;

    n = 0;
    rest = 0;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (rest || arg[0] != '-' || arg[1] == '\0') {

            if (next != NULL) {
                *next = i;
                return ECODOC_CA_OK;
            }

            if (n == npos) {
                ecodoc_ca_usage_error("%s: unexpected argument \"%s\"",
                                      argv[0], arg);
                return ECODOC_CA_USAGE;
            }

            pos[n++] = argv[i];
            continue;
        }

        if (strcmp(arg, "--") == 0) {

            if (next != NULL) {
                *next = i + 1;
                return ECODOC_CA_OK;
            }

            rest = 1;
            continue;
        }

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            ecodoc_ca_usage();
            exit(ECODOC_CA_OK);
        }

        eq = strchr(arg, '=');
        len = (eq != NULL) ? (size_t) (eq - arg) : strlen(arg);

        o = ecodoc_ca_find_option(opts, arg, len);

        if (o == NULL) {
            /* argv[0] names a command, but not for the global options */
            ecodoc_ca_usage_error("%s%sunknown option \"%.*s\"",
                                  next ? "" : argv[0], next ? "" : ": ",
                                  (int) len, arg);
            return ECODOC_CA_USAGE;
        }

        if (!o->has_arg) {

            if (eq != NULL) {
                ecodoc_ca_usage_error("option %s takes no value", o->name);
                return ECODOC_CA_USAGE;
            }

            *o->value = "1";

        } else if (eq != NULL) {
            *o->value = eq + 1;

        } else if (i + 1 < argc) {
            *o->value = argv[++i];

        } else {
            ecodoc_ca_usage_error("option %s needs a value", o->name);
            return ECODOC_CA_USAGE;
        }
    }

    if (next != NULL) {
        *next = argc;
        return ECODOC_CA_OK;
    }

    if (n < npos) {
        ecodoc_ca_usage_error("%s: missing argument", argv[0]);
        return ECODOC_CA_USAGE;
    }

    return ECODOC_CA_OK;
}


static const char *
ecodoc_ca_env(const char *name, const char *dflt)
{
    const char  *v;

    v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : dflt;
}


int
main(int argc, char **argv)
{
    int           rc, next;
    long long     db;
    const char   *db_s;
    ecodoc_ca_t   ca;

    ecodoc_ca_option_t  opts[] = {
        { "--redis", 1, &ca.redis_addr },
        { "--redis-password", 1, &ca.redis_password },
        { "--db", 1, &db_s },
        { "--prefix", 1, &ca.prefix },
        { "--redis-sentinel", 1, &ca.sentinel },
        { "--sentinel-password", 1, &ca.sentinel_password },
        { "--redis-tls-ca", 1, &ca.tls_ca },
        { "--redis-tls-cert", 1, &ca.tls_cert },
        { "--redis-tls-key", 1, &ca.tls_key },
        { "--redis-tls-name", 1, &ca.tls_name },
        { "--redis-wait", 1, &ca.wait },
        { NULL, 0, NULL }
    };

    /* the default address waits: with a sentinel there is none */
    ca.redis_addr = ecodoc_ca_env("ECODOC_REDIS", NULL);
    ca.redis_password = ecodoc_ca_env("ECODOC_REDIS_PASSWORD", NULL);
    ca.prefix = ecodoc_ca_env("ECODOC_PREFIX", ECODOC_CA_DEFAULT_PREFIX);
    ca.sentinel = ecodoc_ca_env("ECODOC_REDIS_SENTINEL", NULL);
    ca.sentinel_password = ecodoc_ca_env("ECODOC_SENTINEL_PASSWORD", NULL);
    ca.tls_ca = ecodoc_ca_env("ECODOC_REDIS_TLS_CA", NULL);
    ca.tls_cert = ecodoc_ca_env("ECODOC_REDIS_TLS_CERT", NULL);
    ca.tls_key = ecodoc_ca_env("ECODOC_REDIS_TLS_KEY", NULL);
    ca.tls_name = ecodoc_ca_env("ECODOC_REDIS_TLS_NAME", NULL);
    ca.wait = ecodoc_ca_env("ECODOC_REDIS_WAIT", NULL);
    ca.redis = NULL;
    db_s = ecodoc_ca_env("ECODOC_REDIS_DB", "0");

    if (argc < 1) {
        return ECODOC_CA_USAGE;
    }

    rc = ecodoc_ca_options(argc, argv, opts, NULL, 0, &next);
    if (rc != ECODOC_CA_OK) {
        return rc;
    }

    if (ecodoc_ca_number(db_s, 0, INT_MAX, &db) != 0) {
        ecodoc_ca_usage_error("invalid database number \"%s\"", db_s);
        return ECODOC_CA_USAGE;
    }

    ca.db = (long) db;

    if (ca.redis_password != NULL && ca.redis_password[0] == '\0') {
        ca.redis_password = NULL;
    }

    if (ca.sentinel_password != NULL && ca.sentinel_password[0] == '\0') {
        ca.sentinel_password = NULL;
    }

    if (strlen(ca.prefix) > ECODOC_CA_PREFIX_MAX) {
        ecodoc_ca_usage_error("key prefix longer than %d bytes",
                              ECODOC_CA_PREFIX_MAX);
        return ECODOC_CA_USAGE;
    }

    rc = ecodoc_ca_redis_config(&ca);
    if (rc != ECODOC_CA_OK) {
        return rc;
    }

    rc = ecodoc_ca_dispatch(&ca, ecodoc_ca_commands, "command",
                            argc - next, argv + next);

    /* written, but a failover could still undo it */
    if (rc != ECODOC_CA_USAGE && ecodoc_ca_redis_unconfirmed(&ca)) {
        rc = ECODOC_CA_UNCONFIRMED;
    }

    ecodoc_ca_redis_free(&ca);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        ecodoc_ca_error("cannot write to standard output");
        return ECODOC_CA_ERROR;
    }

    return rc;
}
