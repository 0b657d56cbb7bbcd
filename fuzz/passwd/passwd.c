/*
 * Fuzz harness: the stored password hash string, "$scrypt$ln=..,r=..,p=..$
 * salt$hash", as ecodoc_passwd_verify() parses it (ecodoc_passwd.c).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "ecodoc_passwd.h"


#define PASSWD_FUZZ_N_MAX  16


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_EVP_KDF_CTX_set_params(EVP_KDF_CTX *ctx, const OSSL_PARAM *p);


/*
 * Fuzz the parse, not scrypt: a stored string that parses with a cost
 * above N = 16 stops here (as a failure to derive), so that each input
 * takes microseconds; those at N <= 16 are hashed and compared for real.
 */

int
__wrap_EVP_KDF_CTX_set_params(EVP_KDF_CTX *ctx, const OSSL_PARAM *params)
{
    uint64_t           n;
    const OSSL_PARAM  *p;

    p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_SCRYPT_N);

    if (p != NULL
        && (OSSL_PARAM_get_uint64(p, &n) != 1 || n > PASSWD_FUZZ_N_MAX))
    {
        return 0;
    }

    return __real_EVP_KDF_CTX_set_params(ctx, params);
}


/*
 * The input: the password, a newline, the stored string (without a
 * newline: the password "password" and the whole input stored).
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc;
    size_t       pw_len;
    const char  *pw, *stored, *nl;

    nl = memchr(data, '\n', size);

    if (nl == NULL) {
        pw = "password";
        pw_len = 8;
        stored = (const char *) data;

    } else {
        pw = (const char *) data;
        pw_len = nl - pw;
        stored = nl + 1;
    }

    rc = ecodoc_passwd_verify(pw, pw_len, stored,
                              size - (stored - (const char *) data));

    if (rc < -1 || rc > 1) {
        abort();
    }

    return 0;
}
