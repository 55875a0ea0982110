/* tests/unit/test_failalloc.c — out of memory at every allocation of a
 * whole session (nghttp2's failmalloc test, SQLite's OOM tests): a
 * context, a connection, a TLS-less login with stream management over
 * a memory pair to a scripted server, messages and IQs both ways (one
 * handled, one answered by the library, an outgoing filter), acks, an
 * ack asked for while our output waits on a slow reader, a 60 KB message,
 * a presence, a cut and a resumption that resends, a close. The
 * context's allocator fails the Nth allocation alone, and then every
 * allocation from the Nth on, for every N until a run completes with none
 * failed — no sampling — and all that again with 7 to 15 timers made
 * before the connection, so the loop's timer heap must grow at each of
 * the connection's own timers. Every run must end cleanly: an error code
 * from a call, a DISCONNECTED, a warning where nothing else can tell (an
 * IQ the library could not answer), or the whole exchange done — nothing
 * lost in silence, nothing leaked (our allocator's count here,
 * LeakSanitizer for the rest under the ASan build), no crash, and in a
 * bounded number of loop turns. About 5 s under ASan. libxml2, cyrus-sasl
 * and c-ares take allocators only process-wide (DEPENDENCIES.md): their
 * allocations are not swept; the server's side of the pair pauses the
 * allocator. FAILALLOC_TRACE=1 shows where each injected failure lands. */
#include "test.h"

#include "scripted.h"

/* ---- the allocator ---------------------------------------------------------- */

typedef struct failmem {
    epode_mem_t mem;
    long calls;   /* malloc and realloc calls so far */
    long fail_at; /* the call that fails (-1: none) */
    int sticky;   /* 1: every call from fail_at on fails */
    int paused;   /* the test's own work (the server's writes): not counted */
    long failed;  /* calls made to fail */
    long live;    /* blocks not freed */
} failmem;

/* Under the sanitizers, FAILALLOC_TRACE=1 prints where each injected
 * failure happens (to find the code behind a reported allocation). */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static int failmem_fails(failmem *m)
{
    if (m->paused)
        return 0;
    long i = m->calls++;
    if (m->fail_at >= 0 && (i == m->fail_at || (m->sticky && i > m->fail_at))) {
        m->failed++;
        if (i == m->fail_at && __sanitizer_print_stack_trace && getenv("FAILALLOC_TRACE")) {
            fprintf(stderr, "# allocation %ld fails here:\n", i);
            __sanitizer_print_stack_trace();
        }
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
    int pad;            /* timers already running when the session starts */
    epode__timer padding[16];
    int cutting;        /* the server is cutting the link on purpose */
    int cut_seen;       /* the DISCONNECTED of that cut (reason NETWORK) */
    int resumed;
    size_t big_len;     /* the length of the big message's body */
    const char *step;   /* the step the script reached */
    int api_err;        /* the first error a call of ours returned */
    int ready, disconnected, reason;
    int warned;         /* a warning in the log said "out of memory" */
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
    if (ev == EPODE_CONN_RESUMED)
        r->resumed++;
    if (ev == EPODE_CONN_DISCONNECTED && r->cutting && !r->cut_seen &&
        epode_conn_reason(c) == EPODE_REASON_NETWORK) {
        r->cut_seen = 1;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        r->disconnected++;
        r->reason = (int)epode_conn_reason(c);
    }
}

static int on_message(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    (void)c;
    run *r = u;
    const char *body = epode_stanza_child_text(st, "body", NULL);
    if (body && strncmp(body, "big ", 4) == 0) {
        r->big_len = strlen(body);
        return EPODE_HANDLED;
    }
    char want[16];
    snprintf(want, sizeof want, "hi %d", r->got_msgs + 1);
    if (body && strcmp(body, want) == 0)
        r->got_msgs++;
    return EPODE_HANDLED;
}

static void on_log(void *u, epode_log_level_t level, const char *area, const char *msg)
{
    (void)area;
    run *r = u;
    if (level <= EPODE_LOG_WARN && strstr(msg, "out of memory"))
        r->warned = 1;
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

/* An outgoing filter (it works on a copy of each message sent). */
static int mark_outgoing(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    (void)c;
    note(u, epode_stanza_add_child_new(st, "marked", "urn:test:failalloc", NULL));
    return EPODE_PASS;
}

static void never(void *u)
{
    (void)u;
}

/* The server writes. Its end of the pair shares the allocator, which is
 * paused meanwhile: only the client's allocations are swept. */
static int srv_send(run *r, const char *xml)
{
    size_t len = strlen(xml), off = 0;
    for (int i = 0; i < 8 && off < len; i++) {
        r->m.paused = 1;
        long n = epode__transport_write(r->s.server, xml + off, len - off);
        r->m.paused = 0;
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
    int rc = epode_stanza_new_message(&r->m.mem, "chat", PEER, body, &m);
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
    if ((rc = epode_ctx_new(&r->m.mem, &s->ctx)) < 0) {
        note(r, rc);
        return 0;
    }
    /* every level: the logging paths are swept too */
    epode_ctx_set_log(s->ctx, EPODE_LOG_XML, on_log, r);
    /* Timers already there (another connection's, say), so the loop's
     * timer heap must grow at a different point of the session. */
    r->m.paused = 1;
    for (int i = 0; i < r->pad; i++)
        if (epode__timer_init(s->ctx->loop, &r->padding[i]) == 0)
            epode__timer_start(&r->padding[i], 3600000, never, NULL);
    r->m.paused = 0;
    if ((rc = epode_conn_new(s->ctx, &s->conn)) < 0 ||
        (rc = epode_conn_set_jid(s->conn, "example.com")) < 0 ||
        (rc = epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED)) < 0 ||
        (rc = epode_conn_set_mechanisms(s->conn, "ANONYMOUS")) < 0 ||
        (rc = epode_conn_set_stream_management(s->conn, 1)) < 0 ||
        (rc = epode_conn_set_ack_cb(s->conn, on_ack, r)) < 0 ||
        (rc = epode_conn_add_event_cb(s->conn, on_event, r, NULL)) < 0 ||
        (rc = epode_conn_add_handler(s->conn, "message", NULL, "chat", on_message, r, NULL)) < 0 ||
        (rc = epode_conn_add_handler(s->conn, "iq", "jabber:iq:version", "get", on_version, r, NULL)) < 0 ||
        (rc = epode_conn_add_filter(s->conn, "message", NULL, NULL, mark_outgoing, r, NULL)) < 0 ||
        (rc = epode_conn_set_reconnect(s->conn, 1, 3600000, 3600000)) < 0 ||
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
        if (!body || strcmp(body, want) != 0 ||
            !epode_stanza_find_child(m, "marked", "urn:test:failalloc"))
            return 0;
    }
    r->step = "outgoing iq";
    epode_stanza_t *iq;
    if ((rc = epode_stanza_new_iq(&r->m.mem, "get", "q1", &iq)) < 0) {
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

    /* A slow reader: the client's output waits in its buffer, filled to
     * just under 8 KiB, when the server asks for an ack; the <a/> makes
     * the buffer grow. */
    r->step = "ack while output waits";
    epode__memory_set_limit(s->conn->tr, 8);
    size_t first = 0;
    for (int i = 0; i < 2; i++) {
        static char body[8192];
        size_t len = i == 0 ? 100 : 8192 - 20 - 2 * first + 100;
        memset(body, 'y', len);
        body[len] = '\0';
        epode_stanza_t *m;
        if ((rc = epode_stanza_new_message(&r->m.mem, "chat", PEER, body, &m)) == 0) {
            if ((rc = epode_conn_send(s->conn, m)) == 0)
                r->sent_by_client++;
            epode_stanza_unref(m);
        }
        note(r, rc);
        if (rc < 0)
            return 0;
        if (i == 0)
            first = epode_conn_pending_bytes(s->conn); /* its bytes, nothing flushed yet */
    }
    r->m.paused = 1;
    long w = epode__transport_write(s->server, "<r xmlns='urn:xmpp:sm:3'/>", 26);
    r->m.paused = 0;
    if (w != 26)
        return 0;
    epode__conn_poke(s->conn);
    while (epode_ctx_run_once(s->ctx, 0) > 0)
        ;
    epode__memory_set_limit(s->conn->tr, 0);
    snprintf(xml, sizeof xml, "%d", NMSG + 3);
    if (!take(r, "message") || !take(r, "message") || !(a = take(r, "a")) ||
        !epode_stanza_get_attr(a, "h") || strcmp(epode_stanza_get_attr(a, "h"), xml) != 0)
        return 0;

    /* a big message (buffers grow), a presence (kept for a new session),
     * two messages the server will not acknowledge before a cut */
    r->step = "big message";
    {
        static char big[70000];
        size_t n = (size_t)snprintf(big, sizeof big, "<message from='" PEER "' to='" ME
                                    "' type='chat' id='big'><body>big ");
        memset(big + n, 'x', 60000);
        snprintf(big + n + 60000, sizeof big - n - 60000, "</body></message>");
        if (srv_send(r, big) < 0 || r->big_len != 60004)
            return 0;
    }
    r->step = "presence";
    epode_stanza_t *pres;
    if ((rc = epode_stanza_new_presence(&r->m.mem, NULL, NULL, &pres)) < 0) {
        note(r, rc);
        return 0;
    }
    if ((rc = epode_conn_send(s->conn, pres)) == 0)
        r->sent_by_client++;
    epode_stanza_unref(pres);
    note(r, rc);
    if (rc < 0 || !take(r, "presence"))
        return 0;
    r->step = "unacked messages";
    for (int i = NMSG + 1; i <= NMSG + 2; i++)
        if (client_message(r, i) < 0 || !take(r, "message"))
            return 0;

    /* the link is cut; a new one resumes the session */
    r->step = "cut";
    r->cutting = 1;
    epode__transport_free(s->server);
    s->server = NULL;
    for (int i = 0; i < 10 && !r->cut_seen && !r->disconnected; i++) {
        epode__conn_poke(s->conn);
        while (epode_ctx_run_once(s->ctx, 0) > 0)
            ;
    }
    r->cutting = 0;
    if (!r->cut_seen || !epode_conn_will_reconnect(s->conn))
        return 0;
    r->step = "resume";
    epode__timer_stop(&s->conn->reconnect_timer); /* the attempt starts here, over a pair */
    for (int i = 0; i < s->nsent; i++)
        epode_stanza_unref(s->sent[i]);
    s->nsent = s->next = 0;
    epode_parser_reset(s->parser);
    client = NULL;
    if ((rc = epode__memory_pair(&r->m.mem, &client, &s->server)) < 0 ||
        (rc = epode__conn_start_over(s->conn, client)) < 0) {
        if (client)
            epode__transport_free(client);
        note(r, rc);
        return 0;
    }
    scripted_pump(s);
    if (srv_send(r, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:"
                                 "xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms>"
                                 "</stream:features>") < 0 ||
        !take(r, "auth"))
        return 0;
    epode_parser_reset(s->parser);
    if (srv_send(r, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>") < 0 ||
        srv_send(r, SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                                 "<sm xmlns='urn:xmpp:sm:3'/></stream:features>") < 0)
        return 0;
    epode_stanza_t *res = take(r, "resume");
    if (!res)
        return 0;
    /* the server had everything up to the two unacknowledged messages */
    snprintf(xml, sizeof xml, "<resumed xmlns='urn:xmpp:sm:3' previd='sm1' h='%d'/>",
             r->sent_by_client - 2);
    if (srv_send(r, xml) < 0 || !r->resumed)
        return 0;
    for (int i = NMSG + 1; i <= NMSG + 2; i++) {
        epode_stanza_t *m = take(r, "message");
        char want[16];
        snprintf(want, sizeof want, "out %d", i);
        const char *body = m ? epode_stanza_child_text(m, "body", NULL) : NULL;
        if (!body || strcmp(body, want) != 0)
            return 0;
    }
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
    /* The server's closing tag may find the client already gone: reading
     * it needs a fresh parser context (a session gives its own back after
     * login), and if that allocation fails the link ends as close() asked
     * — with nothing unacknowledged, checked below. */
    if (srv_send(r, "</stream:stream>") < 0 &&
        !(r->disconnected && r->reason == EPODE_REASON_CLOSED))
        return 0;
    for (int i = 0; i < 10 && !r->disconnected; i++)
        scripted_pump(s);
    return r->disconnected == 1 && r->reason == EPODE_REASON_CLOSED && r->handed_back == 0;
}

/* One run with allocation `fail_at` failing (-1: none): 0 if it ended
 * cleanly; *failed says whether a failure was injected at all. */
static int one_run(long fail_at, int sticky, int pad, long *failed, long *calls)
{
    run r;
    memset(&r, 0, sizeof r);
    r.pad = pad;
    r.m.mem = (epode_mem_t){fm_malloc, fm_realloc, fm_free, &r.m};
    r.m.fail_at = fail_at;
    r.m.sticky = sticky;
    int done = script(&r);
    /* after the script: whatever the client still had to say */
    if (r.s.conn && r.s.server && r.s.parser && !r.disconnected)
        scripted_pump(&r.s);
    int disconnected = r.disconnected, reason = r.reason;
    if (r.s.ctx)
        for (int i = 0; i < r.pad; i++)
            epode__timer_deinit(&r.padding[i]);
    scripted_free(&r.s);
    *failed = r.m.failed;
    *calls = r.m.calls;
    int bad = 0;
    if (r.m.live != 0) {
        printf("# allocation %ld%s failing, %d timers before: %ld blocks leaked (step: %s)\n",
               fail_at, sticky ? " on" : "", pad, r.m.live, r.step);
        bad = 1;
    }
    /* Clean: the whole exchange, or the failure was reported (an error
     * code, a DISCONNECTED, or a warning where nothing else can tell). */
    if (!done && !r.api_err && !(disconnected && reason != EPODE_REASON_CLOSED) && !r.warned) {
        printf("# allocation %ld%s failing, %d timers before: stopped at \"%s\" with nothing "
               "reported (disconnected %d, reason %d, ready %d, msgs %d, iq %d/%d, acked %d/%d)\n",
               fail_at, sticky ? " on" : "", pad, r.step, disconnected, reason, r.ready,
               r.got_msgs, r.iq_answered, r.iq_status, r.acked, r.sent_by_client);
        bad = 1;
    }
    if (fail_at < 0 && !done) {
        printf("# without a failure (%d timers before) the script stopped at \"%s\"\n", pad,
               r.step);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* Timers made before the session (see run.pad): none, then enough that
 * the loop's first 16 heap slots (one is the context's) run out at each
 * of the connection's own 9 timers in turn. */
static const int pads[] = {0, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#define NPADS (int)(sizeof pads / sizeof pads[0])

/* Every allocation point, for each padding. */
static int sweep(int sticky)
{
    int bad = 0;
    for (int p = 0; p < NPADS; p++) {
        long failed = 0, calls = 0, n;
        if (one_run(-1, 0, pads[p], &failed, &calls) < 0)
            return -1;
        long total = calls;
        for (n = 0; n < 100000 && bad < 20; n++) {
            if (one_run(n, sticky, pads[p], &failed, &calls) < 0)
                bad++;
            if (!failed)
                break; /* past the last allocation of a whole session */
        }
        printf("# %d timers before: %ld allocations in a session, %ld points swept (%s)\n",
               pads[p], total, n, sticky ? "failing from each on" : "failing each alone");
    }
    return bad ? -1 : 0;
}

TEST(failalloc_session_without_failures_completes)
{
    long failed, calls;
    CHECK_INT(epode_global_init(), 0);
    for (int p = 0; p < NPADS; p++) {
        CHECK_INT(one_run(-1, 0, pads[p], &failed, &calls), 0);
        CHECK_INT(failed, 0);
        CHECK(calls > 50);
    }
}

TEST(failalloc_every_single_failure_ends_cleanly)
{
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(sweep(0), 0);
}

TEST(failalloc_running_out_of_memory_ends_cleanly)
{
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(sweep(1), 0);
}

TEST_MAIN
