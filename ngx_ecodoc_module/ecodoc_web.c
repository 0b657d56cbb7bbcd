/*
 * What the gate's pages and the enrollment site share, in plain C for the
 * nginx module and ecodoc-ca alike: HTML escaping, form (%XX) decoding,
 * the Accept-Language choice and the page style (ecodoc_web.h).
 *
 * One piece of code each, so that both programs escape the same
 * characters, refuse the same malformed escapes and pick the same
 * language for the same header.  What stays apart and why: the module
 * keeps nginx's own ngx_escape_uri() for its redirects and its pool
 * allocation around these calls; the CA tool's request comes from
 * libmicrohttpd, whose own decoding of the target is not used (the site
 * routes on the path as sent).
 */

#include <string.h>

#include "ecodoc_web.h"


#define ECODOC_WEB_OWS(c)  ((c) == ' ' || (c) == '\t')


static int ecodoc_web_hex(int c);
static int ecodoc_web_qvalue(const unsigned char *p, const unsigned char *end);
static int ecodoc_web_lang_is(const unsigned char *tag, size_t len,
    const char *lang);


size_t
ecodoc_web_escape_html(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t          i, n;
    const char     *e;
    unsigned char  *p;

    n = 0;
    p = dst;

    for (i = 0; i < len; i++) {
        switch (src[i]) {
        case '&':  e = "&amp;"; break;
        case '<':  e = "&lt;"; break;
        case '>':  e = "&gt;"; break;
        case '"':  e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default:   e = NULL;
        }

        if (e == NULL) {
            if (p != NULL) {
                *p++ = src[i];
            }

            n++;
            continue;
        }

        if (p != NULL) {
            memcpy(p, e, strlen(e));
            p += strlen(e);
        }

        n += strlen(e);
    }

    return n;
}


static int
ecodoc_web_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


long
ecodoc_web_unescape(unsigned char *dst, const unsigned char *src,
    size_t len, int flags)
{
    int                   hi, lo;
    unsigned char        *d;
    const unsigned char  *end;

    d = dst;
    end = src + len;

    while (src < end) {
        if (*src == '+' && (flags & ECODOC_WEB_PLUS)) {
            *d++ = ' ';
            src++;

        } else if (*src == '%') {
            if (end - src < 3) {
                return -1;
            }

            hi = ecodoc_web_hex(src[1]);
            lo = ecodoc_web_hex(src[2]);

            if (hi < 0 || lo < 0) {
                return -1;
            }

            *d++ = (unsigned char) (hi << 4 | lo);
            src += 3;

        } else {
            *d++ = *src++;
        }
    }

    return (long) (d - dst);
}


void
ecodoc_web_lang_init(ecodoc_web_lang_t *lang)
{
    lang->en = -1;
    lang->ja = -1;
}


/* a qvalue (RFC 9110 12.4.2) in 1000ths; a malformed one is 0 */

static int
ecodoc_web_qvalue(const unsigned char *p, const unsigned char *end)
{
    int  q, scale;

    if (p == end || (*p != '0' && *p != '1')) {
        return 0;
    }

    q = (*p++ - '0') * 1000;

    if (p < end && *p == '.') {
        for (p++, scale = 100;
             p < end && *p >= '0' && *p <= '9' && scale > 0;
             p++, scale /= 10)
        {
            q += (*p - '0') * scale;
        }
    }

    while (p < end && ECODOC_WEB_OWS(*p)) {
        p++;
    }

    return (p == end && q <= 1000) ? q : 0;
}


/* "en" matches "en" and "en-GB", never "eng" */

static int
ecodoc_web_lang_is(const unsigned char *tag, size_t len, const char *lang)
{
    return len >= 2
           && (tag[0] | 0x20) == lang[0] && (tag[1] | 0x20) == lang[1]
           && (len == 2 || tag[2] == '-');
}


void
ecodoc_web_lang_add(ecodoc_web_lang_t *lang, const unsigned char *value,
    size_t len)
{
    int                   q;
    const unsigned char  *p, *end, *elt, *tag, *tag_end, *semi;

    end = value + len;

    for (p = value; p < end; p = elt + (elt < end)) {

        /* one element: language-range *( OWS ";" OWS parameter ) */

        elt = memchr(p, ',', end - p);
        if (elt == NULL) {
            elt = end;
        }

        while (p < elt && ECODOC_WEB_OWS(*p)) {
            p++;
        }

        tag = p;

        while (p < elt && *p != ';' && !ECODOC_WEB_OWS(*p)) {
            p++;
        }

        tag_end = p;
        q = 1000;

        while (p < elt) {
            semi = memchr(p, ';', elt - p);
            if (semi == NULL) {
                break;
            }

            for (p = semi + 1; p < elt && ECODOC_WEB_OWS(*p); p++) {
                /* void */
            }

            if (elt - p >= 2 && (p[0] | 0x20) == 'q' && p[1] == '=') {
                semi = memchr(p, ';', elt - p);
                q = ecodoc_web_qvalue(p + 2, semi != NULL ? semi : elt);
            }
        }

        if (ecodoc_web_lang_is(tag, tag_end - tag, "en") && q > lang->en) {
            lang->en = q;

        } else if (ecodoc_web_lang_is(tag, tag_end - tag, "ja")
                   && q > lang->ja)
        {
            lang->ja = q;
        }
    }
}


int
ecodoc_web_lang_english(const ecodoc_web_lang_t *lang)
{
    return lang->en > 0 && lang->en > lang->ja;
}
