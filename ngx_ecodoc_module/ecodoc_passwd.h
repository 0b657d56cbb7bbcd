/*
 * Password hashing shared by the nginx module and ecodoc-ca: scrypt through
 * OpenSSL 3, a self-describing stored string, constant-time verification.
 */

#ifndef ECODOC_PASSWD_H
#define ECODOC_PASSWD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Stored form: "$scrypt$ln=17,r=8,p=1$<salt b64>$<hash b64>" (unpadded
 * standard base64, 16-byte salt, 32-byte hash), the PHC string format.
 */

#define ECODOC_PASSWD_LEN        128      /* buffer size for a stored hash */
#define ECODOC_PASSWD_MAX_INPUT  1024     /* longest password accepted */

#define ECODOC_SCRYPT_LN         17       /* OWASP: N = 2^17, r = 8, p = 1 */
#define ECODOC_SCRYPT_R          8
#define ECODOC_SCRYPT_P          1

/* 0 on success; out holds a NUL-terminated stored string */
int ecodoc_passwd_hash(const char *pw, size_t len, unsigned ln, unsigned r,
    unsigned p, char out[ECODOC_PASSWD_LEN]);

/* 1 match, 0 no match, -1 malformed stored string or failure */
int ecodoc_passwd_verify(const char *pw, size_t len, const char *stored,
    size_t stored_len);

/* a random password of n characters from an unambiguous alphabet */
int ecodoc_passwd_random(char *out, size_t n);

#endif /* ECODOC_PASSWD_H */
