/* lib/xml/text.c — one stanza to and from text, for logs, tests and
 * applications that keep stanzas as strings. from_text runs the same
 * restricted parser a stream gets, in fragment mode. */
#include <string.h>

#include "epode/stanza.h"
#include "parser_int.h"
#include "serialize.h"
#include "stanza/stanza_int.h"
#include "util/alloc.h"

int epode_stanza_to_text(const epode_stanza_t *el, unsigned flags, char **text, size_t *len)
{
    if (!el || !text || el->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    epode__buf b;
    epode__buf_init(&b, el->tree->mem);
    epode__serialize(&b, el, flags);
    char *out = b.failed ? NULL : epode__user_alloc(el->tree->mem, b.len + 1);
    if (!out) {
        epode__buf_free(&b);
        return EPODE_ENOMEM;
    }
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    *text = out;
    if (len)
        *len = b.len;
    epode__buf_free(&b);
    return 0;
}

struct collect {
    epode_stanza_t *st;
    int extra;
};

static void collect_cb(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    struct collect *c = user;
    if (ev != EPODE_PARSER_STANZA)
        return;
    if (c->st) {
        c->extra = 1;
        return;
    }
    c->st = epode_stanza_ref(el);
}

int epode_stanza_from_text(const epode_mem_t *mem, const char *text, size_t len,
                           epode_stanza_t **out, epode_stream_cond_t *cond)
{
    if (!text || !out)
        return EPODE_EINVAL;
    if (len == (size_t)-1)
        len = strlen(text);
    struct collect c = {NULL, 0};
    epode_parser_t *p;
    int rc = epode__parser_new(mem, collect_cb, &c, 1, &p);
    if (rc < 0)
        return rc;
    long r = epode_parser_feed(p, text, len);
    if (r >= 0)
        r = epode_parser_finish(p);
    epode_stream_cond_t k = epode_parser_condition(p);
    if (r >= 0 && (!c.st || c.extra)) {
        r = EPODE_EXML;
        k = EPODE_STREAM_NOT_WELL_FORMED;
    }
    if (r == EPODE_EXML && k == EPODE_STREAM_RESOURCE_CONSTRAINT)
        r = EPODE_ENOMEM;
    epode_parser_free(p);
    if (r < 0) {
        epode_stanza_unref(c.st);
        if (cond)
            *cond = k;
        return (int)r;
    }
    *out = c.st;
    if (cond)
        *cond = EPODE_STREAM_NONE;
    return 0;
}
