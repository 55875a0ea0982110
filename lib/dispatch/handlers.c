/* lib/dispatch/handlers.c — the handler tables of dispatch.h. Entries
 * live in one array; removal during a dispatch only marks them (the array
 * is compacted when no dispatch is running), so handlers may add and
 * remove handlers freely, and one added during a dispatch does not see
 * the stanza being dispatched. */
#include "dispatch.h"

#include <string.h>

#include "epode/jid.h"
#include "util/alloc.h"
#include "util/footprint.h"

enum kind { K_STANZA = 1, K_IQ, K_TIMED, K_EVENT, K_OUT };

typedef struct entry {
    unsigned id;
    enum kind kind;
    unsigned char removed;
    unsigned char warned; /* K_STANZA: 1 returned no result, to be logged; 2 logged */
    char *name, *ns, *type; /* K_STANZA filters (NULL: any) */
    char *iq_id, *to;       /* K_IQ */
    uint64_t due;           /* K_IQ deadline, K_TIMED next run */
    unsigned interval;      /* K_TIMED */
    int bad_value;          /* K_STANZA: what it returned (warned 1) */
    union { /* by kind */
        epode_handler_cb handler; /* K_STANZA, K_OUT */
        epode_iq_cb iq_cb;
        epode_conn_timer_cb timed_cb;
        epode_conn_event_cb event_cb;
    };
    void *user;
} entry;

struct epode__dispatch {
    const epode_mem_t *mem;
    entry *v;
    size_t n, cap;
    unsigned next_id;
    int depth;   /* dispatches running (handlers may recurse via send) */
    int garbage; /* entries marked removed */
    int bad_pending; /* some handler's warned is 1 */
};

int epode__dispatch_new(const epode_mem_t *mem, epode__dispatch **out)
{
    epode__dispatch *d = epode__zalloc(mem, sizeof *d);
    if (!d)
        return EPODE_ENOMEM;
    d->mem = mem;
    d->next_id = 1;
    *out = d;
    return 0;
}

size_t epode__dispatch_footprint(const epode__dispatch *d)
{
    size_t n = sizeof *d + d->cap * sizeof *d->v;
    for (size_t i = 0; i < d->n; i++) {
        const entry *e = &d->v[i];
        n += epode__str_bytes(e->name) + epode__str_bytes(e->ns) + epode__str_bytes(e->type) +
             epode__str_bytes(e->iq_id) + epode__str_bytes(e->to);
    }
    return n;
}

static void entry_clear(const epode_mem_t *mem, entry *e)
{
    epode__dealloc(mem, e->name);
    epode__dealloc(mem, e->ns);
    epode__dealloc(mem, e->type);
    epode__dealloc(mem, e->iq_id);
    epode__dealloc(mem, e->to);
}

void epode__dispatch_free(epode__dispatch *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        entry_clear(d->mem, &d->v[i]);
    epode__dealloc(d->mem, d->v);
    epode__dealloc(d->mem, d);
}

static void compact(epode__dispatch *d)
{
    if (d->depth > 0 || !d->garbage)
        return;
    size_t w = 0;
    for (size_t r = 0; r < d->n; r++) {
        if (d->v[r].removed)
            entry_clear(d->mem, &d->v[r]);
        else
            d->v[w++] = d->v[r];
    }
    d->n = w;
    d->garbage = 0;
}

static entry *push(epode__dispatch *d)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 2; /* most connections hold few */
        entry *v = epode__realloc(d->mem, d->v, cap * sizeof *v);
        if (!v)
            return NULL;
        d->v = v;
        d->cap = cap;
    }
    entry *e = &d->v[d->n++];
    memset(e, 0, sizeof *e);
    e->id = d->next_id++;
    if (d->next_id == EPODE__DISPATCH_ID_END)
        d->next_id = 1; /* the ids from 2^31 up are the helpers' own */
    return e;
}

static int dup_opt(const epode_mem_t *mem, const char *s, char **out)
{
    *out = NULL;
    return s && !(*out = epode__strdup(mem, s)) ? -1 : 0;
}

/* Appends a filled-in entry (its strings already copied, owned by the
 * table from now on); on failure frees them. */
static int commit(epode__dispatch *d, entry *tmp, unsigned *id)
{
    entry *e = push(d);
    if (!e) {
        entry_clear(d->mem, tmp);
        return EPODE_ENOMEM;
    }
    unsigned eid = e->id;
    *e = *tmp;
    e->id = eid;
    if (id)
        *id = eid;
    return 0;
}

/* Stanza handlers (K_STANZA) and outgoing filters (K_OUT) match alike. */
static int add_filter(epode__dispatch *d, enum kind kind, const char *name, const char *ns,
                      const char *type, epode_handler_cb cb, void *user, unsigned *id)
{
    if (!d || !cb)
        return EPODE_EINVAL;
    entry tmp = {.kind = kind, .handler = cb, .user = user};
    if (dup_opt(d->mem, name, &tmp.name) || dup_opt(d->mem, ns, &tmp.ns) ||
        dup_opt(d->mem, type, &tmp.type)) {
        entry_clear(d->mem, &tmp);
        return EPODE_ENOMEM;
    }
    return commit(d, &tmp, id);
}

int epode__dispatch_add(epode__dispatch *d, const char *name, const char *ns, const char *type,
                        epode_handler_cb cb, void *user, unsigned *id)
{
    return add_filter(d, K_STANZA, name, ns, type, cb, user, id);
}

int epode__dispatch_add_outgoing(epode__dispatch *d, const char *name, const char *ns,
                                 const char *type, epode_handler_cb cb, void *user, unsigned *id)
{
    return add_filter(d, K_OUT, name, ns, type, cb, user, id);
}

int epode__dispatch_add_event(epode__dispatch *d, epode_conn_event_cb cb, void *user,
                              unsigned *id)
{
    if (!d || !cb)
        return EPODE_EINVAL;
    entry tmp = {.kind = K_EVENT, .event_cb = cb, .user = user};
    return commit(d, &tmp, id);
}

int epode__dispatch_add_iq(epode__dispatch *d, const char *iq_id, const char *to,
                           uint64_t deadline, epode_iq_cb cb, void *user, unsigned *id)
{
    if (!d || !cb || !iq_id)
        return EPODE_EINVAL;
    entry tmp = {.kind = K_IQ, .due = deadline, .iq_cb = cb, .user = user};
    if (dup_opt(d->mem, iq_id, &tmp.iq_id) || dup_opt(d->mem, to, &tmp.to)) {
        entry_clear(d->mem, &tmp);
        return EPODE_ENOMEM;
    }
    return commit(d, &tmp, id);
}

int epode__dispatch_add_timed(epode__dispatch *d, unsigned interval_ms, uint64_t now,
                              epode_conn_timer_cb cb, void *user, unsigned *id)
{
    if (!d || !cb || interval_ms == 0)
        return EPODE_EINVAL;
    entry tmp = {.kind = K_TIMED, .interval = interval_ms, .due = now + interval_ms,
                 .timed_cb = cb, .user = user};
    return commit(d, &tmp, id);
}

int epode__dispatch_remove(epode__dispatch *d, unsigned id)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].id == id && !d->v[i].removed) {
            d->v[i].removed = 1;
            d->garbage = 1;
            compact(d);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

static int str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* "normal" matches a message without type, "available" a presence. */
static int type_matches(const char *want, const char *name, const char *type)
{
    if (!want)
        return 1;
    if (type)
        return strcmp(want, type) == 0;
    return (strcmp(want, "normal") == 0 && strcmp(name, "message") == 0) ||
           (strcmp(want, "available") == 0 && strcmp(name, "presence") == 0);
}

/* RFC 6120 §10.1: an answer to an IQ we sent without 'to' comes from our
 * server (no from, our bare JID, our domain) or our own full JID. */
/* `to` is our own bare JID (`self` without its resource)? */
static int is_own_bare(const char *to, const char *self)
{
    return self && !strchr(to, '/') && strchr(to, '@') && epode_jid_str_equal(to, self, 1);
}

static int answer_from_ok(const entry *e, const char *from, const char *self)
{
    /* An IQ to our own bare JID is answered by our server on the
     * account's behalf; Prosody writes no `from` then (RFC 6120
     * §8.1.2.1 allows it: no `from` is our server), so that counts too. */
    if (e->to)
        return from ? epode_jid_str_equal(from, e->to, 0) : is_own_bare(e->to, self);
    if (!from)
        return 1;
    if (!self)
        return 0;
    if (epode_jid_str_equal(from, self, 0))
        return 1;
    /* our bare JID exactly (not another resource of ours), or our domain */
    char buf[3 * 1024 + 4];
    size_t bare = strcspn(self, "/");
    if (bare >= sizeof buf)
        return 0;
    memcpy(buf, self, bare);
    buf[bare] = '\0';
    if (epode_jid_str_equal(from, buf, 0))
        return 1;
    const char *at = strchr(buf, '@');
    return at && epode_jid_str_equal(from, at + 1, 0);
}

static int filter_matches(const entry *e, const epode_stanza_t *st)
{
    if (e->removed)
        return 0;
    const char *name = epode_stanza_get_name(st);
    if (e->name && strcmp(e->name, name) != 0)
        return 0;
    if (e->ns) {
        epode_stanza_t *first = epode_stanza_first_child(st);
        if (!first || !str_eq(e->ns, epode_stanza_get_ns(first)))
            return 0;
    }
    return type_matches(e->type, name, epode_stanza_get_type(st));
}

int epode__dispatch_wants_outgoing(const epode__dispatch *d, const epode_stanza_t *st)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].kind == K_OUT && filter_matches(&d->v[i], st))
            return 1;
    return 0;
}

void epode__dispatch_outgoing(epode__dispatch *d, epode_conn_t *conn, epode_stanza_t *st)
{
    d->depth++;
    size_t n = d->n;
    for (size_t i = 0; i < n; i++) {
        entry *e = &d->v[i];
        if (e->kind != K_OUT || !filter_matches(e, st))
            continue;
        epode_handler_cb cb = e->handler;
        void *user = e->user;
        cb(conn, st, user);
    }
    d->depth--;
    compact(d);
}

unsigned epode__dispatch_mark(const epode__dispatch *d) { return d->next_id; }

void epode__dispatch_event(epode__dispatch *d, epode_conn_t *conn, epode_conn_event_t ev)
{
    epode__dispatch_event_before(d, conn, ev, 0);
}

void epode__dispatch_event_before(epode__dispatch *d, epode_conn_t *conn, epode_conn_event_t ev,
                                  unsigned mark)
{
    if (mark && d->next_id < mark)
        mark = 0; /* ids wrapped since: every handler hears it */
    d->depth++;
    size_t n = d->n;
    for (size_t i = 0; i < n; i++) {
        entry *e = &d->v[i];
        if (e->kind != K_EVENT || e->removed || (mark && e->id >= mark))
            continue;
        epode_conn_event_cb cb = e->event_cb;
        void *user = e->user;
        cb(conn, ev, user);
    }
    d->depth--;
    compact(d);
}

int epode__dispatch_stanza(epode__dispatch *d, epode_conn_t *conn, epode_stanza_t *st,
                           const char *self)
{
    const char *name = epode_stanza_get_name(st);
    const char *type = epode_stanza_get_type(st);
    int handled = 0;
    d->depth++;

    if (strcmp(name, "iq") == 0 && (str_eq(type, "result") || str_eq(type, "error"))) {
        const char *id = epode_stanza_get_id(st);
        const char *from = epode_stanza_get_from(st);
        for (size_t i = 0; id && i < d->n; i++) {
            entry *e = &d->v[i];
            if (e->kind != K_IQ || e->removed || strcmp(e->iq_id, id) != 0 ||
                !answer_from_ok(e, from, self))
                continue;
            e->removed = 1;
            d->garbage = 1;
            e->iq_cb(conn, st, 0, e->user);
            handled = 1;
            break;
        }
    }

    size_t n = d->n; /* handlers added now wait for the next stanza */
    for (size_t i = 0; i < n; i++) {
        entry *e = &d->v[i];
        if (e->kind != K_STANZA || !filter_matches(e, st))
            continue;
        epode_handler_cb cb = e->handler;
        void *user = e->user;
        int r = cb(conn, st, user);
        /* d->v may have moved: only indices are stable while depth > 0 */
        if (r == EPODE_PASS)
            continue;
        handled = 1; /* EPODE_HANDLED, or 0 from a handler written for
                        "0 is success": it did take care of it */
        if (r != EPODE_HANDLED && !d->v[i].warned) {
            d->v[i].warned = 1;
            d->v[i].bad_value = r;
            d->bad_pending = 1;
        }
    }
    d->depth--;
    compact(d);
    return handled;
}

unsigned epode__dispatch_take_bad_result(epode__dispatch *d, int *value)
{
    for (size_t i = 0; d->bad_pending && i < d->n; i++) {
        entry *e = &d->v[i];
        if (e->kind == K_STANZA && e->warned == 1) {
            e->warned = 2;
            *value = e->bad_value;
            return e->id;
        }
    }
    d->bad_pending = 0;
    return 0;
}

void epode__dispatch_expire(epode__dispatch *d, epode_conn_t *conn, uint64_t now)
{
    d->depth++;
    size_t n = d->n;
    for (size_t i = 0; i < n; i++) {
        entry *e = &d->v[i];
        if (e->removed || e->due > now)
            continue;
        if (e->kind == K_IQ) {
            e->removed = 1;
            d->garbage = 1;
            e->iq_cb(conn, NULL, EPODE_ETIMEDOUT, e->user);
        } else if (e->kind == K_TIMED) {
            epode_conn_timer_cb cb = e->timed_cb;
            void *user = e->user;
            unsigned eid = e->id;
            int again = cb(conn, user);
            e = &d->v[i];
            if (e->id != eid || e->removed)
                continue;
            if (again)
                e->due = now + e->interval;
            else {
                e->removed = 1;
                d->garbage = 1;
            }
        }
    }
    d->depth--;
    compact(d);
}

uint64_t epode__dispatch_next_deadline(const epode__dispatch *d)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < d->n; i++)
        if (!d->v[i].removed && (d->v[i].kind == K_IQ || d->v[i].kind == K_TIMED) &&
            d->v[i].due < best)
            best = d->v[i].due;
    return best;
}

void epode__dispatch_silence(epode__dispatch *d)
{
    /* Marked, not dropped: a dispatch may be running over them. */
    for (size_t i = 0; i < d->n; i++)
        d->v[i].removed = 1;
    d->garbage = 1;
}

void epode__dispatch_cancel_iqs(epode__dispatch *d, epode_conn_t *conn)
{
    d->depth++;
    size_t n = d->n;
    for (size_t i = 0; i < n; i++) {
        entry *e = &d->v[i];
        if (e->kind != K_IQ || e->removed)
            continue;
        e->removed = 1;
        d->garbage = 1;
        e->iq_cb(conn, NULL, EPODE_ECANCELED, e->user);
    }
    d->depth--;
    compact(d);
}
