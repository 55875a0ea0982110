/* tests/unit/test_failalloc.c — out of memory at every allocation of a
 * whole session (nghttp2's failmalloc test, SQLite's OOM tests): a
 * context, a connection, a TLS-less login with stream management over
 * a memory pair to a scripted server, messages and IQs both ways, acks,
 * a close. The context's allocator fails the Nth allocation, for every N
 * until a run completes with none failed. Every run must end cleanly —
 * an error code from a call, a DISCONNECTED, or the whole exchange done
 * — with nothing lost in silence, nothing leaked (our allocator's count
 * here; LeakSanitizer for the rest under the ASan build), no crash, and
 * in a bounded number of loop turns. libxml2, cyrus-sasl and c-ares take
 * allocators only process-wide (DEPENDENCIES.md): their allocations are
 * not swept. */
#include "test.h"

#include "scripted.h"

/* ---- the allocator ---------------------------------------------------------- */

typedef struct failmem {
    epode_mem_t mem;
    long calls;   /* malloc and realloc calls so far */
    long fail_at; /* the call that fails (-1: none) */
    int sticky;   /* 1: every call from fail_at on fails */
    long failed;  /* calls made to fail */
    long live;    /* blocks not freed */
} failmem;

static int failmem_fails(failmem *m)
{
    long i = m->calls++;
    if (m->fail_at >= 0 && (i == m->fail_at || (m->sticky && i > m->fail_at))) {
        m->failed++;
        return 1;
    }
    return 0;
}

static void *fm_malloc(size_t n, void *u)
{
    failmem *m = u;
    if (failmem_fails(m))
        return NULL;
    void *p = malloc(n);
    if (p)
        m->live++;
    return p;
}

static void *fm_realloc(void *p, size_t n, void *u)
{
    failmem *m = u;
    if (failmem_fails(m))
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        m->live++;
    return q;
}

static void fm_free(void *p, void *u)
{
    failmem *m = u;
    if (p)
        m->live--;
    free(p);
}

/* ---- one run ------------------------------------------------------------------ */

#define ME "anon@example.com/r1"
#define PEER "peer@example.com/x"
#define NMSG 3

typedef struct run {
    failmem m;
    scripted s;
    const char *step;   /* the step the script reached */
    int api_err;        /* the first error a call of ours returned */
    int ready, disconnected, reason;
    int got_msgs;       /* messages the handler saw */
    int iq_status, iq_answered;
    int acked, handed_back;
    int sent_by_client; /* stanzas the client accepted under SM */
} run;

static void on_event(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    run *r = u;
    if (ev == EPODE_CONN_READY)
        r->ready++;
    if (ev == EPODE_CONN_DISCONNECTED) {
        r->disconnected++;
        r->reason = (int)epode_conn_reason(c);
    }
}

static int on_message(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    (void)c;
    run *r = u;
    const char *body = epode_stanza_child_text(st, "body", NULL);
    char want[16];
    snprintf(want, sizeof want, "hi %d", r->got_msgs + 1);
    if (body && strcmp(body, want) == 0)
        r->got_msgs++;
    return EPODE_HANDLED;
}

static void note(run *r, int rc)
{
    if (rc < 0 && !r->api_err)
        r->api_err = rc;
}

/* Answers jabber:iq:version requests (an application's handler). */
static int on_version(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    run *r = u;
    epode_stanza_t *res;
    int rc = epode_stanza_reply(st, &res);
    if (rc == 0) {
        rc = epode_stanza_add_child_new(res, "query", "jabber:iq:version", NULL);
        if (rc == 0 && (rc = epode_conn_send(c, res)) == 0)
            r->sent_by_client++;
        epode_stanza_unref(res);
    }
    note(r, rc);
    return EPODE_HANDLED;
}

static void on_iq_answer(epode_conn_t *c, epode_stanza_t *res, int status, void *u)
{
    (void)c;
    run *r = u;
    r->iq_answered++;
    r->iq_status = status;
    if (status == 0 && (!res || strcmp(epode_stanza_get_type(res), "result") != 0))
        r->iq_status = 1;
}

static void on_ack(epode_conn_t *c, int acked, const char *id, const char *xml, size_t len,
                   void *u)
{
    (void)c, (void)id, (void)xml, (void)len;
    run *r = u;
    if (acked)
        r->acked++;
    else
        r->handed_back++;
}

/* The server writes; a failed allocation on our side of the pair (it
 * uses the same allocator) is tried again after the client ran. */
static int srv_send(run *r, const char *xml)
{
    size_t len = strlen(xml), off = 0;
    for (int i = 0; i < 8 && off < len; i++) {
        long n = epode__transport_write(r->s.server, xml + off, len - off);
        if (n > 0)
            off += (size_t)n;
        else
            scripted_pump(&r->s);
    }
    scripted_pump(&r->s);
    return off == len ? 0 : -1;
}

/* The next stanza named `name` the client sent (skipping others, such
 * as <r/>), or NULL. */
static epode_stanza_t *take(run *r, const char *name)
{
    scripted_pump(&r->s);
    for (epode_stanza_t *st; (st = scripted_next(&r->s));)
        if (strcmp(epode_stanza_get_name(st), name) == 0)
            return st;
    return NULL;
}

static epode_stanza_t *take_iq(run *r, const char *id)
{
    for (epode_stanza_t *st; (st = take(r, "iq"));)
        if (epode_stanza_get_id(st) && strcmp(epode_stanza_get_id(st), id) == 0)
            return st;
    return NULL;
}

static int client_message(run *r, int i)
{
    epode_stanza_t *m;
    char body[16], id[16];
    snprintf(body, sizeof body, "out %d", i);
    snprintf(id, sizeof id, "o%d", i);
    int rc = epode_message_new(&r->m.mem, "chat", PEER, body, &m);
    if (rc == 0) {
        if ((rc = epode_stanza_set_id(m, id)) == 0 && (rc = epode_conn_send(r->s.conn, m)) == 0)
            r->sent_by_client++;
        epode_stanza_unref(m);
    }
    note(r, rc);
    return rc;
}

/* The script; returns 1 when everything expected happened. The first
 * miss ends it (r->step says where). */
static int script(run *r)
{
    scripted *s = &r->s;
    epode__transport *client = NULL;
    int rc;
    r->step = "setup";
    if ((rc = epode_ctx_new(&r->m.mem, &s->ctx)) < 0 || (rc = epode_conn_new(s->ctx, &s->conn)) < 0 ||
        (rc = epode_conn_set_jid(s->conn, "example.com")) < 0 ||
        (rc = epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED)) < 0 ||
        (rc = epode_conn_set_mechanisms(s->conn, "ANONYMOUS")) < 0 ||
        (rc = epode_conn_set_stream_management(s->conn, 1)) < 0 ||
        (rc = epode_conn_set_ack_cb(s->conn, on_ack, r)) < 0 ||
        (rc = epode_conn_add_event_cb(s->conn, on_event, r, NULL)) < 0 ||
        (rc = epode_handler_add(s->conn, "message", NULL, "chat", on_message, r, NULL)) < 0 ||
        (rc = epode_handler_add(s->conn, "iq", "jabber:iq:version", "get", on_version, r, NULL)) < 0 ||
        (rc = epode__memory_pair(&r->m.mem, &client, &s->server)) < 0 ||
        (rc = epode_parser_new(NULL, scripted__on_client, s, &s->parser)) < 0 ||
        (rc = epode__conn_start_over(s->conn, client)) < 0) {
        if (client && (!s->conn || s->conn->tr != client))
            epode__transport_free(client); /* start_over did not take it */
        note(r, rc);
        return 0;
    }

    r->step = "login: auth";
    scripted_pump(s);
    if (srv_send(r, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:"
                                 "xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms>"
                                 "</stream:features>") < 0 ||
        !take(r, "auth"))
        return 0;
    epode_parser_reset(s->parser);
    r->step = "login: bind";
    if (srv_send(r, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>") < 0 ||
        srv_send(r, SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                                 "<sm xmlns='urn:xmpp:sm:3'/></stream:features>") < 0)
        return 0;
    epode_stanza_t *bind = take(r, "iq");
    if (!bind || !epode_stanza_get_id(bind))
        return 0;
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:"
             "xmpp-bind'><jid>" ME "</jid></bind></iq>", epode_stanza_get_id(bind));
    r->step = "login: sm";
    if (srv_send(r, xml) < 0 || !take(r, "enable") ||
        srv_send(r, "<enabled xmlns='urn:xmpp:sm:3' id='sm1' resume='true'/>") < 0)
        return 0;
    r->step = "login: ready";
    if (!r->ready || !epode_conn_is_ready(s->conn))
        return 0;

    /* the server's stanzas: messages, an IQ nobody handles, one a
     * handler answers */
    r->step = "incoming messages";
    for (int i = 1; i <= NMSG; i++) {
        snprintf(xml, sizeof xml, "<message from='" PEER "' to='" ME "' type='chat' id='m%d'>"
                 "<body>hi %d</body></message>", i, i);
        if (srv_send(r, xml) < 0)
            return 0;
    }
    if (r->got_msgs != NMSG)
        return 0;
    r->step = "unhandled iq";
    if (srv_send(r, "<iq type='get' id='ping1' from='example.com'><ping xmlns='urn:xmpp:ping'/>"
                    "</iq>") < 0)
        return 0;
    epode_stanza_t *err = take_iq(r, "ping1");
    if (!err || strcmp(epode_stanza_get_type(err), "error") != 0)
        return 0;
    r->sent_by_client++; /* the automatic error counts under SM too */
    r->step = "handled iq";
    if (srv_send(r, "<iq type='get' id='v1' from='" PEER "'><query xmlns='jabber:iq:version'/>"
                    "</iq>") < 0)
        return 0;
    epode_stanza_t *ver = take_iq(r, "v1");
    if (!ver || strcmp(epode_stanza_get_type(ver), "result") != 0)
        return 0;

    /* the client's: messages, an IQ with its answer */
    r->step = "outgoing messages";
    for (int i = 1; i <= NMSG; i++) {
        if (client_message(r, i) < 0)
            return 0;
        epode_stanza_t *m = take(r, "message");
        const char *body = m ? epode_stanza_child_text(m, "body", NULL) : NULL;
        char want[16];
        snprintf(want, sizeof want, "out %d", i);
        if (!body || strcmp(body, want) != 0)
            return 0;
    }
    r->step = "outgoing iq";
    epode_stanza_t *iq;
    if ((rc = epode_iq_new(&r->m.mem, "get", "q1", &iq)) < 0) {
        note(r, rc);
        return 0;
    }
    if ((rc = epode_stanza_set_to(iq, "example.com")) == 0 &&
        (rc = epode_stanza_add_child_new(iq, "ping", "urn:xmpp:ping", NULL)) == 0 &&
        (rc = epode_conn_send_iq(s->conn, iq, 5000, on_iq_answer, r, NULL)) == 0)
        r->sent_by_client++;
    epode_stanza_unref(iq);
    note(r, rc);
    if (rc < 0 || !take_iq(r, "q1") ||
        srv_send(r, "<iq type='result' id='q1' from='example.com'/>") < 0 || r->iq_answered != 1 ||
        r->iq_status != 0)
        return 0;

    /* acknowledgements both ways */
    r->step = "acks";
    if (srv_send(r, "<r xmlns='urn:xmpp:sm:3'/>") < 0)
        return 0;
    epode_stanza_t *a = take(r, "a");
    const char *h = a ? epode_stanza_get_attr(a, "h") : NULL;
    snprintf(xml, sizeof xml, "%d", NMSG + 3); /* messages, two requests, the answer */
    if (!h || strcmp(h, xml) != 0)
        return 0;
    snprintf(xml, sizeof xml, "<a xmlns='urn:xmpp:sm:3' h='%d'/>", r->sent_by_client);
    if (srv_send(r, xml) < 0 || r->acked != r->sent_by_client)
        return 0;

    /* the end */
    r->step = "close";
    if ((rc = epode_conn_close(s->conn)) < 0) {
        note(r, rc);
        return 0;
    }
    scripted_pump(s);
    if (srv_send(r, "</stream:stream>") < 0)
        return 0;
    for (int i = 0; i < 10 && !r->disconnected; i++)
        scripted_pump(s);
    return r->disconnected == 1 && r->reason == EPODE_REASON_CLOSED && r->handed_back == 0;
}

/* One run with allocation `fail_at` failing (-1: none): 0 if it ended
 * cleanly; *failed says whether a failure was injected at all. */
static int one_run(long fail_at, int sticky, long *failed, long *calls)
{
    run r;
    memset(&r, 0, sizeof r);
    r.m.mem = (epode_mem_t){fm_malloc, fm_realloc, fm_free, &r.m};
    r.m.fail_at = fail_at;
    r.m.sticky = sticky;
    int done = script(&r);
    /* after the script: whatever the client still had to say */
    if (r.s.conn && !r.disconnected)
        scripted_pump(&r.s);
    int disconnected = r.disconnected, reason = r.reason;
    scripted_free(&r.s);
    *failed = r.m.failed;
    *calls = r.m.calls;
    int bad = 0;
    if (r.m.live != 0) {
        printf("# allocation %ld%s failing: %ld blocks leaked (step: %s)\n", fail_at,
               sticky ? " on" : "", r.m.live, r.step);
        bad = 1;
    }
    /* Clean: the whole exchange, or the failure was reported. */
    if (!done && !r.api_err && !(disconnected && reason != EPODE_REASON_CLOSED)) {
        printf("# allocation %ld%s failing: stopped at \"%s\" with nothing reported "
               "(disconnected %d, reason %d, ready %d, msgs %d, iq %d/%d, acked %d/%d)\n",
               fail_at, sticky ? " on" : "", r.step, disconnected, reason, r.ready, r.got_msgs,
               r.iq_answered, r.iq_status, r.acked, r.sent_by_client);
        bad = 1;
    }
    if (fail_at < 0 && !done) {
        printf("# without a failure the script stopped at \"%s\"\n", r.step);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* Every allocation point (or every `stride`-th, from `first`). */
static int sweep(int sticky, long first, long stride, long *points)
{
    long failed = 0, calls = 0;
    int bad = 0;
    if (one_run(-1, 0, &failed, &calls) < 0)
        return -1;
    long total = calls;
    long n;
    for (n = first; n < 100000; n += stride) {
        if (one_run(n, sticky, &failed, &calls) < 0)
            bad++;
        if (!failed)
            break; /* past the last allocation of a whole session */
        if (bad >= 20)
            break;
    }
    *points = n;
    printf("# %ld allocations in a session; swept %s from %ld by %ld up to %ld: %d unclean\n",
           total, sticky ? "failing from N on" : "failing the Nth", first, stride, n, bad);
    return bad ? -1 : 0;
}

TEST(failalloc_session_without_failures_completes)
{
    long failed, calls;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(one_run(-1, 0, &failed, &calls), 0);
    CHECK_INT(failed, 0);
    printf("# %ld allocations\n", calls);
    CHECK(calls > 100);
}

TEST(failalloc_every_single_failure_ends_cleanly)
{
    long points;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(sweep(0, 0, 1, &points), 0);
}

TEST(failalloc_running_out_of_memory_ends_cleanly)
{
    long points;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(sweep(1, 0, 1, &points), 0);
}

TEST_MAIN
