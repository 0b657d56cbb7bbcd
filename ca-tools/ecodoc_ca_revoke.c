/*
 * ecodoc-ca revoke and crl: revocation in Redis (effective at the gate's
 * next request) and in the CA database, and the signed CRL file.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


/* RFC 5280 CRLReason codes for a client certificate */
static const struct {
    const char  *name;
    long         code;
} ecodoc_ca_reasons[] = {
    { "unspecified", 0 },
    { "keyCompromise", 1 },
    { "affiliationChanged", 3 },
    { "superseded", 4 },
    { "cessationOfOperation", 5 },
    { "privilegeWithdrawn", 9 },
    { NULL, 0 }
};


static long
ecodoc_ca_reason_code(const char *name)
{
    int  i;

    for (i = 0; ecodoc_ca_reasons[i].name != NULL; i++) {
        if (strcasecmp(ecodoc_ca_reasons[i].name, name) == 0) {
            return ecodoc_ca_reasons[i].code;
        }
    }

    return -1;
}


/* DIR/crlnumber, incremented; -1 reported */

static long long
ecodoc_ca_crl_number(ecodoc_ca_pki_t *pki)
{
    FILE       *f;
    char        path[1200], buf[32];
    long long   n;

    snprintf(path, sizeof(path), "%s/crlnumber", pki->dir);

    f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        ecodoc_ca_error("cannot read %s: %s", path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }

    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';

    if (ecodoc_ca_number(buf, 1, (long long) 1 << 62, &n) != 0) {
        ecodoc_ca_error("%s is malformed", path);
        return -1;
    }

    snprintf(buf, sizeof(buf), "%lld\n", n + 1);

    if (ecodoc_ca_write_file(path, buf, strlen(buf), 0600) != 0) {
        return -1;
    }

    return n;
}


static int
ecodoc_ca_crl_entry(X509_CRL *crl, const ecodoc_ca_rec_t *rec)
{
    int             ok;
    long            code;
    BIGNUM         *bn;
    ASN1_TIME      *t;
    X509_REVOKED   *rv;
    ASN1_INTEGER   *serial;
    ASN1_ENUMERATED *e;

    bn = NULL;
    serial = NULL;
    e = NULL;
    rv = X509_REVOKED_new();
    t = ASN1_TIME_set(NULL, (time_t) rec->revoked);
    code = ecodoc_ca_reason_code(rec->reason);

    ok = rv != NULL && t != NULL
         && BN_hex2bn(&bn, rec->serial) > 0
         && (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL
         && X509_REVOKED_set_serialNumber(rv, serial) == 1
         && X509_REVOKED_set_revocationDate(rv, t) == 1;

    /* RFC 5280: no reason code rather than "unspecified" */
    if (ok && code > 0) {
        e = ASN1_ENUMERATED_new();
        ok = e != NULL && ASN1_ENUMERATED_set(e, code) == 1
             && X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, e, 0, 0) == 1;
    }

    ok = ok && X509_CRL_add0_revoked(crl, rv) == 1;

    if (!ok) {
        X509_REVOKED_free(rv);
    }

    ASN1_ENUMERATED_free(e);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(t);
    BN_free(bn);

    return ok ? 0 : -1;
}


static int
ecodoc_ca_crl_aki(X509_CRL *crl, X509 *issuer)
{
    int              ok;
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);

    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
                              "keyid:always");
    if (ext == NULL) {
        return -1;
    }

    ok = X509_CRL_add_ext(crl, ext, -1);
    X509_EXTENSION_free(ext);

    return ok ? 0 : -1;
}


int
ecodoc_ca_crl_write(ecodoc_ca_pki_t *pki, ecodoc_ca_db_t *db, long days)
{
    int            rc, ok;
    BIO           *b;
    char           path[1200], *data;
    long           len;
    size_t         i;
    time_t         now;
    X509_CRL      *crl;
    ASN1_TIME     *last, *next;
    long long      number;
    ASN1_INTEGER  *num;

    number = ecodoc_ca_crl_number(pki);
    if (number < 0) {
        return -1;
    }

    now = time(NULL);
    crl = X509_CRL_new();
    last = ASN1_TIME_set(NULL, now);
    next = ASN1_TIME_adj(NULL, now, (int) days, 0);
    num = ASN1_INTEGER_new();
    b = BIO_new(BIO_s_mem());

    ok = crl != NULL && last != NULL && next != NULL && num != NULL
         && b != NULL
         && X509_CRL_set_version(crl, 1) == 1
         && X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki->cert))
            == 1
         && X509_CRL_set1_lastUpdate(crl, last) == 1
         && X509_CRL_set1_nextUpdate(crl, next) == 1
         && ASN1_INTEGER_set_int64(num, number) == 1
         && X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1
         && ecodoc_ca_crl_aki(crl, pki->cert) == 0;

    for (i = 0; ok && i < db->n; i++) {
        if (db->rec[i].status == 'R') {
            ok = ecodoc_ca_crl_entry(crl, &db->rec[i]) == 0;
        }
    }

    ok = ok && X509_CRL_sort(crl) == 1
         && X509_CRL_sign(crl, pki->key, EVP_sha256()) > 0
         && PEM_write_bio_X509_CRL(b, crl) == 1;

    rc = -1;

    if (!ok) {
        ecodoc_ca_error("cannot make the CRL: %s", ecodoc_ca_ssl_error());

    } else {
        len = BIO_get_mem_data(b, &data);
        snprintf(path, sizeof(path), "%s/crl.pem", pki->dir);
        rc = ecodoc_ca_write_file(path, data, (size_t) len, 0644);
    }

    BIO_free(b);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(next);
    ASN1_TIME_free(last);
    X509_CRL_free(crl);

    return rc;
}


/* a serial as given (hex, maybe 0x and colons) in the database's form */

static int
ecodoc_ca_norm_serial(const char *s, char out[ECODOC_CA_SERIAL_LEN])
{
    size_t  n;

    if (strncasecmp(s, "0x", 2) == 0) {
        s += 2;
    }

    for (n = 0; *s != '\0'; s++) {
        if (*s == ':') {
            continue;
        }

        if (!isxdigit((unsigned char) *s) || n == ECODOC_CA_SERIAL_LEN - 1) {
            return -1;
        }

        if (n == 0 && *s == '0') {
            continue;
        }

        out[n++] = (char) toupper((unsigned char) *s);
    }

    out[n] = '\0';

    return n > 0 ? 0 : -1;
}


static int
ecodoc_ca_same_serial(const char *a, const char *b)
{
    while (*a == '0') {
        a++;
    }

    while (*b == '0') {
        b++;
    }

    return strcasecmp(a, b) == 0;
}


/* the user's bound fingerprints (from the gate), for --user */

static redisReply *
ecodoc_ca_bound(ecodoc_ca_t *ca, const char *user)
{
    redisReply  *r;

    r = ecodoc_ca_redis_key_call(ca, REDIS_REPLY_ARRAY, "SMEMBERS", "user:",
                                 user, ":certs");

    if (r != NULL && ecodoc_ca_redis_strings(r, 1) != 0) {
        ecodoc_ca_error("unexpected reply to Redis SMEMBERS");
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


typedef struct {
    const char  *serial;
    const char  *fp;
    const char  *user;
    const char  *reason;
} ecodoc_ca_target_t;


/*
 * the EVAL arguments: fingerprint/user pairs; the count, -1 reported.
 * For --user, *bound gets the user's bound certificates, which argv points
 * into: the caller frees it after argv's last use
 */

static int
ecodoc_ca_targets(ecodoc_ca_t *ca, ecodoc_ca_db_t *db,
    ecodoc_ca_target_t *t, const char **argv, size_t max, int *mark,
    redisReply **bound_out)
{
    size_t        i, j, n;
    redisReply   *bound;
    char          serial[ECODOC_CA_SERIAL_LEN];

    n = 0;

    if (t->serial != NULL && ecodoc_ca_norm_serial(t->serial, serial) != 0) {
        ecodoc_ca_usage_error("invalid serial \"%s\": use hex digits",
                              t->serial);
        return -1;
    }

    for (i = 0; i < db->n && n + 2 <= max; i++) {
        if ((t->serial != NULL
             && ecodoc_ca_same_serial(db->rec[i].serial, serial))
            || (t->fp != NULL && strcasecmp(db->rec[i].fp, t->fp) == 0)
            || (t->user != NULL && strcmp(db->rec[i].user, t->user) == 0
                && db->rec[i].status == 'V'))
        {
            mark[i] = 1;
            argv[n++] = db->rec[i].fp;
            argv[n++] = db->rec[i].user;
        }
    }

    /* a fingerprint or a bound certificate this CA did not issue */
    if (t->fp != NULL && n == 0) {
        ecodoc_ca_error("warning: %s is not in the CA database; revoked at "
                        "the gate, but it cannot be in the CRL", t->fp);
        argv[n++] = t->fp;
        argv[n++] = "";
    }

    if (t->user == NULL) {
        return (int) n;
    }

    bound = ecodoc_ca_bound(ca, t->user);
    if (bound == NULL) {
        return -1;
    }

    *bound_out = bound;

    for (i = 0; i < bound->elements && n + 2 <= max; i++) {
        for (j = 0; j < n; j += 2) {
            if (strcmp(argv[j], bound->element[i]->str) == 0) {
                break;
            }
        }

        if (j == n && strlen(bound->element[i]->str) == ECODOC_CA_FP_LEN - 1)
        {
            argv[n++] = bound->element[i]->str;
            argv[n++] = t->user;
        }
    }

    return (int) n;
}


/*
 * lua/revoke.lua over the fingerprint/user pairs (and, for --user, every
 * certificate of "cancel" in Redis): 1 when its outstanding certificate
 * password was cancelled, 0 when none, -1 reported
 */

static int
ecodoc_ca_revoke_redis(ecodoc_ca_t *ca, const char *reason,
    const char *cancel, const char **pairs, int n)
{
    int           i, rc;
    redisReply   *r;
    const char  **args;

    args = malloc((n + 2) * sizeof(char *));
    if (args == NULL) {
        ecodoc_ca_error("out of memory");
        return -1;
    }

    args[0] = reason;
    args[1] = cancel != NULL ? cancel : "";

    for (i = 0; i < n; i++) {
        args[2 + i] = pairs[i];
    }

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_revoke, REDIS_REPLY_INTEGER,
                               "cli", "", n + 2, args);
    free(args);

    if (r == NULL) {
        return -1;
    }

    rc = (r->integer == 1);
    freeReplyObject(r);

    return rc;
}


static int
ecodoc_ca_revoke_run(ecodoc_ca_t *ca, ecodoc_ca_pki_t *pki,
    ecodoc_ca_target_t *t)
{
    int              rc, n, *mark, db_ok, cancelled, confirmed;
    size_t           i, max;
    time_t           now;
    const char     **pairs, *done;
    redisReply      *bound;
    ecodoc_ca_db_t   db;

    bound = NULL;

    /*
     * the gate must hear of it even when the database is damaged: the
     * revocation then rests on the fingerprint given or the user's bound
     * certificates, and the CRL waits for the repair
     */

    db_ok = (ecodoc_ca_db_read(pki, &db) == 0);

    if (!db_ok) {
        ecodoc_ca_db_free(&db);
        ecodoc_ca_error("revoking at the gate only: repair %s/index.tsv, "
                        "then run ecodoc-ca crl", pki->dir);
    }

    max = 2 * db.n + 2 * 1024 + 2;
    pairs = calloc(max, sizeof(char *));
    mark = calloc(db.n + 1, sizeof(int));
    rc = ECODOC_CA_ERROR;

    if (pairs == NULL || mark == NULL) {
        ecodoc_ca_error("out of memory");
        goto done;
    }

    n = ecodoc_ca_targets(ca, &db, t, pairs, max, mark, &bound);

    if (n < 0) {
        rc = (t->serial != NULL) ? ECODOC_CA_USAGE : ECODOC_CA_ERROR;
        goto done;
    }

    if (n == 0 && t->user == NULL) {
        ecodoc_ca_error("no such certificate");
        goto done;
    }

    /*
     * --user: whoever is revoking all of a user's certificates does not
     * want a new one issued on an old certificate password either, even
     * before any certificate was issued on it
     */

    cancelled = ecodoc_ca_revoke_redis(ca, t->reason, t->user, pairs, n);

    if (cancelled < 0) {
        goto done;
    }

    /* "revoked" only once the replicas have it: a failover keeps it */
    confirmed = (ecodoc_ca_redis_confirm(ca, "the revocation")
                 == ECODOC_CA_OK);
    done = confirmed ? "revoked" : "unconfirmed";

    if (cancelled) {
        printf("certificate password of %s cancelled%s\n", t->user,
               confirmed ? "" : " (unconfirmed)");
    }

    if (n == 0) {
        if (cancelled) {
            rc = ECODOC_CA_OK;

        } else {
            ecodoc_ca_error("no such certificate for %s", t->user);
        }

        goto done;
    }

    if (!db_ok) {
        for (i = 0; i < (size_t) n; i += 2) {
            printf("%s at the gate: %s\n", done, pairs[i]);
        }

        goto done;
    }

    now = time(NULL);

    for (i = 0; i < db.n; i++) {
        if (mark[i] && db.rec[i].status == 'V') {
            db.rec[i].status = 'R';
            db.rec[i].revoked = (long long) now;
            snprintf(db.rec[i].reason, sizeof(db.rec[i].reason), "%s",
                     t->reason);
        }
    }

    if (ecodoc_ca_db_write(pki, &db) != 0
        || ecodoc_ca_crl_write(pki, &db, ECODOC_CA_CRL_DAYS) != 0)
    {
        goto done;
    }

    for (i = 0; i < (size_t) n; i += 2) {
        printf("%s: %s %s\n", done, pairs[i],
               pairs[i + 1][0] != '\0' ? pairs[i + 1] : "-");
    }

    rc = ECODOC_CA_OK;

done:

    if (bound != NULL) {
        freeReplyObject(bound);
    }

    free(mark);
    free(pairs);
    ecodoc_ca_db_free(&db);

    return rc;
}


int
ecodoc_ca_revoke(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                  rc;
    const char          *dir, *passfile;
    ecodoc_ca_pki_t      pki;
    ecodoc_ca_target_t   t;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &dir },
        { "--passphrase-file", 1, &passfile },
        { "--serial", 1, &t.serial },
        { "--fingerprint", 1, &t.fp },
        { "--user", 1, &t.user },
        { "--reason", 1, &t.reason },
        { NULL, 0, NULL }
    };

    memset(&t, 0, sizeof(t));
    dir = NULL;
    passfile = NULL;
    t.reason = "unspecified";

    if (ecodoc_ca_options(argc, argv, opts, NULL, 0, NULL) != ECODOC_CA_OK
        || (dir = ecodoc_ca_dir(dir)) == NULL)
    {
        return ECODOC_CA_USAGE;
    }

    if ((t.serial != NULL) + (t.fp != NULL) + (t.user != NULL) != 1) {
        ecodoc_ca_usage_error("revoke: give one of --serial, --fingerprint "
                              "or --user");
        return ECODOC_CA_USAGE;
    }

    if (t.user != NULL && ecodoc_ca_check_user(t.user) != 0) {
        return ECODOC_CA_USAGE;
    }

    if (t.fp != NULL
        && (strlen(t.fp) != ECODOC_CA_FP_LEN - 1
            || strspn(t.fp, "0123456789abcdef") != ECODOC_CA_FP_LEN - 1))
    {
        ecodoc_ca_usage_error("invalid fingerprint: use the 64 lower-case "
                              "hex digits of the SHA-256");
        return ECODOC_CA_USAGE;
    }

    if (ecodoc_ca_reason_code(t.reason) < 0) {
        ecodoc_ca_usage_error("invalid --reason \"%s\": use unspecified, "
                              "keyCompromise, affiliationChanged, superseded, "
                              "cessationOfOperation or privilegeWithdrawn",
                              t.reason);
        return ECODOC_CA_USAGE;
    }

    if (ecodoc_ca_pki_load(&pki, dir, passfile, 1) != 0
        || ecodoc_ca_db_lock(&pki) != 0)
    {
        ecodoc_ca_pki_free(&pki);
        return ECODOC_CA_ERROR;
    }

    rc = ecodoc_ca_revoke_run(ca, &pki, &t);

    ecodoc_ca_pki_free(&pki);

    return rc;
}


/*
 * The database learns the revocations made at the gate only (a renewal's
 * or a new PC's takeover revokes the old certificate in Redis): each
 * valid record Redis has revoked is marked, with its reason when it is a
 * CRL reason.  0 (the count on stdout), or -1 reported: Redis unreachable
 * leaves the database as it is.
 */

static int
ecodoc_ca_crl_sync(ecodoc_ca_t *ca, ecodoc_ca_db_t *db)
{
    size_t            i, k, n;
    long long         at;
    redisReply       *r;
    const char      **fps, *why;
    ecodoc_ca_rec_t **recs;

    fps = calloc(db->n + 1, sizeof(char *));
    recs = calloc(db->n + 1, sizeof(ecodoc_ca_rec_t *));

    if (fps == NULL || recs == NULL) {
        free(fps);
        free(recs);
        ecodoc_ca_error("out of memory");
        return -1;
    }

    for (k = 0, i = 0; i < db->n; i++) {
        if (db->rec[i].status == 'V') {
            recs[k] = &db->rec[i];
            fps[k++] = db->rec[i].fp;
        }
    }

    r = (k > 0) ? ecodoc_ca_cert_states(ca, fps, k) : NULL;

    if (k > 0 && r == NULL) {
        free(fps);
        free(recs);
        return -1;
    }

    for (n = 0, i = 0; i < k; i++) {
        if (strcmp(r->element[3 * i]->str, "revoked") != 0) {
            continue;
        }

        why = r->element[3 * i + 1]->str;

        if (ecodoc_ca_number(r->element[3 * i + 2]->str, 1,
                             (long long) 1 << 40, &at) != 0)
        {
            at = (long long) time(NULL);
        }

        recs[i]->status = 'R';
        recs[i]->revoked = at;
        snprintf(recs[i]->reason, sizeof(recs[i]->reason), "%s",
                 ecodoc_ca_reason_code(why) >= 0 ? why : "unspecified");
        n++;
    }

    if (r != NULL) {
        freeReplyObject(r);
    }

    free(fps);
    free(recs);

    if (n > 0) {
        printf("%zu revocation%s at the gate added to the CA database\n", n,
               n == 1 ? "" : "s");
    }

    return (int) n;
}


int
ecodoc_ca_crl(ecodoc_ca_t *ca, int argc, char **argv)
{
    int               rc, n;
    long long         days;
    const char       *dir, *passfile, *days_s;
    ecodoc_ca_db_t    db;
    ecodoc_ca_pki_t   pki;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &dir },
        { "--passphrase-file", 1, &passfile },
        { "--days", 1, &days_s },
        { NULL, 0, NULL }
    };

    dir = NULL;
    passfile = NULL;
    days_s = NULL;
    days = ECODOC_CA_CRL_DAYS;

    if (ecodoc_ca_options(argc, argv, opts, NULL, 0, NULL) != ECODOC_CA_OK
        || (dir = ecodoc_ca_dir(dir)) == NULL)
    {
        return ECODOC_CA_USAGE;
    }

    if (days_s != NULL && ecodoc_ca_number(days_s, 1, 3650, &days) != 0) {
        ecodoc_ca_usage_error("invalid --days \"%s\": use 1..3650", days_s);
        return ECODOC_CA_USAGE;
    }

    rc = ECODOC_CA_ERROR;

    if (ecodoc_ca_pki_load(&pki, dir, passfile, 1) == 0
        && ecodoc_ca_db_lock(&pki) == 0
        && ecodoc_ca_db_read(&pki, &db) == 0)
    {
        n = ecodoc_ca_crl_sync(ca, &db);

        if (n < 0) {
            ecodoc_ca_error("warning: the revocations made at the gate only "
                            "are not in this CRL");

        } else if (n > 0 && ecodoc_ca_db_write(&pki, &db) != 0) {
            ecodoc_ca_db_free(&db);
            ecodoc_ca_pki_free(&pki);
            return ECODOC_CA_ERROR;
        }

        if (ecodoc_ca_crl_write(&pki, &db, (long) days) == 0) {
            printf("CRL written to %s/crl.pem\n", dir);
            rc = ECODOC_CA_OK;
        }

        ecodoc_ca_db_free(&db);
    }

    ecodoc_ca_pki_free(&pki);

    return rc;
}
