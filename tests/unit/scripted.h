/* tests/unit/scripted.h — a connection logged in to a scripted server
 * over a memory transport, for tests of what is built on connections
 * (dispatch through a real conn, the IM helpers). The server side is the
 * test: it writes XML into the pipe and reads what the client wrote back
 * as parsed stanzas. Login is TLS-less SASL ANONYMOUS and bind. */
#ifndef EPODE_TEST_SCRIPTED_H
#define EPODE_TEST_SCRIPTED_H

#include <epode.h>

#include "conn/conn_int.h"
#include "transport/transport.h"

#define SCRIPTED_MAX 512

typedef struct scripted {
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode__transport *server; /* our end of the pipe */
    epode_parser_t *parser;   /* parses what the client writes */
    epode_stanza_t *sent[SCRIPTED_MAX];
    int nsent, next;          /* stanzas received from the client / read */
    int opens;
    int events[16], nevents;
} scripted;

static inline void scripted__on_client(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    scripted *s = user;
    if (ev == EPODE_PARSER_STREAM_OPEN)
        s->opens++;
    else if (ev == EPODE_PARSER_STANZA && s->nsent < SCRIPTED_MAX)
        s->sent[s->nsent++] = epode_stanza_ref(el);
}

static inline void scripted__on_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    (void)c;
    scripted *s = user;
    if (s->nevents < 16)
        s->events[s->nevents++] = (int)ev;
}

/* Lets both sides run until nothing more happens. */
static inline void scripted_pump(scripted *s)
{
    char buf[65536];
    for (int round = 0; round < 100; round++) {
        int ran = 0;
        epode__conn_poke(s->conn);
        while (epode_ctx_run_once(s->ctx, 0) > 0)
            ran = 1;
        long n;
        while ((n = epode__transport_read(s->server, buf, sizeof buf)) > 0) {
            epode_parser_feed(s->parser, buf, (size_t)n);
            ran = 1;
        }
        if (!ran)
            return;
    }
}

/* The server writes XML to the client. */
static inline void scripted_send(scripted *s, const char *xml)
{
    epode__transport_write(s->server, xml, strlen(xml));
    scripted_pump(s);
}

/* The next stanza the client sent (borrowed; NULL if none). */
static inline epode_stanza_t *scripted_next(scripted *s)
{
    return s->next < s->nsent ? s->sent[s->next++] : NULL;
}

/* The next stanza the client sent, as text (static buffer). */
static inline const char *scripted_next_text(scripted *s)
{
    static char buf[8192];
    epode_stanza_t *st = scripted_next(s);
    if (!st)
        return "";
    char *t;
    if (epode_stanza_to_text(st, EPODE_TEXT_IN_STREAM, &t, NULL) != 0)
        return "";
    snprintf(buf, sizeof buf, "%s", t);
    epode_free(t);
    return buf;
}

#define SCRIPTED_HDR "<stream:stream xmlns='jabber:client' " \
    "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='x' version='1.0'>"

/* Makes ctx (with allocator `mem`, NULL: libc) and conn (as `jid`, which
 * needs no password: ANONYMOUS here) and runs the login up to READY. 0 on
 * success. */
static inline int scripted__login(scripted *s, const epode_mem_t *mem, const char *jid,
                                   const char *bound, int sm);

static inline int scripted_login_mem(scripted *s, const epode_mem_t *mem, const char *jid,
                                     const char *bound)
{
    return scripted__login(s, mem, jid, bound, 0);
}

/* The same, with stream management asked for (and offered, and enabled
 * by the server): the caller may set a policy afterwards. */
static inline int scripted_login_sm(scripted *s, const char *jid, const char *bound)
{
    return scripted__login(s, NULL, jid, bound, 1);
}

static inline int scripted__login(scripted *s, const epode_mem_t *mem, const char *jid,
                                  const char *bound, int sm)
{
    memset(s, 0, sizeof *s);
    epode__transport *client;
    if (epode_global_init() < 0 || epode_ctx_new(mem, &s->ctx) < 0 ||
        epode_conn_new(s->ctx, &s->conn) < 0 || epode_conn_set_jid(s->conn, jid) < 0 ||
        epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_mechanisms(s->conn, "ANONYMOUS") < 0 ||
        epode_conn_add_event_cb(s->conn, scripted__on_event, s, NULL) < 0 ||
        epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode_parser_new(NULL, scripted__on_client, s, &s->parser) < 0)
        return -1;
    if (sm && epode_conn_set_stream_management(s->conn, 1) < 0)
        return -1;
    if (epode__conn_start_over(s->conn, client) < 0) {
        epode__transport_free(client); /* still ours: not taken on failure */
        return -1;
    }
    scripted_pump(s);
    scripted_send(s, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                     "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>");
    epode_stanza_t *auth = scripted_next(s);
    if (!auth || strcmp(epode_stanza_get_name(auth), "auth") != 0)
        return -1;
    /* the client's next bytes are its new stream header */
    epode_parser_reset(s->parser);
    scripted_send(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    scripted_send(s, sm ? SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                              "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"
                         : SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                              "</stream:features>");
    epode_stanza_t *bind = scripted_next(s);
    if (!bind || strcmp(epode_stanza_get_id(bind), "bind_1") != 0)
        return -1;
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:"
                              "xmpp-bind'><jid>%s</jid></bind></iq>", bound);
    scripted_send(s, xml);
    if (sm) {
        epode_stanza_t *en = scripted_next(s);
        if (!en || strcmp(epode_stanza_get_name(en), "enable") != 0)
            return -1;
        if (sm == 1) /* 2: the server leaves it unanswered for now */
            scripted_send(s, "<enabled xmlns='urn:xmpp:sm:3' id='scripted' resume='true'/>");
    }
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

/* With stream management offered, and <enable/> not answered yet. */
static inline int scripted_login_sm_unanswered(scripted *s, const char *jid, const char *bound)
{
    return scripted__login(s, NULL, jid, bound, 2);
}

static inline int scripted_login(scripted *s, const char *jid, const char *bound)
{
    return scripted_login_mem(s, NULL, jid, bound);
}

/* A test allocator: counts live blocks and can fail allocations from
 * the Nth on (fail_at < 0: never). */
typedef struct scripted_mem {
    epode_mem_t mem;
    long calls, live, fail_at;
} scripted_mem;

static inline void *scripted__malloc(size_t n, void *u)
{
    scripted_mem *m = u;
    if (m->calls++ >= m->fail_at && m->fail_at >= 0)
        return NULL;
    void *p = malloc(n);
    if (p)
        m->live++;
    return p;
}

static inline void *scripted__realloc(void *p, size_t n, void *u)
{
    scripted_mem *m = u;
    if (m->calls++ >= m->fail_at && m->fail_at >= 0)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        m->live++;
    return q;
}

static inline void scripted__free(void *p, void *u)
{
    scripted_mem *m = u;
    if (p)
        m->live--;
    free(p);
}

static inline void scripted_mem_init(scripted_mem *m)
{
    m->mem = (epode_mem_t){scripted__malloc, scripted__realloc, scripted__free, m};
    m->calls = m->live = 0;
    m->fail_at = -1;
}

static inline void scripted_free(scripted *s)
{
    for (int i = 0; i < s->nsent; i++)
        epode_stanza_unref(s->sent[i]);
    epode_conn_free(s->conn);
    epode__transport_free(s->server);
    epode_parser_free(s->parser);
    epode_ctx_free(s->ctx);
}

#endif
