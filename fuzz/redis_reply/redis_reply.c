/*
 * Fuzz harness: what the gate makes of Redis' replies: RESP bytes through
 * hiredis' reader into ngx_http_ecodoc_reply_verdict() and the session
 * record parser, ngx_http_ecodoc_session_record().
 */

#include "../ngx_fuzz.h"


/* the request's certificate, as the fingerprint of the session records */
static u_char  redis_reply_fp[] =
    "5f0c7e3ad64a1b2c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d";


/*
 * One reply as the gate reads it: the GATE script's verdict and its
 * extras, or a session record (GET's string).
 */

static void
redis_reply_read(ngx_http_request_t *r, redisReply *reply)
{
    ngx_int_t                  rc;
    ngx_str_t                  extra[2];
    ngx_uint_t                 initial, i;
    ngx_http_ecodoc_ctx_t      ctx;
    ngx_http_ecodoc_status_e   status;

    rc = ngx_http_ecodoc_reply_verdict(r->pool, reply, &status, extra, 2);

    if (rc == NGX_OK) {
        if (status == NGX_HTTP_ECODOC_ST_ERROR
            || status >= NGX_HTTP_ECODOC_ST_N)
        {
            abort();
        }

        for (i = 0; i < 2; i++) {
            if (extra[i].data && extra[i].data[extra[i].len] != '\0') {
                abort();
            }
        }

    } else if (status != NGX_HTTP_ECODOC_ST_ERROR) {
        abort();
    }

    if (reply->type != REDIS_REPLY_STRING) {
        return;
    }

    ngx_memzero(&ctx, sizeof(ngx_http_ecodoc_ctx_t));
    ctx.fp.data = redis_reply_fp;
    ctx.fp.len = NGX_HTTP_ECODOC_FP_LEN;

    initial = 2;

    rc = ngx_http_ecodoc_session_record(r, &ctx, (u_char *) reply->str,
                                        reply->len, &initial);

    /* alive: a valid user ID, and whether the password is the initial one */

    if (rc == NGX_OK
        && (initial > 1 || ngx_http_ecodoc_user_ok(&ctx.user) != NGX_OK))
    {
        abort();
    }
}


/* the input: bytes from Redis, as many replies as they hold */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void                *reply;
    redisReader         *reader;
    ngx_http_request_t  *r;

    r = ngx_fuzz_request();
    if (r == NULL) {
        return 0;
    }

    reader = redisReaderCreate();

    if (reader == NULL
        || redisReaderFeed(reader, (const char *) data, size) != REDIS_OK)
    {
        goto done;
    }

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(reader, &reply) != REDIS_OK
            || reply == NULL)
        {
            break;
        }

        redis_reply_read(r, reply);
        freeReplyObject(reply);
    }

done:

    if (reader) {
        redisReaderFree(reader);
    }

    ngx_destroy_pool(r->pool);

    return 0;
}
