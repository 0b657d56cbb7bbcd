/*
 * Password hashing shared by the nginx module and ecodoc-ca: scrypt through
 * OpenSSL 3, a self-describing stored string, constant-time verification.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "ecodoc_passwd.h"


#define ECODOC_SALT_LEN  16
#define ECODOC_HASH_LEN  32
#define ECODOC_LN_MAX    22
#define ECODOC_SCRYPT_MAXMEM  ((uint64_t) 1 << 30)


static const char  b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


static size_t
ecodoc_b64_encode(char *dst, const unsigned char *src, size_t len)
{
    char    *p;
    size_t   i;
    unsigned v;

    p = dst;

    for (i = 0; i + 2 < len; i += 3) {
        v = (unsigned) src[i] << 16 | (unsigned) src[i + 1] << 8 | src[i + 2];
        *p++ = b64[v >> 18 & 63];
        *p++ = b64[v >> 12 & 63];
        *p++ = b64[v >> 6 & 63];
        *p++ = b64[v & 63];
    }

    if (len - i == 1) {
        v = (unsigned) src[i] << 16;
        *p++ = b64[v >> 18 & 63];
        *p++ = b64[v >> 12 & 63];

    } else if (len - i == 2) {
        v = (unsigned) src[i] << 16 | (unsigned) src[i + 1] << 8;
        *p++ = b64[v >> 18 & 63];
        *p++ = b64[v >> 12 & 63];
        *p++ = b64[v >> 6 & 63];
    }

    *p = '\0';

    return p - dst;
}


/* decodes exactly n bytes from unpadded base64; -1 on any malformation */

static int
ecodoc_b64_decode(unsigned char *dst, size_t n, const char *src, size_t len)
{
    size_t      i, bits, out;
    unsigned    acc;
    const char *c;

    if (len != (n * 4 + 2) / 3) {
        return -1;
    }

    acc = 0;
    bits = 0;
    out = 0;

    for (i = 0; i < len; i++) {
        c = memchr(b64, src[i], 64);
        if (c == NULL || src[i] == '\0') {
            return -1;
        }

        acc = (acc << 6 | (unsigned) (c - b64)) & 0xffffff;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            if (out == n) {
                return -1;
            }
            dst[out++] = (unsigned char) (acc >> bits);
        }
    }

    return out == n ? 0 : -1;
}


static int
ecodoc_scrypt(const char *pw, size_t len, const unsigned char *salt,
    unsigned ln, unsigned r, unsigned p, unsigned char *out)
{
    int           rc;
    EVP_KDF      *kdf;
    EVP_KDF_CTX  *kctx;
    OSSL_PARAM    params[6], *q;
    uint64_t      n, maxmem;
    uint32_t      r32, p32;

    n = (uint64_t) 1 << ln;
    r32 = r;
    p32 = p;
    maxmem = 128 * n * r * (p + 1) + (1 << 20);

    kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (kdf == NULL) {
        return -1;
    }

    kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);

    if (kctx == NULL) {
        return -1;
    }

    q = params;
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                             (void *) pw, len);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                             (void *) salt, ECODOC_SALT_LEN);
    *q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
    *q = OSSL_PARAM_construct_end();

    rc = EVP_KDF_CTX_set_params(kctx, params) == 1
         && EVP_KDF_CTX_set_params(kctx, (OSSL_PARAM[]) {
                OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
                                            &maxmem),
                OSSL_PARAM_construct_end() }) == 1
         && EVP_KDF_derive(kctx, out, ECODOC_HASH_LEN, NULL) == 1;

    EVP_KDF_CTX_free(kctx);

    return rc ? 0 : -1;
}


/*
 * Parameters come from stored strings too: a record must not make a thread
 * allocate without bound, so 128 * N * r * p stays within 1 GiB.
 */

static int
ecodoc_params_ok(unsigned ln, unsigned r, unsigned p)
{
    return ln >= 1 && ln <= ECODOC_LN_MAX && r >= 1 && r <= 32
           && p >= 1 && p <= 16
           && ((uint64_t) 128 << ln) * r * p <= ECODOC_SCRYPT_MAXMEM;
}


int
ecodoc_passwd_hash(const char *pw, size_t len, unsigned ln, unsigned r,
    unsigned p, char out[ECODOC_PASSWD_LEN])
{
    int            n;
    unsigned char  salt[ECODOC_SALT_LEN], hash[ECODOC_HASH_LEN];

    if (!ecodoc_params_ok(ln, r, p) || len > ECODOC_PASSWD_MAX_INPUT) {
        return -1;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1
        || ecodoc_scrypt(pw, len, salt, ln, r, p, hash) != 0)
    {
        return -1;
    }

    n = snprintf(out, ECODOC_PASSWD_LEN, "$scrypt$ln=%u,r=%u,p=%u$", ln, r, p);
    n += ecodoc_b64_encode(out + n, salt, sizeof(salt));
    out[n++] = '$';
    ecodoc_b64_encode(out + n, hash, sizeof(hash));

    OPENSSL_cleanse(hash, sizeof(hash));

    return 0;
}


int
ecodoc_passwd_verify(const char *pw, size_t len, const char *stored,
    size_t stored_len)
{
    int            rc, used;
    char           buf[ECODOC_PASSWD_LEN];
    const char    *s, *h, *end;
    unsigned       ln, r, p;
    unsigned char  salt[ECODOC_SALT_LEN], hash[ECODOC_HASH_LEN],
                   want[ECODOC_HASH_LEN];

    if (stored_len >= sizeof(buf) || len > ECODOC_PASSWD_MAX_INPUT) {
        return -1;
    }

    memcpy(buf, stored, stored_len);
    buf[stored_len] = '\0';

    if (strlen(buf) != stored_len) {
        return -1;
    }

    used = 0;
    if (sscanf(buf, "$scrypt$ln=%u,r=%u,p=%u$%n", &ln, &r, &p, &used) != 3
        || used == 0 || !ecodoc_params_ok(ln, r, p))
    {
        return -1;
    }

    s = buf + used;
    end = buf + stored_len;
    h = memchr(s, '$', end - s);

    if (h == NULL
        || ecodoc_b64_decode(salt, sizeof(salt), s, h - s) != 0
        || ecodoc_b64_decode(want, sizeof(want), h + 1, end - h - 1) != 0)
    {
        return -1;
    }

    if (ecodoc_scrypt(pw, len, salt, ln, r, p, hash) != 0) {
        return -1;
    }

    rc = CRYPTO_memcmp(hash, want, sizeof(hash)) == 0;

    OPENSSL_cleanse(hash, sizeof(hash));

    return rc;
}


int
ecodoc_passwd_random(char *out, size_t n)
{
    size_t         i;
    unsigned char  b;

    /* no 0/O, 1/l/I: read aloud and typed from paper */
    static const char  alphabet[] =
        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

    for (i = 0; i < n; i++) {
        do {
            if (RAND_bytes(&b, 1) != 1) {
                return -1;
            }
        } while (b >= 256 - 256 % (sizeof(alphabet) - 1));

        out[i] = alphabet[b % (sizeof(alphabet) - 1)];
    }

    out[n] = '\0';

    return 0;
}
