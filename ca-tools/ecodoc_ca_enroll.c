/*
 * ecodoc-ca enroll-code and the certificate passwords (認証情報パスワード):
 * made, hashed, checked with a try limit, redeemed once; the notice.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ecodoc_passwd.h"
#include "ecodoc_lua.h"
#include "ecodoc_ca.h"
#include "ecodoc_ca_pki.h"
#include "ecodoc_ca_redis.h"


#define ECODOC_CA_SITE_URL     "https://localhost"
#define ECODOC_CA_URL_MAX      512
#define ECODOC_CA_STR(x)       ECODOC_CA_STR_(x)
#define ECODOC_CA_STR_(x)      #x


/* a well-formed hash at the default cost that no password matches */
static const char  ecodoc_ca_dummy_hash[] =
    "$scrypt$ln=" ECODOC_CA_STR(ECODOC_SCRYPT_LN) ",r="
    ECODOC_CA_STR(ECODOC_SCRYPT_R) ",p=" ECODOC_CA_STR(ECODOC_SCRYPT_P)
    "$mgSAUtaKipMKd3spyROcOQ$rUiI8mzyPS1IATQyjZmojGBLx4qMUHPN41nqiCS+5lw";


int
ecodoc_ca_token(char out[ECODOC_CA_TOKEN_LEN])
{
    int            n;
    unsigned char  raw[32];
    char           b64[48];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return -1;
    }

    n = EVP_EncodeBlock((unsigned char *) b64, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));

    /* 44 characters with one '=': base64url without padding */
    for (n = 0; n < ECODOC_CA_TOKEN_LEN - 1; n++) {
        out[n] = (b64[n] == '+') ? '-' : (b64[n] == '/') ? '_' : b64[n];
    }

    out[n] = '\0';

    return 0;
}


void
ecodoc_ca_sid(const char *token, char sid[ECODOC_CA_FP_LEN])
{
    int            i;
    unsigned char  md[32];

    EVP_Digest(token, strlen(token), md, NULL, EVP_sha256(), NULL);

    for (i = 0; i < 32; i++) {
        sprintf(sid + 2 * i, "%02x", md[i]);
    }
}


long long
ecodoc_ca_enroll_new(ecodoc_ca_t *ca, const char *user, long days,
    unsigned cost, int replace, char pw[ECODOC_CA_CODE_LEN + 1])
{
    int            i;
    char           stored[ECODOC_PASSWD_LEN], dummy[ECODOC_PASSWD_LEN],
                   other[ECODOC_CA_CODE_LEN + 1], ndays[24], id[33];
    long long      expires;
    redisReply    *r;
    const char    *args[6];
    unsigned char  raw[16];

    if (ecodoc_passwd_random(pw, ECODOC_CA_CODE_LEN) != 0
        || RAND_bytes(raw, sizeof(raw)) != 1)
    {
        ecodoc_ca_error("cannot make a random password");
        return -1;
    }

    for (i = 0; i < 16; i++) {
        sprintf(id + 2 * i, "%02x", raw[i]);
    }

    /* and the hash of a password nobody knows, for STEP1's unknown users */

    if (ecodoc_passwd_hash(pw, ECODOC_CA_CODE_LEN, cost, ECODOC_SCRYPT_R,
                           ECODOC_SCRYPT_P, stored) != 0
        || ecodoc_passwd_random(other, ECODOC_CA_CODE_LEN) != 0
        || ecodoc_passwd_hash(other, ECODOC_CA_CODE_LEN, cost,
                              ECODOC_SCRYPT_R, ECODOC_SCRYPT_P, dummy) != 0)
    {
        ecodoc_ca_error("cannot hash the password");
        return -1;
    }

    OPENSSL_cleanse(other, sizeof(other));
    snprintf(ndays, sizeof(ndays), "%ld", days);

    args[0] = user;
    args[1] = stored;
    args[2] = ndays;
    args[3] = id;
    args[4] = dummy;
    args[5] = replace ? "1" : "0";

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_enroll_new, REDIS_REPLY_INTEGER,
                               "cli", "", 6, args);
    if (r == NULL) {
        return -1;
    }

    expires = r->integer;
    freeReplyObject(r);

    if (expires == 0) {
        ecodoc_ca_error("no such user: %s", user);
        return -1;
    }

    /* still handed out, as the old one is gone already (exit 3) */
    (void) ecodoc_ca_redis_confirm(ca, "the certificate password");

    return expires;
}


static const char *
ecodoc_ca_url(const char *opt, const char *env, const char *dflt)
{
    const char  *v;

    v = (opt != NULL) ? opt : getenv(env);

    return (v != NULL && v[0] != '\0') ? v : dflt;
}


const char *
ecodoc_ca_site_url(const char *opt)
{
    static char  buf[ECODOC_CA_URL_MAX];
    size_t       n;

    snprintf(buf, sizeof(buf), "%s",
             ecodoc_ca_url(opt, "ECODOC_SITE_URL", ECODOC_CA_SITE_URL));

    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/') {
        buf[--n] = '\0';
    }

    return buf;
}


const char *
ecodoc_ca_enroll_url(const char *opt, const char *site_opt)
{
    static char  buf[ECODOC_CA_URL_MAX];

    snprintf(buf, sizeof(buf), "%s/enroll/", ecodoc_ca_site_url(site_opt));

    return ecodoc_ca_url(opt, "ECODOC_ENROLL_URL", buf);
}


void
ecodoc_ca_enroll_notice(const char *user, const char *enroll_url,
    const char *site_url)
{
    printf(
"件名: 【ecodoc】ユーザー登録のご連絡\n"
"\n"
"ユーザID: %s\n"
"認証情報パスワード: 管理者にお問い合わせ下さい。\n"
"サインアップ・ログインパスワード: 管理者にお問い合わせ下さい。\n"
"\n"
"ご利用開始手続\n"
"\n"
"1) 電子証明書の準備\n"
"実際に本サービスでご利用になるPCより、本サービス専用の証明書発行サイトに"
"アクセスし、\n"
"Webブラウザに電子証明書をインストールして下さい。\n"
"\n"
"証明書発行サイト\n"
"%s\n"
"\n"
"※必ず実際に本サービスでご利用になるPCより電子証明書をインストールして"
"下さい。\n"
"※認証情報パスワードは一回のみ有効です(有効期限があります)。インストールに"
"失敗された\n"
"  場合は、管理者にご連絡ください。\n"
"\n"
"2) サインアップ\n"
"証明書をインストールしたブラウザで次の URL に接続し、ユーザIDと"
"サインアップ・ログイン\n"
"初期パスワードを入力して「サインアップ」をクリックして下さい。\n"
"%s/ecodoc/signup\n"
"\n"
"3) ログイン\n"
"ログイン専用 URL\n"
"%s/ecodoc/login\n"
"最初のログイン後、初期パスワードを任意のパスワードにご変更ください。\n"
"パスワードを6回続けて間違えますと、ユーザIDがロックします。"
"その場合は管理者にご連絡ください。\n"
"\n"
"----------------------------------------------------------------------\n"
"\n"
"Subject: [ecodoc] Your user registration\n"
"\n"
"User ID: %s\n"
"Certificate password: ask your administrator.\n"
"Sign-up and login password: ask your administrator.\n"
"\n"
"Getting started\n"
"\n"
"1) Install your certificate\n"
"On the PC you will use the service from, open the certificate enrollment "
"site and\n"
"install the certificate into your web browser:\n"
"%s\n"
"The certificate password is valid for one certificate only and expires. "
"If the\n"
"installation fails, please contact your administrator.\n"
"\n"
"2) Sign up\n"
"In the browser with the certificate, open the sign-up page and enter your "
"user ID\n"
"and the initial password:\n"
"%s/ecodoc/signup\n"
"\n"
"3) Log in\n"
"Login page:\n"
"%s/ecodoc/login\n"
"After the first login, change the initial password. Six wrong passwords "
"in a row\n"
"lock the user ID; then please contact your administrator.\n",
           user, enroll_url, site_url, site_url, user, enroll_url, site_url,
           site_url);
}


/* enroll-code USER [--days N] [--cost LN] [--replace] */

int
ecodoc_ca_enroll_code(ecodoc_ca_t *ca, int argc, char **argv)
{
    char        *user, code[ECODOC_CA_CODE_LEN + 1],
                 exp[ECODOC_CA_TIME_LEN];
    unsigned     cost;
    long long    days, expires;
    const char  *days_s, *cost_s, *replace;

    ecodoc_ca_option_t  opts[] = {
        { "--days", 1, &days_s },
        { "--cost", 1, &cost_s },
        { "--replace", 0, &replace },
        { NULL, 0, NULL }
    };

    days_s = NULL;
    cost_s = NULL;
    replace = NULL;
    days = ECODOC_CA_ENROLL_DAYS;

    if (ecodoc_ca_options(argc, argv, opts, &user, 1, NULL) != ECODOC_CA_OK
        || ecodoc_ca_check_user(user) != 0
        || ecodoc_ca_cost(cost_s, &cost) != 0)
    {
        return ECODOC_CA_USAGE;
    }

    if (days_s != NULL && ecodoc_ca_number(days_s, 0, 365, &days) != 0) {
        ecodoc_ca_usage_error("invalid --days \"%s\": use 0..365", days_s);
        return ECODOC_CA_USAGE;
    }

    expires = ecodoc_ca_enroll_new(ca, user, (long) days, cost,
                                   replace != NULL, code);
    if (expires < 0) {
        return ECODOC_CA_ERROR;
    }

    ecodoc_ca_iso_time(exp, (time_t) expires, -1);

    printf("user: %s\ncertificate password: %s\nexpires: %s\n", user, code,
           exp);

    if (replace != NULL) {
        printf("replaces: the certificate bound to %s when the new one "
               "signs up\n", user);
    }

    OPENSSL_cleanse(code, sizeof(code));

    return ECODOC_CA_OK;
}


/* the enrollment site */

static ecodoc_ca_code_e
ecodoc_ca_code_state(const char *s)
{
    if (strcmp(s, "ok") == 0) {
        return ECODOC_CA_CODE_OK;
    }

    if (strcmp(s, "used") == 0) {
        return ECODOC_CA_CODE_USED;
    }

    if (strcmp(s, "expired") == 0) {
        return ECODOC_CA_CODE_EXPIRED;
    }

    if (strcmp(s, "locked") == 0) {
        return ECODOC_CA_CODE_LOCKED;
    }

    if (strcmp(s, "nosession") == 0) {
        return ECODOC_CA_CODE_NOSESSION;
    }

    if (strcmp(s, "cancelled") == 0) {
        return ECODOC_CA_CODE_CANCELLED;
    }

    return ECODOC_CA_CODE_WRONG;
}


/* runs a script that answers one of the states above */

static ecodoc_ca_code_e
ecodoc_ca_code_eval(ecodoc_ca_t *ca, const char *script, const char *addr,
    int argc, const char **args)
{
    redisReply       *r;
    ecodoc_ca_code_e  rc;

    r = ecodoc_ca_redis_script(ca, script, REDIS_REPLY_STRING, addr, "", argc,
                               args);
    if (r == NULL) {
        return ECODOC_CA_CODE_ERROR;
    }

    rc = ecodoc_ca_code_state(r->str);
    freeReplyObject(r);

    return rc;
}


/* lua/enroll_tried.lua: STEP1's check recorded */

static ecodoc_ca_code_e
ecodoc_ca_enroll_tried(ecodoc_ca_t *ca, const char *user, const char *id,
    int right, const char *addr, const char *state, ecodoc_ca_esess_t *s)
{
    const char  *args[8];

    args[0] = user;
    args[1] = id;
    args[2] = right ? "1" : "0";
    args[3] = ECODOC_CA_STR(ECODOC_CA_ENROLL_TRIES);
    args[4] = s->csrf;
    args[5] = ECODOC_CA_SESSION_TTL;
    args[6] = state;
    args[7] = s->sid;

    return ecodoc_ca_code_eval(ca, ecodoc_lua_enroll_tried, addr, 8, args);
}


ecodoc_ca_code_e
ecodoc_ca_enroll_check(ecodoc_ca_t *ca, const char *user, const char *pw,
    size_t len, const char *addr, char token[ECODOC_CA_TOKEN_LEN],
    ecodoc_ca_esess_t *s)
{
    int               right;
    char              id[40], state[16];
    redisReply       *r, *e;
    const char       *args[2];
    ecodoc_ca_code_e  rc;

    memset(s, 0, sizeof(*s));

    if (ecodoc_ca_token(token) != 0 || ecodoc_ca_token(s->csrf) != 0) {
        return ECODOC_CA_CODE_ERROR;
    }

    ecodoc_ca_sid(token, s->sid);
    snprintf(s->user, sizeof(s->user), "%s", user);

    args[0] = user;
    args[1] = ECODOC_CA_STR(ECODOC_CA_ENROLL_TRIES);

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_enroll_try, REDIS_REPLY_ARRAY,
                               addr, "", 2, args);
    if (r == NULL) {
        return ECODOC_CA_CODE_ERROR;
    }

    if (ecodoc_ca_redis_strings(r, 1) != 0 || r->elements < 1
        || (strcmp(r->element[0]->str, "ok") == 0 && r->elements != 4)
        || (r->elements == 4 && (r->element[2]->len >= sizeof(id)
                                 || r->element[3]->len >= sizeof(state))))
    {
        ecodoc_ca_error("unexpected reply to the enrollment check");
        freeReplyObject(r);
        return ECODOC_CA_CODE_ERROR;
    }

    if (strcmp(r->element[0]->str, "ok") != 0) {
        rc = (strcmp(r->element[0]->str, "locked") == 0)
             ? ECODOC_CA_CODE_LOCKED : ECODOC_CA_CODE_WRONG;

        /*
         * as slow as a real check, so that the answer's time tells nothing:
         * against the hash of nothing made at the cost of the newest
         * certificate password (lua/enroll_new.lua), else ours
         */

        if (r->elements == 2 && r->element[1]->len > 0) {
            (void) ecodoc_passwd_verify(pw, len, r->element[1]->str,
                                        r->element[1]->len);

        } else {
            (void) ecodoc_passwd_verify(pw, len, ecodoc_ca_dummy_hash,
                                        sizeof(ecodoc_ca_dummy_hash) - 1);
        }

        freeReplyObject(r);
        return rc;
    }

    e = r;

    /* checked only once the replicas count the try: 503 otherwise */
    if (ecodoc_ca_redis_confirm(ca, "a try of the certificate password")
        != ECODOC_CA_OK)
    {
        freeReplyObject(r);
        return ECODOC_CA_CODE_ERROR;
    }

    right = ecodoc_passwd_verify(pw, len, e->element[1]->str,
                                 e->element[1]->len) == 1;
    strcpy(id, e->element[2]->str);
    strcpy(state, e->element[3]->str);
    freeReplyObject(r);

    rc = ecodoc_ca_enroll_tried(ca, user, id, right, addr, state, s);

    if (rc == ECODOC_CA_CODE_OK) {
        snprintf(s->id, sizeof(s->id), "%s", id);
    }

    return rc;
}


int
ecodoc_ca_enroll_session(ecodoc_ca_t *ca, const char *token,
    ecodoc_ca_esess_t *s)
{
    char         key[ECODOC_CA_KEY_LEN];
    redisReply  *r;
    const char  *argv[2], *v;

    memset(s, 0, sizeof(*s));

    if (strlen(token) != ECODOC_CA_TOKEN_LEN - 1
        || strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789-_") != ECODOC_CA_TOKEN_LEN - 1)
    {
        return 0;
    }

    ecodoc_ca_sid(token, s->sid);
    ecodoc_ca_redis_key(ca, key, "enroll_sess:", s->sid, "");

    argv[0] = "HGETALL";
    argv[1] = key;

    r = ecodoc_ca_redis_command(ca, REDIS_REPLY_ARRAY, 2, argv);
    if (r == NULL) {
        return -1;
    }

    if (ecodoc_ca_redis_strings(r, 2) != 0) {
        freeReplyObject(r);
        return -1;
    }

    v = ecodoc_ca_redis_field(r, "user");

    if (v == NULL || !ecodoc_ca_valid_user(v)) {
        freeReplyObject(r);
        return 0;
    }

    strcpy(s->user, v);

#define ECODOC_CA_FIELD(name, dst)                                           \
    v = ecodoc_ca_redis_field(r, name);                                      \
    snprintf(dst, sizeof(dst), "%s", v != NULL ? v : "")

    ECODOC_CA_FIELD("id", s->id);
    ECODOC_CA_FIELD("csrf", s->csrf);
    ECODOC_CA_FIELD("key", s->key);
    ECODOC_CA_FIELD("fp", s->fp);
    ECODOC_CA_FIELD("renew", s->renew);

#undef ECODOC_CA_FIELD

    v = ecodoc_ca_redis_field(r, "pem");
    s->pem = (v != NULL) ? strdup(v) : NULL;
    v = ecodoc_ca_redis_field(r, "p12");
    s->p12 = (v != NULL) ? strdup(v) : NULL;
    s->p12_taken = ecodoc_ca_redis_field(r, "p12_taken") != NULL;

    freeReplyObject(r);

    return 1;
}


void
ecodoc_ca_enroll_session_free(ecodoc_ca_esess_t *s)
{
    free(s->pem);
    s->pem = NULL;

    if (s->p12 != NULL) {
        OPENSSL_cleanse(s->p12, strlen(s->p12));
        free(s->p12);
        s->p12 = NULL;
    }
}


int
ecodoc_ca_enroll_set(ecodoc_ca_t *ca, ecodoc_ca_esess_t *s,
    const char *field, const char *value)
{
    int          rc;
    redisReply  *r;
    const char  *args[3];

    args[0] = s->sid;
    args[1] = field;
    args[2] = value;

    r = ecodoc_ca_redis_script(ca, ecodoc_lua_enroll_set, REDIS_REPLY_INTEGER,
                               "cli", "", 3, args);
    if (r == NULL) {
        return -1;
    }

    rc = (r->integer == 1) ? 0 : 1;
    freeReplyObject(r);

    return rc;
}


ecodoc_ca_code_e
ecodoc_ca_enroll_redeem(ecodoc_ca_t *ca, ecodoc_ca_esess_t *s, int check)
{
    const char  *args[4];

    args[0] = s->user;
    args[1] = ECODOC_CA_STR(ECODOC_CA_ENROLL_TRIES);
    args[2] = check ? "1" : "0";
    args[3] = s->sid;

    return ecodoc_ca_code_eval(ca, ecodoc_lua_enroll_redeem, "cli", 4, args);
}


ecodoc_ca_code_e
ecodoc_ca_enroll_release(ecodoc_ca_t *ca, ecodoc_ca_esess_t *s,
    const char *addr)
{
    const char  *args[3];

    args[0] = s->user;
    args[1] = s->id;
    args[2] = s->sid;

    return ecodoc_ca_code_eval(ca, ecodoc_lua_enroll_release, addr, 3, args);
}
