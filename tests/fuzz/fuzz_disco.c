/* tests/fuzz/fuzz_disco.c — service discovery and data forms read from
 * arbitrary bytes: epode_disco_info_parse() and epode_disco_items_parse()
 * on whatever epode_stanza_from_text() makes of them, every string they
 * hand out read to its end, and every <x xmlns='jabber:x:data'/> found
 * offered to epode_disco_add_form(). A form the responder accepts must
 * come back from epode_disco_build_info() under its FORM_TYPE, and what
 * the responder builds must survive text and back with the same
 * verification string. Never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

static size_t sink; /* keeps the reads below from being optimized out */

static void touch(const char *s)
{
    if (s)
        sink += strlen(s);
}

static void walk_info(const epode_disco_info_t *info)
{
    touch(info->node);
    for (size_t i = 0; i < info->nidentities; i++) {
        const epode_disco_identity_t *id = &info->identities[i];
        if (!id->category || !id->type || !*id->category || !*id->type)
            abort(); /* XEP-0030 requires both; the parser promises them */
        touch(id->category), touch(id->type), touch(id->name), touch(id->lang);
    }
    for (size_t i = 0; i < info->nfeatures; i++) {
        if (!info->features[i] || !*info->features[i])
            abort();
        if (epode_disco_info_has_feature(info, info->features[i]) != 1)
            abort();
    }
    for (size_t i = 0; i < info->nforms; i++) {
        const epode_disco_form_t *f = &info->forms[i];
        touch(f->form_type), touch(f->type);
        for (size_t k = 0; k < f->nfields; k++) {
            touch(f->fields[k].var), touch(f->fields[k].type);
            for (size_t v = 0; v < f->fields[k].nvalues; v++) {
                if (!f->fields[k].values[v])
                    abort();
                touch(f->fields[k].values[v]);
            }
        }
    }
}

/* The verification string of what `d` answers for `node`, through text
 * and back: both readings must agree. */
static void check_built(epode_disco_t *d, const char *node, const char *form_type)
{
    epode_stanza_t *q, *back;
    epode_disco_info_t *a, *b;
    if (epode_disco_build_info(d, node, &q) != 0)
        return; /* no memory */
    char *text;
    size_t len;
    if (epode_stanza_to_text(q, 0, &text, &len) != 0 ||
        epode_stanza_from_text(NULL, text, len, &back, NULL) != 0)
        abort();
    epode_free(text);
    if (epode_disco_info_parse(q, &a) != 0 || epode_disco_info_parse(back, &b) != 0)
        abort();
    int found = form_type == NULL;
    for (size_t i = 0; i < a->nforms; i++)
        if (form_type && a->forms[i].form_type && strcmp(a->forms[i].form_type, form_type) == 0)
            found = 1;
    if (!found)
        abort(); /* an accepted form is answered */
    char va[EPODE_CAPS_VER_MAX], vb[EPODE_CAPS_VER_MAX];
    int ra = epode_caps_hash(a, "sha-256", va, sizeof va);
    int rb = epode_caps_hash(b, "sha-256", vb, sizeof vb);
    if (ra != rb || (ra == 0 && strcmp(va, vb) != 0))
        abort();
    walk_info(b);
    epode_disco_info_free(a);
    epode_disco_info_free(b);
    epode_stanza_unref(q);
    epode_stanza_unref(back);
}

/* Offers every data form in the tree under `el` to the responder. */
static void offer_forms(epode_disco_t *d, const epode_stanza_t *el, int depth)
{
    if (depth > 8)
        return;
    for (epode_stanza_t *c = epode_stanza_first_child(el); c; c = epode_stanza_next(c)) {
        const char *ns = epode_stanza_get_ns(c);
        if (ns && strcmp(ns, EPODE_NS_DATA) == 0 && strcmp(epode_stanza_get_name(c), "x") == 0) {
            epode_disco_info_t *info;
            if (epode_disco_add_form(d, "fuzz", c) != 0)
                continue;
            /* what FORM_TYPE did it take? Read the form as the parser does */
            epode_stanza_t *wrap;
            const char *ft = NULL;
            if (epode_stanza_new(NULL, "query", EPODE_NS_DISCO_INFO, &wrap) == 0) {
                if (epode_stanza_add_child(wrap, c, NULL) == 0 &&
                    epode_disco_info_parse(wrap, &info) == 0) {
                    if (info->nforms == 1 && info->forms[0].form_type) {
                        check_built(d, "fuzz", info->forms[0].form_type);
                        ft = info->forms[0].form_type;
                        epode_disco_remove_form(d, "fuzz", ft);
                    }
                    epode_disco_info_free(info);
                }
                epode_stanza_unref(wrap);
            }
            if (!ft)
                abort(); /* accepted, so it has a FORM_TYPE */
        } else {
            offer_forms(d, c, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static epode_ctx_t *ctx;
    static epode_conn_t *conn;
    static epode_disco_t *d;
    if (!ctx) {
        if (epode_global_init() != 0 || epode_ctx_new(NULL, &ctx) != 0 ||
            epode_conn_new(ctx, &conn) != 0 || epode_disco_new(conn, &d) != 0)
            abort();
    }
    epode_stanza_t *st;
    if (epode_stanza_from_text(NULL, (const char *)data, size, &st, NULL) != 0)
        return 0;
    epode_disco_info_t *info;
    int rc = epode_disco_info_parse(st, &info);
    if (rc == 0) {
        walk_info(info);
        char ver[EPODE_CAPS_VER_MAX];
        rc = epode_caps_hash(info, "sha-1", ver, sizeof ver);
        if (rc != 0 && rc != EPODE_EPROTOCOL)
            abort();
        epode_disco_info_free(info);
    } else if (rc != EPODE_ENOTFOUND && rc != EPODE_ENOMEM) {
        abort();
    }
    epode_disco_items_t *items;
    rc = epode_disco_items_parse(st, &items);
    if (rc == 0) {
        touch(items->node);
        for (size_t i = 0; i < items->nitems; i++) {
            if (!items->items[i].jid || epode_jid_validate(items->items[i].jid) != 0)
                abort(); /* items without a valid jid are skipped */
            touch(items->items[i].node), touch(items->items[i].name);
        }
        epode_disco_items_free(items);
    } else if (rc != EPODE_ENOTFOUND && rc != EPODE_ENOMEM) {
        abort();
    }
    const char *ns = epode_stanza_get_ns(st);
    if (ns && strcmp(ns, EPODE_NS_DATA) == 0 && strcmp(epode_stanza_get_name(st), "x") == 0) {
        /* a form at the top: wrap it so offer_forms() finds it */
        epode_stanza_t *wrap;
        if (epode_stanza_new(NULL, "query", EPODE_NS_DISCO_INFO, &wrap) == 0) {
            if (epode_stanza_add_child(wrap, st, NULL) == 0)
                offer_forms(d, wrap, 0);
            epode_stanza_unref(wrap);
        }
    } else {
        offer_forms(d, st, 0);
    }
    epode_stanza_unref(st);
    return 0;
}
