/*
 * Fuzz harness: Accept-Language, as ngx_http_ecodoc_lang() weighs "ja"
 * against "en" (ngx_http_ecodoc_texts.c), and the texts it picks.
 */

#include "../ngx_fuzz.h"


/* the input: Accept-Language headers, one per line */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_uint_t           lang;
    ngx_http_request_t  *r;

    r = ngx_fuzz_request();
    if (r == NULL) {
        return 0;
    }

    if (ngx_fuzz_headers(r, "Accept-Language", data, size) != NULL) {
        lang = ngx_http_ecodoc_lang(r);

        if (lang > 1
            || ngx_http_ecodoc_text(lang, NGX_HTTP_ECODOC_T_SERVICE) == NULL)
        {
            abort();
        }
    }

    ngx_destroy_pool(r->pool);

    return 0;
}
