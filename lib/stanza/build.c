/* lib/stanza/build.c — the stanzas every application builds: message,
 * presence, iq, replies and error replies (RFC 6120 §8), and reading an
 * error back. Built only from the tree API in stanza.c. */
#include <string.h>

#include "epode/jid.h"
#include "stanza_int.h"
#include "util/rand.h"

#define ID_LEN 16

static int new_stanza(const epode_mem_t *mem, const char *name, const char *type,
                      const char *to, epode_stanza_t **out)
{
    if (to && epode_jid_validate(to) < 0)
        return EPODE_EJID; /* what epode_conn_send() would say later */
    epode_stanza_t *st;
    int rc = epode_stanza_new(mem, name, EPODE_NS_CLIENT, &st);
    if (rc < 0)
        return rc;
    if ((type && (rc = epode_stanza_set_attr(st, "type", type)) < 0) ||
        (to && (rc = epode_stanza_set_attr(st, "to", to)) < 0)) {
        epode_stanza_unref(st);
        return rc;
    }
    *out = st;
    return 0;
}

int epode_stanza_new_message(const epode_mem_t *mem, const char *type, const char *to,
                             const char *body, epode_stanza_t **out)
{
    if (!out)
        return EPODE_EINVAL;
    epode_stanza_t *st, *b;
    int rc = new_stanza(mem, "message", type, to, &st);
    if (rc < 0)
        return rc;
    if (body && ((rc = epode_stanza_add_child_new(st, "body", NULL, &b)) < 0 ||
                 (rc = epode_stanza_add_text(b, body, (size_t)-1)) < 0)) {
        epode_stanza_unref(st);
        return rc;
    }
    *out = st;
    return 0;
}

int epode_stanza_new_presence(const epode_mem_t *mem, const char *type, const char *to,
                              epode_stanza_t **out)
{
    if (!out)
        return EPODE_EINVAL;
    return new_stanza(mem, "presence", type, to, out);
}

int epode_stanza_set_new_id(epode_stanza_t *el, const char **id)
{
    if (!el)
        return EPODE_EINVAL;
    char buf[ID_LEN + 1];
    int rc = epode__random_id(buf, ID_LEN);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_set_attr(el, "id", buf)) < 0)
        return rc;
    if (id)
        *id = epode_stanza_get_id(el);
    return 0;
}

int epode_stanza_new_iq(const epode_mem_t *mem, const char *type, const char *id, epode_stanza_t **out)
{
    if (!out || !type)
        return EPODE_EINVAL;
    if (strcmp(type, "get") && strcmp(type, "set") && strcmp(type, "result") &&
        strcmp(type, "error"))
        return EPODE_EINVAL;
    epode_stanza_t *st;
    int rc = new_stanza(mem, "iq", type, NULL, &st);
    if (rc < 0)
        return rc;
    rc = id ? epode_stanza_set_attr(st, "id", id) : epode_stanza_set_new_id(st, NULL);
    if (rc < 0) {
        epode_stanza_unref(st);
        return rc;
    }
    *out = st;
    return 0;
}

const char *epode_stanza_get_id(const epode_stanza_t *el) { return epode_stanza_get_attr(el, "id"); }
const char *epode_stanza_get_type(const epode_stanza_t *el) { return epode_stanza_get_attr(el, "type"); }
const char *epode_stanza_get_to(const epode_stanza_t *el) { return epode_stanza_get_attr(el, "to"); }
const char *epode_stanza_get_from(const epode_stanza_t *el) { return epode_stanza_get_attr(el, "from"); }
int epode_stanza_set_id(epode_stanza_t *el, const char *v) { return epode_stanza_set_attr(el, "id", v); }
int epode_stanza_set_type(epode_stanza_t *el, const char *v) { return epode_stanza_set_attr(el, "type", v); }
int epode_stanza_set_to(epode_stanza_t *el, const char *v) { return epode_stanza_set_attr(el, "to", v); }
int epode_stanza_set_from(epode_stanza_t *el, const char *v) { return epode_stanza_set_attr(el, "from", v); }

/* The shell of a reply: same name and namespace, addresses swapped, same
 * id, with `type` (NULL: st's own). */
static int reply_shell(const epode_stanza_t *st, const char *type, epode_stanza_t **out)
{
    epode_stanza_t *r;
    int rc = epode_stanza_new(st->tree->mem, st->name, st->ns, &r);
    if (rc < 0)
        return rc;
    const char *from = epode_stanza_get_from(st), *to = epode_stanza_get_to(st);
    const char *id = epode_stanza_get_id(st);
    if (!type)
        type = epode_stanza_get_type(st);
    if ((rc = epode_stanza_set_prefix(r, st->prefix)) < 0 ||
        (from && (rc = epode_stanza_set_to(r, from)) < 0) ||
        (to && (rc = epode_stanza_set_from(r, to)) < 0) ||
        (id && (rc = epode_stanza_set_id(r, id)) < 0) ||
        (type && (rc = epode_stanza_set_type(r, type)) < 0)) {
        epode_stanza_unref(r);
        return rc;
    }
    *out = r;
    return 0;
}

int epode_stanza_reply(const epode_stanza_t *st, epode_stanza_t **out)
{
    if (!st || !out || st->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    const char *type = NULL;
    const char *t = epode_stanza_get_type(st);
    if (strcmp(st->name, "iq") == 0 && t && (!strcmp(t, "get") || !strcmp(t, "set")))
        type = "result";
    return reply_shell(st, type, out);
}

int epode_stanza_error_reply(const epode_stanza_t *st, epode_stanza_cond_t cond,
                             epode_error_type_t type, const char *text, int include_original,
                             epode_stanza_t **out)
{
    if (!st || !out || st->kind != EPODE__ELEMENT || !epode_stanza_cond_name(cond))
        return EPODE_EINVAL;
    const char *t = epode_stanza_get_type(st);
    if (t && strcmp(t, "error") == 0)
        return EPODE_EINVAL;
    if (type == EPODE_ERRTYPE_DEFAULT)
        type = epode_stanza_cond_default_type(cond);
    if (!epode_error_type_name(type))
        return EPODE_EINVAL;
    epode_stanza_t *r, *err, *c;
    int rc = reply_shell(st, "error", &r);
    if (rc < 0)
        return rc;
    if (include_original)
        for (epode_stanza_t *ch = epode_stanza_first_child(st); ch; ch = epode_stanza_next(ch))
            if ((rc = epode_stanza_add_child(r, ch, NULL)) < 0)
                goto fail;
    if ((rc = epode_stanza_add_child_new(r, "error", NULL, &err)) < 0 ||
        (rc = epode_stanza_set_attr(err, "type", epode_error_type_name(type))) < 0 ||
        (rc = epode_stanza_add_child_new(err, epode_stanza_cond_name(cond), EPODE_NS_STANZAS,
                                         NULL)) < 0)
        goto fail;
    if (text && ((rc = epode_stanza_add_child_new(err, "text", EPODE_NS_STANZAS, &c)) < 0 ||
                 (rc = epode_stanza_add_text(c, text, (size_t)-1)) < 0))
        goto fail;
    *out = r;
    return 0;
fail:
    epode_stanza_unref(r);
    return rc;
}

int epode_stanza_get_error(const epode_stanza_t *st, epode_stanza_cond_t *cond,
                           epode_error_type_t *type, const char **text)
{
    if (!st)
        return EPODE_EINVAL;
    /* <error/> is in the stanza's own namespace (jabber:client, or none
     * for a stanza built without one). */
    epode_stanza_t *err = epode_stanza_find_child(st, "error", st->ns);
    if (!err)
        return EPODE_ENOTFOUND;
    epode_stanza_cond_t c = EPODE_COND_UNDEFINED_CONDITION;
    const char *tx = NULL;
    for (epode_stanza_t *ch = epode_stanza_first_child(err); ch; ch = epode_stanza_next(ch)) {
        if (!ch->ns || strcmp(ch->ns, EPODE_NS_STANZAS) != 0)
            continue;
        if (strcmp(ch->name, "text") == 0) {
            if (!tx)
                tx = epode_stanza_get_text(ch);
        } else if (c == EPODE_COND_UNDEFINED_CONDITION) {
            epode_stanza_cond_t k = epode_stanza_cond_from_name(ch->name);
            if (k != EPODE_COND_NONE)
                c = k;
        }
    }
    if (cond)
        *cond = c;
    if (type)
        *type = epode_error_type_from_name(epode_stanza_get_attr(err, "type"));
    if (text)
        *text = tx;
    return 0;
}
