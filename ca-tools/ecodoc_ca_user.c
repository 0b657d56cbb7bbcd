/*
 * ecodoc-ca user: add, reset-password, show, list, unlock and delete user
 * IDs; every change is one script of lua/, which writes the audit record.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ecodoc_passwd.h"
#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_RANDOM_PASSWD  16


typedef struct {
    int        initial;
    int        locked;
    long long  failures;
    long long  created;
} ecodoc_ca_user_rec_t;


/* a user ID of user list: an offset while scanning, then the ID */

typedef union {
    size_t     off;               /* while scanning: offset in buf */
    char      *p;                 /* once scanned: the ID */
} ecodoc_ca_user_name_t;


static int ecodoc_ca_user_add(ecodoc_ca_t *ca, int argc, char **argv);
static int ecodoc_ca_user_reset(ecodoc_ca_t *ca, int argc, char **argv);
static int ecodoc_ca_user_show(ecodoc_ca_t *ca, int argc, char **argv);
static int ecodoc_ca_user_list(ecodoc_ca_t *ca, int argc, char **argv);
static int ecodoc_ca_user_unlock(ecodoc_ca_t *ca, int argc, char **argv);
static int ecodoc_ca_user_delete(ecodoc_ca_t *ca, int argc, char **argv);


static const ecodoc_ca_command_t  ecodoc_ca_user_commands[] = {
    { "add", ecodoc_ca_user_add, NULL },
    { "reset-password", ecodoc_ca_user_reset, NULL },
    { "show", ecodoc_ca_user_show, NULL },
    { "list", ecodoc_ca_user_list, NULL },
    { "unlock", ecodoc_ca_user_unlock, NULL },
    { "delete", ecodoc_ca_user_delete, NULL },
    { NULL, NULL, NULL }
};


int
ecodoc_ca_user(ecodoc_ca_t *ca, int argc, char **argv)
{
    return ecodoc_ca_dispatch(ca, ecodoc_ca_user_commands, "user command",
                              argc - 1, argv + 1);
}


/*
 * A changing script of lua/user_*.lua for user, with the stored password
 * hash or NULL: 1 done, 0 no such user (add: exists), -1 reported.
 */

static int
ecodoc_ca_user_change(ecodoc_ca_t *ca, const char *script, const char *user,
    const char *stored)
{
    int          rc;
    redisReply  *r;
    const char  *args[2];

    args[0] = user;
    args[1] = stored;

    r = ecodoc_ca_redis_script(ca, script, ECODOC_CA_REPLY_ANY, "cli", "",
                               stored != NULL ? 2 : 1, args);
    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_INTEGER
        || (r->integer != 0 && r->integer != 1))
    {
        ecodoc_ca_error("unexpected reply to Redis EVAL for user %s", user);
        freeReplyObject(r);
        return -1;
    }

    rc = (int) r->integer;

    freeReplyObject(r);

    return rc;
}


/* parses "USER" alone: the commands that take nothing else */

static int
ecodoc_ca_user_arg(int argc, char **argv, char **user)
{
    static const ecodoc_ca_option_t  none[] = { { NULL, 0, NULL } };

    if (ecodoc_ca_options(argc, argv, none, user, 1, NULL) != ECODOC_CA_OK
        || ecodoc_ca_check_user(*user) != 0)
    {
        return ECODOC_CA_USAGE;
    }

    return ECODOC_CA_OK;
}


/* runs a changing script for "USER" that needs no other argument */

static int
ecodoc_ca_user_simple(ecodoc_ca_t *ca, int argc, char **argv,
    const char *script, const char *done)
{
    int    rc;
    char  *user, what[ECODOC_CA_USER_MAX + 32];

    if (ecodoc_ca_user_arg(argc, argv, &user) != ECODOC_CA_OK) {
        return ECODOC_CA_USAGE;
    }

    rc = ecodoc_ca_user_change(ca, script, user, NULL);

    if (rc < 0) {
        return ECODOC_CA_ERROR;
    }

    if (rc == 0) {
        ecodoc_ca_error("no such user: %s", user);
        return ECODOC_CA_ERROR;
    }

    snprintf(what, sizeof(what), "user %s %s", user, done);

    /* done only once the replicas have it */
    if (ecodoc_ca_redis_confirm(ca, what) != ECODOC_CA_OK) {
        return ECODOC_CA_UNCONFIRMED;
    }

    printf("%s\n", what);

    return ECODOC_CA_OK;
}


/* one line of stdin, CRLF or LF stripped, checked; bad input: USAGE */

static int
ecodoc_ca_user_read_password(char buf[ECODOC_PASSWD_MAX_INPUT + 2],
    size_t *len)
{
    int     ch;
    size_t  i, n;

    n = 0;

    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n == ECODOC_PASSWD_MAX_INPUT + 1) {
            ecodoc_ca_error("password longer than %d bytes",
                            ECODOC_PASSWD_MAX_INPUT);
            return ECODOC_CA_USAGE;
        }

        buf[n++] = (char) ch;
    }

    if (ferror(stdin)) {
        ecodoc_ca_error("cannot read the password from standard input");
        return ECODOC_CA_ERROR;
    }

    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }

    if (n == 0) {
        ecodoc_ca_error("empty password on standard input");
        return ECODOC_CA_USAGE;
    }

    if (n > ECODOC_PASSWD_MAX_INPUT) {
        ecodoc_ca_error("password longer than %d bytes",
                        ECODOC_PASSWD_MAX_INPUT);
        return ECODOC_CA_USAGE;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f) {
            ecodoc_ca_error("the password contains a control character");
            return ECODOC_CA_USAGE;
        }
    }

    buf[n] = '\0';
    *len = n;

    return ECODOC_CA_OK;
}


/* add's extras: a certificate password and the registration notice */

typedef struct {
    const char  *enroll_url;
    const char  *site_url;
    const char  *days;
} ecodoc_ca_user_enroll_t;


static int
ecodoc_ca_user_enroll(ecodoc_ca_t *ca, const char *user,
    ecodoc_ca_user_enroll_t *e, unsigned cost)
{
    char        code[ECODOC_CA_CODE_LEN + 1];
    long long   days;

    days = ECODOC_CA_ENROLL_DAYS;

    if (e->days != NULL) {
        ecodoc_ca_number(e->days, 0, 365, &days);
    }

    if (ecodoc_ca_enroll_new(ca, user, (long) days, cost, 0, code) < 0) {
        ecodoc_ca_error("user %s was added without a certificate password; "
                        "run: ecodoc-ca enroll-code %s", user, user);
        return ECODOC_CA_ERROR;
    }

    printf("certificate password: %s\n--- notice ---\n", code);
    OPENSSL_cleanse(code, sizeof(code));

    ecodoc_ca_enroll_notice(user, ecodoc_ca_enroll_url(e->enroll_url,
                                                       e->site_url),
                            ecodoc_ca_site_url(e->site_url));

    return ECODOC_CA_OK;
}


/*
 * add and reset-password: USER [--password-stdin] [--cost LN], a new
 * initial password hashed and stored by the script; existing: whether
 * the script wants the user to be there already.
 */

static int
ecodoc_ca_user_password(ecodoc_ca_t *ca, int argc, char **argv,
    const char *script, int existing)
{
    int                       rc;
    char                     *user, stored[ECODOC_PASSWD_LEN],
                              pw[ECODOC_PASSWD_MAX_INPUT + 2];
    size_t                    len;
    unsigned                  cost;
    long long                 days;
    const char               *from_stdin, *cost_s;
    ecodoc_ca_user_enroll_t   e;

    ecodoc_ca_option_t  opts[] = {
        { "--password-stdin", 0, &from_stdin },
        { "--cost", 1, &cost_s },
        { "--enroll-url", 1, &e.enroll_url },
        { "--site-url", 1, &e.site_url },
        { "--enroll-days", 1, &e.days },
        { NULL, 0, NULL }
    };

    from_stdin = NULL;
    cost_s = NULL;
    memset(&e, 0, sizeof(e));

    if (ecodoc_ca_options(argc, argv, opts, &user, 1, NULL) != ECODOC_CA_OK
        || ecodoc_ca_check_user(user) != 0
        || ecodoc_ca_cost(cost_s, &cost) != 0)
    {
        return ECODOC_CA_USAGE;
    }

    if (existing && (e.enroll_url || e.site_url || e.days)) {
        ecodoc_ca_usage_error("%s: --enroll-url, --site-url and "
                              "--enroll-days go with user add", argv[0]);
        return ECODOC_CA_USAGE;
    }

    if (e.days != NULL && ecodoc_ca_number(e.days, 0, 365, &days) != 0) {
        ecodoc_ca_usage_error("invalid --enroll-days \"%s\": use 0..365",
                              e.days);
        return ECODOC_CA_USAGE;
    }

    if (from_stdin != NULL) {
        rc = ecodoc_ca_user_read_password(pw, &len);
        if (rc != ECODOC_CA_OK) {
            OPENSSL_cleanse(pw, sizeof(pw));
            return rc;
        }

    } else if (ecodoc_passwd_random(pw, ECODOC_CA_RANDOM_PASSWD) == 0) {
        len = ECODOC_CA_RANDOM_PASSWD;

    } else {
        ecodoc_ca_error("cannot make a random password");
        return ECODOC_CA_ERROR;
    }

    if (ecodoc_passwd_hash(pw, len, cost, ECODOC_SCRYPT_R, ECODOC_SCRYPT_P,
                           stored) != 0)
    {
        OPENSSL_cleanse(pw, sizeof(pw));
        ecodoc_ca_error("cannot hash the password");
        return ECODOC_CA_ERROR;
    }

    rc = ecodoc_ca_user_change(ca, script, user, stored);

    if (rc == 1) {
        /* printed even so: the password is lost otherwise (exit 3) */
        (void) ecodoc_ca_redis_confirm(ca, existing ? "the new password"
                                                    : "the new user");

        printf("user: %s\ninitial password: %s\n", user,
               from_stdin != NULL ? "(from stdin)" : pw);

    } else if (rc == 0 && existing) {
        ecodoc_ca_error("no such user: %s", user);

    } else if (rc == 0) {
        ecodoc_ca_error("user %s already exists", user);
    }

    OPENSSL_cleanse(pw, sizeof(pw));

    if (rc == 1 && !existing) {
        return ecodoc_ca_user_enroll(ca, user, &e, cost);
    }

    return rc == 1 ? ECODOC_CA_OK : ECODOC_CA_ERROR;
}


static int
ecodoc_ca_user_add(ecodoc_ca_t *ca, int argc, char **argv)
{
    return ecodoc_ca_user_password(ca, argc, argv, ecodoc_lua_user_add, 0);
}


static int
ecodoc_ca_user_reset(ecodoc_ca_t *ca, int argc, char **argv)
{
    return ecodoc_ca_user_password(ca, argc, argv, ecodoc_lua_user_reset, 1);
}


static int
ecodoc_ca_user_unlock(ecodoc_ca_t *ca, int argc, char **argv)
{
    return ecodoc_ca_user_simple(ca, argc, argv, ecodoc_lua_user_unlock,
                                 "unlocked");
}


static int
ecodoc_ca_user_delete(ecodoc_ca_t *ca, int argc, char **argv)
{
    return ecodoc_ca_user_simple(ca, argc, argv, ecodoc_lua_user_delete,
                                 "deleted");
}


/* a "0"/"1" field */

static int
ecodoc_ca_user_flag(const redisReply *h, const char *name, int *out)
{
    long long  v;

    if (ecodoc_ca_number(ecodoc_ca_redis_field(h, name), 0, 1, &v) != 0) {
        return -1;
    }

    *out = (int) v;

    return 0;
}


/*
 * Reads a checked HGETALL array into rec; NULL when well-formed, else the
 * name of the first field that is missing or invalid.
 */

static const char *
ecodoc_ca_user_record(const redisReply *h, ecodoc_ca_user_rec_t *rec)
{
    long long    changed;
    const char  *pw;

    pw = ecodoc_ca_redis_field(h, "pw");
    if (pw == NULL || pw[0] == '\0') {
        return "pw";
    }

    if (ecodoc_ca_user_flag(h, "initial", &rec->initial) != 0) {
        return "initial";
    }

    if (ecodoc_ca_user_flag(h, "locked", &rec->locked) != 0) {
        return "locked";
    }

    if (ecodoc_ca_number(ecodoc_ca_redis_field(h, "failures"), 0,
                         1000000000, &rec->failures) != 0)
    {
        return "failures";
    }

    if (ecodoc_ca_number(ecodoc_ca_redis_field(h, "created"), 0,
                         (long long) 1 << 40, &rec->created) != 0)
    {
        return "created";
    }

    if (ecodoc_ca_number(ecodoc_ca_redis_field(h, "changed"), 0,
                         (long long) 1 << 40, &changed) != 0)
    {
        return "changed";
    }

    return NULL;
}


static int
ecodoc_ca_user_cmp(const void *a, const void *b)
{
    return strcmp(((const ecodoc_ca_user_name_t *) a)->p,
                  ((const ecodoc_ca_user_name_t *) b)->p);
}


static int
ecodoc_ca_user_cmp_reply(const void *a, const void *b)
{
    return strcmp((*(redisReply * const *) a)->str,
                  (*(redisReply * const *) b)->str);
}


static int
ecodoc_ca_user_show(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                    rc;
    char                  *user, created[ECODOC_CA_TIME_LEN];
    size_t                 i;
    redisReply            *r, *h, *certs;
    const char            *bad;
    ecodoc_ca_user_rec_t   rec;

    if (ecodoc_ca_user_arg(argc, argv, &user) != ECODOC_CA_OK) {
        return ECODOC_CA_USAGE;
    }

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_user_show, ECODOC_CA_REPLY_ANY,
                               "cli", "", 1, (const char **) &user);
    if (r == NULL) {
        return ECODOC_CA_ERROR;
    }

    rc = ECODOC_CA_ERROR;

    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        ecodoc_ca_error("no such user: %s", user);
        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || ecodoc_ca_redis_strings(r->element[0], 2) != 0
        || ecodoc_ca_redis_strings(r->element[1], 1) != 0
        || r->element[2]->type != REDIS_REPLY_INTEGER)
    {
        ecodoc_ca_error("unexpected reply to Redis EVAL for user %s", user);
        goto done;
    }

    h = r->element[0];
    certs = r->element[1];

    bad = ecodoc_ca_user_record(h, &rec);
    if (bad != NULL) {
        ecodoc_ca_error("malformed record for user %s: field \"%s\" is "
                        "missing or invalid", user, bad);
        goto done;
    }

    /* hiredis leaves element NULL in an empty array: qsort() of NULL,
       even with 0 elements, is undefined (UBSan, make test-asan) */
    if (certs->elements > 1) {
        qsort(certs->element, certs->elements, sizeof(redisReply *),
              ecodoc_ca_user_cmp_reply);
    }

    ecodoc_ca_iso_time(created, (time_t) rec.created, -1);

    printf("user: %s\n"
           "state: %s\n"
           "failures: %lld\n"
           "initial password: %s\n"
           "created: %s\n"
           "certificates: ",
           user, rec.locked ? "locked" : "active", rec.failures,
           rec.initial ? "yes" : "no", created);

    for (i = 0; i < certs->elements; i++) {
        printf("%s%s", i ? "," : "", certs->element[i]->str);
    }

    printf("%s\nsessions: %lld\n", certs->elements ? "" : "none",
           r->element[2]->integer);

    rc = ECODOC_CA_OK;

done:

    freeReplyObject(r);

    return rc;
}


/*
 * user list: the user IDs found by SCAN, sorted, then their records in
 * batches of pipelined HGETALL and SCARD.  The IDs are kept in one buffer,
 * one after the other, and each row in a few bytes, so that a million
 * users take some 40 MB; the table's columns are as wide as their widest
 * cell, known only once every row is read.
 */

#define ECODOC_CA_USER_BATCH  256

enum {
    ECODOC_CA_USER_ACTIVE = 0,
    ECODOC_CA_USER_LOCKED,
    ECODOC_CA_USER_MALFORMED,
    ECODOC_CA_USER_GONE           /* deleted since the SCAN */
};


typedef struct {
    char                    *buf;
    size_t                   len;
    size_t                   size;
    ecodoc_ca_user_name_t   *name;
    size_t                   n;
    size_t                   nsize;
    size_t                   skipped;    /* keys under "user:" no user ID */
} ecodoc_ca_user_names_t;


typedef struct {
    long long      failures;
    long long      certs;
    unsigned char  state;
    unsigned char  initial;
} ecodoc_ca_user_row_t;


static int
ecodoc_ca_user_names_add(ecodoc_ca_user_names_t *names, const char *s)
{
    char                   *b;
    size_t                  len;
    ecodoc_ca_user_name_t  *p;

    if (!ecodoc_ca_valid_user(s)) {
        names->skipped++;
        return 0;
    }

    len = strlen(s) + 1;

    if (names->len + len > names->size) {
        names->size = names->size ? names->size * 2 : 4096;
        b = realloc(names->buf, names->size);
        if (b == NULL) {
            return -1;
        }
        names->buf = b;
    }

    if (names->n == names->nsize) {
        names->nsize = names->nsize ? names->nsize * 2 : 256;
        p = realloc(names->name, names->nsize * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        names->name = p;
    }

    memcpy(names->buf + names->len, s, len);
    names->name[names->n++].off = names->len;
    names->len += len;

    return 0;
}


/* a batch of SCAN's keys user:*: those that are users, by their IDs */

static int
ecodoc_ca_user_scanned(ecodoc_ca_t *ca, const redisReply *keys, void *data)
{
    ecodoc_ca_user_names_t *names = data;

    char         base[ECODOC_CA_KEY_LEN];
    size_t       i, blen;
    const char  *s;

    ecodoc_ca_redis_key(ca, base, "user:", "", "");
    blen = strlen(base);

    for (i = 0; i < keys->elements; i++) {
        s = keys->element[i]->str;

        /* user:U:certs and the like; user IDs never hold ':' */
        if (strncmp(s, base, blen) != 0 || strchr(s + blen, ':')) {
            continue;
        }

        if (ecodoc_ca_user_names_add(names, s + blen) != 0) {
            ecodoc_ca_error("out of memory");
            return -1;
        }
    }

    return 0;
}


/* HGETALL and SCARD replies of one user into a row; -1 error */

static int
ecodoc_ca_user_row(ecodoc_ca_t *ca, const char *user,
    ecodoc_ca_user_row_t *row)
{
    int                    rc;
    redisReply            *h, *n;
    const char            *bad;
    ecodoc_ca_user_rec_t   rec;

    h = ecodoc_ca_redis_reply(ca, REDIS_REPLY_ARRAY, "HGETALL");

    /* an error reply (reported) leaves the connection usable */
    n = !ecodoc_ca_redis_up(ca) ? NULL
                       : ecodoc_ca_redis_reply(ca, REDIS_REPLY_INTEGER,
                                               "SCARD");

    rc = -1;

    if (n == NULL) {
        goto done;
    }

    if (h != NULL && ecodoc_ca_redis_strings(h, 2) != 0) {
        ecodoc_ca_error("unexpected reply to Redis HGETALL");
        goto done;
    }

    rc = 0;

    if (h != NULL && h->elements == 0) {
        row->state = ECODOC_CA_USER_GONE;
        goto done;
    }

    row->certs = n->integer;

    bad = (h != NULL) ? ecodoc_ca_user_record(h, &rec) : "";

    if (bad != NULL) {
        if (bad[0] != '\0') {
            ecodoc_ca_error("malformed record for user %s: field \"%s\" "
                            "is missing or invalid", user, bad);
        }

        row->state = ECODOC_CA_USER_MALFORMED;
        goto done;
    }

    row->state = rec.locked ? ECODOC_CA_USER_LOCKED : ECODOC_CA_USER_ACTIVE;
    row->failures = rec.failures;
    row->initial = (unsigned char) rec.initial;

done:

    if (h != NULL) {
        freeReplyObject(h);
    }

    if (n != NULL) {
        freeReplyObject(n);
    }

    return rc;
}


/* the rows of users [from, to): their commands pipelined, then read */

static int
ecodoc_ca_user_rows(ecodoc_ca_t *ca, ecodoc_ca_user_names_t *names,
    ecodoc_ca_user_row_t *rows, size_t from, size_t to)
{
    char         key[ECODOC_CA_KEY_LEN], certs[ECODOC_CA_KEY_LEN];
    size_t       i;
    const char  *args[2];

    for (i = from; i < to; i++) {
        ecodoc_ca_redis_key(ca, key, "user:", names->name[i].p, "");
        ecodoc_ca_redis_key(ca, certs, "user:", names->name[i].p, ":certs");

        args[0] = "HGETALL";
        args[1] = key;

        if (ecodoc_ca_redis_append(ca, 2, args) != ECODOC_CA_OK) {
            return -1;
        }

        args[0] = "SCARD";
        args[1] = certs;

        if (ecodoc_ca_redis_append(ca, 2, args) != ECODOC_CA_OK) {
            return -1;
        }
    }

    for (i = from; i < to; i++) {
        if (ecodoc_ca_user_row(ca, names->name[i].p, &rows[i]) != 0) {
            return -1;
        }
    }

    return 0;
}


/* a row's cells as the table shows them */

static void
ecodoc_ca_user_cells(const char *user, const ecodoc_ca_user_row_t *row,
    const char *cell[5], char failures[24], char certs[24])
{
    static const char  *state[] = { "active", "locked", "malformed" };

    cell[0] = user;
    cell[1] = state[row->state];

    snprintf(certs, 24, "%lld", row->certs);
    cell[4] = certs;

    if (row->state == ECODOC_CA_USER_MALFORMED) {
        cell[2] = "?";
        cell[3] = "?";
        return;
    }

    snprintf(failures, 24, "%lld", row->failures);
    cell[2] = failures;
    cell[3] = row->initial ? "yes" : "no";
}


static void
ecodoc_ca_user_table(ecodoc_ca_user_names_t *names,
    ecodoc_ca_user_row_t *rows)
{
    int          width[5];
    char         failures[24], certs[24];
    size_t       i, j, len;
    const char  *cell[5];

    static const char  *head[] = {
        "USER", "STATE", "FAILURES", "INITIAL", "CERTS"
    };

    for (j = 0; j < 5; j++) {
        width[j] = (int) strlen(head[j]);
    }

    for (i = 0; i < names->n; i++) {
        if (rows[i].state == ECODOC_CA_USER_GONE) {
            continue;
        }

        ecodoc_ca_user_cells(names->name[i].p, &rows[i], cell, failures,
                             certs);

        for (j = 0; j < 5; j++) {
            len = strlen(cell[j]);
            if (len > (size_t) width[j]) {
                width[j] = (int) len;
            }
        }
    }

    for (j = 0; j < 4; j++) {
        printf("%-*s  ", width[j], head[j]);
    }

    printf("%s\n", head[4]);

    for (i = 0; i < names->n; i++) {
        if (rows[i].state == ECODOC_CA_USER_GONE) {
            continue;
        }

        ecodoc_ca_user_cells(names->name[i].p, &rows[i], cell, failures,
                             certs);

        for (j = 0; j < 4; j++) {
            printf("%-*s  ", width[j], cell[j]);
        }

        printf("%s\n", cell[4]);
    }
}


static int
ecodoc_ca_user_list(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                      rc;
    size_t                   i, n, to;
    ecodoc_ca_user_row_t    *rows;
    ecodoc_ca_user_names_t   names;

    static const ecodoc_ca_option_t  none[] = { { NULL, 0, NULL } };

    if (ecodoc_ca_options(argc, argv, none, NULL, 0, NULL) != ECODOC_CA_OK)
    {
        return ECODOC_CA_USAGE;
    }

    memset(&names, 0, sizeof(names));
    rows = NULL;
    rc = ECODOC_CA_ERROR;

    if (ecodoc_ca_redis_scan(ca, "user:*", ecodoc_ca_user_scanned, &names)
        != 0)
    {
        goto done;
    }

    if (names.skipped) {
        ecodoc_ca_error("skipped %zu key(s) under %suser: that do not name "
                        "a valid user ID", names.skipped, ca->prefix);
    }

    /* the buffer no longer moves: offsets become pointers */
    for (i = 0; i < names.n; i++) {
        names.name[i].p = names.buf + names.name[i].off;
    }

    if (names.n > 1) {   /* qsort() of NULL, even with 0, is undefined */
        qsort(names.name, names.n, sizeof(names.name[0]), ecodoc_ca_user_cmp);
    }

    /* SCAN may return a key twice */
    for (i = 0, n = 0; i < names.n; i++) {
        if (n > 0 && strcmp(names.name[n - 1].p, names.name[i].p) == 0) {
            continue;
        }
        names.name[n++] = names.name[i];
    }
    names.n = n;

    rows = calloc(n + 1, sizeof(ecodoc_ca_user_row_t));
    if (rows == NULL) {
        ecodoc_ca_error("out of memory");
        goto done;
    }

    for (i = 0; i < n; i = to) {
        to = (n - i > ECODOC_CA_USER_BATCH) ? i + ECODOC_CA_USER_BATCH : n;

        if (ecodoc_ca_user_rows(ca, &names, rows, i, to) != 0) {
            goto done;
        }
    }

    ecodoc_ca_user_table(&names, rows);

    rc = ECODOC_CA_OK;

    for (i = 0; i < n; i++) {
        if (rows[i].state == ECODOC_CA_USER_MALFORMED) {
            rc = ECODOC_CA_ERROR;
        }
    }

done:

    free(names.buf);
    free(names.name);
    free(rows);

    return rc;
}
