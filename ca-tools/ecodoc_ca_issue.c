/*
 * ecodoc-ca issue: client certificates: keys and CSR checks, signing,
 * recording in the CA database and Redis, PKCS#12.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "ecodoc_passwd.h"
#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_CSR_MAX      65536
#define ECODOC_CA_P12_ITER     600000    /* PBKDF2-SHA256: OWASP's count */
#define ECODOC_CA_P12_ITER_OLD 2048      /* what old Windows importers take */
#define ECODOC_CA_RSA_MIN      2048
#define ECODOC_CA_RSA_MAX      8192


EVP_PKEY *
ecodoc_ca_keygen(const char *type)
{
    size_t     bits;
    EVP_PKEY  *key;

    bits = 0;

    if (strcmp(type, "ec") == 0 || strcmp(type, "ec256") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    } else if (strcmp(type, "ec384") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

    } else if (strcmp(type, "rsa2048") == 0 || strcmp(type, "rsa3072") == 0
               || strcmp(type, "rsa4096") == 0)
    {
        bits = (size_t) atoi(type + 3);
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);

    } else {
        ecodoc_ca_usage_error("invalid key type \"%s\": use ec, ec384, "
                              "rsa2048, rsa3072 or rsa4096", type);
        return NULL;
    }

    if (key == NULL) {
        ecodoc_ca_error("cannot make a %s key: %s", type,
                        ecodoc_ca_ssl_error());
    }

    return key;
}


const char *
ecodoc_ca_key_problem(EVP_PKEY *key)
{
    int   bits;
    char  group[64];

    switch (EVP_PKEY_get_base_id(key)) {

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), NULL) != 1)
        {
            return "EC keys must be on the curve P-256 or P-384";
        }

        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0
            || strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
        {
            return NULL;
        }

        return "EC keys must be on the curve P-256 or P-384";

    case EVP_PKEY_RSA:
        bits = EVP_PKEY_get_bits(key);

        if (bits < ECODOC_CA_RSA_MIN) {
            return "RSA keys must be at least 2048 bits";
        }

        if (bits > ECODOC_CA_RSA_MAX) {
            return "RSA keys must be at most 8192 bits";
        }

        return NULL;

    default:
        return "only ECDSA (P-256, P-384) and RSA (2048 bits or more) keys "
               "are accepted";
    }
}


EVP_PKEY *
ecodoc_ca_csr_key(const char *pem, size_t len, const char **problem)
{
    BIO       *b;
    X509_REQ  *req;
    EVP_PKEY  *key;

    key = NULL;
    req = NULL;

    b = BIO_new_mem_buf(pem, (int) len);
    if (b != NULL) {
        req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        BIO_free(b);
    }

    if (req == NULL) {
        ERR_clear_error();
        *problem = "this is not a PEM certificate request (CSR)";
        return NULL;
    }

    key = X509_REQ_get_pubkey(req);

    if (key == NULL) {
        *problem = "the CSR carries no usable public key";

    } else if (X509_REQ_verify(req, key) != 1) {
        *problem = "the CSR's signature does not verify";
        EVP_PKEY_free(key);
        key = NULL;

    } else {
        *problem = ecodoc_ca_key_problem(key);
        if (*problem != NULL) {
            EVP_PKEY_free(key);
            key = NULL;
        }
    }

    ERR_clear_error();
    X509_REQ_free(req);

    return key;
}


char *
ecodoc_ca_cert_pem(X509 *cert)
{
    BIO   *b;
    char  *data, *s;
    long   len;

    s = NULL;
    b = BIO_new(BIO_s_mem());

    if (b != NULL && PEM_write_bio_X509(b, cert) == 1) {
        len = BIO_get_mem_data(b, &data);
        s = malloc(len + 1);
        if (s != NULL) {
            memcpy(s, data, len);
            s[len] = '\0';
        }
    }

    BIO_free(b);

    if (s == NULL) {
        ecodoc_ca_error("cannot encode a certificate");
    }

    return s;
}


void
ecodoc_ca_cert_fp(X509 *cert, char fp[ECODOC_CA_FP_LEN])
{
    unsigned       i, n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    n = 0;
    X509_digest(cert, EVP_sha256(), md, &n);

    for (i = 0; i < n && i < 32; i++) {
        sprintf(fp + 2 * i, "%02x", md[i]);
    }

    fp[2 * i] = '\0';
}


void
ecodoc_ca_cert_serial(X509 *cert, char serial[ECODOC_CA_SERIAL_LEN])
{
    char    *hex;
    BIGNUM  *bn;

    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    hex = (bn != NULL) ? BN_bn2hex(bn) : NULL;

    snprintf(serial, ECODOC_CA_SERIAL_LEN, "%s", hex != NULL ? hex : "?");

    OPENSSL_free(hex);
    BN_free(bn);
}


void
ecodoc_ca_cert_subject(X509 *cert, char *buf, size_t size)
{
    BIO   *b;
    int    n;

    buf[0] = '\0';
    b = BIO_new(BIO_s_mem());

    if (b != NULL
        && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0,
                              XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0)
    {
        n = BIO_read(b, buf, (int) size - 1);
        buf[n > 0 ? n : 0] = '\0';
    }

    BIO_free(b);
}


long long
ecodoc_ca_cert_not_after(X509 *cert)
{
    int        days, secs;
    ASN1_TIME  *epoch;

    epoch = ASN1_TIME_set(NULL, 0);

    if (epoch == NULL
        || ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(cert))
           != 1)
    {
        ASN1_TIME_free(epoch);
        return 0;
    }

    ASN1_TIME_free(epoch);

    return (long long) days * 86400 + secs;
}


int
ecodoc_ca_x509_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    int              ok;
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);

    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return -1;
    }

    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);

    return ok ? 0 : -1;
}


/* the certificate itself: fields, extensions, signature */

static X509 *
ecodoc_ca_build(ecodoc_ca_pki_t *pki, const char *user, EVP_PKEY *key,
    long days)
{
    X509          *x;
    BIGNUM        *bn;
    X509_NAME     *name;
    ASN1_INTEGER  *serial;

    x = X509_new();
    bn = BN_new();
    name = X509_NAME_new();
    serial = NULL;

    /* 128 bits, the top one set: positive, always 16 bytes of serial */
    if (x == NULL || bn == NULL || name == NULL
        || BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1
        || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL
        || !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                       (unsigned char *) pki->org, -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (unsigned char *) user, -1, -1, 0)
        || X509_set_version(x, 2) != 1
        || X509_set_serialNumber(x, serial) != 1
        || X509_set_subject_name(x, name) != 1
        || X509_set_issuer_name(x, X509_get_subject_name(pki->cert)) != 1
        || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), (int) days, 0, NULL)
           == NULL
        || (ASN1_TIME_compare(X509_get0_notAfter(x),
                              X509_get0_notAfter(pki->cert)) > 0
            && X509_set1_notAfter(x, X509_get0_notAfter(pki->cert)) != 1)
        || X509_set_pubkey(x, key) != 1
        || ecodoc_ca_x509_ext(x, pki->cert, NID_basic_constraints, "CA:FALSE")
        || ecodoc_ca_x509_ext(x, pki->cert, NID_key_usage,
                         "critical,digitalSignature")
        || ecodoc_ca_x509_ext(x, pki->cert, NID_ext_key_usage, "clientAuth")
        || ecodoc_ca_x509_ext(x, pki->cert, NID_subject_key_identifier, "hash")
        || ecodoc_ca_x509_ext(x, pki->cert, NID_authority_key_identifier,
                         "keyid:always")
        || X509_sign(x, pki->key, EVP_sha256()) == 0)
    {
        ecodoc_ca_error("cannot make the certificate: %s",
                        ecodoc_ca_ssl_error());
        X509_free(x);
        x = NULL;
    }

    BN_free(bn);
    X509_NAME_free(name);
    ASN1_INTEGER_free(serial);

    return x;
}


/* 1 when P user:U exists, 0 not, -1 reported */

static int
ecodoc_ca_user_exists(ecodoc_ca_t *ca, const char *user)
{
    int          rc;
    redisReply  *r;

    r = ecodoc_ca_redis_key_call(ca, REDIS_REPLY_INTEGER, "EXISTS", "user:",
                                 user, "");
    if (r == NULL) {
        return -1;
    }

    rc = r->integer ? 1 : 0;
    freeReplyObject(r);

    return rc;
}


/* lua/cert_record.lua: 0 recorded, -1 refused (and revoked) or reported */

static int
ecodoc_ca_record(ecodoc_ca_t *ca, ecodoc_ca_rec_t *rec, const char *addr,
    const char *esid)
{
    int          rc;
    char         na[24];
    redisReply  *r;
    const char  *args[5];

    snprintf(na, sizeof(na), "%lld", rec->not_after);

    args[0] = rec->user;
    args[1] = rec->fp;
    args[2] = rec->serial;
    args[3] = na;
    args[4] = esid != NULL ? esid : "";

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_cert_record, REDIS_REPLY_STRING,
                               addr, "", 5, args);
    if (r == NULL) {
        return -1;
    }

    rc = (strcmp(r->str, "ok") == 0) ? 0 : -1;

    if (rc != 0) {
        ecodoc_ca_error("certificate %s for %s revoked as soon as issued: "
                        "the user was deleted or the enrollment cancelled "
                        "meanwhile", rec->fp, rec->user);
    }

    freeReplyObject(r);

    return rc;
}


X509 *
ecodoc_ca_sign(ecodoc_ca_t *ca, ecodoc_ca_pki_t *pki, const char *user,
    EVP_PKEY *key, long days, const char *addr, const char *esid)
{
    int               rc;
    X509             *x;
    ecodoc_ca_db_t    db;
    ecodoc_ca_rec_t   rec;

    rc = ecodoc_ca_user_exists(ca, user);

    if (rc == 0) {
        ecodoc_ca_error("no such user: %s", user);
    }

    if (rc != 1) {
        return NULL;
    }

    x = ecodoc_ca_build(pki, user, key, days);
    if (x == NULL) {
        return NULL;
    }

    memset(&rec, 0, sizeof(rec));
    ecodoc_ca_cert_serial(x, rec.serial);
    ecodoc_ca_cert_fp(x, rec.fp);
    snprintf(rec.subject, sizeof(rec.subject), "/O=%s/CN=%s", pki->org,
             user);
    snprintf(rec.user, sizeof(rec.user), "%s", user);
    rec.not_after = ecodoc_ca_cert_not_after(x);
    rec.status = 'V';

    if (ecodoc_ca_db_lock(pki) != 0) {
        goto failed;
    }

    rc = ecodoc_ca_db_read(pki, &db);

    if (rc == 0) {
        rc = ecodoc_ca_db_push(&db, &rec);
        rc = (rc == 0) ? ecodoc_ca_db_write(pki, &db) : rc;
        ecodoc_ca_db_free(&db);
    }

    ecodoc_ca_db_unlock(pki);

    /* a certificate the replicas do not know is not handed out */
    if (rc != 0 || ecodoc_ca_record(ca, &rec, addr, esid) != 0
        || ecodoc_ca_redis_confirm(ca, "the record of the certificate")
           != ECODOC_CA_OK)
    {
        goto failed;
    }

    return x;

failed:

    X509_free(x);

    return NULL;
}


int
ecodoc_ca_p12(EVP_PKEY *key, X509 *cert, const char *user, const char *pass,
    int legacy, unsigned char **out, size_t *len)
{
    int             n, nid_key, nid_cert, iter;
    PKCS12         *p12;
    unsigned char  *der;
    char            name[ECODOC_CA_USER_MAX + 16];

    snprintf(name, sizeof(name), "ecodoc %s", user);

    /*
     * Today: AES-256-CBC under PBES2/PBKDF2, SHA-256 MAC.  Legacy (old
     * Windows): 3DES for key and certificate, SHA-1 MAC; 3DES needs no
     * legacy provider where RC2 would.
     */
    nid_key = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC
                     : NID_aes_256_cbc;
    nid_cert = nid_key;

    iter = legacy ? ECODOC_CA_P12_ITER_OLD : ECODOC_CA_P12_ITER;

    p12 = PKCS12_create_ex((char *) pass, name, key, cert, NULL, nid_key,
                           nid_cert, iter, -1, 0, NULL, NULL);

    if (p12 == NULL
        || PKCS12_set_mac(p12, pass, -1, NULL, 0, iter,
                          legacy ? EVP_sha1() : EVP_sha256()) != 1)
    {
        ecodoc_ca_error("cannot make the PKCS#12: %s", ecodoc_ca_ssl_error());
        PKCS12_free(p12);
        return -1;
    }

    der = NULL;
    n = i2d_PKCS12(p12, &der);
    PKCS12_free(p12);

    if (n <= 0) {
        ecodoc_ca_error("cannot encode the PKCS#12");
        return -1;
    }

    *out = der;
    *len = (size_t) n;

    return 0;
}


/* the whole of a small file; NULL reported */

static char *
ecodoc_ca_slurp(const char *file, size_t max, size_t *len)
{
    FILE    *f;
    char    *buf;
    size_t   n;

    f = fopen(file, "r");
    if (f == NULL) {
        ecodoc_ca_error("cannot read %s: %s", file, strerror(errno));
        return NULL;
    }

    buf = malloc(max + 1);
    n = (buf != NULL) ? fread(buf, 1, max + 1, f) : 0;

    if (buf == NULL || ferror(f) || n > max) {
        ecodoc_ca_error("cannot read %s: %s", file,
                        n > max ? "larger than 64 KiB" : "read error");
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


static void
ecodoc_ca_issue_summary(FILE *f, X509 *x)
{
    char  fp[ECODOC_CA_FP_LEN], serial[ECODOC_CA_SERIAL_LEN],
          na[ECODOC_CA_TIME_LEN];

    ecodoc_ca_cert_fp(x, fp);
    ecodoc_ca_cert_serial(x, serial);
    ecodoc_ca_iso_time(na, (time_t) ecodoc_ca_cert_not_after(x), -1);

    fprintf(f, "serial: %s\nfingerprint: %s\nnot after: %s\n", serial, fp,
            na);
}


typedef struct {
    const char  *dir;
    const char  *passfile;
    const char  *csr;
    const char  *out;
    const char  *p12;
    const char  *keytype;
    const char  *p12_passfile;
    const char  *legacy;
    const char  *days;
} ecodoc_ca_issue_opts_t;


static int
ecodoc_ca_issue_csr(ecodoc_ca_t *ca, ecodoc_ca_pki_t *pki, const char *user,
    ecodoc_ca_issue_opts_t *o, long days)
{
    int          rc;
    X509        *x;
    char        *pem, *cert;
    size_t       len;
    EVP_PKEY    *key;
    const char  *problem;

    pem = ecodoc_ca_slurp(o->csr, ECODOC_CA_CSR_MAX, &len);
    if (pem == NULL) {
        return ECODOC_CA_ERROR;
    }

    key = ecodoc_ca_csr_key(pem, len, &problem);
    free(pem);

    if (key == NULL) {
        ecodoc_ca_error("%s: %s", o->csr, problem);
        return ECODOC_CA_USAGE;
    }

    x = ecodoc_ca_sign(ca, pki, user, key, days, "cli", NULL);
    EVP_PKEY_free(key);

    if (x == NULL) {
        return ECODOC_CA_ERROR;
    }

    cert = ecodoc_ca_cert_pem(x);
    rc = ECODOC_CA_ERROR;

    if (cert != NULL && o->out == NULL) {
        fputs(cert, stdout);
        ecodoc_ca_issue_summary(stderr, x);
        rc = ECODOC_CA_OK;

    } else if (cert != NULL
               && ecodoc_ca_write_file(o->out, cert, strlen(cert), 0644)
                  == 0)
    {
        ecodoc_ca_issue_summary(stdout, x);
        rc = ECODOC_CA_OK;
    }

    free(cert);
    X509_free(x);

    return rc;
}


static int
ecodoc_ca_issue_p12(ecodoc_ca_t *ca, ecodoc_ca_pki_t *pki, const char *user,
    ecodoc_ca_issue_opts_t *o, long days)
{
    int             rc;
    X509           *x;
    char           *pass, random[ECODOC_CA_CODE_LEN + 1];
    size_t          len;
    EVP_PKEY       *key;
    unsigned char  *der;

    if (o->p12_passfile != NULL) {
        pass = ecodoc_ca_read_secret(o->p12_passfile, "PKCS#12 password");
        if (pass == NULL) {
            return ECODOC_CA_ERROR;
        }

    } else if (ecodoc_passwd_random(random, ECODOC_CA_CODE_LEN) == 0) {
        pass = strdup(random);
        if (pass == NULL) {
            return ECODOC_CA_ERROR;
        }

    } else {
        ecodoc_ca_error("cannot make a random password");
        return ECODOC_CA_ERROR;
    }

    rc = ECODOC_CA_ERROR;
    der = NULL;
    x = NULL;

    key = ecodoc_ca_keygen(o->keytype);
    if (key == NULL) {
        goto done;
    }

    x = ecodoc_ca_sign(ca, pki, user, key, days, "cli", NULL);

    if (x != NULL
        && ecodoc_ca_p12(key, x, user, pass, o->legacy != NULL, &der, &len)
           == 0
        && ecodoc_ca_write_file(o->p12, der, len, 0600) == 0)
    {
        ecodoc_ca_issue_summary(stdout, x);

        if (o->p12_passfile == NULL) {
            printf("p12 password: %s\n", pass);
        }

        rc = ECODOC_CA_OK;
    }

done:

    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
    OPENSSL_cleanse(pass, strlen(pass));
    OPENSSL_cleanse(random, sizeof(random));
    free(pass);

    return rc;
}


int
ecodoc_ca_issue(ecodoc_ca_t *ca, int argc, char **argv)
{
    int                      rc;
    char                    *user;
    long long                days;
    ecodoc_ca_pki_t          pki;
    ecodoc_ca_issue_opts_t   o;

    ecodoc_ca_option_t  opts[] = {
        { "--dir", 1, &o.dir },
        { "--passphrase-file", 1, &o.passfile },
        { "--csr", 1, &o.csr },
        { "--out", 1, &o.out },
        { "--p12", 1, &o.p12 },
        { "--key", 1, &o.keytype },
        { "--p12-password-file", 1, &o.p12_passfile },
        { "--legacy", 0, &o.legacy },
        { "--days", 1, &o.days },
        { NULL, 0, NULL }
    };

    memset(&o, 0, sizeof(o));
    o.keytype = "ec";
    days = ECODOC_CA_DEFAULT_DAYS;

    if (ecodoc_ca_options(argc, argv, opts, &user, 1, NULL) != ECODOC_CA_OK
        || ecodoc_ca_check_user(user) != 0
        || (o.dir = ecodoc_ca_dir(o.dir)) == NULL)
    {
        return ECODOC_CA_USAGE;
    }

    if ((o.csr == NULL) == (o.p12 == NULL)) {
        ecodoc_ca_usage_error("issue: give either --csr FILE or --p12 OUT");
        return ECODOC_CA_USAGE;
    }

    if (o.csr != NULL
        && (o.legacy != NULL || o.p12_passfile != NULL
            || strcmp(o.keytype, "ec") != 0))
    {
        ecodoc_ca_usage_error("issue: --key, --p12-password-file and "
                              "--legacy go with --p12");
        return ECODOC_CA_USAGE;
    }

    if (strcmp(o.keytype, "ec") != 0 && strcmp(o.keytype, "ec384") != 0
        && strcmp(o.keytype, "rsa2048") != 0
        && strcmp(o.keytype, "rsa3072") != 0
        && strcmp(o.keytype, "rsa4096") != 0)
    {
        ecodoc_ca_usage_error("invalid --key \"%s\": use ec, ec384, rsa2048, "
                              "rsa3072 or rsa4096", o.keytype);
        return ECODOC_CA_USAGE;
    }

    if (o.p12 != NULL && o.out != NULL) {
        ecodoc_ca_usage_error("issue: --out goes with --csr");
        return ECODOC_CA_USAGE;
    }

    if (o.days != NULL && ecodoc_ca_number(o.days, 1, 3650, &days) != 0) {
        ecodoc_ca_usage_error("invalid --days \"%s\": use 1..3650", o.days);
        return ECODOC_CA_USAGE;
    }

    if (ecodoc_ca_pki_load(&pki, o.dir, o.passfile, 1) != 0) {
        ecodoc_ca_pki_free(&pki);
        return ECODOC_CA_ERROR;
    }

    if (o.csr != NULL) {
        rc = ecodoc_ca_issue_csr(ca, &pki, user, &o, (long) days);

    } else {
        rc = ecodoc_ca_issue_p12(ca, &pki, user, &o, (long) days);
    }

    ecodoc_ca_pki_free(&pki);

    return rc;
}
