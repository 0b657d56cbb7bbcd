/*
 * ecodoc-ca: what the CA commands and the enrollment site share: the CA
 * directory and its database, issuance, revocation and certificate codes.
 */

#ifndef ECODOC_CA_PKI_H
#define ECODOC_CA_PKI_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ecodoc_ca.h"


#define ECODOC_CA_FP_LEN        65      /* 64 hex digits + NUL */
#define ECODOC_CA_SERIAL_LEN    40      /* 128 bits in hex + NUL, padded */
#define ECODOC_CA_SUBJECT_MAX   256
#define ECODOC_CA_ORG_MAX       80      /* 64 characters + NUL, UTF-8 */
#define ECODOC_CA_REASON_MAX    32
#define ECODOC_CA_DEFAULT_DAYS  397
#define ECODOC_CA_CRL_DAYS      7
#define ECODOC_CA_ENROLL_DAYS   7
#define ECODOC_CA_ENROLL_TRIES  5
#define ECODOC_CA_CODE_LEN      16      /* random certificate password */


/* the loaded CA: its directory, key, certificate and organisation */
typedef struct {
    char        dir[1024];
    char        org[ECODOC_CA_ORG_MAX];
    EVP_PKEY   *key;
    X509       *cert;
    int         lock_fd;                  /* -1 unless the database is held */
} ecodoc_ca_pki_t;


/* one line of the CA database (index.tsv) */
typedef struct {
    char        serial[ECODOC_CA_SERIAL_LEN];
    char        fp[ECODOC_CA_FP_LEN];
    char        subject[ECODOC_CA_SUBJECT_MAX];
    char        user[ECODOC_CA_USER_MAX + 1];
    long long   not_after;
    char        status;                   /* 'V' valid, 'R' revoked */
    long long   revoked;                  /* unix time, 0 when valid */
    char        reason[ECODOC_CA_REASON_MAX];
} ecodoc_ca_rec_t;


typedef struct {
    ecodoc_ca_rec_t  *rec;
    size_t            n;
    size_t            size;
} ecodoc_ca_db_t;


/* ecodoc_ca_ca.c: the CA directory and its database */

/* --dir, else $ECODOC_CA_DIR; NULL reported */
const char *ecodoc_ca_dir(const char *opt);

/* loads the CA; key_too == 0 reads no key (and needs no passphrase) */
int ecodoc_ca_pki_load(ecodoc_ca_pki_t *pki, const char *dir,
    const char *passfile, int key_too);
void ecodoc_ca_pki_free(ecodoc_ca_pki_t *pki);

/* the first queued OpenSSL error as text (clears the queue) */
const char *ecodoc_ca_ssl_error(void);

/* reads one line of a file, without the line end; NULL reported */
char *ecodoc_ca_read_secret(const char *file, const char *what);

/* writes data to path through a temporary file and rename */
int ecodoc_ca_write_file(const char *path, const void *data, size_t len,
    int mode);

/* the database: lock (flock on DIR/index.lock), read, append, rewrite */
int ecodoc_ca_db_lock(ecodoc_ca_pki_t *pki);
void ecodoc_ca_db_unlock(ecodoc_ca_pki_t *pki);
int ecodoc_ca_db_read(ecodoc_ca_pki_t *pki, ecodoc_ca_db_t *db);
int ecodoc_ca_db_write(ecodoc_ca_pki_t *pki, ecodoc_ca_db_t *db);
int ecodoc_ca_db_push(ecodoc_ca_db_t *db, const ecodoc_ca_rec_t *rec);
void ecodoc_ca_db_free(ecodoc_ca_db_t *db);

int ecodoc_ca_init(ecodoc_ca_t *ca, int argc, char **argv);
int ecodoc_ca_certs(ecodoc_ca_t *ca, int argc, char **argv);

/*
 * What the gate says of n certificates (lua/cert_states.lua): three
 * strings each, state, reason and time of a revocation; NULL reported
 */
struct redisReply *ecodoc_ca_cert_states(ecodoc_ca_t *ca, const char **fps,
    size_t n);


/* ecodoc_ca_issue.c: certificates */

/* adds an extension in openssl.cnf syntax; 0 or -1 */
int ecodoc_ca_x509_ext(X509 *x, X509 *issuer, int nid, const char *value);

/* "ec" (P-256), "ec384", "rsa2048", "rsa3072", "rsa4096"; NULL reported */
EVP_PKEY *ecodoc_ca_keygen(const char *type);

/* NULL when the key is acceptable, else why not (a sentence) */
const char *ecodoc_ca_key_problem(EVP_PKEY *key);

/* a PEM CSR: its verified public key (owned by the caller) or why not */
EVP_PKEY *ecodoc_ca_csr_key(const char *pem, size_t len,
    const char **problem);

/*
 * Signs a certificate for user over key, records it in the database and in
 * Redis and audits it (addr: the client, or "cli").  The user must exist;
 * issued for an enrollment session (esid, else NULL), that enrollment must
 * still stand when it is recorded (lua/cert_record.lua), or it is revoked
 * at once and NULL returned.
 */
X509 *ecodoc_ca_sign(ecodoc_ca_t *ca, ecodoc_ca_pki_t *pki,
    const char *user, EVP_PKEY *key, long days, const char *addr,
    const char *esid);

/* a PKCS#12 in memory (OPENSSL_free the buffer); -1 reported */
int ecodoc_ca_p12(EVP_PKEY *key, X509 *cert, const char *user,
    const char *pass, int legacy, unsigned char **out, size_t *len);

/* PEM of a certificate into a malloc'ed string */
char *ecodoc_ca_cert_pem(X509 *cert);

/* lower-case hex SHA-256 of the DER; hex serial; subject one-line */
void ecodoc_ca_cert_fp(X509 *cert, char fp[ECODOC_CA_FP_LEN]);
void ecodoc_ca_cert_serial(X509 *cert, char serial[ECODOC_CA_SERIAL_LEN]);
void ecodoc_ca_cert_subject(X509 *cert, char *buf, size_t size);
long long ecodoc_ca_cert_not_after(X509 *cert);

int ecodoc_ca_issue(ecodoc_ca_t *ca, int argc, char **argv);


/* ecodoc_ca_revoke.c: revocation and the CRL */

/* writes DIR/crl.pem from the database; days of validity */
int ecodoc_ca_crl_write(ecodoc_ca_pki_t *pki, ecodoc_ca_db_t *db,
    long days);

int ecodoc_ca_revoke(ecodoc_ca_t *ca, int argc, char **argv);
int ecodoc_ca_crl(ecodoc_ca_t *ca, int argc, char **argv);


/* ecodoc_ca_enroll.c: certificate passwords */

/*
 * A new certificate password for user, printed into pw: the unix time it
 * expires (by Redis' clock), or -1 reported.  With replace, its
 * certificate takes over the user's binding at its sign-up (a new PC).
 */
long long ecodoc_ca_enroll_new(ecodoc_ca_t *ca, const char *user, long days,
    unsigned cost, int replace, char pw[ECODOC_CA_CODE_LEN + 1]);

/* the registration notice (ja + en) for user; no secrets */
void ecodoc_ca_enroll_notice(const char *user, const char *enroll_url,
    const char *site_url);

/* the enrollment URL and the site URL: option, environment or default */
const char *ecodoc_ca_enroll_url(const char *opt, const char *site_opt);
const char *ecodoc_ca_site_url(const char *opt);

int ecodoc_ca_enroll_code(ecodoc_ca_t *ca, int argc, char **argv);


/* the enrollment site's use of them: STEP1, its session, redemption */

#define ECODOC_CA_TOKEN_LEN     44      /* 256 bits base64url + NUL */
#define ECODOC_CA_SESSION_TTL   "600"   /* seconds */

typedef enum {
    ECODOC_CA_CODE_OK = 0,
    ECODOC_CA_CODE_WRONG,                 /* or no such user, or none */
    ECODOC_CA_CODE_USED,
    ECODOC_CA_CODE_EXPIRED,
    ECODOC_CA_CODE_LOCKED,
    ECODOC_CA_CODE_NOSESSION,
    ECODOC_CA_CODE_CANCELLED,             /* a renewal no longer stands */
    ECODOC_CA_CODE_ERROR
} ecodoc_ca_code_e;

typedef struct {
    char   sid[ECODOC_CA_FP_LEN];         /* SHA-256 of the cookie token */
    char   user[ECODOC_CA_USER_MAX + 1];
    char   id[40];                        /* which certificate password */
    char   csrf[ECODOC_CA_TOKEN_LEN];
    char   key[16];                       /* STEP2's key type */
    char   fp[ECODOC_CA_FP_LEN];          /* STEP3's certificate */
    char   renew[ECODOC_CA_FP_LEN];       /* a renewal: the certificate */
    char  *pem;                           /* its PEM (malloc'ed) or NULL */
    char  *p12;                           /* the PKCS#12, base64, or NULL */
    int    p12_taken;                     /* downloaded at least once */
} ecodoc_ca_esess_t;

/* 256 random bits as base64url; -1 on failure */
int ecodoc_ca_token(char out[ECODOC_CA_TOKEN_LEN]);

/* the ID a session cookie's token is stored under: its hex SHA-256 */
void ecodoc_ca_sid(const char *token, char sid[ECODOC_CA_FP_LEN]);

/* STEP1: checks the password; OK makes a session (token, its csrf) */
ecodoc_ca_code_e ecodoc_ca_enroll_check(ecodoc_ca_t *ca, const char *user,
    const char *pw, size_t len, const char *addr,
    char token[ECODOC_CA_TOKEN_LEN], ecodoc_ca_esess_t *s);

/* the session of a cookie token: 1 found, 0 none, -1 error */
int ecodoc_ca_enroll_session(ecodoc_ca_t *ca, const char *token,
    ecodoc_ca_esess_t *s);
void ecodoc_ca_enroll_session_free(ecodoc_ca_esess_t *s);

/* sets a field of the session (its lifetime unchanged): 0, 1 when the
 * session has ended meanwhile, -1 on a Redis error */
int ecodoc_ca_enroll_set(ecodoc_ca_t *ca, ecodoc_ca_esess_t *s,
    const char *field, const char *value);

/* STEP3: consumes the session's certificate password, atomically (check:
 * only says whether it could) */
ecodoc_ca_code_e ecodoc_ca_enroll_redeem(ecodoc_ca_t *ca,
    ecodoc_ca_esess_t *s, int check);
ecodoc_ca_code_e ecodoc_ca_enroll_release(ecodoc_ca_t *ca,
    ecodoc_ca_esess_t *s, const char *addr);

#endif /* ECODOC_CA_PKI_H */
