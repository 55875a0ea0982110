/* lib/stream/sasl2.c — SASL2/Bind2/FAST XML in and out (see sasl2.h). It
 * keeps no state and trusts nothing: every element it hands the engine
 * was checked for the shape the XEPs give it; what it writes that carries
 * a credential is marked secret in the output and redacted for logs. */
#include "sasl2.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "epode/jid.h"
#include "util/base64.h"
#include "xml/serialize.h"

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SM "urn:xmpp:sm:3"

static int ns_is(const epode_stanza_t *el, const char *ns)
{
    const char *n = epode_stanza_get_ns(el);
    return n && strcmp(n, ns) == 0;
}

int epode__sasl2_offer_parse(const epode_stanza_t *features, epode__sasl2_offer *o)
{
    memset(o, 0, sizeof *o);
    epode_stanza_t *auth = features ? epode_stanza_find_child(features, "authentication",
                                                              EPODE__NS_SASL2)
                                    : NULL;
    if (!auth)
        return 0;
    for (epode_stanza_t *m = epode_stanza_find_child(auth, "mechanism", EPODE__NS_SASL2);
         m && o->n_mechs < EPODE__SASL2_MAX_MECHS;
         m = epode_stanza_find_next(m, "mechanism", EPODE__NS_SASL2)) {
        const char *t = epode_stanza_get_text(m);
        if (t && *t)
            o->mechs[o->n_mechs++] = t;
    }
    if (o->n_mechs == 0)
        return 0;
    epode_stanza_t *in = epode_stanza_find_child(auth, "inline", EPODE__NS_SASL2);
    if (!in)
        return 1;
    epode_stanza_t *bind = epode_stanza_find_child(in, "bind", EPODE__NS_BIND2);
    if (bind) {
        o->bind2 = 1;
        epode_stanza_t *bi = epode_stanza_find_child(bind, "inline", EPODE__NS_BIND2);
        for (epode_stanza_t *f = bi ? epode_stanza_find_child(bi, "feature", EPODE__NS_BIND2) : NULL;
             f; f = epode_stanza_find_next(f, "feature", EPODE__NS_BIND2)) {
            const char *var = epode_stanza_get_attr(f, "var");
            if (!var)
                continue;
            if (strcmp(var, EPODE__NS_CARBONS) == 0)
                o->bind2_carbons = 1;
            else if (strcmp(var, EPODE__NS_CSI) == 0)
                o->bind2_csi = 1;
            else if (strcmp(var, NS_SM) == 0)
                o->bind2_sm = 1;
        }
    }
    if (epode_stanza_find_child(in, "sm", NS_SM))
        o->sm = 1;
    epode_stanza_t *fast = epode_stanza_find_child(in, "fast", EPODE__NS_FAST);
    if (fast) {
        o->fast = 1;
        for (epode_stanza_t *m = epode_stanza_find_child(fast, "mechanism", EPODE__NS_FAST);
             m && o->n_fast < EPODE__SASL2_MAX_FAST;
             m = epode_stanza_find_next(m, "mechanism", EPODE__NS_FAST)) {
            const char *t = epode_stanza_get_text(m);
            if (t && *t)
                o->fast_mechs[o->n_fast++] = t;
        }
    }
    return 1;
}

int epode__sasl2_offer_has_fast(const epode__sasl2_offer *o, const char *mech)
{
    for (size_t i = 0; mech && i < o->n_fast; i++)
        if (strcmp(o->fast_mechs[i], mech) == 0)
            return 1;
    return 0;
}

static void put_attr(epode__buf *b, const char *name, const char *v)
{
    epode__buf_putc(b, ' ');
    epode__buf_puts(b, name);
    epode__buf_puts(b, "='");
    epode__escape_attr(b, v, strlen(v));
    epode__buf_putc(b, '\'');
}

static void put_text_el(epode__buf *b, const char *name, const char *v)
{
    epode__buf_putc(b, '<');
    epode__buf_puts(b, name);
    epode__buf_putc(b, '>');
    epode__escape_text(b, v, strlen(v), 0);
    epode__buf_puts(b, "</");
    epode__buf_puts(b, name);
    epode__buf_putc(b, '>');
}

/* Everything after the initial response: no credential in it. */
static void write_tail(epode__buf *t, const epode__sasl2_request *r)
{
    if (r->ua_id) {
        epode__buf_puts(t, "<user-agent");
        put_attr(t, "id", r->ua_id);
        epode__buf_putc(t, '>');
        if (r->software)
            put_text_el(t, "software", r->software);
        if (r->device)
            put_text_el(t, "device", r->device);
        epode__buf_puts(t, "</user-agent>");
    }
    if (r->resume_previd) {
        char h[48];
        snprintf(h, sizeof h, "%u", (unsigned)r->resume_h);
        epode__buf_puts(t, "<resume xmlns='" NS_SM "'");
        put_attr(t, "previd", r->resume_previd);
        put_attr(t, "h", h);
        epode__buf_puts(t, "/>");
    }
    if (r->bind) {
        epode__buf_puts(t, "<bind xmlns='" EPODE__NS_BIND2 "'>");
        if (r->tag)
            put_text_el(t, "tag", r->tag);
        if (r->carbons)
            epode__buf_puts(t, "<enable xmlns='" EPODE__NS_CARBONS "'/>");
        if (r->csi_inactive)
            epode__buf_puts(t, "<inactive xmlns='" EPODE__NS_CSI "'/>");
        if (r->sm_enable)
            epode__buf_puts(t, "<enable xmlns='" NS_SM "' resume='true'/>");
        epode__buf_puts(t, "</bind>");
    }
    if (r->request_token) {
        epode__buf_puts(t, "<request-token xmlns='" EPODE__NS_FAST "'");
        put_attr(t, "mechanism", r->request_token);
        epode__buf_puts(t, "/>");
    }
    if (r->fast)
        epode__buf_puts(t, "<fast xmlns='" EPODE__NS_FAST "'/>");
    epode__buf_puts(t, "</authenticate>");
}

int epode__sasl2_write_authenticate(epode__buf *b, const epode__sasl2_request *r, char *logtext,
                                    size_t logsize)
{
    epode__buf head, tail;
    epode__buf_init(&head, b->mem);
    epode__buf_init(&tail, b->mem);
    epode__buf_puts(&head, "<authenticate xmlns='" EPODE__NS_SASL2 "'");
    put_attr(&head, "mechanism", r->mechanism);
    epode__buf_putc(&head, '>');
    write_tail(&tail, r);
    int rc = 0;
    if (head.failed || tail.failed) {
        rc = EPODE_ENOMEM;
        goto out;
    }
    size_t enc = r->has_initial ? (r->initial_len ? epode__base64_encoded_len(r->initial_len) : 1)
                                : 0;
    size_t ir_tags = r->has_initial ? strlen("<initial-response></initial-response>") : 0;
    /* all at once: the block must not move while the credential is in it */
    if (epode__buf_reserve(b, head.len + ir_tags + enc + tail.len + 1) < 0) {
        rc = EPODE_ENOMEM;
        goto out;
    }
    epode__buf_append(b, head.data, head.len);
    if (r->has_initial) {
        epode__buf_puts(b, "<initial-response>");
        if (r->initial_len == 0)
            b->data[b->len] = '=';
        else
            epode__base64_encode(b->data + b->len, r->initial, r->initial_len);
        b->len += enc;
        epode__buf_puts(b, "</initial-response>");
    }
    epode__buf_append(b, tail.data, tail.len);
    if (r->has_initial && r->initial_len)
        epode__buf_mark_secret(b);
    if (logtext && logsize)
        snprintf(logtext, logsize, "%.*s%s%.*s", (int)head.len, head.data,
                 r->has_initial ? "<initial-response>[redacted]</initial-response>" : "",
                 (int)tail.len, tail.data);
out:
    epode__buf_free(&head);
    epode__buf_free(&tail);
    return rc;
}

__attribute__((format(printf, 3, 4)))
static int bad(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return EPODE_EPROTOCOL;
}

int epode__sasl2_success_parse(const epode_stanza_t *st, epode__sasl2_success *s, char *why,
                               size_t whylen)
{
    memset(s, 0, sizeof *s);
    int n_authz = 0, n_add = 0, n_bound = 0, n_token = 0;
    for (epode_stanza_t *c = epode_stanza_first_child(st); c; c = epode_stanza_next(c)) {
        const char *name = epode_stanza_get_name(c);
        if (ns_is(c, EPODE__NS_SASL2) && strcmp(name, "authorization-identifier") == 0) {
            n_authz++;
            s->authzid = epode_stanza_get_text(c);
        } else if (ns_is(c, EPODE__NS_SASL2) && strcmp(name, "additional-data") == 0) {
            n_add++;
            s->additional = epode_stanza_get_text(c);
        } else if (ns_is(c, EPODE__NS_BIND2) && strcmp(name, "bound") == 0) {
            n_bound++;
            s->bound = c;
        } else if (ns_is(c, NS_SM) && strcmp(name, "resumed") == 0) {
            if (s->resumed || s->resume_failed)
                return bad(why, whylen, "SASL2 success with two answers to <resume/>");
            s->resumed = c;
        } else if (ns_is(c, NS_SM) && strcmp(name, "failed") == 0) {
            if (s->resumed || s->resume_failed)
                return bad(why, whylen, "SASL2 success with two answers to <resume/>");
            s->resume_failed = c;
        } else if (ns_is(c, EPODE__NS_FAST) && strcmp(name, "token") == 0) {
            n_token++;
            s->token = epode_stanza_get_attr(c, "token");
            s->token_expiry = epode_stanza_get_attr(c, "expiry");
            if (!s->token || !*s->token)
                return bad(why, whylen, "FAST <token/> without a token");
        }
        /* anything else: an extension we did not ask for, ignored */
    }
    if (n_authz != 1)
        return bad(why, whylen, "SASL2 success with %s authorization identifier",
                   n_authz ? "more than one" : "no");
    if (!s->authzid || epode_jid_validate(s->authzid) < 0)
        return bad(why, whylen, "SASL2 success with an invalid authorization identifier");
    if (n_add > 1)
        return bad(why, whylen, "SASL2 success with more than one <additional-data/>");
    if (n_bound > 1 || n_token > 1)
        return bad(why, whylen, "SASL2 success with more than one <%s/>",
                   n_bound > 1 ? "bound" : "token");
    if (s->bound && s->resumed)
        return bad(why, whylen, "SASL2 success both resumed a session and bound a new one");
    if ((s->bound || s->resumed) && !strchr(s->authzid, '/'))
        return bad(why, whylen, "SASL2 success for a session without a full JID");
    if (s->bound) {
        for (epode_stanza_t *c = epode_stanza_first_child(s->bound); c; c = epode_stanza_next(c)) {
            if (!ns_is(c, NS_SM))
                continue;
            const char *name = epode_stanza_get_name(c);
            if (strcmp(name, "enabled") == 0 || strcmp(name, "failed") == 0) {
                if (s->sm_enabled || s->sm_failed)
                    return bad(why, whylen, "Bind2 with two answers to <enable/>");
                if (name[0] == 'e')
                    s->sm_enabled = c;
                else
                    s->sm_failed = c;
            }
        }
    }
    return 0;
}

void epode__sasl2_continue_text(const epode_stanza_t *st, char *out, size_t size)
{
    char tasks[200] = "";
    size_t n = 0;
    epode_stanza_t *ts = epode_stanza_find_child(st, "tasks", EPODE__NS_SASL2);
    for (epode_stanza_t *t = ts ? epode_stanza_find_child(ts, "task", EPODE__NS_SASL2) : NULL; t;
         t = epode_stanza_find_next(t, "task", EPODE__NS_SASL2)) {
        const char *name = epode_stanza_get_text(t);
        if (n < sizeof tasks)
            n += (size_t)snprintf(tasks + n, sizeof tasks - n, "%s%s", n ? ", " : "",
                                  name && *name ? name : "(unnamed)");
    }
    const char *text = epode_stanza_child_text(st, "text", EPODE__NS_SASL2);
    snprintf(out, size, "the server asks for more than authentication: task%s %s, which epode "
                        "does not support%s%s",
             strchr(tasks, ',') ? "s" : "", tasks[0] ? tasks : "(none named)",
             text && *text ? ": " : "", text && *text ? text : "");
}

void epode__sasl2_failure(const epode_stanza_t *st, const char **cond, const char **text)
{
    *cond = NULL;
    *text = NULL;
    for (epode_stanza_t *c = epode_stanza_first_child(st); c; c = epode_stanza_next(c)) {
        if (ns_is(c, NS_SASL) && !*cond)
            *cond = epode_stanza_get_name(c);
        else if (ns_is(c, EPODE__NS_SASL2) && strcmp(epode_stanza_get_name(c), "text") == 0)
            *text = epode_stanza_get_text(c);
    }
}
