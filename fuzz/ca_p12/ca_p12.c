/*
 * Fuzz harness: ecodoc-ca's PKCS#12, ecodoc_ca_p12() (ca-tools/
 * ecodoc_ca_issue.c), over a fuzzed user ID and password, read back.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "ecodoc_ca_pki.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* the project's calls, their iteration counts cut to one (fuzz.mk wraps) */
PKCS12 *__real_PKCS12_create_ex(const char *pass, const char *name,
    EVP_PKEY *pkey, X509 *cert, STACK_OF(X509) *ca, int nid_key,
    int nid_cert, int iter, int mac_iter, int keytype, OSSL_LIB_CTX *ctx,
    const char *propq);
int __real_PKCS12_set_mac(PKCS12 *p12, const char *pass, int passlen,
    unsigned char *salt, int saltlen, int iter, const EVP_MD *md_type);


static EVP_PKEY  *ca_p12_key;
static X509      *ca_p12_cert;


PKCS12 *
__wrap_PKCS12_create_ex(const char *pass, const char *name, EVP_PKEY *pkey,
    X509 *cert, STACK_OF(X509) *ca, int nid_key, int nid_cert, int iter,
    int mac_iter, int keytype, OSSL_LIB_CTX *ctx, const char *propq)
{
    (void) iter;

    return __real_PKCS12_create_ex(pass, name, pkey, cert, ca, nid_key,
                                   nid_cert, 1, mac_iter, keytype, ctx,
                                   propq);
}


int
__wrap_PKCS12_set_mac(PKCS12 *p12, const char *pass, int passlen,
    unsigned char *salt, int saltlen, int iter, const EVP_MD *md_type)
{
    (void) iter;

    return __real_PKCS12_set_mac(p12, pass, passlen, salt, saltlen, 1,
                                 md_type);
}


/* a key as ecodoc-ca makes one, and a certificate for it */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    X509_NAME  *name;

    (void) argc;
    (void) argv;

    ca_p12_key = ecodoc_ca_keygen("ec");
    ca_p12_cert = X509_new();
    name = X509_NAME_new();

    if (ca_p12_key == NULL || ca_p12_cert == NULL || name == NULL
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (unsigned char *) "alice", -1, -1, 0)
        || X509_set_version(ca_p12_cert, 2) != 1
        || X509_set_subject_name(ca_p12_cert, name) != 1
        || X509_set_issuer_name(ca_p12_cert, name) != 1
        || X509_gmtime_adj(X509_getm_notBefore(ca_p12_cert), 0) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(ca_p12_cert), 86400) == NULL
        || X509_set_pubkey(ca_p12_cert, ca_p12_key) != 1
        || X509_sign(ca_p12_cert, ca_p12_key, EVP_sha256()) == 0)
    {
        abort();
    }

    X509_NAME_free(name);

    return 0;
}


/*
 * The input: one byte of flags (bit 0: --legacy), the user ID, a NUL, the
 * password (as the site hands them on: NUL-terminated strings; the user ID
 * one that ecodoc_ca_valid_user() passed, the password any bytes).  What
 * ecodoc_ca_p12() makes must open with that password and give back the
 * same key and certificate.
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   legacy;
    char                 *buf, *user, *pass;
    size_t                len;
    X509                 *x;
    PKCS12               *p12;
    EVP_PKEY             *k;
    unsigned char        *der;
    const unsigned char  *p;

    if (size < 1 || size > 1024) {
        return 0;
    }

    legacy = data[0] & 1;

    buf = calloc(1, size + 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data + 1, size - 1);
    user = buf;
    pass = buf + strlen(buf);
    pass += (pass < buf + size - 1);

    /* the user ID comes checked (the password does not) */

    if (!ecodoc_ca_valid_user(user)) {
        free(buf);
        return 0;
    }

    if (ecodoc_ca_p12(ca_p12_key, ca_p12_cert, user, pass, legacy, &der,
                      &len) != 0)
    {
        abort();
    }

    p = der;
    p12 = d2i_PKCS12(NULL, &p, (long) len);
    k = NULL;
    x = NULL;

    if (p12 == NULL || PKCS12_parse(p12, pass, &k, &x, NULL) != 1
        || k == NULL || x == NULL
        || EVP_PKEY_eq(k, ca_p12_key) != 1 || X509_cmp(x, ca_p12_cert) != 0)
    {
        abort();
    }

    EVP_PKEY_free(k);
    X509_free(x);
    PKCS12_free(p12);
    OPENSSL_free(der);
    free(buf);

    return 0;
}
