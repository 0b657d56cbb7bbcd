/*
 * Fuzz harness: ecodoc-ca's CSR acceptance, ecodoc_ca_csr_key(): PEM, the
 * request's signature, its key's type and size (ca-tools/ecodoc_ca_issue.c).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ecodoc_ca_pki.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/*
 * An input that starts as PEM goes in as it is; any other is taken as DER
 * and wrapped in PEM first, so that the fuzzer reaches the ASN.1 and the
 * checks after it without having to keep base64 valid.
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    BIO         *b;
    char        *pem;
    long         len;
    EVP_PKEY    *key;
    const char  *problem;

    if (size > 65536) {
        return 0;
    }

    if (size >= 5 && memcmp(data, "-----", 5) == 0) {
        problem = NULL;
        key = ecodoc_ca_csr_key((const char *) data, size, &problem);

    } else {
        b = BIO_new(BIO_s_mem());
        if (b == NULL
            || PEM_write_bio(b, "CERTIFICATE REQUEST", "", data, size) <= 0)
        {
            BIO_free(b);
            return 0;
        }

        len = BIO_get_mem_data(b, &pem);
        problem = NULL;
        key = ecodoc_ca_csr_key(pem, (size_t) len, &problem);
        BIO_free(b);
    }

    /* a key is returned with no problem, and a problem without a key */

    if ((key == NULL) == (problem == NULL)) {
        abort();
    }

    if (key != NULL && ecodoc_ca_key_problem(key) != NULL) {
        abort();
    }

    EVP_PKEY_free(key);
    ERR_clear_error();

    return 0;
}
