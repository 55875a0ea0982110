/* lib/transport/bosh.c — XMPP over BOSH (XEP-0124, XEP-0206) as the
 * bottom of a transport stack (see bosh.h).
 *
 * Downward: the stream engine's framed output is cut into elements
 * (transport/cut.h, shared with WebSocket); elements wait in `batch`
 * until a request can carry them. At most min(requests, 2) requests are
 * in flight; one is always outstanding while the session is open (an
 * empty one is a poll, so the server can push), except while the session
 * is being created or ended. Each new request takes the next rid (a
 * random 52-bit start); a request whose HTTP exchange broke (not an HTTP
 * status) goes again with the same rid and the same bytes, up to three
 * tries, so the server, which answers each rid once, neither loses nor
 * duplicates anything.
 *
 * Upward: answers are taken in rid order (an early one waits in its
 * slot), parsed with epode's own parser in fragment mode (bounded by
 * max_body), checked (a BOSH <body/>, our sid), and turned into what the
 * engine reads in framed mode: a synthesized framing <open/> for the
 * creation and restart answers, then each child of <body/> serialized
 * alone with every namespace it uses declared (so a prefix the server
 * declared on <body/>, like stream:, survives), a framing <close/> and
 * the end for a terminate. `up` is bounded: no poll is made while it
 * holds anything the engine has not read, so a server cannot make it
 * grow (the engine's own requests are bounded by the stanzas it sends).
 *
 * No fd: the owner learns of news through the ready callback, which
 * runs from the HTTP completions (the loop), never from inside write or
 * handshake; read() calls it once to ask for the owner's next turn when
 * a poll is due (pump_requests says why), which must only schedule. */
#include "transport/bosh.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "epode/stanza.h"
#include "http/dns.h"
#include "http/http.h"
#include "loop/loop.h"
#include "transport/cut.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "xml/parser_int.h"
#include "xml/serialize.h"

#define NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define NS_XBOSH "urn:xmpp:xbosh"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

#define MAX_INFLIGHT 2      /* requests in flight at most */
#define MAX_SLOTS 4         /* ...and answers held until an earlier rid's comes */
#define MAX_TRIES 3         /* sends of one rid over broken HTTP exchanges */
#define WAIT_S 60           /* the longest the server may hold a request */
#define MARGIN_S 15         /* HTTP timeout beyond the server's wait */
#define MAX_SID 128         /* Prosody's and ejabberd's sids are under 64 */
#define MAX_REQUESTS 64     /* more is nonsense (we use 2 at most anyway) */
#define MAX_SECONDS 86400   /* inactivity, polling, maxpause */
#define DEFAULT_MAX_BODY (4u << 20)
#define BATCH_HIGH (1u << 20) /* elements waiting for a request before EAGAIN */

/* A request never follows another one still in flight by less than this
 * (ms): see pump_requests. */
#define PACE_MS 5

enum kind { K_CREATE = 1, K_DATA, K_RESTART, K_TERM };
enum bstate { B_INIT = 0, B_CREATING, B_OPEN, B_ENDED };

typedef struct bosh bosh;

typedef struct slot {
    bosh *b;
    int used;
    enum kind kind;
    uint64_t rid;
    epode__buf body;  /* the request, as sent (again, on a resend) */
    void *handle;     /* in flight, or NULL */
    int tries;
    int answered;
    long status;
    epode__buf resp;  /* the answer, until its turn */
    uint64_t sent_ms; /* when it (last) went out */
    int tls;
} slot;

struct bosh {
    epode__transport base;
    epode__bosh_http http;
    void (*ready)(void *user);
    void *ready_user;
    void (*log)(void *user, int out, const char *line);
    char *domain, *lang, *from;
    size_t max_body;
    enum bstate state;
    int fail_code;    /* sticky once failed (0: not failed) */
    int eof;          /* a <close/> was handed up: 0 once `up` is read */
    char sid[MAX_SID + 1];
    unsigned requests, wait, hold;
    uint64_t next_rid, up_rid;
    slot slots[MAX_SLOTS];
    int opened;       /* the engine's first <open/> came (the session is made) */
    int want_restart, want_term, term_sent;
    int in_call;      /* inside read/write/handshake: ready() is not called */
    int tls_version;
    /* The poll that keeps one request outstanding, once `up` ran dry: 1
     * due, 2 due after one more of the owner's turns (see pump_requests) */
    int poll_stage;
    int pace_armed;   /* a paced request waits for http.later's call */
    epode__cut cut;
    epode__buf batch; /* elements for the next request */
    epode__buf up;    /* bytes for read() */
};

static const epode__transport_ops bosh_ops;

int (*epode__bosh_http_override)(void *user, const epode__bosh_url *url, epode__bosh_http *out);
void *epode__bosh_http_override_user;

/* ---- helpers ---------------------------------------------------------------------- */

static void cancel_all(bosh *b)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &b->slots[i];
        if (s->handle)
            b->http.cancel(b->http.user, s->handle);
        s->handle = NULL;
    }
}

static int fail(bosh *b, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(bosh *b, int code, const char *fmt, ...)
{
    if (!b->fail_code) {
        char text[EPODE__TRANSPORT_ERROR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        epode__transport_set_error(&b->base, "%s", text);
        b->fail_code = code;
        b->state = B_ENDED;
        cancel_all(b);
    }
    return b->fail_code;
}

static void notify(bosh *b)
{
    if (b->ready && !b->in_call)
        b->ready(b->ready_user);
}

/* The log line of a request or an answer: its first tag (the <body>
 * start tag: attributes only, never the stanzas), cut, and its size. */
static void log_body(bosh *b, int out, const char *d, size_t len, const char *what)
{
    if (!b->log)
        return;
    size_t tag = 0;
    while (tag < len && d[tag] != '>')
        tag++;
    if (tag < len)
        tag++;
    char line[400];
    snprintf(line, sizeof line, "%s %.*s%s (%zu bytes)", what, (int)(tag < 300 ? tag : 300), d,
             tag > 300 ? "..." : "", len);
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' '; /* one line */
    /* The sid with the next rid is all it takes to speak in the session:
     * logs get pasted into bug reports, so the sid's value is hidden */
    for (char *p = strstr(line, "sid="); p; p = strstr(p + 4, "sid=")) {
        if (p > line && p[-1] != ' ')
            continue; /* (another attribute's tail) */
        char q = p[4];
        char *v = p + 5, *e = (q == '\'' || q == '"') ? strchr(v, q) : NULL;
        if (!e)
            break;
        for (char *c = v; c < e; c++)
            *c = '*';
    }
    b->log(b->ready_user, out, line);
}

static void slot_clear(slot *s)
{
    s->used = 0;
    s->handle = NULL;
    s->answered = 0;
    s->tries = 0;
    epode__buf_consume(&s->body, s->body.len); /* wiped: it may hold a credential */
    s->resp.len = 0;
}

/* Requests the server has not answered yet. */
static size_t in_flight(const bosh *b)
{
    size_t n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += b->slots[i].used && !b->slots[i].answered;
    return n;
}

static int slot_free(const bosh *b)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (!b->slots[i].used)
            return 1;
    return 0;
}

static void put_attr(epode__buf *o, const char *name, const char *value)
{
    epode__buf_putc(o, ' ');
    epode__buf_puts(o, name);
    epode__buf_puts(o, "='");
    epode__escape_attr(o, value, strlen(value));
    epode__buf_putc(o, '\'');
}

static void put_rid(epode__buf *o, uint64_t rid)
{
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)rid);
    put_attr(o, "rid", n);
}

/* ---- requests --------------------------------------------------------------------- */

static void on_done(void *req, int err, long status, const char *body, size_t len,
                    const char *text, int tls_version);

static int send_slot(bosh *b, slot *s)
{
    log_body(b, 1, s->body.data, s->body.len,
             s->tries > 1 ? "BOSH request (again)" : "BOSH request");
    unsigned wait = b->state == B_OPEN ? b->wait : WAIT_S;
    s->sent_ms = epode__now_ms();
    return b->http.start(b->http.user, s->body.data, s->body.len, (wait + MARGIN_S) * 1000u,
                         on_done, s, &s->handle);
}

/* Builds and sends a new request of `kind`, carrying the batch (data and
 * terminate). 0 or a failure (sticky). */
static int new_request(bosh *b, enum kind kind)
{
    slot *s = NULL;
    for (int i = 0; i < MAX_SLOTS && !s; i++)
        if (!b->slots[i].used)
            s = &b->slots[i];
    if (!s)
        return EPODE_EAGAIN; /* callers check first */
    epode__buf *o = &s->body;
    o->len = 0;
    epode__buf_puts(o, "<body");
    if (kind == K_CREATE) {
        put_attr(o, "content", "text/xml; charset=utf-8");
        put_attr(o, "hold", "1");
        put_rid(o, b->next_rid);
        put_attr(o, "to", b->domain);
        put_attr(o, "ver", "1.6");
        put_attr(o, "wait", "60");
        put_attr(o, "xml:lang", b->lang);
        put_attr(o, "xmpp:version", "1.0");
        put_attr(o, "xmlns", NS_HTTPBIND);
        put_attr(o, "xmlns:xmpp", NS_XBOSH);
        epode__buf_puts(o, "/>");
    } else if (kind == K_RESTART) {
        put_rid(o, b->next_rid);
        put_attr(o, "sid", b->sid);
        put_attr(o, "to", b->domain);
        put_attr(o, "xml:lang", b->lang);
        put_attr(o, "xmpp:restart", "true");
        put_attr(o, "xmlns", NS_HTTPBIND);
        put_attr(o, "xmlns:xmpp", NS_XBOSH);
        epode__buf_puts(o, "/>");
    } else {
        put_rid(o, b->next_rid);
        put_attr(o, "sid", b->sid);
        if (kind == K_TERM)
            put_attr(o, "type", "terminate");
        put_attr(o, "xmlns", NS_HTTPBIND);
        if (b->batch.len) {
            epode__buf_putc(o, '>');
            epode__buf_append(o, b->batch.data, b->batch.len);
            epode__buf_puts(o, "</body>");
        } else {
            epode__buf_puts(o, "/>");
        }
    }
    /* the request may carry a credential (a SASL response) */
    epode__buf_mark_secret(o);
    if (o->failed) {
        o->failed = 0;
        epode__buf_consume(o, o->len);
        return fail(b, EPODE_ENOMEM, "BOSH: out of memory while making a request");
    }
    s->used = 1;
    s->kind = kind;
    s->rid = b->next_rid++;
    s->tries = 1;
    s->answered = 0;
    int rc = send_slot(b, s);
    if (rc < 0) {
        slot_clear(s);
        return fail(b, rc, "BOSH: could not start an HTTP request (%s)", epode_strerror(rc));
    }
    if (kind == K_DATA || kind == K_TERM)
        epode__buf_consume(&b->batch, b->batch.len); /* wiped (credentials) */
    if (kind == K_TERM)
        b->term_sent = 1;
    return 0;
}

static void pump_requests(bosh *b, int may_poll);

static void pace_fire(void *arg)
{
    bosh *b = arg;
    b->pace_armed = 0;
    pump_requests(b, 0);
    notify(b);
}

/* 1 if a request should wait: the youngest one in flight went out less
 * than PACE_MS ago, so it may not have reached the server yet, and two
 * requests on two connections can arrive in either order. ejabberd 23.01
 * answers neither when the later rid arrives first (H3 saw 30 s stalls
 * mid-session: an empty poll, then stanzas a millisecond later); Prosody
 * copes. The wait is armed once (http.later); without `later`, no pacing. */
static int paced(bosh *b)
{
    if (!b->http.later)
        return 0;
    uint64_t now = epode__now_ms(), youngest = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (b->slots[i].used && !b->slots[i].answered && b->slots[i].sent_ms > youngest)
            youngest = b->slots[i].sent_ms;
    if (youngest == 0 || now >= youngest + PACE_MS)
        return 0;
    if (!b->pace_armed) {
        b->pace_armed = 1;
        b->http.later(b->http.user, (unsigned)(youngest + PACE_MS - now), pace_fire, b);
    }
    return 1;
}

/* Sends what is due: the batch, a restart, the terminate, or (may_poll)
 * a poll so one request is always outstanding.
 *
 * The poll never goes out while the engine has something to read, nor
 * in the owner's turn that reads it: what the engine reads usually makes
 * it write (the next login step, an answer), and that request does the
 * poll's work. A poll sent first put two requests on the wire within a
 * millisecond on two HTTP connections, and when the later rid reached
 * ejabberd 23.01 first it answered neither (its debug log; a login hung
 * until its timeout 8 times in 150 here, half the time under load).
 * bosh_read() sends the poll at the owner's next turn, after the
 * engine's writes went out: 0 hangs in 350 logins after. */
static void pump_requests(bosh *b, int may_poll)
{
    if (b->fail_code || b->state != B_OPEN || b->term_sent)
        return;
    size_t limit = b->requests < MAX_INFLIGHT ? b->requests : MAX_INFLIGHT;
    /* XEP-0124 §11: one request over the limit may end the session, so a
     * close never waits for the server's held poll */
    /* ... and never past the window: a new rid stays within `limit` of
     * the oldest answer not taken yet (XEP-0124 §14), so a request sent
     * again after a cut is still one the server can answer again
     * (Prosody keeps only its last two answers for that) */
    while (!b->fail_code && !b->term_sent && in_flight(b) < limit + !!b->want_term &&
           b->next_rid < b->up_rid + limit + !!b->want_term && slot_free(b)) {
        enum kind k;
        if (b->want_term) {
            k = K_TERM;
        } else if (b->batch.len) {
            k = K_DATA;
        } else if (b->want_restart) {
            k = K_RESTART;
            b->want_restart = 0;
        } else if (may_poll && in_flight(b) == 0 && b->up.len == 0) {
            k = K_DATA; /* an empty poll */
        } else {
            break;
        }
        if (k != K_TERM && in_flight(b) > 0 && paced(b))
            break; /* pace_fire comes back for it */
        if (new_request(b, k) < 0)
            break;
    }
}

/* ---- answers ------------------------------------------------------------------------ */

typedef struct parse_ctx {
    epode_stanza_t *root;
} parse_ctx;

static void on_parsed(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    parse_ctx *p = user;
    if (ev == EPODE_PARSER_STANZA && !p->root)
        p->root = epode_stanza_ref(el);
}

/* A decimal attribute in [lo, hi]; absent: def. -1 when bad. */
static long num_attr(const epode_stanza_t *body, const char *name, long def, long lo, long hi)
{
    const char *v = epode_stanza_get_attr(body, name);
    if (!v)
        return def;
    size_t n = strlen(v);
    if (n == 0 || n > 9 || strspn(v, "0123456789") != n)
        return -1;
    long x = strtol(v, NULL, 10);
    return x < lo || x > hi ? -1 : x;
}

/* The creation answer's attributes. 0 or a failure. */
static int take_session(bosh *b, const epode_stanza_t *body)
{
    const char *sid = epode_stanza_get_attr(body, "sid");
    if (!sid || !*sid)
        return fail(b, EPODE_EPROTOCOL, "BOSH: the server's session answer has no sid");
    size_t n = strlen(sid);
    if (n > MAX_SID)
        return fail(b, EPODE_EPROTOCOL, "BOSH: the server's sid is %zu bytes long (at most %d)",
                    n, MAX_SID);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)sid[i] <= 0x20 || (unsigned char)sid[i] >= 0x7f)
            return fail(b, EPODE_EPROTOCOL, "BOSH: the server's sid is not printable ASCII");
    long requests = num_attr(body, "requests", 2, 1, MAX_REQUESTS);
    long wait = num_attr(body, "wait", WAIT_S, 1, WAIT_S);
    long hold = num_attr(body, "hold", 1, 1, 1);
    if (requests < 0)
        return fail(b, EPODE_EPROTOCOL, "BOSH: the server's requests='%s' is not 1 to %d",
                    epode_stanza_get_attr(body, "requests"), MAX_REQUESTS);
    if (wait < 0)
        return fail(b, EPODE_EPROTOCOL, "BOSH: the server's wait='%s' is not 1 to the %d we asked",
                    epode_stanza_get_attr(body, "wait"), WAIT_S);
    if (hold < 0)
        return fail(b, EPODE_EPROTOCOL,
                    "BOSH: the server's hold='%s' is not the 1 we asked (polling-only sessions "
                    "are not supported)",
                    epode_stanza_get_attr(body, "hold"));
    static const char *const secs[] = {"inactivity", "polling", "maxpause"};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
        if (num_attr(body, secs[i], 0, 0, MAX_SECONDS) < 0)
            return fail(b, EPODE_EPROTOCOL, "BOSH: the server's %s='%s' is not 0 to %d seconds",
                        secs[i], epode_stanza_get_attr(body, secs[i]), MAX_SECONDS);
    memcpy(b->sid, sid, n + 1);
    b->requests = (unsigned)requests;
    b->wait = (unsigned)wait;
    b->hold = (unsigned)hold;
    const char *from = epode_stanza_get_attr(body, "from");
    if (from && *from && strlen(from) < 1024) {
        char *f = epode__strdup(b->base.mem, from);
        if (!f)
            return fail(b, EPODE_ENOMEM, "BOSH: out of memory");
        epode__dealloc(b->base.mem, b->from);
        b->from = f;
    }
    return 0;
}

static void put_open(bosh *b)
{
    epode__buf *o = &b->up;
    epode__buf_puts(o, "<open");
    put_attr(o, "xmlns", NS_FRAMING);
    put_attr(o, "from", b->from ? b->from : b->domain);
    put_attr(o, "id", b->sid);
    put_attr(o, "version", "1.0");
    epode__buf_puts(o, "/>");
}

static int in_httpbind(const epode_stanza_t *el)
{
    const char *ns = epode_stanza_get_ns(el);
    return ns && strcmp(ns, NS_HTTPBIND) == 0;
}

/* A stanza written without xmlns='jabber:client' inherits <body/>'s
 * namespace; XEP-0206 means jabber:client (servers write it out, but
 * not all of them always): moved there, with its descendants. */
static int to_client_ns(epode_stanza_t *el)
{
    if (in_httpbind(el) && epode_stanza_set_ns(el, "jabber:client") < 0)
        return -1;
    for (epode_stanza_t *c = epode_stanza_first_child(el); c; c = epode_stanza_next(c))
        if (to_client_ns(c) < 0)
            return -1;
    return 0;
}

/* Handles one answer, in rid order. 0 or a failure. */
static int take_answer(bosh *b, slot *s)
{
    if (s->status != 200) {
        if (s->status == 404)
            return fail(b, EPODE_ENET, "BOSH: the server answered HTTP 404 (it does not know "
                                       "the session, or the URL is wrong)");
        return fail(b, EPODE_ENET, "BOSH: the server answered HTTP %ld", s->status);
    }
    if (s->resp.len > b->max_body)
        return fail(b, EPODE_EPROTOCOL, "BOSH: an answer of %zu bytes is over the %zu-byte "
                                        "limit", s->resp.len, b->max_body);
    parse_ctx pc = {0};
    epode_parser_t *p = NULL;
    int rc = epode__parser_new(b->base.mem, on_parsed, &pc, 1, &p);
    if (rc < 0)
        return fail(b, rc, "BOSH: could not parse an answer (%s)", epode_strerror(rc));
    size_t lim = b->max_body > 16 ? b->max_body : 16;
    epode_parser_set_limit(p, EPODE_LIMIT_STANZA_BYTES, lim);
    epode_parser_set_limit(p, EPODE_LIMIT_TEXT_BYTES, lim);
    long fed = epode_parser_feed(p, s->resp.data ? s->resp.data : "", s->resp.len);
    if (fed >= 0)
        fed = epode_parser_finish(p);
    if (fed < 0 || !pc.root) {
        char why[100];
        snprintf(why, sizeof why, "%s",
                 fed < 0 && epode_parser_error_text(p)[0] ? epode_parser_error_text(p)
                                                          : "no element");
        epode_parser_free(p);
        epode_stanza_unref(pc.root);
        if (fed == EPODE_ELIMIT)
            return fail(b, EPODE_EPROTOCOL, "BOSH: an answer breaks a parser limit (%s)", why);
        return fail(b, EPODE_EPROTOCOL, "BOSH: the answer is not XML (%s)", why);
    }
    epode_parser_free(p);
    epode_stanza_t *body = pc.root;
    const char *ns = epode_stanza_get_ns(body);
    if (strcmp(epode_stanza_get_name(body), "body") != 0 || !ns || strcmp(ns, NS_HTTPBIND) != 0) {
        fail(b, EPODE_EPROTOCOL, "BOSH: the answer is not a BOSH <body/> but <%.40s/>",
             epode_stanza_get_name(body));
        epode_stanza_unref(body);
        return b->fail_code;
    }
    const char *type = epode_stanza_get_attr(body, "type");
    int terminate = type && (strcmp(type, "terminate") == 0 || strcmp(type, "error") == 0);
    if (s->kind == K_CREATE && !terminate) {
        if ((rc = take_session(b, body)) < 0) {
            epode_stanza_unref(body);
            return rc;
        }
    } else {
        const char *sid = epode_stanza_get_attr(body, "sid");
        if (sid && b->sid[0] && strcmp(sid, b->sid) != 0) {
            fail(b, EPODE_EPROTOCOL,
                 "BOSH: an answer names another session (sid '%.40s', ours '%.40s')", sid, b->sid);
            epode_stanza_unref(body);
            return b->fail_code;
        }
    }
    size_t before = b->up.len;
    if (s->kind == K_CREATE && !terminate)
        put_open(b); /* a restart's went up with the engine's <open/> */
    for (epode_stanza_t *c = epode_stanza_first_child(body); c; c = epode_stanza_next(c)) {
        if (in_httpbind(c) && strcmp(epode_stanza_get_name(c), "uri") == 0)
            continue; /* BOSH's own (see-other-uri), read below */
        if (in_httpbind(c) && to_client_ns(c) < 0)
            b->up.failed = 1;
        epode__serialize(&b->up, c, 0);
    }
    const char *cond = terminate ? epode_stanza_get_attr(body, "condition") : NULL;
    if ((terminate && !cond) || s->kind == K_TERM) {
        epode__buf_puts(&b->up, "<close xmlns='" NS_FRAMING "'/>");
        b->eof = 1;
        b->state = B_ENDED;
    }
    if (b->up.failed) {
        b->up.failed = 0;
        b->up.len = before;
        epode_stanza_unref(body);
        return fail(b, EPODE_ENOMEM, "BOSH: out of memory while reading an answer");
    }
    if (s->kind == K_CREATE && !terminate)
        b->state = B_OPEN;
    if (cond) {
        char uri[80] = "";
        if (strcmp(cond, "see-other-uri") == 0) {
            const epode_stanza_t *u = epode_stanza_find_child(body, "uri", NULL);
            const char *t = u ? epode_stanza_get_text(u) : NULL;
            snprintf(uri, sizeof uri, " to %s, not followed", t && *t ? t : "(no URI)");
        }
        fail(b, EPODE_ENET, "BOSH: the server ended the session: %.40s%s", cond, uri);
    } else if (b->eof) {
        cancel_all(b);
    }
    epode_stanza_unref(body);
    return b->fail_code;
}

/* Takes the answers that are due, in rid order. */
static void take_answers(bosh *b)
{
    for (;;) {
        slot *s = NULL;
        for (int i = 0; i < MAX_SLOTS && !s; i++)
            if (b->slots[i].used && b->slots[i].answered && b->slots[i].rid == b->up_rid)
                s = &b->slots[i];
        if (!s || b->fail_code || b->eof)
            return;
        b->up_rid++;
        int rc = take_answer(b, s);
        slot_clear(s);
        if (rc < 0)
            return;
    }
}

static void on_done(void *req, int err, long status, const char *body, size_t len,
                    const char *text, int tls_version)
{
    slot *s = req;
    bosh *b = s->b;
    s->handle = NULL;
    if (b->fail_code)
        return;
    if (err == EPODE_ENET || err == EPODE_EEOF || err == EPODE_ETIMEDOUT) {
        if (s->tries < MAX_TRIES) {
            s->tries++;
            int rc = send_slot(b, s);
            if (rc == 0)
                return;
            err = rc;
        }
        fail(b, EPODE_ENET, "BOSH: the request with rid %llu failed %d times (%.95s)",
             (unsigned long long)s->rid, s->tries, text ? text : epode_strerror(err));
        notify(b);
        return;
    }
    if (err < 0) {
        /* a server's answer over the bound is its breach, as WebSocket's
         * 1009; a certificate curl refused is said in our words first
         * (curl's follow, cut: "CAfile: ... CRLfile: ...") */
        fail(b, err == EPODE_ENOMEM || err == EPODE_ECERT || err == EPODE_ETLS ? err
                : err == EPODE_ELIMIT                                        ? EPODE_EPROTOCOL
                                                                             : EPODE_ENET,
             "BOSH: %s%.100s (%s)",
             err == EPODE_ELIMIT  ? "an answer is over the limit: "
             : err == EPODE_ECERT ? "certificate refused: "
                                  : "",
             text ? text : epode_strerror(err), epode_err_name(err));
        notify(b);
        return;
    }
    s->status = status;
    s->tls = tls_version;
    b->tls_version = tls_version;
    s->resp.len = 0;
    if (len > b->max_body) {
        fail(b, EPODE_EPROTOCOL, "BOSH: an answer of %zu bytes is over the %zu-byte limit", len,
             b->max_body);
        notify(b);
        return;
    }
    epode__buf_append(&s->resp, body, len);
    if (s->resp.failed) {
        s->resp.failed = 0;
        fail(b, EPODE_ENOMEM, "BOSH: out of memory while reading an answer");
        notify(b);
        return;
    }
    s->answered = 1;
    log_body(b, 0, body, len, "BOSH answer");
    take_answers(b);
    pump_requests(b, b->up.len == 0); /* an empty answer: the poll goes at once */
    notify(b);
}

/* ---- the engine's elements --------------------------------------------------------- */

static int is_tag(const char *d, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len < n + 2 || d[0] != '<' || memcmp(d + 1, name, n) != 0)
        return 0;
    char c = d[n + 1];
    return c == ' ' || c == '/' || c == '>' || c == '\t' || c == '\r' || c == '\n';
}

static int on_element(void *user, const char *d, size_t start, size_t end)
{
    bosh *b = user;
    const char *e = d + start;
    size_t len = end - start;
    if (is_tag(e, len, "open")) {
        if (b->opened) {
            /* A restart. The server's new features may come on any
             * answer from now on, even one to an earlier, held request
             * (Prosody answers the held poll): the new stream's <open/>
             * goes up now, before them. */
            b->want_restart = 1;
            size_t before = b->up.len;
            put_open(b);
            if (b->up.failed) {
                b->up.failed = 0;
                b->up.len = before;
                return fail(b, EPODE_ENOMEM, "BOSH: out of memory while restarting");
            }
        }
        b->opened = 1; /* the first: the session made by the handshake */
        return 0;
    }
    if (is_tag(e, len, "close")) {
        b->want_term = 1;
        return 0;
    }
    epode__buf_append(&b->batch, e, len);
    epode__buf_mark_secret(&b->batch);
    if (b->batch.failed) {
        b->batch.failed = 0;
        return fail(b, EPODE_ENOMEM, "BOSH: out of memory while batching");
    }
    return 0;
}

/* ---- the vtable ------------------------------------------------------------------------ */

static int bosh_handshake(epode__transport *t)
{
    bosh *b = (bosh *)t;
    if (b->fail_code)
        return b->fail_code;
    if (b->state == B_INIT) {
        b->in_call = 1;
        b->state = B_CREATING;
        int rc = new_request(b, K_CREATE);
        b->in_call = 0;
        if (rc < 0)
            return rc;
    }
    return b->state == B_CREATING ? EPODE_EAGAIN : 0;
}

static long bosh_read(epode__transport *t, void *buf, size_t len)
{
    bosh *b = (bosh *)t;
    if (len == 0)
        return EPODE_EINVAL;
    if (b->up.len > 0) {
        size_t n = b->up.len < len ? b->up.len : len;
        memcpy(buf, b->up.data, n);
        epode__buf_consume(&b->up, n);
        if (b->up.len == 0 && !b->poll_stage)
            b->poll_stage = 1;
        return (long)n;
    }
    if (b->fail_code)
        return b->fail_code;
    if (b->eof)
        return 0;
    if (b->poll_stage == 1) {
        /* the owner's read that found `up` dry: the engine's writes of
         * this turn are still to come; poll at its next turn */
        b->poll_stage = 2;
        if (b->ready)
            b->ready(b->ready_user);
    } else if (b->poll_stage == 2) {
        b->poll_stage = 0;
        b->in_call = 1;
        pump_requests(b, 1); /* nothing, if the engine's writes made a request */
        b->in_call = 0;
    }
    return EPODE_EAGAIN;
}

static long bosh_write(epode__transport *t, const void *buf, size_t len)
{
    bosh *b = (bosh *)t;
    if (b->fail_code)
        return b->fail_code;
    if (b->state == B_ENDED || b->term_sent)
        return EPODE_ENET;
    if (len == 0)
        return b->batch.len || b->want_restart || b->want_term ? EPODE_EAGAIN : 0;
    if (b->batch.len >= BATCH_HIGH)
        return EPODE_EAGAIN;
    int lost;
    b->in_call = 1;
    int rc = epode__cut_write(&b->cut, buf, len, &lost);
    if (rc == EPODE_ENOMEM && lost)
        rc = fail(b, EPODE_ENOMEM, "BOSH: out of memory while batching");
    if (rc == 0)
        pump_requests(b, 0);
    b->in_call = 0;
    return rc < 0 ? rc : (long)len;
}

static unsigned bosh_wants(epode__transport *t)
{
    (void)t;
    return EPODE__READ;
}

static int bosh_fd(epode__transport *t)
{
    (void)t;
    return -1;
}

static size_t bosh_pending(epode__transport *t)
{
    return ((bosh *)t)->up.len;
}

static int bosh_shutdown(epode__transport *t)
{
    bosh *b = (bosh *)t;
    if (b->fail_code || b->state != B_OPEN || b->term_sent)
        return 0;
    if (b->want_term) {
        b->in_call = 1;
        pump_requests(b, 0);
        b->in_call = 0;
        return b->term_sent || b->fail_code ? 0 : EPODE_EAGAIN;
    }
    return 0;
}

static void bosh_free(epode__transport *t)
{
    bosh *b = (bosh *)t;
    cancel_all(b);
    if (b->http.free)
        b->http.free(b->http.user);
    for (int i = 0; i < MAX_SLOTS; i++) {
        epode__buf_free(&b->slots[i].body);
        epode__buf_free(&b->slots[i].resp);
    }
    epode__cut_free(&b->cut);
    epode__buf_free(&b->batch);
    epode__buf_free(&b->up);
    epode__dealloc(t->mem, b->domain);
    epode__dealloc(t->mem, b->lang);
    epode__dealloc(t->mem, b->from);
    epode__transport_clear_error(t);
    epode__dealloc(t->mem, b);
}

static const epode__transport_ops bosh_ops = {
    .name = "bosh",
    .read = bosh_read,
    .write = bosh_write,
    .wants = bosh_wants,
    .fd = bosh_fd,
    .pending = bosh_pending,
    .shutdown = bosh_shutdown,
    .free = bosh_free,
    .handshake = bosh_handshake,
};

int epode__bosh_new(const epode_mem_t *mem, const epode__bosh_options *o, epode__transport **out)
{
    if (!o || !out || !o->domain || !*o->domain || !o->http.start || !o->http.cancel)
        return EPODE_EINVAL;
    uint64_t r;
    if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof r) < 0)
        return EPODE_ERANDOM;
    bosh *b = epode__zalloc(mem, sizeof *b);
    if (!b)
        return EPODE_ENOMEM;
    b->base.ops = &bosh_ops;
    b->base.mem = mem;
    b->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    b->ready = o->ready;
    b->ready_user = o->ready_user;
    b->log = o->log;
    b->domain = epode__strdup(mem, o->domain);
    b->lang = epode__strdup(mem, o->lang ? o->lang : "en");
    /* XEP-0124 §14: a random start, far enough below 2^53 never to reach it */
    b->next_rid = r % ((1ull << 52) - 1) + 1;
    b->up_rid = b->next_rid;
    b->requests = 1;
    b->wait = WAIT_S;
    for (int i = 0; i < MAX_SLOTS; i++) {
        b->slots[i].b = b;
        epode__buf_init(&b->slots[i].body, mem);
        epode__buf_init(&b->slots[i].resp, mem);
    }
    epode__cut_init(&b->cut, mem, on_element, NULL, b);
    epode__buf_init(&b->batch, mem);
    epode__buf_init(&b->up, mem);
    if (!b->domain || !b->lang) {
        bosh_free(&b->base); /* http not yet ours */
        return EPODE_ENOMEM;
    }
    b->http = o->http;
    *out = &b->base;
    return 0;
}

int epode__bosh_is(const epode__transport *t) { return t && t->ops == &bosh_ops; }

int epode__bosh_tls_version(const epode__transport *t)
{
    return epode__bosh_is(t) ? ((const bosh *)t)->tls_version : 0;
}

const char *epode__bosh_sid(const epode__transport *t)
{
    return epode__bosh_is(t) && ((const bosh *)t)->sid[0] ? ((const bosh *)t)->sid : NULL;
}

uint64_t epode__bosh_next_rid(const epode__transport *t)
{
    return epode__bosh_is(t) ? ((const bosh *)t)->next_rid : 0;
}

/* ---- URLs ---------------------------------------------------------------------------- */

int epode__bosh_url_parse(const epode_mem_t *mem, const char *url, epode__bosh_url **out,
                          char *why, size_t why_len)
{
    if (!url || !out)
        return EPODE_EINVAL;
    epode__url_parts parts;
    int rc = epode__url_split(url, "https://", "http://", "BOSH", &parts, why, why_len);
    if (rc < 0)
        return rc;
    size_t hl = strlen(parts.host) + 1, ul = strlen(url) + 1;
    epode__bosh_url *u = epode__zalloc(mem, sizeof *u + hl + ul);
    if (!u)
        return EPODE_ENOMEM;
    char *s = (char *)(u + 1);
    u->secure = parts.secure;
    u->port = parts.port ? parts.port : parts.secure ? 443 : 80;
    u->host = s;
    memcpy(s, parts.host, hl);
    u->url = s + hl;
    memcpy(u->url, url, ul);
    *out = u;
    return 0;
}

void epode__bosh_url_free(const epode_mem_t *mem, epode__bosh_url *u)
{
    epode__dealloc(mem, u);
}

/* ---- requests through lib/http -------------------------------------------------------- */

typedef struct bcurl bcurl;

typedef struct bcreq {
    struct bcreq *next;
    bcurl *c;
    char *body;
    size_t len;
    unsigned timeout_ms;
    epode__bosh_done_cb done;
    void *req;
    epode__http_req *hr; /* started; NULL while waiting for the lookup */
} bcreq;

struct bcurl {
    const epode_mem_t *mem;
    epode__loop *loop;
    epode__http *http;
    epode__http_dns *dns;
    epode__http_lookup *lookup;
    char *url, *verify_name, *ca_file, *dns_servers, *proxy, *proxy_user, *proxy_pass;
    char *lookup_host;
    unsigned lookup_port;
    int secure, insecure, tls_min, tls_max;
    size_t max_body;
    char *resolve; /* "host:port:addrs", or NULL (none needed, or not yet) */
    int resolved;  /* no lookup needed, or it answered */
    bcreq *reqs;
    epode__timer pace; /* the layer's `later` */
    void (*pace_fire)(void *arg);
    void *pace_arg;
};

static void bc_pace_fire(void *user)
{
    bcurl *c = user;
    c->pace_fire(c->pace_arg);
}

static void bc_later(void *user, unsigned ms, void (*fire)(void *arg), void *arg)
{
    bcurl *c = user;
    c->pace_fire = fire;
    c->pace_arg = arg;
    epode__timer_start(&c->pace, ms, bc_pace_fire, c);
}

static void bc_unlink(bcreq *r)
{
    for (bcreq **p = &r->c->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void bc_req_free(bcreq *r)
{
    const epode_mem_t *mem = r->c->mem;
    if (r->body)
        explicit_bzero(r->body, r->len); /* may hold a SASL response */
    epode__dealloc(mem, r->body);
    epode__dealloc(mem, r);
}

static void bc_on_http(void *user, int err, const epode__http_resp *resp, const char *text)
{
    bcreq *r = user;
    r->hr = NULL;
    bc_unlink(r);
    epode__bosh_done_cb done = r->done;
    void *req = r->req;
    bc_req_free(r);
    done(req, err, resp ? resp->status : 0, resp ? resp->body : "", resp ? resp->body_len : 0,
         text, resp ? resp->tls_version : 0);
}

static int bc_go(bcreq *r)
{
    bcurl *c = r->c;
    const char *headers[] = {"Content-Type: text/xml; charset=utf-8"};
    const char *resolve[] = {c->resolve};
    epode__http_opts o = {
        .method = "POST",
        .url = c->url,
        .headers = headers,
        .nheaders = 1,
        .body = r->body,
        .body_len = r->len,
        .max_body = c->max_body,
        .timeout_ms = r->timeout_ms,
        .stall_ms = r->timeout_ms, /* a held request moves no byte for `wait` */
        .allow_http = !c->secure,
        .ca_file = c->ca_file,
        .resolve = resolve,
        .nresolve = c->resolve ? 1 : 0,
        .also_verify_name = c->insecure ? NULL : c->verify_name,
        .insecure = c->insecure,
        .tls_min = c->tls_min,
        .tls_max = c->tls_max,
        .proxy = c->proxy,
        .proxy_user = c->proxy_user,
        .proxy_pass = c->proxy_pass,
        .done = bc_on_http,
        .user = r,
    };
    return epode__http_start(c->http, &o, &r->hr);
}

static void bc_on_resolved(void *user, int status, const char *addrs)
{
    bcurl *c = user;
    c->lookup = NULL;
    char text[320] = "";
    if (status == 0) {
        size_t len = strlen(c->lookup_host) + strlen(addrs) + 16;
        c->resolve = epode__alloc(c->mem, len);
        if (c->resolve)
            snprintf(c->resolve, len, "%s:%u:%s", c->lookup_host, c->lookup_port, addrs);
        else
            status = EPODE_ENOMEM;
    }
    if (status < 0)
        snprintf(text, sizeof text, "could not resolve %s: %s", c->lookup_host,
                 epode_strerror(status));
    c->resolved = status == 0; /* a failed lookup is tried again by the next request */
    /* Each waiting request starts or fails; a done callback may cancel
     * the others (the layer fails): take them one at a time. */
    for (;;) {
        bcreq *r = c->reqs;
        while (r && r->hr)
            r = r->next;
        if (!r)
            return;
        int rc = status < 0 ? status : bc_go(r);
        if (rc == 0)
            continue;
        bc_unlink(r);
        epode__bosh_done_cb done = r->done;
        void *req = r->req;
        bc_req_free(r);
        done(req, rc, 0, "", 0, text[0] ? text : epode_strerror(rc), 0);
    }
}

static int bc_start(void *user, const char *body, size_t len, unsigned timeout_ms,
                    epode__bosh_done_cb done, void *req, void **handle)
{
    bcurl *c = user;
    bcreq *r = epode__zalloc(c->mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->c = c;
    r->body = epode__alloc(c->mem, len ? len : 1);
    if (!r->body) {
        epode__dealloc(c->mem, r);
        return EPODE_ENOMEM;
    }
    memcpy(r->body, body, len);
    r->len = len;
    r->timeout_ms = timeout_ms;
    r->done = done;
    r->req = req;
    int rc = 0;
    if (c->resolved) {
        rc = bc_go(r);
    } else if (!c->lookup) {
        if (!c->dns)
            rc = epode__http_dns_new(c->mem, c->loop, c->dns_servers, &c->dns);
        if (rc == 0)
            rc = epode__http_dns_lookup(c->dns, c->lookup_host, bc_on_resolved, c, &c->lookup);
    }
    if (rc < 0) {
        bc_req_free(r);
        return rc;
    }
    r->next = c->reqs;
    c->reqs = r;
    *handle = r;
    return 0;
}

static void bc_cancel(void *user, void *handle)
{
    (void)user;
    bcreq *r = handle;
    if (r->hr)
        epode__http_cancel(r->hr);
    bc_unlink(r);
    bc_req_free(r);
}

static void bc_free(void *user)
{
    bcurl *c = user;
    while (c->reqs)
        bc_cancel(c, c->reqs);
    epode__timer_deinit(&c->pace);
    epode__http_dns_free(c->dns);
    epode__http_free(c->http);
    if (c->proxy_pass)
        explicit_bzero(c->proxy_pass, strlen(c->proxy_pass));
    char *strs[] = {c->url,        c->verify_name, c->ca_file,     c->dns_servers, c->proxy,
                    c->proxy_user, c->proxy_pass,  c->lookup_host, c->resolve};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        epode__dealloc(c->mem, strs[i]);
    epode__dealloc(c->mem, c);
}

static int dup_opt(const epode_mem_t *mem, const char *s, char **out)
{
    *out = NULL;
    return s && !(*out = epode__strdup(mem, s)) ? -1 : 0;
}

static int is_ip_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int epode__bosh_curl_new(const epode_mem_t *mem, const epode__bosh_curl_options *o,
                         epode__bosh_http *out)
{
    if (!o || !o->loop || !o->url || !out)
        return EPODE_EINVAL;
    bcurl *c = epode__zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->mem = mem;
    c->loop = o->loop;
    if (epode__timer_init(o->loop, &c->pace) < 0) {
        epode__dealloc(mem, c);
        return EPODE_ENOMEM;
    }
    c->secure = o->url->secure;
    c->insecure = o->insecure;
    c->tls_min = o->tls_min;
    c->tls_max = o->tls_max;
    c->max_body = o->max_body;
    const char *host = o->proxy ? o->proxy_host : o->url->host;
    c->lookup_port = o->proxy ? o->proxy_port : o->url->port;
    if (!host || dup_opt(mem, o->url->url, &c->url) || dup_opt(mem, o->verify_name, &c->verify_name) ||
        dup_opt(mem, o->ca_file, &c->ca_file) || dup_opt(mem, o->dns_servers, &c->dns_servers) ||
        dup_opt(mem, o->proxy, &c->proxy) || dup_opt(mem, o->proxy_user, &c->proxy_user) ||
        dup_opt(mem, o->proxy_pass, &c->proxy_pass) || dup_opt(mem, host, &c->lookup_host)) {
        bc_free(c);
        return host ? EPODE_ENOMEM : EPODE_EINVAL;
    }
    c->resolved = is_ip_literal(host); /* curl needs no resolver for an address */
    int rc = epode__http_new(mem, o->loop, &c->http);
    if (rc < 0) {
        bc_free(c);
        return rc;
    }
    *out = (epode__bosh_http){.start = bc_start, .cancel = bc_cancel, .free = bc_free, .user = c,
                              .later = bc_later};
    return 0;
}
