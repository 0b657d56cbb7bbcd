/*
 * What the gate's pages and the enrollment site share, in plain C for the
 * nginx module and ecodoc-ca alike: HTML escaping, form (%XX) decoding,
 * the Accept-Language choice and the page style.
 */

#ifndef ECODOC_WEB_H
#define ECODOC_WEB_H

#include <stddef.h>


/* ecodoc_web_unescape()'s flag: '+' is a space (a form, not a header) */
#define ECODOC_WEB_PLUS   1


/*
 * The look of every page both programs make: each side appends the rules
 * of its own elements (the enrollment site's steps, tables and wider main)
 */
#define ECODOC_WEB_STYLE                                                     \
    "body{margin:0;font-family:system-ui,-apple-system,\"Segoe UI\","       \
    "\"Hiragino Sans\",\"Noto Sans CJK JP\",sans-serif;background:#f3f5f7;" \
    "color:#1b1f23;line-height:1.6}\n"                                       \
    "header{background:#0b3d6e;color:#fff;padding:.8rem 1.2rem;"            \
    "font-weight:bold}\n"                                                    \
    "main{max-width:34rem;margin:2rem auto;background:#fff;"                \
    "padding:1.5rem 2rem;border-radius:8px;"                                 \
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}\n"                                \
    "h1{font-size:1.4rem;margin-top:0}\n"                                    \
    "label{display:block;margin:1rem 0 .3rem;font-weight:bold}\n"            \
    "input[type=text],input[type=password],textarea{width:100%;"            \
    "box-sizing:border-box;padding:.6rem;font-size:1rem;"                    \
    "border:1px solid #77818b;border-radius:4px}\n"                          \
    "input[aria-invalid=true],textarea[aria-invalid=true]{"                 \
    "border:2px solid #b00020}\n"                                            \
    "input:focus,textarea:focus,button:focus,a:focus{outline:3px solid "    \
    "#f0b429;outline-offset:2px}\n"                                          \
    "button{margin-top:1.4rem;padding:.7rem 1.8rem;font-size:1rem;"          \
    "background:#0b5cad;color:#fff;border:0;border-radius:4px;"              \
    "cursor:pointer}\n"                                                      \
    ".error{color:#b00020;font-weight:bold;margin:.3rem 0}\n"                \
    ".done{background:#e6f4ea;border-left:4px solid #1e7e34;padding:.8rem}\n"\
    ".notice{background:#fff4e0;border-left:4px solid #a35200;"              \
    "padding:.1rem .8rem;margin-bottom:1rem}\n"                              \
    ".rules{margin:.2rem 0 .4rem;font-size:.95rem}"                          \
    ".rules ul{margin:.2rem 0;padding-left:1.4rem}\n"                        \
    "@media (max-width:36rem){main{margin:0;border-radius:0;padding:1rem}}\n"


/* the best q of "en" and of "ja" (in 1000ths; -1: not named) seen so far */
typedef struct {
    int  en;
    int  ja;
} ecodoc_web_lang_t;


/*
 * src with & < > " ' as entities, for text and quoted attributes alike;
 * the length of the result, which dst NULL only counts
 */
size_t ecodoc_web_escape_html(unsigned char *dst, const unsigned char *src,
    size_t len);

/*
 * %XX (and with ECODOC_WEB_PLUS '+') decoded from src into dst, which may
 * be src itself; the length decoded, or -1 for a malformed escape.  A %00
 * comes out as a NUL: what may hold one is the caller's to judge.
 */
long ecodoc_web_unescape(unsigned char *dst, const unsigned char *src,
    size_t len, int flags);

/* Accept-Language: each header's value is added, then the choice made */
void ecodoc_web_lang_init(ecodoc_web_lang_t *lang);
void ecodoc_web_lang_add(ecodoc_web_lang_t *lang, const unsigned char *value,
    size_t len);

/* 1 when English is acceptable and rated above Japanese; 0: Japanese */
int ecodoc_web_lang_english(const ecodoc_web_lang_t *lang);

#endif /* ECODOC_WEB_H */
