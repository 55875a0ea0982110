/* lib/im/mam.c — Message Archive Management (XEP-0313, urn:xmpp:mam:2)
 * with RSM paging (XEP-0059), on the public API: the query IQ (filters as
 * a XEP-0004 form through epode/forms.h), the result messages unwrapped
 * into message views, the page's end, and catch-up by paging forwards.
 *
 * Invariant: a result reaches the application only if it comes from the
 * archive its open query asked (XEP-0313 §8), carries that query's
 * queryid and an id, wraps a jabber:client message, and the page still
 * has room. Its timestamp is the wrapper's <delay/> only. Freed before
 * its connection, the helper lets go of it on EPODE_CONN_FREED.
 *
 * Automatic catch-up: `last_id` only moves forwards (live ids seen while
 * a catch-up pages, or after one failed — `gap` — are parked in
 * `live_last`, and become the last id only when a catch-up completes
 * without error, unless the archive's pages reached them); the two
 * rings of ids (live ones since the catch-up began, delivered ones) are
 * what keeps a message from reaching the application twice. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "im_alloc.h"
#include "message_view.h"

#define ISO_MIN (-62135596800000LL)
#define ISO_MAX (253402300799999LL)

struct epode_mam_query {
    const epode_mem_t *mem;
    char *archive, *with, *after, *before;
    long long start, end;
    unsigned max;
};

typedef struct mam_req {
    struct mam_req *next;
    epode_mam_t *mam;
    unsigned id;       /* ours, for epode_mam_cancel */
    unsigned iq_id;    /* the IQ's wait */
    char queryid[24];
    char *archive;     /* normalized bare JID; NULL: our own */
    char *after;       /* catch-up: the <after/> of the page in flight, NULL: none */
    unsigned max;
    size_t page;       /* results of the page in flight */
    size_t results;    /* results delivered in all (a catch-up has several pages) */
    int catch_up;      /* page forwards until complete */
    epode_mam_result_cb on_result;
    epode_mam_done_cb on_done;
    void *user;
} mam_req;

typedef struct id_ring {
    char *ids[EPODE_MAM_SEEN_IDS];
    size_t next;
} id_ring;

struct epode_mam {
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned msg_id, ev_id;
    unsigned next_id;
    unsigned rejected;
    mam_req *reqs;
    /* automatic catch-up */
    int auto_on;
    unsigned auto_max;
    epode_mam_result_cb auto_result;
    epode_mam_done_cb auto_done;
    void *auto_user;
    unsigned auto_req; /* the running catch-up's id, 0: none */
    int gap;           /* the archive after last_id is not caught up yet */
    size_t auto_fresh; /* results of the catch-up's page not delivered before */
    char *last_id, *live_last;
    id_ring live, delivered;
};

/* ---- remembered ids ------------------------------------------------------------ */

static void ring_add(const epode_mem_t *mem, id_ring *r, const char *id)
{
    char *c = im_strdup(mem, id);
    if (!c)
        return; /* forgetting one id only weakens the duplicate check */
    size_t i = r->next++ % EPODE_MAM_SEEN_IDS;
    im_free(mem, r->ids[i]);
    r->ids[i] = c;
}

static int ring_has(const id_ring *r, const char *id)
{
    for (size_t i = 0; id && i < EPODE_MAM_SEEN_IDS; i++)
        if (r->ids[i] && strcmp(r->ids[i], id) == 0)
            return 1;
    return 0;
}

static void ring_clear(const epode_mem_t *mem, id_ring *r)
{
    for (size_t i = 0; i < EPODE_MAM_SEEN_IDS; i++) {
        im_free(mem, r->ids[i]);
        r->ids[i] = NULL;
    }
    r->next = 0;
}

/* ---- queries ------------------------------------------------------------------- */

int epode_mam_query_new(const epode_mem_t *mem, epode_mam_query_t **out)
{
    if (!out)
        return EPODE_EINVAL;
    epode_mam_query_t *q = im_zalloc(mem, sizeof *q);
    if (!q)
        return EPODE_ENOMEM;
    q->mem = mem;
    q->start = q->end = EPODE_MAM_NO_TIME;
    *out = q;
    return 0;
}

void epode_mam_query_free(epode_mam_query_t *q)
{
    if (!q)
        return;
    im_free(q->mem, q->archive);
    im_free(q->mem, q->with);
    im_free(q->mem, q->after);
    im_free(q->mem, q->before);
    im_free(q->mem, q);
}

/* Replaces *slot with a copy of s (NULL: none). */
static int set_str(const epode_mem_t *mem, char **slot, const char *s)
{
    char *c = NULL;
    if (s && !(c = im_strdup(mem, s)))
        return EPODE_ENOMEM;
    im_free(mem, *slot);
    *slot = c;
    return 0;
}

/* Replaces *slot with the normalized form of jid (bare only if asked). */
static int set_jid(const epode_mem_t *mem, char **slot, const char *jid, int bare)
{
    if (!jid)
        return set_str(mem, slot, NULL);
    epode_jid_t *j;
    int rc = epode_jid_new(mem, jid, &j);
    if (rc < 0)
        return rc == EPODE_ENOMEM ? rc : EPODE_EJID;
    if (bare && !epode_jid_is_bare(j))
        rc = EPODE_EJID;
    else
        rc = set_str(mem, slot, epode_jid_full(j));
    epode_jid_free(j);
    return rc;
}

int epode_mam_query_set_archive(epode_mam_query_t *q, const char *jid)
{
    return q ? set_jid(q->mem, &q->archive, jid, 1) : EPODE_EINVAL;
}

int epode_mam_query_set_with(epode_mam_query_t *q, const char *jid)
{
    return q ? set_jid(q->mem, &q->with, jid, 0) : EPODE_EINVAL;
}

static int time_ok(long long ms)
{
    return ms == EPODE_MAM_NO_TIME || (ms >= ISO_MIN && ms <= ISO_MAX);
}

int epode_mam_query_set_start(epode_mam_query_t *q, long long ms)
{
    if (!q || !time_ok(ms))
        return EPODE_EINVAL;
    q->start = ms;
    return 0;
}

int epode_mam_query_set_end(epode_mam_query_t *q, long long ms)
{
    if (!q || !time_ok(ms))
        return EPODE_EINVAL;
    q->end = ms;
    return 0;
}

int epode_mam_query_set_page(epode_mam_query_t *q, unsigned max, const char *after,
                             const char *before)
{
    if (!q || max > EPODE_MAM_PAGE_MAX || (after && before) || (after && !*after))
        return EPODE_EINVAL;
    char *a = NULL, *b = NULL;
    if ((after && !(a = im_strdup(q->mem, after))) || (before && !(b = im_strdup(q->mem, before)))) {
        im_free(q->mem, a);
        return EPODE_ENOMEM;
    }
    im_free(q->mem, q->after);
    im_free(q->mem, q->before);
    q->after = a;
    q->before = b;
    q->max = max;
    return 0;
}

/* ---- the views -------------------------------------------------------------------- */

const char *epode_message_archive_id(const epode_message_t *m)
{
    return m ? m->archive_id : NULL;
}

/* ---- requests ------------------------------------------------------------------- */

static void req_unlink(epode_mam_t *mam, mam_req *r)
{
    for (mam_req **p = &mam->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void req_free(epode_mam_t *mam, mam_req *r)
{
    im_free(mam->mem, r->archive);
    im_free(mam->mem, r->after);
    im_free(mam->mem, r);
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *res, int status, void *user);
static void note_live(epode_mam_t *mam, const epode_stanza_t *st);

/* Adds a text field to a submit form. */
static int form_time(epode_form_t *f, const char *var, long long ms)
{
    char stamp[EPODE_TIME_BUFSIZE];
    if (ms == EPODE_MAM_NO_TIME)
        return 0;
    int rc = epode_time_format(ms, stamp, sizeof stamp);
    return rc < 0 ? rc : epode_form_set_value(f, var, stamp);
}

/* Builds and sends the query IQ for `r`. */
static int send_query(epode_mam_t *mam, mam_req *r, const char *with, long long start,
                      long long end, const char *after, const char *before)
{
    epode_stanza_t *iq = NULL, *query, *set, *el;
    epode_form_t *form = NULL;
    char num[16];
    int rc = epode_stanza_new_iq(mam->mem, "set", NULL, &iq);
    if (rc == 0 && r->archive)
        rc = epode_stanza_set_to(iq, r->archive);
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_MAM, &query);
    if (rc == 0)
        rc = epode_stanza_set_attr(query, "queryid", r->queryid);
    if (rc == 0 && (with || start != EPODE_MAM_NO_TIME || end != EPODE_MAM_NO_TIME)) {
        rc = epode_form_new(mam->mem, EPODE_FORM_SUBMIT, &form);
        if (rc == 0)
            rc = epode_form_set_form_type(form, EPODE_NS_MAM);
        if (rc == 0 && with)
            rc = epode_form_set_value(form, "with", with);
        if (rc == 0)
            rc = form_time(form, "start", start);
        if (rc == 0)
            rc = form_time(form, "end", end);
        if (rc == 0)
            rc = epode_form_add_to(form, query, NULL);
        epode_form_free(form);
    }
    if (rc == 0)
        rc = epode_stanza_add_child_new(query, "set", EPODE_NS_RSM, &set);
    snprintf(num, sizeof num, "%u", r->max);
    if (rc == 0 && (rc = epode_stanza_add_child_new(set, "max", EPODE_NS_RSM, &el)) == 0)
        rc = epode_stanza_set_text(el, num);
    if (rc == 0 && after && (rc = epode_stanza_add_child_new(set, "after", EPODE_NS_RSM, &el)) == 0)
        rc = epode_stanza_set_text(el, after);
    if (rc == 0 && before &&
        (rc = epode_stanza_add_child_new(set, "before", EPODE_NS_RSM, &el)) == 0 && *before)
        rc = epode_stanza_set_text(el, before);
    if (rc == 0)
        rc = epode_conn_send_iq(mam->conn, iq, 60000, on_answer, r, &r->iq_id);
    epode_stanza_unref(iq);
    return rc;
}

static int start_req(epode_mam_t *mam, const char *archive, const char *with, long long start,
                     long long end, unsigned max, const char *after, const char *before,
                     int catch_up, epode_mam_result_cb on_result, epode_mam_done_cb on_done,
                     void *user, unsigned *id)
{
    if (!mam->conn || !epode_conn_is_ready(mam->conn))
        return EPODE_ESTATE;
    mam_req *r = im_zalloc(mam->mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->mam = mam;
    r->max = max ? max : EPODE_MAM_PAGE_DEFAULT;
    r->catch_up = catch_up;
    r->on_result = on_result;
    r->on_done = on_done;
    r->user = user;
    const char *qid;
    epode_stanza_t *tmp;
    /* a fresh random queryid: the id generator of the stanza API */
    int rc = epode_stanza_new(mam->mem, "x", NULL, &tmp);
    if (rc == 0) {
        if ((rc = epode_stanza_set_new_id(tmp, &qid)) == 0)
            snprintf(r->queryid, sizeof r->queryid, "%s", qid);
        epode_stanza_unref(tmp);
    }
    if (rc == 0 && archive && !(r->archive = im_strdup(mam->mem, archive)))
        rc = EPODE_ENOMEM;
    if (rc == 0 && catch_up && after && !(r->after = im_strdup(mam->mem, after)))
        rc = EPODE_ENOMEM;
    if (rc == 0)
        rc = send_query(mam, r, with, start, end, after, before);
    if (rc < 0) {
        req_free(mam, r);
        return rc;
    }
    if (++mam->next_id == 0)
        mam->next_id = 1;
    r->id = mam->next_id;
    r->next = mam->reqs;
    mam->reqs = r;
    if (id)
        *id = r->id;
    return 0;
}

int epode_mam_fetch(epode_mam_t *mam, const epode_mam_query_t *q, epode_mam_result_cb on_result,
                    epode_mam_done_cb on_done, void *user, unsigned *id)
{
    if (!mam || !q)
        return EPODE_EINVAL;
    return start_req(mam, q->archive, q->with, q->start, q->end, q->max, q->after, q->before, 0,
                     on_result, on_done, user, id);
}

int epode_mam_catch_up(epode_mam_t *mam, const char *last_id, unsigned max,
                       epode_mam_result_cb on_result, epode_mam_done_cb on_done, void *user,
                       unsigned *id)
{
    if (!mam || max > EPODE_MAM_PAGE_MAX || (last_id && !*last_id))
        return EPODE_EINVAL;
    return start_req(mam, NULL, NULL, EPODE_MAM_NO_TIME, EPODE_MAM_NO_TIME, max, last_id, NULL,
                     1, on_result, on_done, user, id);
}

/* A non-negative decimal below 2^31, else -1. */
static long parse_count(const char *s)
{
    if (!s || !*s || strlen(s) > 10)
        return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v > 2147483647LL ? -1 : (long)v;
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn;
    mam_req *r = user;
    epode_mam_t *mam = r->mam;
    r->iq_id = 0;
    if (!mam->conn)
        return; /* being freed: epode_mam_free() tells it */
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    const char *first = NULL, *last = NULL;
    int complete = 0;
    long count = -1;
    if (status == 0) {
        const char *type = epode_stanza_get_type(res);
        if (!type || strcmp(type, "result") != 0) {
            if (epode_stanza_get_error(res, &cond, NULL, NULL) < 0 || cond == EPODE_COND_NONE)
                cond = EPODE_COND_UNDEFINED_CONDITION;
        } else {
            epode_stanza_t *fin = epode_stanza_find_child(res, "fin", EPODE_NS_MAM);
            epode_stanza_t *set = fin ? epode_stanza_find_child(fin, "set", EPODE_NS_RSM) : NULL;
            const char *c = fin ? epode_stanza_get_attr(fin, "complete") : NULL;
            complete = c && (strcmp(c, "true") == 0 || strcmp(c, "1") == 0);
            first = set ? epode_stanza_child_text(set, "first", EPODE_NS_RSM) : NULL;
            last = set ? epode_stanza_child_text(set, "last", EPODE_NS_RSM) : NULL;
            count = set ? parse_count(epode_stanza_child_text(set, "count", EPODE_NS_RSM)) : -1;
            if (first && !*first)
                first = NULL;
            if (last && !*last)
                last = NULL;
            if (!fin)
                cond = EPODE_COND_UNDEFINED_CONDITION; /* not a MAM answer */
        }
    }
    /* catch-up: another page forwards, unless this one ended it; a page
     * that ends where it began would be asked again and again */
    if (r->catch_up && status == 0 && cond == EPODE_COND_NONE && !complete && last &&
        r->page > 0) {
        int repeated = r->id == mam->auto_req && mam->auto_fresh == 0;
        if ((r->after && strcmp(r->after, last) == 0) || repeated) {
            status = EPODE_EPROTOCOL;
        } else {
            char *after = im_strdup(mam->mem, last);
            int rc = after ? 0 : EPODE_ENOMEM;
            if (rc == 0)
                rc = send_query(mam, r, NULL, EPODE_MAM_NO_TIME, EPODE_MAM_NO_TIME, after, NULL);
            if (rc == 0) {
                im_free(mam->mem, r->after);
                r->after = after;
                r->page = 0;
                mam->auto_fresh = 0;
                return;
            }
            im_free(mam->mem, after);
            status = rc;
        }
    }
    req_unlink(mam, r);
    if (r->on_done)
        r->on_done(mam, status, cond, first, last, complete, count, r->results, r->user);
    req_free(mam, r);
}

/* ---- results --------------------------------------------------------------------- */

/* The stanza-id our own server stamped on a live chat or normal message
 * (borrowed), NULL if none. */
static const char *own_stanza_id(const epode_mam_t *mam, const epode_stanza_t *st)
{
    const char *type = epode_stanza_get_type(st);
    const char *me = mam->conn ? epode_conn_bound_jid(mam->conn) : NULL;
    if (!me || (type && strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0))
        return NULL;
    for (epode_stanza_t *c = epode_stanza_find_child(st, "stanza-id", EPODE_NS_SID); c;
         c = epode_stanza_find_next(c, "stanza-id", EPODE_NS_SID)) {
        const char *id = epode_stanza_get_attr(c, "id"), *by = epode_stanza_get_attr(c, "by");
        if (id && *id && by && !strchr(by, '/') && epode_jid_str_equal(by, me, 1))
            return id;
    }
    return NULL;
}

static int set_last(epode_mam_t *mam, char **slot, const char *id)
{
    return set_str(mam->mem, slot, id);
}

/* A live message: its id becomes the last one, or waits for the running
 * or next catch-up to end (which must not deliver it again). */
static void note_live(epode_mam_t *mam, const epode_stanza_t *st)
{
    const char *id = own_stanza_id(mam, st);
    if (!id)
        return;
    if (mam->auto_req || mam->gap) {
        ring_add(mam->mem, &mam->live, id);
        set_last(mam, &mam->live_last, id);
    } else {
        set_last(mam, &mam->last_id, id);
    }
}

/* 1 if `from` is the archive `r` asked: the room's bare JID, or, for our
 * own archive, no 'from' or our bare JID. */
static int from_archive(epode_mam_t *mam, const mam_req *r, const char *from)
{
    if (!r->archive) {
        if (!from)
            return 1;
        const char *me = epode_conn_bound_jid(mam->conn);
        return me && !strchr(from, '/') && epode_jid_str_equal(from, me, 1);
    }
    return from && !strchr(from, '/') && epode_jid_str_equal(from, r->archive, 0);
}

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_mam_t *mam = user;
    epode_stanza_t *res = epode_stanza_find_child(st, "result", EPODE_NS_MAM);
    if (mam->conn && !res && mam->auto_on)
        note_live(mam, st);
    if (!mam->conn || !res)
        return EPODE_PASS;
    const char *qid = epode_stanza_get_attr(res, "queryid");
    const char *type = epode_stanza_get_type(st);
    mam_req *r = NULL;
    for (mam_req *p = mam->reqs; p && qid; p = p->next)
        if (strcmp(p->queryid, qid) == 0)
            r = p;
    if (!r || (type && strcmp(type, "error") == 0) ||
        !from_archive(mam, r, epode_stanza_get_from(st)) || r->page >= r->max) {
        mam->rejected++;
        return EPODE_HANDLED;
    }
    const char *aid = epode_stanza_get_attr(res, "id");
    epode_stanza_t *fwd = epode_stanza_find_child(res, "forwarded", EPODE_NS_FORWARD);
    epode_stanza_t *inner = fwd ? epode_stanza_find_child(fwd, "message", NULL) : NULL;
    const char *ins = inner ? epode_stanza_get_ns(inner) : NULL;
    if (!aid || !*aid || !inner || (ins && strcmp(ins, EPODE_NS_CLIENT) != 0) ||
        epode_stanza_find_next(inner, "message", NULL)) {
        mam->rejected++;
        return EPODE_HANDLED;
    }
    r->page++;
    r->results++;
    epode_message_t view;
    epode__message_view_init(&view, inner);
    view.archived = 1;
    view.archive_id = aid;
    view.stanza_id = aid; /* the archive's id: trusted, it came from the archive asked */
    view.delay = epode_stanza_find_child(fwd, "delay", EPODE_NS_DELAY);
    if (r->on_result)
        r->on_result(mam, &view, r->user);
    return EPODE_HANDLED;
}

int epode_mam_cancel(epode_mam_t *mam, unsigned id)
{
    if (!mam)
        return EPODE_EINVAL;
    for (mam_req *r = mam->reqs; r; r = r->next) {
        if (r->id != id)
            continue;
        req_unlink(mam, r);
        if (mam->conn && r->iq_id)
            epode_conn_remove(mam->conn, r->iq_id);
        if (r->on_done)
            r->on_done(mam, EPODE_ECANCELED, EPODE_COND_NONE, NULL, NULL, 0, -1, r->results,
                       r->user);
        req_free(mam, r);
        return 0;
    }
    return EPODE_ENOTFOUND;
}

/* ---- automatic catch-up ------------------------------------------------------------ */

static void on_auto_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)user;
    const char *id = epode_message_archive_id(m);
    set_last(mam, &mam->last_id, id); /* the archive's order: forwards */
    if (mam->live_last && strcmp(mam->live_last, id) == 0) {
        im_free(mam->mem, mam->live_last); /* reached: the archive is as recent */
        mam->live_last = NULL;
    }
    if (ring_has(&mam->delivered, id))
        return; /* a page repeated it */
    mam->auto_fresh++;
    if (ring_has(&mam->live, id))
        return; /* it came live since the gap opened: delivered already */
    ring_add(mam->mem, &mam->delivered, id);
    if (mam->auto_result)
        mam->auto_result(mam, m, mam->auto_user);
}

static void on_auto_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond,
                         const char *first, const char *last, int complete, long count,
                         size_t results, void *user)
{
    (void)user;
    mam->auto_req = 0;
    if (status == 0 && cond == EPODE_COND_NONE && complete) {
        mam->gap = 0;
        if (mam->live_last) { /* came after the archive's last page: newer */
            im_free(mam->mem, mam->last_id);
            mam->last_id = mam->live_last;
            mam->live_last = NULL;
        }
    }
    /* else the archive after last_id is still owed: the next catch-up
     * starts there, and the live ids seen meanwhile stay remembered */
    if (mam->auto_done)
        mam->auto_done(mam, status, cond, first, last, complete, count, results,
                       mam->auto_user);
}

static void auto_start(epode_mam_t *mam)
{
    if (!mam->auto_on || !mam->last_id || mam->auto_req)
        return;
    if (!mam->gap)
        ring_clear(mam->mem, &mam->live);
    unsigned id = 0;
    /* failing (no memory), this session simply does not catch up: the gap
     * stays open for the next one */
    mam->auto_fresh = 0;
    if (epode_mam_catch_up(mam, mam->last_id, mam->auto_max, on_auto_result, on_auto_done, NULL,
                           &id) == 0)
        mam->auto_req = id;
    mam->gap = 1;
}

int epode_mam_set_auto_catch_up(epode_mam_t *mam, int enable, unsigned max,
                                epode_mam_result_cb on_result, epode_mam_done_cb on_done,
                                void *user)
{
    if (!mam || max > EPODE_MAM_PAGE_MAX || (enable && !on_result))
        return EPODE_EINVAL;
    mam->auto_on = enable != 0;
    if (enable) {
        mam->auto_max = max;
        mam->auto_result = on_result;
        mam->auto_done = on_done;
        mam->auto_user = user;
    }
    return 0;
}

const char *epode_mam_last_id(const epode_mam_t *mam)
{
    return mam ? mam->last_id : NULL;
}

int epode_mam_set_last_id(epode_mam_t *mam, const char *id)
{
    if (!mam || (id && !*id))
        return EPODE_EINVAL;
    int rc = set_last(mam, &mam->last_id, id);
    if (rc == 0 && !mam->auto_req) { /* the application says where to start */
        mam->gap = 0;
        im_free(mam->mem, mam->live_last);
        mam->live_last = NULL;
    }
    return rc;
}

int epode_mam_is_duplicate(const epode_mam_t *mam, const epode_stanza_t *message)
{
    if (!mam || !message || epode_stanza_find_child(message, "result", EPODE_NS_MAM))
        return 0; /* an archive result is not a live copy */
    return ring_has(&mam->delivered, own_stanza_id(mam, message));
}

/* ---- life cycle ------------------------------------------------------------------ */

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_mam_t *mam = user;
    if (ev == EPODE_CONN_READY) {
        auto_start(mam);
    } else if (ev == EPODE_CONN_FREED) {
        mam->conn = NULL;
        mam->msg_id = mam->ev_id = 0;
        for (mam_req *r = mam->reqs; r; r = r->next)
            r->iq_id = 0;
    }
}

int epode_mam_new(epode_conn_t *conn, epode_mam_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_mam_t *mam = im_zalloc(mem, sizeof *mam);
    if (!mam)
        return EPODE_ENOMEM;
    mam->conn = conn;
    mam->mem = mem;
    int rc = epode_conn_add_handler(conn, "message", NULL, NULL, on_message, mam, &mam->msg_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, mam, &mam->ev_id);
    if (rc < 0) {
        epode_mam_free(mam);
        return rc;
    }
    *out = mam;
    return 0;
}

void epode_mam_free(epode_mam_t *mam)
{
    if (!mam)
        return;
    if (mam->conn) {
        if (mam->msg_id)
            epode_conn_remove(mam->conn, mam->msg_id);
        if (mam->ev_id)
            epode_conn_remove(mam->conn, mam->ev_id);
    }
    while (mam->reqs) {
        mam_req *r = mam->reqs;
        mam->reqs = r->next;
        if (mam->conn && r->iq_id)
            epode_conn_remove(mam->conn, r->iq_id);
        if (r->on_done)
            r->on_done(mam, EPODE_ECANCELED, EPODE_COND_NONE, NULL, NULL, 0, -1, r->results,
                       r->user);
        req_free(mam, r);
    }
    ring_clear(mam->mem, &mam->live);
    ring_clear(mam->mem, &mam->delivered);
    im_free(mam->mem, mam->last_id);
    im_free(mam->mem, mam->live_last);
    im_free(mam->mem, mam);
}

unsigned epode_mam_rejected(const epode_mam_t *mam)
{
    return mam ? mam->rejected : 0;
}
