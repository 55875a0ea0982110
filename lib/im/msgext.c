/* lib/im/msgext.c — today's message features (epode/msgext.h): XEP-0082
 * timestamps, delays, corrections, retractions, reactions, replies and
 * fallbacks, chat markers, hints, occupant ids, and the sender check
 * that decides whether a message may change an earlier one.
 *
 * Readers work on a borrowed view and never allocate or keep anything:
 * everything they return points into the view's stanza. What a peer
 * sends is checked here (ids present and non-empty, reaction lists
 * bounded, fallback ranges inside the body), so a malformed extension
 * reads as absent rather than half-present. Built on the public API
 * only; the builders allocate through the stanza's or the caller's
 * allocator. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "im_alloc.h"
#include "message_view.h"

#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

/* ---- XEP-0082 timestamps -------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int epode_time_parse(const char *text, long long *ms)
{
    if (!text || !ms)
        return EPODE_EINVAL;
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    unsigned y, mo, d, h, mi, s, frac = 0;
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0 || *p++ != 'T' || digits(&p, 2, &h) < 0 || *p++ != ':' ||
        digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &s) < 0)
        return EPODE_EINVAL;
    if (y == 0 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 || mi > 59 || s > 59)
        return EPODE_EINVAL;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                frac = frac * 10 + (unsigned)(*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return EPODE_EINVAL;
        for (; n < 3; n++)
            frac *= 10;
    }
    long long offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        unsigned oh, om;
        if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 ||
            om > 59)
            return EPODE_EINVAL;
        offset = sign * (long long)(oh * 60 + om) * 60000;
    } else {
        return EPODE_EINVAL;
    }
    if (*p)
        return EPODE_EINVAL;
    long long days = days_from_civil(y, mo, d);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + s) * 1000 + frac) - offset;
    return 0;
}

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z */
#define TIME_MIN (-62135596800000LL)
#define TIME_MAX (253402300799999LL)

int epode_time_format(long long ms, char *buf, size_t size)
{
    if (!buf || ms < TIME_MIN || ms > TIME_MAX)
        return EPODE_EINVAL;
    long long secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    unsigned milli = (unsigned)(ms - secs * 1000);
    long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    unsigned rem = (unsigned)(secs - days * 86400);
    long long y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char tmp[EPODE_TIME_BUFSIZE];
    int n;
    if (milli)
        n = snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", y, mo, d,
                     rem / 3600, rem / 60 % 60, rem % 60, milli);
    else
        n = snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02u:%02u:%02uZ", y, mo, d, rem / 3600,
                     rem / 60 % 60, rem % 60);
    if (n < 0 || (size_t)n >= size)
        return EPODE_ERANGE;
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}

/* ---- small helpers ------------------------------------------------------------ */

static int nonempty(const char *s)
{
    return s && *s;
}

/* A non-empty attribute of the first child name/ns, else NULL. */
static const char *child_attr(const epode_stanza_t *st, const char *name, const char *ns,
                              const char *attr)
{
    epode_stanza_t *c = st ? epode_stanza_find_child(st, name, ns) : NULL;
    const char *v = c ? epode_stanza_get_attr(c, attr) : NULL;
    return nonempty(v) ? v : NULL;
}

static int is_error(const epode_message_t *m)
{
    return strcmp(m->type, "error") == 0;
}

/* Builds a message with a fresh id (type "normal" is written as none). */
static int new_message(const epode_mem_t *mem, const char *type, const char *to,
                       epode_stanza_t **out)
{
    if (!to || !out)
        return EPODE_EINVAL;
    if (epode_jid_validate(to) < 0)
        return EPODE_EJID; /* as epode_conn_send() and epode_message_build() say */
    if (type && strcmp(type, "chat") != 0 && strcmp(type, "groupchat") != 0 &&
        strcmp(type, "normal") != 0 && strcmp(type, "headline") != 0)
        return EPODE_EINVAL;
    if (type && strcmp(type, "normal") == 0)
        type = NULL;
    epode_stanza_t *msg;
    int rc = epode_stanza_new_message(mem, type, to, NULL, &msg);
    if (rc == 0 && (rc = epode_stanza_set_new_id(msg, NULL)) < 0) {
        epode_stanza_unref(msg);
        return rc;
    }
    if (rc == 0)
        *out = msg;
    return rc;
}

/* Adds <name xmlns=ns attr=value/>; removed again on failure. */
static int add_with_attr(epode_stanza_t *parent, const char *name, const char *ns,
                         const char *attr, const char *value, epode_stanza_t **out)
{
    epode_stanza_t *c;
    int rc = epode_stanza_add_child_new(parent, name, ns, &c);
    if (rc < 0)
        return rc;
    if (attr && value && (rc = epode_stanza_set_attr(c, attr, value)) < 0) {
        epode_stanza_remove(c);
        return rc;
    }
    if (out)
        *out = c;
    return 0;
}

/* ---- views on any stanza ---------------------------------------------------- */

int epode_message_view_new(const epode_mem_t *mem, epode_stanza_t *msg, epode_message_t **out)
{
    if (!msg || !out || strcmp(epode_stanza_get_name(msg), "message") != 0)
        return EPODE_EINVAL;
    const char *ns = epode_stanza_get_ns(msg);
    if (ns && strcmp(ns, EPODE_NS_CLIENT) != 0)
        return EPODE_EINVAL;
    epode_message_t *v = im_alloc(mem, sizeof *v);
    if (!v)
        return EPODE_ENOMEM;
    epode__message_view_init(v, epode_stanza_ref(msg));
    v->mem = mem;
    v->owned = 1;
    *out = v;
    return 0;
}

void epode_message_view_free(epode_message_t *view)
{
    if (!view || !view->owned)
        return;
    epode_stanza_unref(view->st);
    im_free(view->mem, view);
}

/* ---- delays ------------------------------------------------------------------- */

int epode_message_delay(const epode_message_t *m, long long *ms, const char **from,
                        const char **reason)
{
    if (!m)
        return EPODE_ENOTFOUND;
    const epode_stanza_t *d = m->delay;
    if (!d && !m->archived)
        d = epode_stanza_find_child(m->st, "delay", EPODE_NS_DELAY);
    for (; d; d = m->delay ? NULL : epode_stanza_find_next(d, "delay", EPODE_NS_DELAY)) {
        long long t;
        if (epode_time_parse(epode_stanza_get_attr(d, "stamp"), &t) < 0)
            continue;
        if (ms)
            *ms = t;
        if (from)
            *from = epode_stanza_get_attr(d, "from");
        if (reason) {
            const char *r = epode_stanza_get_text(d);
            *reason = nonempty(r) ? r : NULL;
        }
        return 0;
    }
    return EPODE_ENOTFOUND;
}

int epode_message_add_delay(epode_stanza_t *msg, long long ms, const char *from,
                            const char *reason)
{
    char stamp[EPODE_TIME_BUFSIZE];
    if (!msg || epode_stanza_find_child(msg, "delay", EPODE_NS_DELAY) ||
        epode_time_format(ms, stamp, sizeof stamp) < 0)
        return EPODE_EINVAL;
    if (from && epode_jid_validate(from) < 0)
        return EPODE_EJID;
    epode_stanza_t *d;
    int rc = add_with_attr(msg, "delay", EPODE_NS_DELAY, "stamp", stamp, &d);
    if (rc < 0)
        return rc;
    if ((from && (rc = epode_stanza_set_attr(d, "from", from)) < 0) ||
        (reason && (rc = epode_stanza_set_text(d, reason)) < 0)) {
        epode_stanza_remove(d);
        return rc;
    }
    return 0;
}

/* ---- senders -------------------------------------------------------------------- */

const char *epode_message_occupant_id(const epode_message_t *m)
{
    return m ? child_attr(m->st, "occupant-id", EPODE_NS_OCCUPANT_ID, "id") : NULL;
}

int epode_message_same_sender(const epode_message_t *later, const char *orig_from,
                              const char *orig_occupant_id, epode_sender_mode_t mode)
{
    if (!later || !orig_from || is_error(later))
        return 0;
    const char *from = epode_stanza_get_from(later->st);
    if (!from)
        return 0;
    if (mode == EPODE_SENDER_AUTO)
        mode = strcmp(later->type, "groupchat") == 0 ||
                       epode_stanza_find_child(later->st, "x", NS_MUC_USER)
                   ? EPODE_SENDER_OCCUPANT
                   : EPODE_SENDER_DIRECT;
    if (mode == EPODE_SENDER_DIRECT)
        return epode_jid_str_equal(from, orig_from, 1);
    if (mode != EPODE_SENDER_OCCUPANT || !strchr(from, '/') ||
        !epode_jid_str_equal(from, orig_from, 0))
        return 0;
    if (orig_occupant_id) {
        const char *oid = epode_message_occupant_id(later);
        return oid && strcmp(oid, orig_occupant_id) == 0;
    }
    return 1;
}

const char *epode_message_ref_id(const epode_message_t *m)
{
    if (!m || is_error(m))
        return NULL;
    if (strcmp(m->type, "groupchat") == 0)
        return m->stanza_id;
    const char *o = epode_message_origin_id(m);
    if (nonempty(o))
        return o;
    const char *id = epode_stanza_get_id(m->st);
    return nonempty(id) ? id : NULL;
}

/* ---- corrections ------------------------------------------------------------------- */

int epode_message_set_replace(epode_stanza_t *msg, const char *id)
{
    if (!msg || !nonempty(id) || epode_stanza_find_child(msg, "replace", EPODE_NS_CORRECT))
        return EPODE_EINVAL;
    return add_with_attr(msg, "replace", EPODE_NS_CORRECT, "id", id, NULL);
}

const char *epode_message_replace_id(const epode_message_t *m)
{
    if (!m || is_error(m))
        return NULL;
    return child_attr(m->st, "replace", EPODE_NS_CORRECT, "id");
}

/* ---- retractions ------------------------------------------------------------------- */

/* The body clients without retractions show (XEP-0424 suggests a /me). */
#define RETRACT_FALLBACK "/me retracted a previous message, but it's unsupported by your client."

int epode_message_build_retraction(const char *type, const char *to, const char *id,
                                   epode_stanza_t **out)
{
    if (!nonempty(id))
        return EPODE_EINVAL;
    epode_stanza_t *msg;
    int rc = new_message(NULL, type, to, &msg);
    if (rc < 0)
        return rc;
    if ((rc = add_with_attr(msg, "retract", EPODE_NS_RETRACT, "id", id, NULL)) < 0 ||
        (rc = add_with_attr(msg, "fallback", EPODE_NS_FALLBACK, "for", EPODE_NS_RETRACT,
                            NULL)) < 0 ||
        (rc = epode_message_add_body(msg, NULL, RETRACT_FALLBACK)) < 0 ||
        (rc = epode_message_add_hints(msg, EPODE_HINT_STORE)) < 0) {
        epode_stanza_unref(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

const char *epode_message_retract_id(const epode_message_t *m)
{
    if (!m || is_error(m))
        return NULL;
    const char *id = child_attr(m->st, "retract", EPODE_NS_RETRACT, "id");
    if (id)
        return id;
    /* the older form: <apply-to id='…' xmlns='urn:xmpp:fasten:0'><retract xmlns=':0'/> */
    for (epode_stanza_t *a = epode_stanza_find_child(m->st, "apply-to", EPODE_NS_FASTEN); a;
         a = epode_stanza_find_next(a, "apply-to", EPODE_NS_FASTEN)) {
        const char *aid = epode_stanza_get_attr(a, "id");
        if (nonempty(aid) && epode_stanza_find_child(a, "retract", EPODE_NS_RETRACT_0))
            return aid;
    }
    return NULL;
}

const char *epode_message_retracted(const epode_message_t *m, long long *ms)
{
    if (!m || is_error(m))
        return NULL;
    epode_stanza_t *r = epode_stanza_find_child(m->st, "retracted", EPODE_NS_RETRACT);
    const char *id = r ? epode_stanza_get_attr(r, "id") : NULL;
    if (!nonempty(id))
        return NULL;
    long long t;
    if (ms && epode_time_parse(epode_stanza_get_attr(r, "stamp"), &t) == 0)
        *ms = t;
    return id;
}

/* ---- reactions ---------------------------------------------------------------------- */

static int reaction_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    return n > 0 && n <= EPODE_REACTION_MAX_BYTES;
}

/* The one <reactions/> with an id, or NULL. */
static epode_stanza_t *reactions_el(const epode_message_t *m)
{
    if (!m || is_error(m))
        return NULL;
    epode_stanza_t *r = epode_stanza_find_child(m->st, "reactions", EPODE_NS_REACTIONS);
    if (!r || epode_stanza_find_next(r, "reactions", EPODE_NS_REACTIONS) ||
        !nonempty(epode_stanza_get_attr(r, "id")))
        return NULL;
    return r;
}

/* Walks the distinct valid reactions: calls back with each (index i) and
 * stops when `want` is reached; returns how many there are, or
 * (size_t)-1 past EPODE_REACTIONS_MAX (the whole set is refused). The
 * raw children looked at are bounded too, so a flood of repeats costs
 * little. */
static size_t walk_reactions(epode_stanza_t *r, size_t want, const char **found)
{
    const char *seen[EPODE_REACTIONS_MAX];
    size_t n = 0, raw = 0;
    for (epode_stanza_t *c = epode_stanza_find_child(r, "reaction", EPODE_NS_REACTIONS); c;
         c = epode_stanza_find_next(c, "reaction", EPODE_NS_REACTIONS)) {
        if (++raw > 4 * EPODE_REACTIONS_MAX)
            return (size_t)-1;
        const char *t = epode_stanza_get_text(c);
        if (!reaction_ok(t))
            continue;
        size_t i;
        for (i = 0; i < n && strcmp(seen[i], t) != 0; i++)
            ;
        if (i < n)
            continue; /* a repeat: XEP-0444 §5 says ignore it */
        if (n == EPODE_REACTIONS_MAX)
            return (size_t)-1;
        if (n == want && found)
            *found = t;
        seen[n++] = t;
    }
    return n;
}

const char *epode_message_reactions_id(const epode_message_t *m)
{
    epode_stanza_t *r = reactions_el(m);
    if (!r || walk_reactions(r, (size_t)-1, NULL) == (size_t)-1)
        return NULL;
    return epode_stanza_get_attr(r, "id");
}

size_t epode_message_reaction_count(const epode_message_t *m)
{
    epode_stanza_t *r = reactions_el(m);
    size_t n = r ? walk_reactions(r, (size_t)-1, NULL) : 0;
    return n == (size_t)-1 ? 0 : n;
}

const char *epode_message_reaction_at(const epode_message_t *m, size_t i)
{
    epode_stanza_t *r = reactions_el(m);
    const char *found = NULL;
    if (!r || walk_reactions(r, i, &found) == (size_t)-1)
        return NULL;
    return found;
}

int epode_message_build_reactions(const char *type, const char *to, const char *id,
                                  const char *const *reactions, size_t n, epode_stanza_t **out)
{
    if (!nonempty(id) || (n && !reactions) || n > EPODE_REACTIONS_MAX)
        return EPODE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!reaction_ok(reactions[i]))
            return EPODE_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(reactions[i], reactions[j]) == 0)
                return EPODE_EINVAL;
    }
    epode_stanza_t *msg, *r;
    int rc = new_message(NULL, type, to, &msg);
    if (rc < 0)
        return rc;
    rc = add_with_attr(msg, "reactions", EPODE_NS_REACTIONS, "id", id, &r);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        epode_stanza_t *c;
        if ((rc = epode_stanza_add_child_new(r, "reaction", EPODE_NS_REACTIONS, &c)) == 0)
            rc = epode_stanza_set_text(c, reactions[i]);
    }
    if (rc == 0)
        rc = epode_message_add_hints(msg, EPODE_HINT_STORE);
    if (rc < 0) {
        epode_stanza_unref(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

/* ---- replies and fallbacks -------------------------------------------------------- */

int epode_message_set_reply(epode_stanza_t *msg, const char *to, const char *id)
{
    if (!msg || !nonempty(id) || epode_stanza_find_child(msg, "reply", EPODE_NS_REPLY))
        return EPODE_EINVAL;
    if (to && epode_jid_validate(to) < 0)
        return EPODE_EJID;
    epode_stanza_t *r;
    int rc = add_with_attr(msg, "reply", EPODE_NS_REPLY, "id", id, &r);
    if (rc == 0 && to && (rc = epode_stanza_set_attr(r, "to", to)) < 0)
        epode_stanza_remove(r);
    return rc;
}

/* Characters (code points) in s[0..n). */
static size_t count_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

/* The byte offset of the `chars`-th character of s, or (size_t)-1 past
 * its end. */
static size_t byte_offset(const char *s, size_t chars)
{
    size_t i = 0;
    while (chars > 0) {
        if (!s[i])
            return (size_t)-1;
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

int epode_message_build_reply(const char *type, const char *to, const char *body,
                              const char *reply_to, const char *reply_id, const char *quote,
                              epode_stanza_t **out)
{
    if (!body || !nonempty(reply_id))
        return EPODE_EINVAL;
    if (reply_to && epode_jid_validate(reply_to) < 0)
        return EPODE_EJID;
    /* "> " before every line of the quote, a newline after it */
    size_t qlen = quote ? strlen(quote) : 0, lines = 1;
    for (size_t i = 0; i < qlen; i++)
        lines += quote[i] == '\n';
    size_t blen = strlen(body), cap = qlen + 2 * lines + 1 + blen + 1;
    char *text = im_alloc(NULL, cap);
    if (!text)
        return EPODE_ENOMEM;
    size_t n = 0;
    if (quote) {
        text[n++] = '>';
        text[n++] = ' ';
        for (size_t i = 0; i < qlen; i++) {
            text[n++] = quote[i];
            if (quote[i] == '\n') {
                text[n++] = '>';
                text[n++] = ' ';
            }
        }
        text[n++] = '\n';
    }
    size_t fallback_chars = count_chars(text, n);
    memcpy(text + n, body, blen + 1);
    epode_stanza_t *msg = NULL, *fb, *fbody;
    int rc = new_message(NULL, type, to, &msg);
    if (rc == 0)
        rc = epode_message_add_body(msg, NULL, text);
    if (rc == 0)
        rc = epode_message_set_reply(msg, reply_to, reply_id);
    if (rc == 0 && quote) {
        char num[24];
        rc = add_with_attr(msg, "fallback", EPODE_NS_FALLBACK, "for", EPODE_NS_REPLY, &fb);
        if (rc == 0)
            rc = add_with_attr(fb, "body", EPODE_NS_FALLBACK, "start", "0", &fbody);
        snprintf(num, sizeof num, "%zu", fallback_chars);
        if (rc == 0)
            rc = epode_stanza_set_attr(fbody, "end", num);
    }
    im_free(NULL, text);
    if (rc < 0) {
        epode_stanza_unref(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

const char *epode_message_reply_id(const epode_message_t *m, const char **to)
{
    if (to)
        *to = NULL;
    if (!m || is_error(m))
        return NULL;
    epode_stanza_t *r = epode_stanza_find_child(m->st, "reply", EPODE_NS_REPLY);
    const char *id = r ? epode_stanza_get_attr(r, "id") : NULL;
    if (!nonempty(id))
        return NULL;
    if (to) {
        const char *t = epode_stanza_get_attr(r, "to");
        *to = nonempty(t) ? t : NULL;
    }
    return id;
}

/* A decimal attribute (no sign, no spaces), or -1. */
static long long attr_number(const epode_stanza_t *el, const char *name)
{
    const char *v = epode_stanza_get_attr(el, name);
    if (!nonempty(v) || strlen(v) > 10)
        return -1;
    long long n = 0;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        n = n * 10 + (*v - '0');
    }
    return n;
}

int epode_message_fallback(const epode_message_t *m, const char *for_ns, size_t *start,
                           size_t *end)
{
    const char *body = m && for_ns ? epode_message_body(m, NULL) : NULL;
    if (!body)
        return EPODE_ENOTFOUND;
    for (epode_stanza_t *f = epode_stanza_find_child(m->st, "fallback", EPODE_NS_FALLBACK); f;
         f = epode_stanza_find_next(f, "fallback", EPODE_NS_FALLBACK)) {
        const char *fo = epode_stanza_get_attr(f, "for");
        if (!fo || strcmp(fo, for_ns) != 0)
            continue;
        epode_stanza_t *b = epode_stanza_find_child(f, "body", EPODE_NS_FALLBACK);
        if (!epode_stanza_first_child(f) ||
            (b && !epode_stanza_get_attr(b, "start") && !epode_stanza_get_attr(b, "end"))) {
            if (start)
                *start = 0;
            if (end)
                *end = strlen(body);
            return 0;
        }
        if (!b)
            return EPODE_ENOTFOUND; /* a fallback for the subject only */
        long long s = attr_number(b, "start"), e = attr_number(b, "end");
        if (s < 0 || e < 0 || s > e)
            return EPODE_ENOTFOUND;
        size_t bs = byte_offset(body, (size_t)s), be = byte_offset(body, (size_t)e);
        if (bs == (size_t)-1 || be == (size_t)-1)
            return EPODE_ENOTFOUND;
        if (start)
            *start = bs;
        if (end)
            *end = be;
        return 0;
    }
    return EPODE_ENOTFOUND;
}

/* ---- chat markers ------------------------------------------------------------------ */

static const char *const marker_names[] = {NULL, "received", "displayed", "acknowledged"};

const char *epode_marker_name(epode_marker_t marker)
{
    if ((int)marker <= 0 || (int)marker > EPODE_MARKER_ACKNOWLEDGED)
        return NULL;
    return marker_names[marker];
}

int epode_message_add_markable(epode_stanza_t *msg)
{
    if (!msg || epode_stanza_find_child(msg, "markable", EPODE_NS_MARKERS))
        return EPODE_EINVAL;
    return epode_stanza_add_child_new(msg, "markable", EPODE_NS_MARKERS, NULL);
}

int epode_message_is_markable(const epode_message_t *m)
{
    return m && !is_error(m) &&
           epode_stanza_find_child(m->st, "markable", EPODE_NS_MARKERS) != NULL;
}

int epode_message_build_marker(const char *type, const char *to, epode_marker_t marker,
                               const char *id, const char *thread, epode_stanza_t **out)
{
    const char *name = epode_marker_name(marker);
    if (!name || !nonempty(id) || (thread && !*thread))
        return EPODE_EINVAL;
    epode_stanza_t *msg;
    int rc = new_message(NULL, type, to, &msg);
    if (rc < 0)
        return rc;
    if ((rc = add_with_attr(msg, name, EPODE_NS_MARKERS, "id", id, NULL)) < 0 ||
        (thread && (rc = epode_message_set_thread(msg, thread, NULL)) < 0)) {
        epode_stanza_unref(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

epode_marker_t epode_message_marker(const epode_message_t *m, const char **id)
{
    if (!m || is_error(m))
        return EPODE_MARKER_NONE;
    for (int i = EPODE_MARKER_RECEIVED; i <= EPODE_MARKER_ACKNOWLEDGED; i++) {
        const char *v = child_attr(m->st, marker_names[i], EPODE_NS_MARKERS, "id");
        if (v) {
            if (id)
                *id = v;
            return (epode_marker_t)i;
        }
    }
    return EPODE_MARKER_NONE;
}

/* ---- hints -------------------------------------------------------------------------- */

static const char *const hint_names[] = {"no-permanent-store", "no-store", "no-copy", "store"};
#define NHINTS 4

int epode_message_add_hints(epode_stanza_t *msg, unsigned hints)
{
    if (!msg || (hints >> NHINTS))
        return EPODE_EINVAL;
    epode_stanza_t *added[NHINTS];
    int nadded = 0;
    for (int i = 0; i < NHINTS; i++) {
        if (!(hints & (1u << i)) || epode_stanza_find_child(msg, hint_names[i], EPODE_NS_HINTS))
            continue;
        int rc = epode_stanza_add_child_new(msg, hint_names[i], EPODE_NS_HINTS, &added[nadded]);
        if (rc < 0) {
            while (nadded > 0)
                epode_stanza_remove(added[--nadded]);
            return rc;
        }
        nadded++;
    }
    return 0;
}

unsigned epode_message_hints(const epode_message_t *m)
{
    unsigned h = 0;
    for (int i = 0; m && i < NHINTS; i++)
        if (epode_stanza_find_child(m->st, hint_names[i], EPODE_NS_HINTS))
            h |= 1u << i;
    return h;
}
