/*
 * ecodoc-ca init and certs: the CA directory (key, certificate, config)
 * and its database of issued certificates (index.tsv, under a flock).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_INIT_DAYS       3650
#define ECODOC_CA_INIT_SUBJECT    "/O=Ecodoc/CN=Ecodoc Client CA"
#define ECODOC_CA_DB_HEADER                                                  \
    "# serial\tfingerprint\tsubject\tuser\tnot_after\tstatus\trevoked\t"     \
    "reason\n"
#define ECODOC_CA_LINE_MAX        1024


static int ecodoc_ca_valid_org(const char *s);


const char *
ecodoc_ca_dir(const char *opt)
{
    const char  *d;

    d = (opt != NULL) ? opt : getenv("ECODOC_CA_DIR");

    if (d == NULL || d[0] == '\0') {
        ecodoc_ca_usage_error("no CA directory: give --dir DIR or set "
                              "ECODOC_CA_DIR");
        return NULL;
    }

    if (strlen(d) > 900) {
        ecodoc_ca_usage_error("CA directory path too long");
        return NULL;
    }

    return d;
}


char *
ecodoc_ca_read_secret(const char *file, const char *what)
{
    FILE    *f;
    char     buf[1100], *s;
    size_t   n;

    f = fopen(file, "r");
    if (f == NULL) {
        ecodoc_ca_error("cannot read the %s from %s: %s", what, file,
                        strerror(errno));
        return NULL;
    }

    s = fgets(buf, sizeof(buf), f);
    fclose(f);

    n = (s != NULL) ? strcspn(buf, "\r\n") : 0;
    buf[n] = '\0';

    if (n == 0 || n > 1024) {
        OPENSSL_cleanse(buf, sizeof(buf));
        ecodoc_ca_error("no %s (1-1024 bytes) on the first line of %s",
                        what, file);
        return NULL;
    }

    s = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));

    if (s == NULL) {
        ecodoc_ca_error("out of memory");
    }

    return s;
}


/*
 * Writes a whole file or nothing: a fresh temporary file beside it (mkstemp:
 * never an existing name or a link), its mode set before any byte, renamed
 * over the target.
 */

int
ecodoc_ca_write_file(const char *path, const void *data, size_t len,
    int mode)
{
    int      fd;
    char     tmp[1200];
    ssize_t  n;
    size_t   off;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path)
        >= sizeof(tmp))
    {
        ecodoc_ca_error("path too long: %s", path);
        return -1;
    }

    fd = mkstemp(tmp);
    if (fd == -1) {
        ecodoc_ca_error("cannot create a file beside %s: %s", path,
                        strerror(errno));
        return -1;
    }

    if (fchmod(fd, mode) != 0) {
        goto failed;
    }

    for (off = 0; off < len; off += n) {
        n = write(fd, (const char *) data + off, len - off);
        if (n <= 0) {
            goto failed;
        }
    }

    if (fsync(fd) != 0) {
        goto failed;
    }

    if (close(fd) != 0 || rename(tmp, path) != 0) {
        ecodoc_ca_error("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }

    return 0;

failed:

    ecodoc_ca_error("cannot write %s: %s", path, strerror(errno));
    close(fd);
    unlink(tmp);
    return -1;
}


const char *
ecodoc_ca_ssl_error(void)
{
    static __thread char  buf[256];     /* the enrollment site: a thread each */

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    ERR_clear_error();

    return buf;
}


static X509 *
ecodoc_ca_read_cert(const char *dir)
{
    BIO   *b;
    X509  *x;
    char   path[1200];

    snprintf(path, sizeof(path), "%s/ca.crt", dir);

    b = BIO_new_file(path, "r");
    x = (b != NULL) ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);

    if (x == NULL) {
        ecodoc_ca_error("cannot read the CA certificate %s: %s", path,
                        ecodoc_ca_ssl_error());
    }

    return x;
}


/* ca.conf: "org=..." lines; only org today */

static int
ecodoc_ca_read_conf(ecodoc_ca_pki_t *pki)
{
    FILE  *f;
    char   path[1200], line[ECODOC_CA_LINE_MAX];

    snprintf(path, sizeof(path), "%s/ca.conf", pki->dir);

    f = fopen(path, "r");
    if (f == NULL) {
        ecodoc_ca_error("cannot read %s: %s", path, strerror(errno));
        return -1;
    }

    pki->org[0] = '\0';

    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';

        if (strncmp(line, "org=", 4) == 0
            && strlen(line + 4) < sizeof(pki->org))
        {
            strcpy(pki->org, line + 4);
        }
    }

    fclose(f);

    /* what init accepted, and nothing a hand edit slipped in since */

    if (!ecodoc_ca_valid_org(pki->org)) {
        ecodoc_ca_error("%s: invalid or missing org=", path);
        return -1;
    }

    return 0;
}


int
ecodoc_ca_pki_load(ecodoc_ca_pki_t *pki, const char *dir,
    const char *passfile, int key_too)
{
    BIO   *b;
    char   path[1200], *pass;

    memset(pki, 0, sizeof(*pki));
    pki->lock_fd = -1;
    snprintf(pki->dir, sizeof(pki->dir), "%s", dir);

    if (passfile == NULL) {
        passfile = getenv("ECODOC_CA_PASSPHRASE_FILE");
        if (passfile != NULL && passfile[0] == '\0') {
            passfile = NULL;
        }
    }

    pki->cert = ecodoc_ca_read_cert(dir);
    if (pki->cert == NULL || ecodoc_ca_read_conf(pki) != 0) {
        return -1;
    }

    if (!key_too) {
        return 0;
    }

    pass = NULL;

    if (passfile != NULL) {
        pass = ecodoc_ca_read_secret(passfile, "CA passphrase");
        if (pass == NULL) {
            return -1;
        }
    }

    snprintf(path, sizeof(path), "%s/ca.key", dir);

    b = BIO_new_file(path, "r");
    pki->key = (b != NULL)
               ? PEM_read_bio_PrivateKey(b, NULL, NULL, pass != NULL ? pass
                                                                     : "")
               : NULL;
    BIO_free(b);

    if (pass != NULL) {
        OPENSSL_cleanse(pass, strlen(pass));
        free(pass);
    }

    if (pki->key == NULL) {
        ecodoc_ca_error("cannot read the CA key %s: %s%s", path,
                        ecodoc_ca_ssl_error(),
                        passfile == NULL ? " (is it encrypted? give "
                                           "--passphrase-file)" : "");
        return -1;
    }

    if (X509_check_private_key(pki->cert, pki->key) != 1) {
        ecodoc_ca_error("the CA key %s does not match ca.crt", path);
        return -1;
    }

    return 0;
}


void
ecodoc_ca_pki_free(ecodoc_ca_pki_t *pki)
{
    ecodoc_ca_db_unlock(pki);
    EVP_PKEY_free(pki->key);
    X509_free(pki->cert);
    pki->key = NULL;
    pki->cert = NULL;
}


/* the database */

int
ecodoc_ca_db_lock(ecodoc_ca_pki_t *pki)
{
    char  path[1200];

    if (pki->lock_fd != -1) {
        return 0;
    }

    snprintf(path, sizeof(path), "%s/index.lock", pki->dir);

    pki->lock_fd = open(path, O_RDWR | O_CREAT, 0600);
    if (pki->lock_fd == -1) {
        ecodoc_ca_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }

    while (flock(pki->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            ecodoc_ca_error("cannot lock %s: %s", path, strerror(errno));
            close(pki->lock_fd);
            pki->lock_fd = -1;
            return -1;
        }
    }

    return 0;
}


void
ecodoc_ca_db_unlock(ecodoc_ca_pki_t *pki)
{
    if (pki->lock_fd != -1) {
        close(pki->lock_fd);
        pki->lock_fd = -1;
    }
}


int
ecodoc_ca_db_push(ecodoc_ca_db_t *db, const ecodoc_ca_rec_t *rec)
{
    ecodoc_ca_rec_t  *p;

    if (db->n == db->size) {
        db->size = db->size ? db->size * 2 : 32;
        p = realloc(db->rec, db->size * sizeof(ecodoc_ca_rec_t));
        if (p == NULL) {
            ecodoc_ca_error("out of memory");
            return -1;
        }
        db->rec = p;
    }

    db->rec[db->n++] = *rec;

    return 0;
}


void
ecodoc_ca_db_free(ecodoc_ca_db_t *db)
{
    free(db->rec);
    memset(db, 0, sizeof(*db));
}


/* splits a line on tabs into at most n fields; the count */

static int
ecodoc_ca_db_split(char *line, char **f, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        f[i] = line;
        line = strchr(line, '\t');
        if (line == NULL) {
            return i + 1;
        }
        *line++ = '\0';
    }

    return n + 1;
}


static int
ecodoc_ca_db_parse(char *line, ecodoc_ca_rec_t *rec)
{
    char  *f[8];

    if (ecodoc_ca_db_split(line, f, 8) != 8
        || strlen(f[0]) >= sizeof(rec->serial)
        || strlen(f[1]) != ECODOC_CA_FP_LEN - 1
        || strlen(f[2]) >= sizeof(rec->subject)
        || !ecodoc_ca_valid_user(f[3])
        || ecodoc_ca_number(f[4], 0, (long long) 1 << 42, &rec->not_after)
        || (strcmp(f[5], "V") != 0 && strcmp(f[5], "R") != 0)
        || ecodoc_ca_number(f[6], 0, (long long) 1 << 42, &rec->revoked)
        || strlen(f[7]) >= sizeof(rec->reason))
    {
        return -1;
    }

    strcpy(rec->serial, f[0]);
    strcpy(rec->fp, f[1]);
    strcpy(rec->subject, f[2]);
    strcpy(rec->user, f[3]);
    rec->status = f[5][0];
    strcpy(rec->reason, f[7]);

    return 0;
}


int
ecodoc_ca_db_read(ecodoc_ca_pki_t *pki, ecodoc_ca_db_t *db)
{
    FILE             *f;
    char              path[1200], line[ECODOC_CA_LINE_MAX];
    unsigned          n;
    ecodoc_ca_rec_t   rec;

    memset(db, 0, sizeof(*db));
    snprintf(path, sizeof(path), "%s/index.tsv", pki->dir);

    f = fopen(path, "r");
    if (f == NULL) {
        ecodoc_ca_error("cannot read %s: %s", path, strerror(errno));
        return -1;
    }

    for (n = 1; fgets(line, sizeof(line), f) != NULL; n++) {
        line[strcspn(line, "\n")] = '\0';

        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }

        if (ecodoc_ca_db_parse(line, &rec) != 0) {
            ecodoc_ca_error("%s: line %u is malformed", path, n);
            goto failed;
        }

        if (ecodoc_ca_db_push(db, &rec) != 0) {
            goto failed;
        }
    }

    if (ferror(f)) {
        ecodoc_ca_error("cannot read %s", path);
        goto failed;
    }

    fclose(f);

    return 0;

failed:

    fclose(f);
    ecodoc_ca_db_free(db);

    return -1;
}


int
ecodoc_ca_db_write(ecodoc_ca_pki_t *pki, ecodoc_ca_db_t *db)
{
    int               rc;
    char             *buf, *p, path[1200];
    size_t            i, size;
    ecodoc_ca_rec_t  *r;

    size = sizeof(ECODOC_CA_DB_HEADER) + db->n * ECODOC_CA_LINE_MAX;

    buf = malloc(size);
    if (buf == NULL) {
        ecodoc_ca_error("out of memory");
        return -1;
    }

    p = buf + sprintf(buf, "%s", ECODOC_CA_DB_HEADER);

    for (i = 0; i < db->n; i++) {
        r = &db->rec[i];
        p += sprintf(p, "%s\t%s\t%s\t%s\t%lld\t%c\t%lld\t%s\n", r->serial,
                     r->fp, r->subject, r->user, r->not_after, r->status,
                     r->revoked, r->reason);
    }

    snprintf(path, sizeof(path), "%s/index.tsv", pki->dir);
    rc = ecodoc_ca_write_file(path, buf, p - buf, 0600);

    free(buf);

    return rc;
}


/* init */

static X509_NAME *
ecodoc_ca_parse_subject(const char *s)
{
    char       *copy, *p, *next, *eq;
    X509_NAME  *name;

    if (s[0] != '/') {
        ecodoc_ca_usage_error("invalid --subject \"%s\": use "
                              "\"/O=Org/CN=Name\"", s);
        return NULL;
    }

    copy = strdup(s + 1);
    name = X509_NAME_new();

    if (copy == NULL || name == NULL) {
        ecodoc_ca_error("out of memory");
        goto failed;
    }

    for (p = copy; p != NULL; p = next) {
        next = strchr(p, '/');
        if (next != NULL) {
            *next++ = '\0';
        }

        eq = strchr(p, '=');

        if (eq == NULL || eq == p || eq[1] == '\0') {
            ecodoc_ca_usage_error("invalid --subject \"%s\": every part "
                                  "is TYPE=value", s);
            goto failed;
        }

        *eq = '\0';

        if (!X509_NAME_add_entry_by_txt(name, p, MBSTRING_UTF8,
                                        (unsigned char *) eq + 1, -1, -1, 0))
        {
            ecodoc_ca_usage_error("invalid --subject \"%s\": unknown "
                                  "attribute \"%s\"", s, p);
            ERR_clear_error();
            goto failed;
        }
    }

    free(copy);

    return name;

failed:

    free(copy);
    X509_NAME_free(name);

    return NULL;
}


static X509 *
ecodoc_ca_self_sign(EVP_PKEY *key, X509_NAME *name, long days)
{
    X509          *x;
    BIGNUM        *bn;
    ASN1_INTEGER  *serial;

    x = X509_new();
    bn = BN_new();
    serial = NULL;

    if (x == NULL || bn == NULL
        || BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1
        || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL
        || X509_set_version(x, 2) != 1
        || X509_set_serialNumber(x, serial) != 1
        || X509_set_subject_name(x, name) != 1
        || X509_set_issuer_name(x, name) != 1
        || X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), (int) days, 0, NULL)
           == NULL
        || X509_set_pubkey(x, key) != 1
        || ecodoc_ca_x509_ext(x, x, NID_basic_constraints,
                             "critical,CA:TRUE") != 0
        || ecodoc_ca_x509_ext(x, x, NID_key_usage,
                             "critical,keyCertSign,cRLSign") != 0
        || ecodoc_ca_x509_ext(x, x, NID_subject_key_identifier, "hash") != 0
        || X509_sign(x, key, EVP_sha256()) == 0)
    {
        ecodoc_ca_error("cannot make the CA certificate: %s",
                        ecodoc_ca_ssl_error());
        X509_free(x);
        x = NULL;
    }

    BN_free(bn);
    ASN1_INTEGER_free(serial);

    return x;
}


/* the key, encrypted with AES-256 when pass is given, into a new file */

static int
ecodoc_ca_write_key(const char *dir, EVP_PKEY *key, const char *pass)
{
    int      fd, ok;
    BIO     *b;
    char     path[1200], *data;
    long     len;
    ssize_t  n;

    snprintf(path, sizeof(path), "%s/ca.key", dir);

    b = BIO_new(BIO_s_mem());
    if (b == NULL
        || PEM_write_bio_PrivateKey(b, key,
                                    pass != NULL ? EVP_aes_256_cbc() : NULL,
                                    NULL, 0, NULL, (void *) pass) != 1)
    {
        ecodoc_ca_error("cannot encode the CA key: %s", ecodoc_ca_ssl_error());
        BIO_free(b);
        return -1;
    }

    len = BIO_get_mem_data(b, &data);

    /* O_EXCL: two inits at once cannot both think they made the CA */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd == -1) {
        ecodoc_ca_error("cannot create %s: %s", path, strerror(errno));
        BIO_free(b);
        return -1;
    }

    n = write(fd, data, len);
    ok = (n == len && fchmod(fd, 0600) == 0 && fsync(fd) == 0);
    ok = (close(fd) == 0) && ok;

    OPENSSL_cleanse(data, len);
    BIO_free(b);

    if (!ok) {
        ecodoc_ca_error("cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }

    return 0;
}


static int
ecodoc_ca_write_pem_cert(const char *dir, X509 *x)
{
    int    rc;
    char  *pem, path[1200];

    pem = ecodoc_ca_cert_pem(x);
    if (pem == NULL) {
        return -1;
    }

    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    rc = ecodoc_ca_write_file(path, pem, strlen(pem), 0644);
    free(pem);

    return rc;
}


/* an existing CA: any of its files */

static int
ecodoc_ca_exists(const char *dir)
{
    char          path[1200];
    struct stat   st;
    const char  **f;

    static const char  *files[] = {
        "ca.key", "ca.crt", "index.tsv", "ca.conf", NULL
    };

    for (f = files; *f != NULL; f++) {
        snprintf(path, sizeof(path), "%s/%s", dir, *f);
        if (lstat(path, &st) == 0 || errno != ENOENT) {
            return 1;
        }
    }

    return 0;
}


/* the O of a subject, for the organisation of issued certificates */

static void
ecodoc_ca_subject_org(X509_NAME *name, char *buf, size_t size)
{
    int  i;

    i = X509_NAME_get_text_by_NID(name, NID_organizationName, buf,
                                  (int) size);
    if (i <= 0) {
        snprintf(buf, size, "Ecodoc");
    }
}


static int
ecodoc_ca_valid_org(const char *s)
{
    size_t  len;

    len = strlen(s);

    if (len == 0 || len > 64) {
        return 0;
    }

    for ( /* void */ ; *s != '\0'; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f || *s == '/') {
            return 0;
        }
    }

    return 1;
}


static int
ecodoc_ca_init_files(ecodoc_ca_pki_t *pki, const char *keytype,
    const char *subject, long days, const char *pass, const char *org)
{
    char             conf[ECODOC_CA_ORG_MAX + 16], cpath[1200],
                     npath[1200];
    X509_NAME       *name;
    ecodoc_ca_db_t   db;

    name = ecodoc_ca_parse_subject(subject);
    if (name == NULL) {
        return ECODOC_CA_USAGE;
    }

    if (org != NULL) {
        snprintf(pki->org, sizeof(pki->org), "%s", org);

    } else {
        ecodoc_ca_subject_org(name, pki->org, sizeof(pki->org));
    }

    if (!ecodoc_ca_valid_org(pki->org)) {
        ecodoc_ca_usage_error("invalid organisation \"%s\": 1-64 "
                              "characters, no control characters or '/'",
                              pki->org);
        X509_NAME_free(name);
        return ECODOC_CA_USAGE;
    }

    pki->key = ecodoc_ca_keygen(keytype);
    pki->cert = (pki->key != NULL)
                ? ecodoc_ca_self_sign(pki->key, name, days) : NULL;

    X509_NAME_free(name);

    if (pki->cert == NULL) {
        return ECODOC_CA_ERROR;
    }

    snprintf(conf, sizeof(conf), "org=%s\n", pki->org);
    snprintf(cpath, sizeof(cpath), "%s/ca.conf", pki->dir);
    snprintf(npath, sizeof(npath), "%s/crlnumber", pki->dir);
    memset(&db, 0, sizeof(db));

    if (ecodoc_ca_write_key(pki->dir, pki->key, pass) != 0
        || ecodoc_ca_write_pem_cert(pki->dir, pki->cert) != 0
        || ecodoc_ca_write_file(cpath, conf, strlen(conf), 0644) != 0
        || ecodoc_ca_write_file(npath, "1\n", 2, 0600) != 0
        || ecodoc_ca_db_write(pki, &db) != 0
        || ecodoc_ca_crl_write(pki, &db, ECODOC_CA_CRL_DAYS) != 0)
    {
        return ECODOC_CA_ERROR;
    }

    return ECODOC_CA_OK;
}


int
ecodoc_ca_init(ecodoc_ca_t *ca, int argc, char **argv)
{
    int               rc;
    char             *pass;
    long long         days;
    const char       *dir, *keytype, *passfile, *subject, *days_s, *org;
    struct stat       st;
    ecodoc_ca_pki_t   pki;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &dir },
        { "--key", 1, &keytype },
        { "--passphrase-file", 1, &passfile },
        { "--subject", 1, &subject },
        { "--days", 1, &days_s },
        { "--org", 1, &org },
        { NULL, 0, NULL }
    };

    (void) ca;

    dir = NULL;
    keytype = "ec";
    passfile = NULL;
    subject = ECODOC_CA_INIT_SUBJECT;
    days_s = NULL;
    org = NULL;
    days = ECODOC_CA_INIT_DAYS;

    if (ecodoc_ca_options(argc, argv, opts, NULL, 0, NULL) != ECODOC_CA_OK
        || (dir = ecodoc_ca_dir(dir)) == NULL)
    {
        return ECODOC_CA_USAGE;
    }

    if (strcmp(keytype, "ec") != 0 && strcmp(keytype, "rsa3072") != 0
        && strcmp(keytype, "rsa4096") != 0)
    {
        ecodoc_ca_usage_error("invalid --key \"%s\": use ec, rsa3072 or "
                              "rsa4096", keytype);
        return ECODOC_CA_USAGE;
    }

    if (days_s != NULL && ecodoc_ca_number(days_s, 1, 36500, &days) != 0) {
        ecodoc_ca_usage_error("invalid --days \"%s\": use 1..36500", days_s);
        return ECODOC_CA_USAGE;
    }

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ecodoc_ca_error("cannot create %s: %s", dir, strerror(errno));
        return ECODOC_CA_ERROR;
    }

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ecodoc_ca_error("%s is not a directory", dir);
        return ECODOC_CA_ERROR;
    }

    if (ecodoc_ca_exists(dir)) {
        ecodoc_ca_error("%s already holds a CA; refusing to overwrite it",
                        dir);
        return ECODOC_CA_ERROR;
    }

    if (chmod(dir, 0700) != 0) {
        ecodoc_ca_error("cannot chmod %s: %s", dir, strerror(errno));
        return ECODOC_CA_ERROR;
    }

    pass = NULL;

    if (passfile != NULL) {
        pass = ecodoc_ca_read_secret(passfile, "CA passphrase");
        if (pass == NULL) {
            return ECODOC_CA_ERROR;
        }
    }

    memset(&pki, 0, sizeof(pki));
    pki.lock_fd = -1;
    snprintf(pki.dir, sizeof(pki.dir), "%s", dir);

    rc = ecodoc_ca_init_files(&pki, keytype, subject, (long) days, pass,
                              org);

    if (pass != NULL) {
        OPENSSL_cleanse(pass, strlen(pass));
        free(pass);
    }

    if (rc == ECODOC_CA_OK) {
        printf("CA created in %s\nsubject: %s\norganisation: %s\n", dir,
               subject, pki.org);
    }

    ecodoc_ca_pki_free(&pki);

    return rc;
}


/* lua/cert_states.lua over n fingerprints: a checked reply, or NULL */

redisReply *
ecodoc_ca_cert_states(ecodoc_ca_t *ca, const char **fps, size_t n)
{
    redisReply  *r;

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_cert_states, REDIS_REPLY_ARRAY,
                               "cli", "", (int) n, fps);

    if (r != NULL && (ecodoc_ca_redis_strings(r, 3) != 0
                      || r->elements != 3 * n))
    {
        ecodoc_ca_error("unexpected reply to the certificate states");
        freeReplyObject(r);
        r = NULL;
    }

    return r;
}


/*
 * certs --expiring DAYS: the certificates of the database valid now that
 * expire within DAYS, and what the gate says of each (lua/cert_states.lua):
 * those it has revoked (a renewal's takeover revokes in Redis only) are
 * left out
 */

static int
ecodoc_ca_certs_expiring(ecodoc_ca_t *ca, ecodoc_ca_db_t *db, long long days)
{
    int               n;
    size_t            i, k;
    time_t            now;
    redisReply       *r;
    const char      **fps, *st;
    ecodoc_ca_rec_t  *rec, **list;
    char              na[ECODOC_CA_TIME_LEN];

    now = time(NULL);
    fps = calloc(db->n + 1, sizeof(char *));
    list = calloc(db->n + 1, sizeof(ecodoc_ca_rec_t *));

    if (fps == NULL || list == NULL) {
        free(fps);
        free(list);
        ecodoc_ca_error("out of memory");
        return ECODOC_CA_ERROR;
    }

    /* soonest first: the database is in order of issuance */

    for (k = 0, i = 0; i < db->n; i++) {
        rec = &db->rec[i];

        if (rec->status == 'V' && rec->not_after >= (long long) now
            && rec->not_after - (long long) now <= days * 86400)
        {
            for (n = (int) k; n > 0
                 && list[n - 1]->not_after > rec->not_after; n--)
            {
                list[n] = list[n - 1];
            }

            list[n] = rec;
            k++;
        }
    }

    for (i = 0; i < k; i++) {
        fps[i] = list[i]->fp;
    }

    r = NULL;

    if (k > 0) {
        r = ecodoc_ca_cert_states(ca, fps, k);

        if (r == NULL) {
            free(fps);
            free(list);
            return ECODOC_CA_ERROR;
        }
    }

    printf("%-20s  %-20s  %9s  %-8s  %s\n", "USER", "NOT AFTER", "DAYS LEFT",
           "STATE", "FINGERPRINT");

    for (i = 0; i < k; i++) {
        st = r->element[3 * i]->str;

        if (strcmp(st, "revoked") == 0) {
            continue;
        }

        ecodoc_ca_iso_time(na, (time_t) list[i]->not_after, -1);

        printf("%-20s  %-20s  %9lld  %-8s  %s\n", list[i]->user, na,
               (list[i]->not_after - (long long) now) / 86400,
               strcmp(st, "bound") == 0 ? "in-use"
               : strcmp(st, "renewing") == 0 ? "renewing"
               : "unused",
               list[i]->fp);
    }

    if (r != NULL) {
        freeReplyObject(r);
    }

    free(fps);
    free(list);

    return ECODOC_CA_OK;
}


/* certs [USER] | certs --expiring DAYS */

int
ecodoc_ca_certs(ecodoc_ca_t *ca, int argc, char **argv)
{
    int               n, rc;
    char             *user, na[ECODOC_CA_TIME_LEN];
    size_t            i;
    time_t            now;
    long long         days;
    const char       *dir, *state, *expiring;
    ecodoc_ca_db_t    db;
    ecodoc_ca_pki_t   pki;
    ecodoc_ca_rec_t  *r;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &dir },
        { "--expiring", 1, &expiring },
        { NULL, 0, NULL }
    };

    dir = NULL;
    user = NULL;
    expiring = NULL;
    n = 0;
    days = 0;

    /* USER is optional: try with one positional argument, then none */
    for (i = 1; i < (size_t) argc; i++) {
        if (argv[i][0] != '-' && (i == 1 || (strcmp(argv[i - 1], "--dir")
                                             && strcmp(argv[i - 1],
                                                       "--expiring"))))
        {
            n = 1;
        }
    }

    if (ecodoc_ca_options(argc, argv, opts, &user, n, NULL) != ECODOC_CA_OK
        || (user != NULL && ecodoc_ca_check_user(user) != 0)
        || (dir = ecodoc_ca_dir(dir)) == NULL)
    {
        return ECODOC_CA_USAGE;
    }

    if (expiring != NULL
        && (user != NULL || ecodoc_ca_number(expiring, 0, 3650, &days) != 0))
    {
        ecodoc_ca_usage_error("invalid --expiring \"%s\": use 0..3650 days, "
                              "without a user", expiring);
        return ECODOC_CA_USAGE;
    }

    memset(&pki, 0, sizeof(pki));
    pki.lock_fd = -1;
    snprintf(pki.dir, sizeof(pki.dir), "%s", dir);

    if (ecodoc_ca_db_lock(&pki) != 0 || ecodoc_ca_db_read(&pki, &db) != 0) {
        ecodoc_ca_db_unlock(&pki);
        return ECODOC_CA_ERROR;
    }

    ecodoc_ca_db_unlock(&pki);

    if (expiring != NULL) {
        rc = ecodoc_ca_certs_expiring(ca, &db, days);
        ecodoc_ca_db_free(&db);
        return rc;
    }

    now = time(NULL);

    printf("%-32s  %-20s  %-7s  %-20s  %s\n", "SERIAL", "USER", "STATE",
           "NOT AFTER", "FINGERPRINT");

    for (i = 0; i < db.n; i++) {
        r = &db.rec[i];

        if (user != NULL && strcmp(user, r->user) != 0) {
            continue;
        }

        state = (r->status == 'R') ? "revoked"
                : (r->not_after < now) ? "expired" : "valid";

        ecodoc_ca_iso_time(na, (time_t) r->not_after, -1);

        printf("%-32s  %-20s  %-7s  %-20s  %s\n", r->serial, r->user, state,
               na, r->fp);
    }

    ecodoc_ca_db_free(&db);

    return ECODOC_CA_OK;
}
