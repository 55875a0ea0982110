/* lib/stream/engine.c — the client session engine (see engine.h). A state
 * machine fed by the parser's events. It must never do I/O, never trust
 * the server beyond what the protocol lets it claim (a <success/> must
 * carry the SCRAM server signature; bytes after <proceed/> are an
 * attack), and always leave a stream error in the output before ending a
 * stream because of the server. */
#include "engine.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>

#include "auth/fast.h"
#include "auth/sasl.h"
#include "epode/jid.h"
#include "epode/parser.h"
#include "stanza/stanza_int.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/footprint.h"
#include "util/utf8.h"
#include "util/secret.h"
#include "sasl2.h"
#include "sm.h"
#include "xml/parser_int.h"
#include "xml/serialize.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define NS_SM "urn:xmpp:sm:3"
#define NS_COMPONENT "jabber:component:accept"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
/* On a message-framed transport (RFC 7395) the parser is fed this
 * stream header of our own before the server's frames, so each frame is
 * a depth-1 element whatever prefixes it declares; the server's <open/>
 * and <close/> are then elements like any other. */
#define FRAMED_WRAPPER "<stream:stream xmlns='jabber:client' xmlns:stream='" EPODE_NS_STREAMS "'>"
/* The server's stream id goes into the handshake digest; ids are short
 * (Prosody's and ejabberd's are under 40 bytes): a longer one is abuse. */
#define MAX_STREAM_ID 256

#define MAX_MECHS 32
/* Our ids for the login's two IQs: one of each per stream. */
#define BIND_ID "bind_1"
#define SESSION_ID "sess_1"

enum state {
    ST_IDLE = 0,
    ST_WAIT_HEADER,   /* our header sent, theirs not yet seen */
    ST_WAIT_FEATURES,
    ST_WAIT_PROCEED,
    ST_WAIT_TLS,      /* owner is upgrading the transport */
    ST_SASL,
    ST_BIND,
    ST_SESSION,
    ST_RESUME,        /* <resume/> sent after auth, instead of bind */
    ST_HANDSHAKE,     /* component: our <handshake/> sent, no answer yet */
    ST_READY,
    ST_CLOSING,       /* we sent </stream:stream> */
    ST_ENDED
};

enum pending { PEND_NONE = 0, PEND_STARTTLS, PEND_RESTART };

struct epode__engine {
    const epode_mem_t *mem;
    epode__engine_config cfg; /* strings copied below */
    char *domain, *localpart, *resource, *password, *mechanisms;
    epode__engine_cbs cbs;
    void *user;
    epode_parser_t *parser;
    epode__buf out;
    enum state state;
    int tls_active;
    epode__tls_facts *tls; /* what SASL binds to; freed once authenticated */
    int authenticated;
    int restart_pending; /* the parser was reset inside its callback */
    enum pending pending;
    epode__sasl *sasl;
    char mech[40];
    char *bound_jid;
    char *redirect;
    epode_stanza_t *features; /* the server's last <stream:features/> */
    epode__sm *own_sm; /* made when the owner keeps none (cfg.sm_state NULL) */
    epode__sm *sm;     /* the state in use (the owner's or own_sm) */
    uint32_t sm_since_request; /* stanzas sent since our last <r/> */
    int session_needed;

    int in_recv;
    int resend_pending; /* a refused resume's queue waits for the new session */
    int sm_hold;        /* <enable/> sent, no answer yet: stanzas wait in the queue */
    /* SASL2 (XEP-0388); bits, as every idle session carries them */
    unsigned sasl2 : 1;           /* this login uses SASL2 */
    unsigned sasl2_bind : 1;      /* Bind2 asked for inline */
    unsigned sasl2_sm_enable : 1; /* <enable/> inline in Bind2 */
    unsigned sasl2_resume : 1;    /* <resume/> inline */
    unsigned sm_offered_inline : 1; /* the server offered SM inside SASL2/Bind2 */
    unsigned sm_refused : 1;      /* the server answered <failed/> to an inline <enable/> */
    unsigned carbons_inline : 1;  /* carbons enabled at Bind2 */
    unsigned fast_used : 1, fast_refused : 1;
    char *fast_token, *fast_mech; /* secret; the configured token (freed once used) */
    char *fast_jid;               /* the bare JID it was issued to */
    const char *fast_req;         /* mechanism of the token we asked for (static), or NULL */
    int ended;
    int state_before_end;
    int feeding_wrapper; /* framed: the parser sees our FRAMED_WRAPPER */
    int comp_no_id;      /* component: the header had no id (no handshake sent) */
};

static void drop_tls_facts(epode__engine *e);

/* ---- output ---------------------------------------------------------------- */

static void log_out(epode__engine *e, size_t from)
{
    if (e->cbs.log && e->out.len > from)
        e->cbs.log(e->user, 1, e->out.data + from, e->out.len - from);
}

static int out_status(const epode__engine *e)
{
    return e->out.failed ? EPODE_ENOMEM : 0;
}

static void end(epode__engine *e, int err, int reason, const char *cond, const char *text);

/* After bytes of our own making (an ack, a header, a close) found no
 * room: they are lost, so the server would wait for them forever and
 * the stream cannot go on. Only epode__engine_send() can take a failed
 * write back (its caller hears ENOMEM). */
static int out_checked(epode__engine *e)
{
    if (e->out.failed && !e->ended)
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
    return out_status(e);
}

static void write_raw(epode__engine *e, const char *s)
{
    size_t from = e->out.len;
    epode__buf_puts(&e->out, s);
    log_out(e, from);
}

/* The end of our stream: </stream:stream>, or RFC 7395's <close/> in a
 * message of its own on a message-framed transport. */
static void write_close(epode__engine *e)
{
    write_raw(e, e->cfg.framed ? "<close xmlns='" NS_FRAMING "'/>" : "</stream:stream>");
}

/* A <stream:error> stands alone in a message: it declares its prefix. */
static const char *stream_error_open(const epode__engine *e)
{
    return e->cfg.framed ? "<stream:error xmlns:stream='" EPODE_NS_STREAMS "'>" : "<stream:error>";
}

static void write_open(epode__engine *e);

static void write_header(epode__engine *e)
{
    size_t from = e->out.len;
    epode__buf *b = &e->out;
    if (e->cfg.framed) {
        write_open(e);
        return;
    }
    if (e->cfg.component) {
        /* XEP-0114 §3: no version, no features; the domain is ours. */
        epode__buf_puts(b, "<?xml version='1.0'?><stream:stream xmlns='" NS_COMPONENT "' "
                           "xmlns:stream='http://etherx.jabber.org/streams' to='");
        epode__escape_attr(b, e->domain, strlen(e->domain));
        epode__buf_puts(b, "'>");
        log_out(e, from);
        e->state = ST_WAIT_HEADER;
        return;
    }
    epode__buf_puts(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='");
    epode__escape_attr(b, e->domain, strlen(e->domain));
    epode__buf_putc(b, '\'');
    /* RFC 6120 §4.7.1: say who we are only once the stream is encrypted. */
    if (e->tls_active && e->localpart) {
        epode__buf_puts(b, " from='");
        epode__escape_attr(b, e->localpart, strlen(e->localpart));
        epode__buf_putc(b, '@');
        epode__escape_attr(b, e->domain, strlen(e->domain));
        epode__buf_putc(b, '\'');
    }
    epode__buf_puts(b, " xml:lang='en'>");
    log_out(e, from);
    e->state = ST_WAIT_HEADER;
}

/* RFC 7395 §3.3.2: <open/> instead of the stream header; the parser
 * starts a fresh stream of ours (FRAMED_WRAPPER) for the server's frames. */
static void write_open(epode__engine *e)
{
    size_t from = e->out.len;
    epode__buf *b = &e->out;
    epode__buf_puts(b, "<open xmlns='" NS_FRAMING "' to='");
    epode__escape_attr(b, e->domain, strlen(e->domain));
    epode__buf_puts(b, "' version='1.0'");
    if (e->tls_active && e->localpart) {
        epode__buf_puts(b, " from='");
        epode__escape_attr(b, e->localpart, strlen(e->localpart));
        epode__buf_putc(b, '@');
        epode__escape_attr(b, e->domain, strlen(e->domain));
        epode__buf_putc(b, '\'');
    }
    epode__buf_puts(b, " xml:lang='en'/>");
    log_out(e, from);
    e->state = ST_WAIT_HEADER;
    if (epode_parser_stream_is_open(e->parser))
        epode_parser_reset(e->parser); /* never inside a callback: see run_pending */
    e->feeding_wrapper = 1;
    long rc = epode_parser_feed(e->parser, FRAMED_WRAPPER, sizeof FRAMED_WRAPPER - 1);
    e->feeding_wrapper = 0;
    if (rc < 0 && !e->ended)
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
}

/* In-band registration (XEP-0077) sends passwords as element text (in
 * <password/> and in a data form's password fields): such an IQ is a
 * credential while it waits in the output and in the SM queue. */
static int holds_password(const epode_stanza_t *st)
{
    return strcmp(epode_stanza_get_name(st), "iq") == 0 &&
           epode_stanza_find_child(st, "query", "jabber:iq:register") != NULL;
}

/* Serialization appends piece by piece and may grow the block half-way
 * through a password, leaving the first half in a freed block: a
 * credential is serialized into a buffer of its own with room reserved
 * (a registration form is far below it), then copied once into room
 * reserved in the output, which is marked; the scratch is wiped. */
#define SECRET_SCRATCH 8192

/* Serializes st into the output; logs it unless `quiet` (the caller logs
 * it when, and if, it really goes out). */
static void write_stanza_q(epode__engine *e, const epode_stanza_t *st, int quiet);

static void write_stanza(epode__engine *e, const epode_stanza_t *st)
{
    write_stanza_q(e, st, 0);
}

static void write_stanza_q(epode__engine *e, const epode_stanza_t *st, int quiet)
{
    size_t from = e->out.len;
    /* framed: each stanza is a message of its own and declares its namespace */
    unsigned flags = e->cfg.framed ? 0 : EPODE_TEXT_IN_STREAM;
    if (!holds_password(st)) {
        epode__serialize(&e->out, st, flags);
        if (!quiet)
            log_out(e, from);
        return;
    }
    epode__buf tmp;
    epode__buf_init(&tmp, e->mem);
    if (epode__buf_reserve(&tmp, SECRET_SCRATCH) == 0)
        epode__serialize(&tmp, st, flags);
    epode__buf_mark_secret(&tmp);
    if (!tmp.failed && epode__buf_reserve(&e->out, tmp.len) == 0) {
        epode__buf_append(&e->out, tmp.data, tmp.len);
        epode__buf_mark_secret(&e->out);
    } else {
        e->out.failed = 1;
    }
    epode__buf_free(&tmp); /* wipes it */
    if (!quiet)
        log_out(e, from);
}

/* SASL elements carry credentials: log them redacted. */
static void write_sasl(epode__engine *e, const char *name, const char *mech,
                       const unsigned char *data, size_t len, int has_data)
{
    epode__buf *b = &e->out;
    size_t from = b->len;
    epode__buf_puts(b, "<");
    epode__buf_puts(b, name);
    epode__buf_puts(b, e->sasl2 ? " xmlns='" EPODE__NS_SASL2 "'" : " xmlns='" NS_SASL "'");
    if (mech) {
        epode__buf_puts(b, " mechanism='");
        epode__buf_puts(b, mech);
        epode__buf_putc(b, '\'');
    }
    size_t open_end = b->len;
    epode__buf_putc(b, '>');
    if (has_data) {
        /* Room for the payload and the closing tag at once: the block must
         * not grow (and move) while the credential is being written. */
        size_t enc = len ? epode__base64_encoded_len(len) : 1;
        if (epode__buf_reserve(b, enc + strlen(name) + 3) == 0) {
            if (len == 0)
                b->data[b->len] = '=';
            else
                epode__base64_encode(b->data + b->len, data, len);
            b->len += enc;
        }
    }
    epode__buf_puts(b, "</");
    epode__buf_puts(b, name);
    epode__buf_putc(b, '>');
    /* Until the owner has written it out, and wiped where it was. */
    if (has_data && len > 0)
        epode__buf_mark_secret(b);
    if (e->cbs.log && !b->failed) {
        char red[160];
        int n = snprintf(red, sizeof red, "%.*s>%s</%s>", (int)(open_end - from), b->data + from,
                         has_data ? "[redacted]" : "", name);
        if (n > 0)
            e->cbs.log(e->user, 1, red, (size_t)n < sizeof red ? (size_t)n : sizeof red - 1);
    }
}

/* ---- ending ------------------------------------------------------------------ */

static void sm_report_unacked(void *user, const char *id, const char *bytes, size_t len);

static void end(epode__engine *e, int err, int reason, const char *cond, const char *text)
{
    if (e->ended)
        return;
    e->ended = 1;
    e->state_before_end = e->state;
    e->state = ST_ENDED;
    /* What the server never confirmed goes back to the application —
     * unless the owner keeps it for the next stream: to resume this
     * session, or (resend policy) to send again on a fresh one. */
    int keep = e->cfg.sm_state && e->state_before_end != ST_CLOSING &&
               (epode__engine_sm_resumable(e) || (e->cfg.sm_resend && epode__sm_pending(e->sm)));
    if (!keep) {
        epode__sm_drain(e->sm, sm_report_unacked, e);
        epode__sm_forget(e->sm);
    } else if (!epode__engine_sm_resumable(e)) {
        /* No session to resume: the queue waits for the next one. */
        epode__sm_end_session(e->sm);
    }
    e->sm_hold = 0;
    if (e->cbs.ended)
        e->cbs.ended(e->user, err, reason, cond, text ? text : epode_strerror(err));
}

/* We end the stream because the server misbehaved: say why on the wire. */
static void fail_stream(epode__engine *e, epode_stream_cond_t cond, const char *text, int err,
                        int reason)
{
    if (e->ended)
        return;
    if (e->state != ST_IDLE && e->state != ST_WAIT_TLS) {
        size_t from = e->out.len;
        epode__buf *b = &e->out;
        if (e->state == ST_WAIT_HEADER || !epode_parser_stream_is_open(e->parser)) {
            /* RFC 6120 §4.9.1.2: open a stream to carry the error if the
             * server's header never came. Ours is already written. */
        }
        epode__buf_puts(b, stream_error_open(e));
        epode__buf_putc(b, '<');
        epode__buf_puts(b, epode_stream_cond_name(cond));
        epode__buf_puts(b, " xmlns='" EPODE_NS_STREAM_ERRORS "'/>");
        if (text) {
            epode__buf_puts(b, "<text xmlns='" EPODE_NS_STREAM_ERRORS "'>");
            epode__escape_text(b, text, strlen(text), 0);
            epode__buf_puts(b, "</text>");
        }
        epode__buf_puts(b, "</stream:error>");
        log_out(e, from);
        write_close(e);
    }
    end(e, err, reason, epode_stream_cond_name(cond), text);
}

/* ---- features ------------------------------------------------------------------- */

static const char *child_text_ns(const epode_stanza_t *el, const char *name, const char *ns)
{
    epode_stanza_t *c = epode_stanza_find_child(el, name, ns);
    return c ? epode_stanza_get_text(c) : NULL;
}

static int send_bind(epode__engine *e)
{
    epode_stanza_t *iq, *bind, *res;
    int rc = epode_stanza_new_iq(e->mem, "set", BIND_ID, &iq);
    if (rc < 0)
        return rc;
    rc = epode_stanza_add_child_new(iq, "bind", NS_BIND, &bind);
    if (rc == 0 && e->resource) {
        rc = epode_stanza_add_child_new(bind, "resource", NULL, &res);
        if (rc == 0)
            rc = epode_stanza_add_text(res, e->resource, (size_t)-1);
    }
    if (rc == 0)
        write_stanza(e, iq);
    epode_stanza_unref(iq);
    e->state = ST_BIND;
    return rc < 0 ? rc : out_status(e);
}

/* Which channel binding to use for -PLUS: what the server lists
 * (XEP-0440), else tls-unique on TLS 1.2 — the only type Prosody and
 * ejabberd check. On TLS 1.3 without the list, none: a server that offers
 * -PLUS there expects tls-unique, which TLS 1.3 does not define, so plain
 * SCRAM with the 'n' flag is the honest choice. (Whether we could bind at
 * all — the 'y' flag when no -PLUS is offered — is can_bind in
 * start_sasl, not this.) */
static void pick_binding(epode__engine *e, const epode_stanza_t *features, const char **name,
                         const unsigned char **data, size_t *len, char *types, size_t types_len)
{
    static const epode__tls_facts none; /* no TLS: nothing to bind to */
    const epode__tls_facts *tf = e->tls ? e->tls : &none;
    *name = NULL;
    *data = NULL;
    *len = 0;
    types[0] = '\0';
    epode_stanza_t *cb = epode_stanza_find_child(features, "sasl-channel-binding", NS_SASL_CB);
    if (cb) {
        size_t off = 0;
        for (epode_stanza_t *t = epode_stanza_find_child(cb, "channel-binding", NS_SASL_CB); t;
             t = epode_stanza_find_next(t, "channel-binding", NS_SASL_CB)) {
            const char *ty = epode_stanza_get_attr(t, "type");
            if (ty && off + strlen(ty) + 2 < types_len)
                off += (size_t)snprintf(types + off, types_len - off, "%s%s", off ? " " : "", ty);
        }
        if (strstr(types, "tls-exporter") && tf->tls_exporter_len) {
            *name = "tls-exporter";
            *data = tf->tls_exporter;
            *len = tf->tls_exporter_len;
        } else if (strstr(types, "tls-unique") && tf->tls_unique_len) {
            *name = "tls-unique";
            *data = tf->tls_unique;
            *len = tf->tls_unique_len;
        }
        return;
    }
    if (tf->version == 12 && tf->tls_unique_len) {
        *name = "tls-unique";
        *data = tf->tls_unique;
        *len = tf->tls_unique_len;
    }
}

/* Sets SASL up and starts the mechanism of our choice among `offered`:
 * 0 with the outputs set, or negative once the stream has ended. */
static int sasl_begin(epode__engine *e, const epode_stanza_t *features,
                      const char *const *offered, size_t n, const char **mech_out,
                      const unsigned char **resp_out, size_t *resp_len_out)
{
    char types[128];
    epode__sasl_params p = {
        .authcid = e->localpart,
        .password = e->password,
        .service = "xmpp",
        .host = e->domain,
        .allowed = e->mechanisms,
        .tls_active = e->tls_active,
        .tls_key_bits = e->tls ? e->tls->key_bits : 0,
        .client_cert = e->cfg.have_client_cert,
        .min_iterations = e->cfg.scram_min_iterations,
        /* Any binding data on this session, of a type the server takes or
         * not: with no -PLUS offered, SCRAM then says 'y' (RFC 5802 §6),
         * and a server that does bind sees -PLUS was stripped. */
        .can_bind = e->tls && (e->tls->tls_unique_len > 0 || e->tls->tls_exporter_len > 0),
    };
    pick_binding(e, features, &p.cb_name, &p.cb_data, &p.cb_len, types, sizeof types);
    p.server_cb_types = types[0] ? types : NULL;

    epode__sasl_free(e->sasl);
    e->sasl = NULL;
    int rc = epode__sasl_new(e->mem, &p, &e->sasl);
    if (rc < 0) {
        end(e, rc, EPODE_REASON_AUTH, NULL, "could not set up SASL");
        return rc;
    }
    /* SASL keeps its own copy for the exchange; a stream authenticates
     * once, so ours has served (and costs pages while it lives). */
    epode__secret_free(e->mem, e->password);
    e->password = NULL;
    const char *mech;
    const unsigned char *resp;
    size_t resp_len;
    rc = epode__sasl_start(e->sasl, offered, n, &mech, &resp, &resp_len);
    if (rc < 0) {
        /* Nothing we accept: close politely; it is not the server's fault. */
        write_close(e);
        end(e, rc, EPODE_REASON_AUTH, NULL, epode__sasl_error(e->sasl));
        return rc;
    }
    snprintf(e->mech, sizeof e->mech, "%s", mech);
    *mech_out = mech;
    *resp_out = resp;
    *resp_len_out = resp_len;
    return 0;
}

static void start_sasl(epode__engine *e, const epode_stanza_t *features,
                       const epode_stanza_t *mechs)
{
    const char *offered[MAX_MECHS];
    size_t n = 0;
    for (epode_stanza_t *m = epode_stanza_find_child(mechs, "mechanism", NS_SASL); m && n < MAX_MECHS;
         m = epode_stanza_find_next(m, "mechanism", NS_SASL))
        offered[n++] = epode_stanza_get_text(m);
    const char *mech;
    const unsigned char *resp;
    size_t resp_len;
    if (sasl_begin(e, features, offered, n, &mech, &resp, &resp_len) < 0)
        return;
    write_sasl(e, "auth", mech, resp, resp_len, resp != NULL);
    e->state = ST_SASL;
}

static void start_sasl2(epode__engine *e, const epode_stanza_t *features,
                        const epode__sasl2_offer *o);

/* Before a new session is bound: whatever the last one left (it was not
 * resumable, or this server offers no resumption) means nothing here —
 * its counters least of all. Its unconfirmed stanzas are sent again
 * (resend policy) or handed back. -1 if the stream ended meanwhile. */
static int fresh_session(epode__engine *e)
{
    if (e->resend_pending)
        return 0;
    if (epode__sm_pending(e->sm) && e->cfg.sm_resend) {
        e->resend_pending = 1;
    } else {
        epode__sm_drain(e->sm, sm_report_unacked, e);
        if (e->ended)
            return -1; /* closed from the ack callback */
        epode__sm_forget(e->sm);
    }
    epode__sm_end_session(e->sm);
    return 0;
}

static void on_features(epode__engine *e, epode_stanza_t *f)
{
    epode_stanza_unref(e->features);
    /* kept for the session's life: a tight copy (out of memory: the
     * parser's own tree, which is only larger) */
    if (epode__stanza_copy_tight(f, &e->features) < 0)
        e->features = epode_stanza_ref(f);
    epode_stanza_t *starttls = epode_stanza_find_child(f, "starttls", NS_TLS);
    epode_stanza_t *mechs = epode_stanza_find_child(f, "mechanisms", NS_SASL);
    epode_stanza_t *bind = epode_stanza_find_child(f, "bind", NS_BIND);

    if (!e->tls_active && e->cfg.tls_mode != EPODE_TLS_DISABLED) {
        if (starttls) {
            write_raw(e, "<starttls xmlns='" NS_TLS "'/>");
            e->state = ST_WAIT_PROCEED;
            return;
        }
        if (e->cfg.tls_mode == EPODE_TLS_REQUIRED || e->cfg.tls_mode == EPODE_TLS_DIRECT) {
            write_close(e);
            end(e, EPODE_ENOTLS, EPODE_REASON_TLS, NULL,
                "the server does not offer STARTTLS and TLS is required");
            return;
        }
    }
    if (!e->authenticated && e->cfg.register_only) {
        /* XEP-0077 before authentication: the stream stops here and
         * carries the owner's IQs. The password would travel in them, so
         * only inside TLS unless the owner said otherwise. */
        if (!e->tls_active && !e->cfg.register_cleartext) {
            write_close(e);
            end(e, EPODE_ENOTLS, EPODE_REASON_TLS, NULL,
                "in-band registration refused without TLS (the password would be sent in clear)");
            return;
        }
        e->state = ST_READY;
        if (e->cbs.event)
            e->cbs.event(e->user, EPODE__ENG_READY);
        return;
    }
    epode__sasl2_offer o2;
    if (!e->authenticated && e->cfg.sasl2 && epode__sasl2_offer_parse(f, &o2)) {
        start_sasl2(e, f, &o2);
        return;
    }
    if (!e->authenticated) {
        if (!mechs && starttls && !e->tls_active) {
            /* TLS disabled here, and the server will not authenticate
             * anyone before it: say that, not "no mechanisms". */
            write_close(e);
            end(e, EPODE_ENOTLS, EPODE_REASON_TLS, NULL,
                "the server offers no SASL mechanism before STARTTLS, and TLS is disabled on "
                "this connection (epode_conn_set_tls)");
            return;
        }
        if (!mechs) {
            fail_stream(e, EPODE_STREAM_UNSUPPORTED_FEATURE, "no SASL mechanisms offered",
                        EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
            return;
        }
        start_sasl(e, f, mechs);
        return;
    }
    if (!bind) {
        fail_stream(e, EPODE_STREAM_UNSUPPORTED_FEATURE, "resource binding not offered",
                    EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
        return;
    }
    epode_stanza_t *session = epode_stanza_find_child(f, "session", NS_SESSION);
    e->session_needed = session && !epode_stanza_find_child(session, "optional", NULL);
    if (e->cfg.sm && e->sm->resumable && epode_stanza_find_child(f, "sm", NS_SM)) {
        /* XEP-0198 §5: take the old session back instead of binding. */
        char r[400];
        snprintf(r, sizeof r, "<resume xmlns='" NS_SM "' h='%u' previd='", (unsigned)e->sm->in);
        size_t from = e->out.len;
        epode__buf_puts(&e->out, r);
        epode__escape_attr(&e->out, e->sm->id, strlen(e->sm->id));
        epode__buf_puts(&e->out, "'/>");
        log_out(e, from);
        e->state = ST_RESUME;
        return;
    }
    if (fresh_session(e) < 0)
        return;
    int rc = send_bind(e);
    if (rc < 0)
        end(e, rc, EPODE_REASON_NETWORK, NULL, "out of memory");
}

/* ---- SASL exchange ----------------------------------------------------------------- */

static int decode_b64_text(epode__engine *e, const char *t, unsigned char **out, size_t *len);

static int decode_b64_payload(epode__engine *e, const epode_stanza_t *el, unsigned char **out,
                              size_t *len)
{
    return decode_b64_text(e, epode_stanza_get_text(el), out, len);
}

static int decode_b64_text(epode__engine *e, const char *t, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!t)
        return EPODE_ENOMEM;
    size_t tl = strlen(t);
    if (tl == 0 || (tl == 1 && t[0] == '='))
        return 0;
    unsigned char *buf = epode__alloc(e->mem, epode__base64_decoded_max(tl) + 1);
    if (!buf)
        return EPODE_ENOMEM;
    if (epode__base64_decode(t, tl, buf, len) < 0) {
        epode__dealloc(e->mem, buf);
        return EPODE_EPROTOCOL;
    }
    *out = buf;
    return 0;
}

static void on_sasl(epode__engine *e, epode_stanza_t *st)
{
    const char *name = epode_stanza_get_name(st);
    unsigned char *data;
    size_t len;
    if (strcmp(name, "challenge") == 0 || strcmp(name, "success") == 0) {
        int rc = decode_b64_payload(e, st, &data, &len);
        if (rc < 0) {
            fail_stream(e, EPODE_STREAM_BAD_FORMAT, "SASL data is not base64", EPODE_EAUTH,
                        EPODE_REASON_AUTH);
            return;
        }
        if (name[0] == 'c') {
            const unsigned char *resp;
            size_t resp_len;
            rc = epode__sasl_step(e->sasl, data, len, &resp, &resp_len);
            epode__dealloc(e->mem, data);
            if (rc < 0) {
                /* The server's data failed the mechanism's checks. */
                write_raw(e, "<abort xmlns='" NS_SASL "'/>");
                write_close(e);
                end(e, EPODE_EAUTH, EPODE_REASON_AUTH, NULL, epode__sasl_error(e->sasl));
                return;
            }
            write_sasl(e, "response", NULL, resp, resp_len, 1);
            return;
        }
        rc = epode__sasl_finish(e->sasl, data, len);
        epode__dealloc(e->mem, data);
        if (rc < 0) {
            /* A success we cannot verify is an impostor's (RFC 5802 §5):
             * never proceed on it. */
            fail_stream(e, EPODE_STREAM_NOT_AUTHORIZED, "the server did not prove itself",
                        EPODE_EAUTH, EPODE_REASON_AUTH);
            return;
        }
        e->authenticated = 1;
        epode__sasl_free(e->sasl); /* DESIGN: SASL state is freed once authenticated */
        e->sasl = NULL;
        drop_tls_facts(e); /* they served the binding */
        epode_parser_reset(e->parser);
        e->restart_pending = 1;
        e->pending = PEND_RESTART;
        return;
    }
    if (strcmp(name, "failure") == 0) {
        const char *cond = NULL;
        for (epode_stanza_t *c = epode_stanza_first_child(st); c; c = epode_stanza_next(c))
            if (strcmp(epode_stanza_get_name(c), "text") != 0) {
                cond = epode_stanza_get_name(c);
                break;
            }
        const char *text = child_text_ns(st, "text", NS_SASL);
        char msg[300];
        snprintf(msg, sizeof msg, "authentication failed (%s)%s%s", cond ? cond : "no condition",
                 text && *text ? ": " : "", text && *text ? text : "");
        write_close(e);
        end(e, EPODE_EAUTH, EPODE_REASON_AUTH, cond ? cond : "not-authorized", msg);
        return;
    }
    fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE, "unexpected element during SASL",
                EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
}

/* ---- bind and session ---------------------------------------------------------------- */

static int is_iq_reply(const epode_stanza_t *st, const char *id)
{
    const char *t = epode_stanza_get_type(st), *i = epode_stanza_get_id(st);
    return strcmp(epode_stanza_get_name(st), "iq") == 0 && t && i && strcmp(i, id) == 0 &&
           (strcmp(t, "result") == 0 || strcmp(t, "error") == 0);
}

static void resend_one(void *user, const char *id, const char *bytes, size_t len);

static void ready(epode__engine *e)
{
    /* After SASL2 the server that offered SM inline takes the classic
     * <enable/> too: the fallback when an inline one went unanswered
     * (Prosody 0.12 advertises it, then never answers). */
    if (e->cfg.sm && !e->sm_refused &&
        ((e->features && epode_stanza_find_child(e->features, "sm", NS_SM)) ||
         e->sm_offered_inline)) {
        /* Counting of what we send starts with <enable/> (XEP-0198 §4). */
        write_raw(e, "<enable xmlns='" NS_SM "' resume='true'/>");
        e->sm->requested = 1;
        /* Nothing is written until the server answers: a stanza sent
         * before <enabled/> belongs to no session we could resume, so a
         * cut there would leave it unconfirmable (delivered or not). Held
         * in the queue, it goes out with the answer — exactly once. */
        e->sm_hold = 1;
        if (e->resend_pending) {
            /* the old session's unconfirmed stanzas, first on the new one */
            e->resend_pending = 0;
            e->sm->acked = 0;
            e->sm->out = (uint32_t)epode__sm_pending(e->sm);
        }
    } else if (e->resend_pending) {
        /* no stream management here: send them, and hand them back as
         * unconfirmable */
        e->resend_pending = 0;
        epode__sm_each(e->sm, resend_one, e);
        epode__sm_drain(e->sm, sm_report_unacked, e);
        if (e->ended)
            return; /* closed from the ack callback */
        epode__sm_forget(e->sm);
    }
    e->state = ST_READY;
    if (e->cbs.event)
        e->cbs.event(e->user, EPODE__ENG_READY);
}

static void on_bind_reply(epode__engine *e, epode_stanza_t *st)
{
    if (strcmp(epode_stanza_get_type(st), "error") == 0) {
        epode_stanza_cond_t c;
        const char *text;
        epode_stanza_get_error(st, &c, NULL, &text);
        char msg[300];
        snprintf(msg, sizeof msg, "resource binding refused (%s)%s%s", epode_stanza_cond_name(c),
                 text ? ": " : "", text ? text : "");
        write_close(e);
        end(e, EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL, epode_stanza_cond_name(c), msg);
        return;
    }
    epode_stanza_t *bind = epode_stanza_find_child(st, "bind", NS_BIND);
    const char *jid = bind ? child_text_ns(bind, "jid", NS_BIND) : NULL;
    if (!jid || epode_jid_validate(jid) < 0) {
        fail_stream(e, EPODE_STREAM_INVALID_XML, "bind result without a valid JID",
                    EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
        return;
    }
    epode__dealloc(e->mem, e->bound_jid);
    if (!(e->bound_jid = epode__strdup(e->mem, jid))) {
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    if (!e->session_needed) {
        ready(e);
        return;
    }
    epode_stanza_t *iq;
    if (epode_stanza_new_iq(e->mem, "set", SESSION_ID, &iq) < 0 ||
        epode_stanza_add_child_new(iq, "session", NS_SESSION, NULL) < 0) {
        epode_stanza_unref(iq);
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    write_stanza(e, iq);
    epode_stanza_unref(iq);
    e->state = ST_SESSION;
}

/* ---- stream errors ---------------------------------------------------------------------- */

static void on_stream_error(epode__engine *e, epode_stanza_t *st)
{
    const char *cond = NULL;
    const char *text = child_text_ns(st, "text", EPODE_NS_STREAM_ERRORS);
    for (epode_stanza_t *c = epode_stanza_first_child(st); c; c = epode_stanza_next(c)) {
        const char *ns = epode_stanza_get_ns(c);
        if (ns && strcmp(ns, EPODE_NS_STREAM_ERRORS) == 0 &&
            strcmp(epode_stanza_get_name(c), "text") != 0) {
            cond = epode_stanza_get_name(c);
            break;
        }
    }
    if (!cond || epode_stream_cond_from_name(cond) == EPODE_STREAM_NONE)
        cond = "undefined-condition";
    if (strcmp(cond, "see-other-host") == 0) {
        const char *host = child_text_ns(st, "see-other-host", EPODE_NS_STREAM_ERRORS);
        epode__dealloc(e->mem, e->redirect);
        e->redirect = host && *host ? epode__strdup(e->mem, host) : NULL;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s%s%s",
             e->state == ST_HANDSHAKE ? "the server refused the component handshake (wrong "
                                        "secret, or a domain it does not serve)"
                                      : "the server ended the stream",
             cond, text && *text ? ": " : "", text && *text ? text : "");
    epode__utf8_trim(msg); /* a long text is cut: never mid-character */
    /* RFC 6120 §4.9.1.1: the stream is closed after an error; close ours. */
    if (e->state != ST_CLOSING)
        write_close(e);
    end(e, EPODE_ESTREAM, EPODE_REASON_STREAM_ERROR, cond, msg);
}

/* ---- stream management (XEP-0198) ------------------------------------------------------- */

static void sm_report(void *user, const char *id, const char *bytes, size_t len)
{
    epode__engine *e = user;
    if (e->cbs.sm_result)
        e->cbs.sm_result(e->user, 1, id, bytes, len);
}

static void sm_report_unacked(void *user, const char *id, const char *bytes, size_t len)
{
    epode__engine *e = user;
    if (e->cbs.sm_result)
        e->cbs.sm_result(e->user, 0, id, bytes, len);
}

static int parse_h(const char *s, uint32_t *h)
{
    if (!s || !*s)
        return -1;
    unsigned long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 0xFFFFFFFFull)
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > 0xFFFFFFFFull)
        return -1;
    *h = (uint32_t)v;
    return 0;
}

static int sm_apply_ack(epode__engine *e, uint32_t h);
static void release_hold(epode__engine *e);
static void resend_one(void *user, const char *id, const char *bytes, size_t len);

static void on_sm(epode__engine *e, epode_stanza_t *st)
{
    const char *name = epode_stanza_get_name(st);
    if (!e->sm->requested) {
        fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE, "stream management was not enabled",
                    EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
        return;
    }
    if (strcmp(name, "enabled") == 0) {
        e->sm->enabled = 1;
        const char *id = epode_stanza_get_attr(st, "id");
        const char *res = epode_stanza_get_attr(st, "resume");
        e->sm->resumable = 0;
        /* An id that is empty or too long: a session we cannot resume. */
        if (res && (strcmp(res, "true") == 0 || strcmp(res, "1") == 0) &&
            epode__sm_set_resumable(e->sm, id, e->bound_jid) == EPODE_ENOMEM) {
            end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
            return;
        }
        release_hold(e);
        return;
    }
    if (strcmp(name, "failed") == 0) {
        /* SM refused; the stream itself goes on without it. What waited
         * for the answer goes out now, and is handed back at once: no
         * acknowledgement will ever come for it. */
        int held = e->sm_hold;
        e->sm_hold = 0;
        if (held)
            epode__sm_each(e->sm, resend_one, e);
        epode__sm_drain(e->sm, sm_report_unacked, e);
        epode__sm_forget(e->sm);
        return;
    }
    if (strcmp(name, "r") == 0) {
        if (!e->sm->enabled)
            return;
        char a[64];
        snprintf(a, sizeof a, "<a xmlns='" NS_SM "' h='%u'/>", (unsigned)e->sm->in);
        write_raw(e, a);
        return;
    }
    if (strcmp(name, "a") == 0) {
        uint32_t h;
        if (parse_h(epode_stanza_get_attr(st, "h"), &h) < 0) {
            fail_stream(e, EPODE_STREAM_INVALID_XML, "<a/> without a valid h", EPODE_EPROTOCOL,
                        EPODE_REASON_PROTOCOL);
            return;
        }
        sm_apply_ack(e, h);
        return;
    }
    /* anything else of the namespace is ignored */
}

static void resend_one(void *user, const char *id, const char *bytes, size_t len)
{
    (void)id;
    epode__engine *e = user;
    size_t from = e->out.len;
    int secret = epode__sm_holds_secret(e->sm);
    if (secret && epode__buf_reserve(&e->out, len) < 0)
        return; /* failed is set: the owner ends the stream */
    epode__buf_append(&e->out, bytes, len);
    if (secret)
        epode__buf_mark_secret(&e->out);
    log_out(e, from);
}

/* <enabled/> came: what waited in the queue goes out, oldest first. */
static void release_hold(epode__engine *e)
{
    if (!e->sm_hold)
        return;
    e->sm_hold = 0;
    if (e->state != ST_READY)
        return; /* closing: the queue went out before </stream:stream> */
    epode__sm_each(e->sm, resend_one, e);
    if (epode__sm_pending(e->sm))
        epode__engine_sm_request(e);
}

/* Acknowledges h or ends the stream with handled-count-too-high. */
static int sm_apply_ack(epode__engine *e, uint32_t h)
{
    int rc = epode__sm_ack(e->sm, h, sm_report, e);
    if (rc == 0)
        return e->ended ? -1 : 0; /* a callback may have ended the stream */
    if (rc == EPODE_ENOMEM) {
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
        return -1;
    }
    size_t from = e->out.len;
    char err[400];
    snprintf(err, sizeof err,
             "%s<undefined-condition xmlns='" EPODE_NS_STREAM_ERRORS "'/>"
             "<handled-count-too-high xmlns='" NS_SM "' h='%u' send-count='%u'/>"
             "</stream:error>", stream_error_open(e), (unsigned)h, (unsigned)e->sm->out);
    epode__buf_puts(&e->out, err);
    log_out(e, from);
    write_close(e);
    e->sm->resumable = 0; /* a server that lies about h gets nothing resent */
    end(e, EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL, "undefined-condition",
        "the server acknowledged more stanzas than were sent");
    return -1;
}

/* The old session is gone: what its h (if any) confirms was handled,
 * the rest goes back to the application or waits for the new session.
 * -1 if the stream ended meanwhile. */
static int resume_refused(epode__engine *e, int has_h, uint32_t h)
{
    if (has_h && sm_apply_ack(e, h) < 0)
        return -1;
    if (e->cfg.sm_resend) {
        /* Keep the queue: it is sent again on the new session, once
         * stream management is enabled there (see ready()). */
        epode__sm_end_session(e->sm);
        e->resend_pending = 1;
    } else {
        epode__sm_drain(e->sm, sm_report_unacked, e);
        if (e->ended)
            return -1; /* closed from the ack callback */
        epode__sm_forget(e->sm);
    }
    return 0;
}

static void on_resume_answer(epode__engine *e, epode_stanza_t *st)
{
    const char *name = epode_stanza_get_name(st);
    uint32_t h;
    int has_h = parse_h(epode_stanza_get_attr(st, "h"), &h) == 0;
    if (strcmp(name, "resumed") == 0) {
        if (!has_h) {
            fail_stream(e, EPODE_STREAM_INVALID_XML, "<resumed/> without a valid h",
                        EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
            return;
        }
        if (sm_apply_ack(e, h) < 0)
            return;
        if (e->cfg.sm_stuck_check && h == e->cfg.sm_stuck_h && epode__sm_pending(e->sm)) {
            /* The session took none of what we resent on the last resumed
             * stream (see conn.c, teardown): it would swallow this resend
             * too. h is the server's word, so nothing is lost or doubled by
             * leaving it: the queue goes to a fresh session (resend policy)
             * or back to the application. Nothing is written here. */
            e->sm->resumable = 0;
            end(e, EPODE_ETIMEDOUT, EPODE_REASON_NETWORK, NULL,
                "the resumed session took none of what was resent: starting a fresh one");
            return;
        }
        /* What the server never got goes again, in order, as the same bytes. */
        epode__sm_each(e->sm, resend_one, e);
        epode__dealloc(e->mem, e->bound_jid);
        e->bound_jid = epode__strdup(e->mem, e->sm->jid);
        if (!e->bound_jid) {
            end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
            return;
        }
        e->sm->requested = e->sm->enabled = 1;
        e->sm_since_request = 0;
        e->state = ST_READY;
        if (epode__sm_pending(e->sm))
            epode__engine_sm_request(e);
        if (e->cbs.event)
            e->cbs.event(e->user, EPODE__ENG_RESUMED);
        return;
    }
    if (strcmp(name, "failed") == 0) {
        if (resume_refused(e, has_h, h) < 0)
            return;
        int rc = send_bind(e);
        if (rc < 0)
            end(e, rc, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE, "unexpected answer to <resume/>",
                EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
}

/* ---- SASL2 (XEP-0388), Bind2 (XEP-0386), FAST (XEP-0484) -------------------------------- */

/* The FAST mechanism for a new token: the strongest binding this TLS
 * session gives that the server offers. NULL: none. */
static const char *fast_pick_request(const epode__engine *e, const epode__sasl2_offer *o)
{
    if (epode__sasl2_offer_has_fast(o, "HT-SHA-256-EXPR") && e->tls->version == 13 &&
        e->tls->tls_exporter_len)
        return "HT-SHA-256-EXPR";
    if (epode__sasl2_offer_has_fast(o, "HT-SHA-256-UNIQ") && e->tls->version == 12 &&
        e->tls->tls_unique_len)
        return "HT-SHA-256-UNIQ";
    if (epode__sasl2_offer_has_fast(o, "HT-SHA-256-NONE"))
        return "HT-SHA-256-NONE";
    return NULL;
}

/* The configured token was issued to localpart@domain. */
static int fast_jid_is_ours(const epode__engine *e)
{
    if (!e->fast_jid || !e->localpart)
        return 0;
    size_t n = strlen(e->localpart) + strlen(e->domain) + 2;
    char *bare = epode__alloc(e->mem, n);
    if (!bare)
        return 0;
    snprintf(bare, n, "%s@%s", e->localpart, e->domain);
    int ok = epode_jid_str_equal(e->fast_jid, bare, 1);
    epode__dealloc(e->mem, bare);
    return ok;
}

/* The token's proof for <initial-response/>, if the configured token can
 * be used here: inside TLS, its mechanism offered, its binding at hand.
 * 0 (with *ir NULL: use the password), or negative once ended. */
static int fast_begin(epode__engine *e, const epode__sasl2_offer *o, const char *ua_id,
                      unsigned char **ir, size_t *ir_len)
{
    *ir = NULL;
    /* only over TLS whose certificate verified (an unverified peer may be
     * a man in the middle who replays the proof), and only to the account
     * the token was issued to */
    if (!e->fast_token || !e->fast_mech || !e->tls_active || !e->tls || !e->tls->verified ||
        !ua_id || !e->localpart || !o->fast || !epode__sasl2_offer_has_fast(o, e->fast_mech) ||
        !fast_jid_is_ours(e))
        return 0;
    const unsigned char *cb = NULL;
    size_t cbl = 0;
    switch (epode__fast_mech_cb(e->fast_mech)) {
    case EPODE__FAST_CB_NONE:
        break;
    case EPODE__FAST_CB_UNIQUE:
        if (e->tls->version != 12 || !e->tls->tls_unique_len)
            return 0;
        cb = e->tls->tls_unique;
        cbl = e->tls->tls_unique_len;
        break;
    case EPODE__FAST_CB_EXPORTER:
        if (!e->tls->tls_exporter_len)
            return 0;
        cb = e->tls->tls_exporter;
        cbl = e->tls->tls_exporter_len;
        break;
    default:
        return 0;
    }
    int rc = epode__fast_initial(e->mem, e->localpart, e->fast_token, cb, cbl, ir, ir_len);
    if (rc < 0) {
        end(e, rc, EPODE_REASON_NETWORK, NULL, "out of memory");
        return rc;
    }
    e->fast_used = 1;
    snprintf(e->mech, sizeof e->mech, "%s", e->fast_mech);
    return 0;
}

static void start_sasl2(epode__engine *e, const epode_stanza_t *features,
                        const epode__sasl2_offer *o)
{
    e->sasl2 = 1;
    e->sm_offered_inline = e->cfg.sm && (o->bind2_sm || o->sm);
    /* used here and now, never kept: the owner may change it later */
    const char *ua_id = e->cfg.ua_id ? e->cfg.ua_id
                      : e->cfg.ua_id_cb ? e->cfg.ua_id_cb(e->user) : NULL;
    epode__sasl2_request r = {
        .ua_id = ua_id,
        .software = e->cfg.ua_software,
        .device = e->cfg.ua_device,
    };
    unsigned char *fast_ir;
    size_t fast_ir_len = 0;
    if (fast_begin(e, o, ua_id, &fast_ir, &fast_ir_len) < 0)
        return;
    if (fast_ir) {
        /* A refused token means a new stream with the password (see
         * conn.c): this one needs it no more. */
        epode__secret_free(e->mem, e->password);
        e->password = NULL;
        r.mechanism = e->mech;
        r.initial = fast_ir;
        r.initial_len = fast_ir_len;
        r.has_initial = 1;
        r.fast = 1;
    } else {
        const char *mech;
        const unsigned char *resp;
        size_t resp_len;
        if (sasl_begin(e, features, o->mechs, o->n_mechs, &mech, &resp, &resp_len) < 0)
            return;
        r.mechanism = mech;
        r.initial = resp;
        r.initial_len = resp_len;
        r.has_initial = resp != NULL;
        /* never ask for a token outside TLS, nor without the client id
         * the server files it under */
        if (e->cfg.fast_request && ua_id && e->tls_active && e->tls && e->tls->verified &&
            o->fast) {
            const char *m = fast_pick_request(e, o);
            if (m)
                r.request_token = e->fast_req = m;
        }
    }
    if (o->bind2 && !e->cfg.bind2_off) {
        e->sasl2_bind = r.bind = 1;
        r.tag = e->cfg.bind2_tag ? e->cfg.bind2_tag : "epode";
        r.carbons = e->cfg.bind2_carbons && o->bind2_carbons;
        r.csi_inactive = e->cfg.bind2_csi_inactive && o->bind2_csi;
        e->sasl2_sm_enable = r.sm_enable = e->cfg.sm && !e->cfg.sm_inline_off && o->bind2_sm;
        e->carbons_inline = r.carbons;
    }
    if (e->cfg.sm && !e->cfg.sm_inline_off && o->sm && e->sm->resumable && e->sm->id) {
        r.resume_previd = e->sm->id;
        r.resume_h = e->sm->in;
        e->sasl2_resume = 1;
    }
    char logtext[1024];
    int rc = epode__sasl2_write_authenticate(&e->out, &r, logtext, sizeof logtext);
    if (fast_ir)
        epode__secret_free(e->mem, fast_ir);
    if (rc < 0) {
        end(e, rc, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    if (e->cbs.log)
        e->cbs.log(e->user, 1, logtext, strlen(logtext));
    e->state = ST_SASL;
}

static void forget_fast_token(epode__engine *e)
{
    epode__secret_free(e->mem, e->fast_token);
    e->fast_token = NULL;
}

/* The server's proof for our FAST token: the responder hash over the
 * binding our initial response used (still in the TLS facts). */
static int fast_proved(const epode__engine *e, const unsigned char *data, size_t len)
{
    const unsigned char *cb = NULL;
    size_t cbl = 0;
    enum epode__fast_cb k = epode__fast_mech_cb(e->fast_mech);
    if (k == EPODE__FAST_CB_UNIQUE && e->tls) {
        cb = e->tls->tls_unique;
        cbl = e->tls->tls_unique_len;
    } else if (k == EPODE__FAST_CB_EXPORTER && e->tls) {
        cb = e->tls->tls_exporter;
        cbl = e->tls->tls_exporter_len;
    } else if (k != EPODE__FAST_CB_NONE) {
        return 0;
    }
    return epode__fast_check_responder(e->fast_token, cb, cbl, data, len);
}

/* Stream management enabled inline at Bind2: the session starts counting
 * with the answer in hand. */
static void ready_inline_sm(epode__engine *e, epode_stanza_t *enabled)
{
    e->sm->requested = 1;
    e->sm_hold = 1;
    if (e->resend_pending) {
        /* the old session's unconfirmed stanzas, first on the new one */
        e->resend_pending = 0;
        e->sm->acked = 0;
        e->sm->out = (uint32_t)epode__sm_pending(e->sm);
    }
    e->state = ST_READY;
    on_sm(e, enabled); /* keeps the id, releases the held queue */
    if (e->ended)
        return;
    if (e->cbs.event)
        e->cbs.event(e->user, EPODE__ENG_READY);
}

/* The identity the server gives us is ours: our bare JID (or, with no
 * account name, our domain). */
static int authzid_is_ours(const epode__engine *e, const char *authzid)
{
    epode_jid_t *j;
    if (epode_jid_new(e->mem, authzid, &j) < 0)
        return 0;
    int ok = strcasecmp(epode_jid_domain(j), e->domain) == 0;
    if (ok && e->localpart) {
        const char *l = epode_jid_local(j);
        ok = l && strcasecmp(l, e->localpart) == 0;
    }
    epode_jid_free(j);
    return ok;
}

/* A success with an inline <resumed/> names the old session's full JID
 * (sasl2.c requires a full JID there). */
static int resumed_jid_is_ours(const epode__engine *e, const char *authzid)
{
    return e->sm->jid && epode_jid_str_equal(authzid, e->sm->jid, 0);
}

static void on_sasl2_success(epode__engine *e, epode_stanza_t *st)
{
    epode__sasl2_success s;
    char why[200];
    if (epode__sasl2_success_parse(st, &s, why, sizeof why) < 0) {
        fail_stream(e, EPODE_STREAM_INVALID_XML, why, EPODE_EPROTOCOL, EPODE_REASON_AUTH);
        return;
    }
    if ((s.bound && !e->sasl2_bind) || ((s.resumed || s.resume_failed) && !e->sasl2_resume) ||
        ((s.sm_enabled || s.sm_failed) && !e->sasl2_sm_enable)) {
        fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE,
                    "SASL2 success answers a request that was never made", EPODE_EPROTOCOL,
                    EPODE_REASON_PROTOCOL);
        return;
    }
    unsigned char *data;
    size_t len;
    if (decode_b64_text(e, s.additional ? s.additional : "", &data, &len) < 0) {
        fail_stream(e, EPODE_STREAM_BAD_FORMAT, "SASL data is not base64", EPODE_EAUTH,
                    EPODE_REASON_AUTH);
        return;
    }
    int proved;
    if (e->fast_used)
        proved = fast_proved(e, data, len);
    else
        proved = epode__sasl_finish(e->sasl, data, len) == 0;
    epode__dealloc(e->mem, data);
    forget_fast_token(e);
    if (!proved) {
        /* A success we cannot verify is an impostor's: never proceed. */
        fail_stream(e, EPODE_STREAM_NOT_AUTHORIZED, "the server did not prove itself",
                    EPODE_EAUTH, EPODE_REASON_AUTH);
        return;
    }
    if (!authzid_is_ours(e, s.authzid)) {
        fail_stream(e, EPODE_STREAM_NOT_AUTHORIZED,
                    "the server authenticated us as somebody else", EPODE_EAUTH,
                    EPODE_REASON_AUTH);
        return;
    }
    e->authenticated = 1;
    epode__sasl_free(e->sasl);
    e->sasl = NULL;
    drop_tls_facts(e);
    if (s.token) {
        const char *mech = e->fast_used ? e->fast_mech : e->fast_req;
        /* the server's strings go to the application's store (files, line
         * by line): a token with spaces or controls, or one too long, is
         * not kept; an expiry that is no date-time is dropped */
        long long exp;
        const char *expiry = s.token_expiry &&
                                     epode__fast_parse_time(s.token_expiry, &exp) == 0
                                 ? s.token_expiry
                                 : NULL;
        if (mech && e->cfg.fast_token_cb && epode__fast_token_ok(s.token))
            e->cfg.fast_token_cb(e->user, s.token, mech, expiry);
        explicit_bzero((char *)s.token, strlen(s.token)); /* the tree's copy */
    }
    if (e->cbs.event)
        e->cbs.event(e->user, EPODE__ENG_AUTHENTICATED);
    if (e->ended || e->state != ST_SASL)
        return; /* closed from a callback */
    if (s.resumed) {
        /* the session we asked for, and its JID: never another one's */
        const char *previd = epode_stanza_get_attr(s.resumed, "previd");
        if ((previd && (!e->sm->id || strcmp(previd, e->sm->id) != 0)) ||
            !resumed_jid_is_ours(e, s.authzid)) {
            fail_stream(e, EPODE_STREAM_NOT_AUTHORIZED,
                        "the server resumed another session than ours", EPODE_EPROTOCOL,
                        EPODE_REASON_PROTOCOL);
            return;
        }
        on_resume_answer(e, (epode_stanza_t *)s.resumed);
        return;
    }
    if (e->sasl2_resume) {
        /* refused, or not answered: the old session is not coming back */
        uint32_t h = 0;
        int has_h = s.resume_failed && parse_h(epode_stanza_get_attr(s.resume_failed, "h"), &h) == 0;
        if (resume_refused(e, has_h, h) < 0)
            return;
    }
    if (!s.bound) {
        /* no Bind2: the features that follow say how to bind */
        e->state = ST_WAIT_FEATURES;
        return;
    }
    epode__dealloc(e->mem, e->bound_jid);
    if (!(e->bound_jid = epode__strdup(e->mem, s.authzid))) {
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    if (fresh_session(e) < 0)
        return;
    if (s.sm_enabled) {
        ready_inline_sm(e, (epode_stanza_t *)s.sm_enabled);
        return;
    }
    if (s.sm_failed)
        e->sm_refused = 1;
    ready(e);
}

/* After a SASL2 login that bound inline, the server may send its
 * features (Prosody does, at once): if they offer stream management and
 * it is wanted but was neither offered nor answered inline, enable it
 * the classic way now. */
static void on_late_features(epode__engine *e, epode_stanza_t *f)
{
    epode_stanza_unref(e->features);
    if (epode__stanza_copy_tight(f, &e->features) < 0)
        e->features = epode_stanza_ref(f);
    if (!e->cfg.sm || e->sm->requested || e->sm_refused || e->state != ST_READY ||
        !epode_stanza_find_child(f, "sm", NS_SM))
        return;
    write_raw(e, "<enable xmlns='" NS_SM "' resume='true'/>");
    e->sm->requested = 1;
    e->sm_hold = 1; /* what is sent from now on waits for the answer */
}

static void on_sasl2(epode__engine *e, epode_stanza_t *st)
{
    const char *name = epode_stanza_get_name(st);
    if (strcmp(name, "challenge") == 0 && !e->fast_used) {
        unsigned char *data;
        size_t len;
        if (decode_b64_payload(e, st, &data, &len) < 0) {
            fail_stream(e, EPODE_STREAM_BAD_FORMAT, "SASL data is not base64", EPODE_EAUTH,
                        EPODE_REASON_AUTH);
            return;
        }
        const unsigned char *resp;
        size_t resp_len;
        int rc = epode__sasl_step(e->sasl, data, len, &resp, &resp_len);
        epode__dealloc(e->mem, data);
        if (rc < 0) {
            write_raw(e, "<abort xmlns='" EPODE__NS_SASL2 "'/>");
            write_close(e);
            end(e, EPODE_EAUTH, EPODE_REASON_AUTH, NULL, epode__sasl_error(e->sasl));
            return;
        }
        write_sasl(e, "response", NULL, resp, resp_len, 1);
        return;
    }
    if (strcmp(name, "success") == 0) {
        on_sasl2_success(e, st);
        return;
    }
    if (strcmp(name, "failure") == 0) {
        const char *cond, *text;
        epode__sasl2_failure(st, &cond, &text);
        char msg[300];
        if (e->fast_used) {
            /* The token is spent: forget it; the next stream uses the password. */
            e->fast_refused = 1;
            forget_fast_token(e);
            if (e->cfg.fast_token_cb)
                e->cfg.fast_token_cb(e->user, NULL, NULL, NULL);
            if (e->ended)
                return;
        }
        snprintf(msg, sizeof msg, "%s (%s)%s%s",
                 e->fast_used ? "the server refused the FAST token" : "authentication failed",
                 cond ? cond : "no condition", text && *text ? ": " : "",
                 text && *text ? text : "");
        epode__utf8_trim(msg);
        write_close(e);
        end(e, EPODE_EAUTH, EPODE_REASON_AUTH, cond ? cond : "not-authorized", msg);
        return;
    }
    if (strcmp(name, "continue") == 0) {
        /* epode implements no SASL2 task (XEP-0388 §2.6.3): say which
         * were asked for, and leave. */
        char msg[400];
        epode__sasl2_continue_text(st, msg, sizeof msg);
        epode__utf8_trim(msg);
        write_raw(e, "<abort xmlns='" EPODE__NS_SASL2 "'/>");
        write_close(e);
        end(e, EPODE_EAUTH, EPODE_REASON_AUTH, "unsupported-task", msg);
        return;
    }
    fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE, "unexpected element during SASL2",
                EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
}

/* ---- the parser's events ------------------------------------------------------------------ */

static int is_name(const epode_stanza_t *st, const char *name, const char *ns)
{
    const char *n = epode_stanza_get_ns(st);
    return strcmp(epode_stanza_get_name(st), name) == 0 && n && strcmp(n, ns) == 0;
}

/* XEP-0114 §3: hex(SHA-1(stream id + secret)). The secret has served
 * once the digest is written: wiped then, like the password after SASL
 * starts (a reconnection makes a new engine with a fresh copy). */
static void send_handshake(epode__engine *e, const char *id)
{
    size_t idlen = id ? strlen(id) : 0;
    if (idlen == 0) {
        /* Prosody answers a domain it does not serve with id='' and then
         * its stream error: wait for that (reason STREAM_ERROR, not
         * retried) instead of breaking the stream ourselves first */
        e->comp_no_id = 1;
        e->state = ST_HANDSHAKE;
        return;
    }
    if (idlen > MAX_STREAM_ID) {
        fail_stream(e, EPODE_STREAM_INVALID_XML, "stream id too long for a component handshake",
                    EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
        return;
    }
    if (!e->password) {
        end(e, EPODE_EINVAL, EPODE_REASON_AUTH, NULL, "no component secret");
        return;
    }
    size_t plen = strlen(e->password);
    char *joined = epode__secret_alloc(e->mem, idlen + plen + 1);
    if (!joined) {
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    memcpy(joined, id, idlen);
    memcpy(joined + idlen, e->password, plen);
    unsigned char digest[20];
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, idlen + plen, digest);
    epode__secret_free(e->mem, joined);
    epode__secret_free(e->mem, e->password);
    e->password = NULL;
    if (rc < 0) {
        explicit_bzero(digest, sizeof digest);
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "could not compute the handshake");
        return;
    }
    static const char hex[] = "0123456789abcdef";
    char line[80];
    memcpy(line, "<handshake>", 11);
    for (size_t i = 0; i < sizeof digest; i++) {
        line[11 + 2 * i] = hex[digest[i] >> 4];
        line[12 + 2 * i] = hex[digest[i] & 15];
    }
    memcpy(line + 51, "</handshake>", 13);
    epode__buf *b = &e->out;
    epode__buf_puts(b, line);
    epode__buf_mark_secret(b); /* wiped once written, as SASL data is */
    explicit_bzero(digest, sizeof digest);
    explicit_bzero(line, sizeof line);
    if (e->cbs.log)
        e->cbs.log(e->user, 1, "<handshake>[redacted]</handshake>", 33);
    if (out_checked(e) < 0)
        return;
    e->state = ST_HANDSHAKE;
}

/* A component stream's stanzas are in jabber:component:accept: handed
 * over as jabber:client (static strings), so every handler and helper
 * that looks for jabber:client children works on them unchanged. What
 * we send in jabber:client is written without xmlns, so it takes the
 * stream's default namespace on the wire. */
static void component_to_client(epode_stanza_t *el)
{
    if (el->ns && strcmp(el->ns, NS_COMPONENT) == 0)
        el->ns = EPODE_NS_CLIENT;
    for (epode_stanza_t *c = el->first; c; c = c->next)
        if (c->kind == EPODE__ELEMENT)
            component_to_client(c);
}

static void on_handshake_answer(epode__engine *e)
{
    size_t unwritten = 0;
    epode__engine_output(e, &unwritten);
    if (unwritten) {
        /* It answered bytes it cannot have read yet: it checks nothing. */
        fail_stream(e, EPODE_STREAM_NOT_AUTHORIZED,
                    "the server accepted the handshake before receiving it", EPODE_EPROTOCOL,
                    EPODE_REASON_PROTOCOL);
        return;
    }
    epode__dealloc(e->mem, e->bound_jid);
    if (!(e->bound_jid = epode__strdup(e->mem, e->domain))) {
        end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
        return;
    }
    e->authenticated = 1;
    e->state = ST_READY;
    if (e->cbs.event)
        e->cbs.event(e->user, EPODE__ENG_READY);
}

static void on_stream_open(epode__engine *e, epode_stanza_t *hdr)
{
    if (e->state != ST_WAIT_HEADER) {
        fail_stream(e, EPODE_STREAM_INVALID_XML, "unexpected stream header", EPODE_EPROTOCOL,
                    EPODE_REASON_PROTOCOL);
        return;
    }
    if (e->cfg.component) {
        send_handshake(e, epode_stanza_get_attr(hdr, "id"));
        return;
    }
    const char *version = epode_stanza_get_attr(hdr, "version");
    if (!version || strncmp(version, "1.", 2) != 0) {
        fail_stream(e, EPODE_STREAM_UNSUPPORTED_VERSION, "XMPP 1.x required",
                    EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
        return;
    }
    e->state = ST_WAIT_FEATURES;
}

static void on_sm(epode__engine *e, epode_stanza_t *st);

/* The server ended its stream (</stream:stream>, or <close/> framed). */
static void on_stream_close(epode__engine *e, const char *text)
{
    if (e->state != ST_CLOSING)
        write_close(e);
    end(e, EPODE_ECLOSED, e->state == ST_CLOSING ? EPODE_REASON_CLOSED : EPODE_REASON_NETWORK,
        NULL, e->state == ST_CLOSING ? "closed" : text);
}

/* RFC 7395's <open/> and <close/> (message-framed transports only). */
static void on_framing(epode__engine *e, epode_stanza_t *st)
{
    const char *name = epode_stanza_get_name(st);
    if (strcmp(name, "open") == 0) {
        on_stream_open(e, st);
        return;
    }
    if (strcmp(name, "close") == 0) {
        /* §3.6.1: see-other-uri moves the client elsewhere; epode does
         * not follow it (a new URL is the application's choice): say so. */
        const char *uri = epode_stanza_get_attr(st, "see-other-uri");
        char text[300];
        if (uri && e->state != ST_CLOSING) {
            snprintf(text, sizeof text,
                     "the server closed the stream and asks to reconnect to %.200s "
                     "(see-other-uri)", uri);
            epode__utf8_trim(text);
        }
        on_stream_close(e, uri ? text : "the server closed the stream");
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "unexpected <%s/> of the framing namespace", name);
    fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE, msg, EPODE_EPROTOCOL,
                EPODE_REASON_PROTOCOL);
}

static void on_element(epode__engine *e, epode_stanza_t *st)
{
    if (e->cfg.framed && epode_stanza_get_ns(st) && strcmp(epode_stanza_get_ns(st), NS_FRAMING) == 0) {
        on_framing(e, st);
        return;
    }
    if (is_name(st, "error", EPODE_NS_STREAMS)) {
        on_stream_error(e, st);
        return;
    }
    switch (e->state) {
    case ST_WAIT_FEATURES:
        if (is_name(st, "features", EPODE_NS_STREAMS)) {
            on_features(e, st);
            return;
        }
        break;
    case ST_WAIT_PROCEED:
        if (is_name(st, "proceed", NS_TLS)) {
            /* The rest of this read is cleartext the server should not
             * have sent: the parser hands it back and recv refuses it. */
            epode_parser_reset(e->parser);
            e->restart_pending = 1;
            e->pending = PEND_STARTTLS;
            e->state = ST_WAIT_TLS;
            return;
        }
        if (is_name(st, "failure", NS_TLS)) {
            write_close(e);
            end(e, EPODE_ETLS, EPODE_REASON_TLS, "failure", "the server refused STARTTLS");
            return;
        }
        break;
    case ST_SASL: {
        const char *ns = epode_stanza_get_ns(st);
        if (e->sasl2) {
            if (ns && strcmp(ns, EPODE__NS_SASL2) == 0) {
                on_sasl2(e, st);
                return;
            }
            break;
        }
        if (ns && strcmp(ns, NS_SASL) == 0) {
            on_sasl(e, st);
            return;
        }
        break;
    }
    case ST_RESUME:
        if (epode_stanza_get_ns(st) && strcmp(epode_stanza_get_ns(st), NS_SM) == 0) {
            on_resume_answer(e, st);
            return;
        }
        break;
    case ST_BIND:
        if (is_iq_reply(st, BIND_ID)) {
            on_bind_reply(e, st);
            return;
        }
        break;
    case ST_HANDSHAKE:
        if (e->comp_no_id) {
            fail_stream(e, EPODE_STREAM_INVALID_XML,
                        "stream header without an id: no component handshake possible",
                        EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
            return;
        }
        if (is_name(st, "handshake", NS_COMPONENT)) {
            on_handshake_answer(e);
            return;
        }
        break;
    case ST_SESSION:
        if (is_iq_reply(st, SESSION_ID)) {
            if (strcmp(epode_stanza_get_type(st), "error") == 0) {
                write_close(e);
                end(e, EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL, "session",
                    "the server refused the session");
                return;
            }
            ready(e);
            return;
        }
        break;
    case ST_READY:
    case ST_CLOSING: {
        if (e->cfg.component)
            component_to_client(st);
        const char *ns = epode_stanza_get_ns(st);
        if (ns && strcmp(ns, EPODE_NS_CLIENT) == 0) {
            if (e->sm->enabled)
                e->sm->in++; /* handled: counted before the handlers run */
            if (e->cbs.stanza)
                e->cbs.stanza(e->user, st);
            return;
        }
        if (ns && strcmp(ns, NS_SM) == 0) {
            on_sm(e, st);
            return;
        }
        if (e->sasl2 && is_name(st, "features", EPODE_NS_STREAMS)) {
            on_late_features(e, st);
            return;
        }
        /* Stream-level elements we don't implement yet are ignored. */
        return;
    }
    default:
        break;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "unexpected <%s/> at this point of the stream",
             epode_stanza_get_name(st));
    fail_stream(e, EPODE_STREAM_UNSUPPORTED_STANZA_TYPE, msg, EPODE_EPROTOCOL,
                EPODE_REASON_PROTOCOL);
}

/* A well-formed stanza broke a local limit and the parser skipped it
 * (DESIGN, "Bad input and limits"): the stream goes on. It counts as
 * handled for stream management, the owner hears who sent it, and a
 * request gets a policy-violation error so its sender is not left
 * waiting. Before the session is up a skipped element is an error:
 * nothing the server sends then may be that big. */
static void on_skipped(epode__engine *e, epode_stanza_t *el)
{
    if (e->cfg.component)
        component_to_client(el);
    const char *ns = epode_stanza_get_ns(el);
    if ((e->state != ST_READY && e->state != ST_CLOSING) || !ns ||
        strcmp(ns, EPODE_NS_CLIENT) != 0) {
        fail_stream(e, EPODE_STREAM_POLICY_VIOLATION, "element over the local limits",
                    EPODE_EPROTOCOL, EPODE_REASON_PROTOCOL);
        return;
    }
    if (e->sm->enabled)
        e->sm->in++;
    int limit = (int)epode_parser_skipped_limit(e->parser);
    if (e->cbs.skipped)
        e->cbs.skipped(e->user, el, limit);
    const char *type = epode_stanza_get_type(el);
    if (strcmp(epode_stanza_get_name(el), "iq") == 0 && type &&
        (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) && epode_stanza_get_id(el) &&
        e->state == ST_READY) {
        epode_stanza_t *err;
        if (epode_stanza_error_reply(el, EPODE_COND_POLICY_VIOLATION, EPODE_ERRTYPE_DEFAULT,
                                     "the request is over this client's limits", 0, &err) == 0) {
            /* a component answers from the address asked */
            epode_stanza_set_from(err, e->cfg.component ? epode_stanza_get_to(el) : NULL);
            epode__engine_send(e, err);
            epode_stanza_unref(err);
        }
    }
}

static void on_parser(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    epode__engine *e = user;
    if (e->ended)
        return;
    switch (ev) {
    case EPODE_PARSER_STREAM_OPEN:
        if (e->feeding_wrapper)
            break; /* ours (framed): the server's <open/> comes as an element */
        on_stream_open(e, el);
        break;
    case EPODE_PARSER_STANZA:
        on_element(e, el);
        break;
    case EPODE_PARSER_SKIPPED:
        on_skipped(e, el);
        break;
    case EPODE_PARSER_STREAM_CLOSE:
        on_stream_close(e, "the server closed the stream");
        break;
    }
}

/* ---- public (internal) API --------------------------------------------------------------------- */

int epode__engine_new(const epode_mem_t *mem, const epode__engine_config *cfg,
                      const epode__engine_cbs *cbs, void *user, epode__engine **out)
{
    if (!cfg || !cfg->domain || !cbs || !out)
        return EPODE_EINVAL;
    epode__engine *e = epode__zalloc(mem, sizeof *e);
    if (!e)
        return EPODE_ENOMEM;
    e->mem = mem;
    e->cfg = *cfg;
    e->cbs = *cbs;
    e->user = user;
    epode__buf_init(&e->out, mem);
    int rc = EPODE_ENOMEM;
    if (!cfg->sm_state) {
        if (!(e->own_sm = epode__alloc(mem, sizeof *e->own_sm)))
            goto fail;
        epode__sm_init(e->own_sm, mem);
    }
    e->sm = cfg->sm_state ? cfg->sm_state : e->own_sm;
    if (!(e->domain = epode__strdup(mem, cfg->domain)) ||
        (cfg->localpart && !(e->localpart = epode__strdup(mem, cfg->localpart))) ||
        (cfg->resource && !(e->resource = epode__strdup(mem, cfg->resource))) ||
        (cfg->password && !(e->password = epode__secret_strdup(mem, cfg->password))) ||
        (cfg->mechanisms && !(e->mechanisms = epode__strdup(mem, cfg->mechanisms))))
        goto fail;
    if (cfg->fast_token && cfg->fast_mechanism &&
        (!(e->fast_token = epode__secret_strdup(mem, cfg->fast_token)) ||
         !(e->fast_mech = epode__strdup(mem, cfg->fast_mechanism)) ||
         (cfg->fast_token_jid && !(e->fast_jid = epode__strdup(mem, cfg->fast_token_jid)))))
        goto fail;
    /* the owner's strings: not kept (the engine has what it needs) */
    e->cfg.fast_token = e->cfg.fast_mechanism = e->cfg.fast_token_jid = NULL;
    if ((rc = epode_parser_new(mem, on_parser, e, &e->parser)) < 0)
        goto fail;
    if (cfg->max_stanza_bytes)
        epode_parser_set_limit(e->parser, EPODE_LIMIT_STANZA_BYTES, cfg->max_stanza_bytes);
    for (size_t i = 1; cfg->limits && i < cfg->nlimits; i++)
        if (cfg->limits[i])
            epode_parser_set_limit(e->parser, (epode_parser_limit_t)i, cfg->limits[i]);
    e->cfg.limits = NULL; /* the owner's array: not kept */
    *out = e;
    return 0;
fail:
    epode__engine_free(e);
    return rc;
}

void epode__engine_free(epode__engine *e)
{
    if (!e)
        return;
    const epode_mem_t *mem = e->mem;
    epode_parser_free(e->parser);
    epode__sasl_free(e->sasl);
    epode__buf_free(&e->out);
    epode__dealloc(mem, e->domain);
    epode__dealloc(mem, e->localpart);
    epode__dealloc(mem, e->resource);
    epode__secret_free(mem, e->password); /* wiped */
    epode__dealloc(mem, e->mechanisms);
    epode__secret_free(mem, e->fast_token); /* wiped */
    epode__dealloc(mem, e->fast_mech);
    epode__dealloc(mem, e->fast_jid);
    epode__dealloc(mem, e->bound_jid);
    epode__dealloc(mem, e->redirect);
    epode_stanza_unref(e->features);
    drop_tls_facts(e);
    if (e->own_sm)
        epode__sm_free(e->own_sm);
    epode__dealloc(mem, e->own_sm);
    epode__dealloc(mem, e);
}

/* A copy of the TLS facts for the SASL exchange (binding data, key size). */
static int keep_tls_facts(epode__engine *e, const epode__tls_facts *tls)
{
    if (!e->tls && !(e->tls = epode__alloc(e->mem, sizeof *e->tls)))
        return EPODE_ENOMEM;
    *e->tls = *tls;
    return 0;
}

static void drop_tls_facts(epode__engine *e)
{
    if (e->tls)
        explicit_bzero(e->tls, sizeof *e->tls); /* binding data: session secrets */
    epode__dealloc(e->mem, e->tls);
    e->tls = NULL;
}

int epode__engine_start(epode__engine *e, const epode__tls_facts *tls)
{
    if (e->state != ST_IDLE || e->ended)
        return EPODE_ESTATE;
    if (tls) {
        if (keep_tls_facts(e, tls) < 0)
            return EPODE_ENOMEM;
        e->tls_active = 1;
    }
    write_header(e);
    return out_status(e);
}

int epode__engine_tls_ready(epode__engine *e, const epode__tls_facts *tls)
{
    if (e->state != ST_WAIT_TLS || e->ended || !tls)
        return EPODE_ESTATE;
    if (keep_tls_facts(e, tls) < 0)
        return EPODE_ENOMEM;
    e->tls_active = 1;
    write_header(e);
    return out_status(e);
}

static void run_pending(epode__engine *e)
{
    enum pending p = e->pending;
    e->pending = PEND_NONE;
    if (p == PEND_STARTTLS) {
        if (e->cbs.event)
            e->cbs.event(e->user, EPODE__ENG_STARTTLS);
    } else if (p == PEND_RESTART) {
        write_header(e);
        if (e->cbs.event)
            e->cbs.event(e->user, EPODE__ENG_AUTHENTICATED);
    }
}

static int recv_loop(epode__engine *e, const char *data, size_t len);

int epode__engine_recv(epode__engine *e, const char *data, size_t len)
{
    if (e->ended)
        return EPODE_ECLOSED;
    if (e->state == ST_WAIT_TLS) {
        /* Nothing may arrive in cleartext between <proceed/> and TLS. */
        fail_stream(e, EPODE_STREAM_POLICY_VIOLATION, "data after <proceed/>", EPODE_ETLS,
                    EPODE_REASON_TLS);
        return EPODE_ETLS;
    }
    if (e->cbs.log && len) {
        if (e->sasl2 && e->state == ST_SASL && (e->fast_req || e->fast_used)) {
            /* The answer may carry a FAST token, in any XML spelling
             * (white space around '=', character references), cut
             * anywhere between reads: none of it goes to the log. */
            char line[96];
            int n = snprintf(line, sizeof line,
                             "[SASL2 answer, %zu bytes, not logged: it may carry a token]", len);
            e->cbs.log(e->user, 0, line, (size_t)n);
        } else {
            e->cbs.log(e->user, 0, data, len);
        }
    }
    e->in_recv = 1;
    int rc = recv_loop(e, data, len);
    e->in_recv = 0;
    return rc;
}

/* The first answer of a server that is not speaking XMPP at all (an
 * HTTP server, an SMTP banner on the port given): libxml2 only says
 * "Document is empty". Returns a text naming what arrived instead, or
 * NULL when the bytes did look like XML. */
static const char *not_xmpp_text(const epode__engine *e, const char *data, size_t len,
                                 char *buf, size_t size)
{
    if (e->state != ST_WAIT_HEADER || epode_parser_stream_is_open(e->parser))
        return NULL;
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (i == len || data[i] == '<' || (unsigned char)data[i] == 0xEF /* a BOM */)
        return NULL;
    char first[48];
    size_t n = 0;
    for (; i < len && n + 1 < sizeof first && data[i] != '\r' && data[i] != '\n'; i++)
        first[n++] = (data[i] >= 0x20 && data[i] < 0x7f) ? data[i] : '?';
    first[n] = '\0';
    snprintf(buf, size, "the server did not answer in XML (its first line is \"%s\"): is this "
                        "an XMPP port?", first);
    return buf;
}

static int recv_loop(epode__engine *e, const char *data, size_t len)
{
    while (len > 0 && !e->ended) {
        long rc = epode_parser_feed(e->parser, data, len);
        if (rc < 0) {
            epode_stream_cond_t cond = epode_parser_condition(e->parser);
            if (cond == EPODE_STREAM_RESOURCE_CONSTRAINT) {
                end(e, EPODE_ENOMEM, EPODE_REASON_NETWORK, NULL, "out of memory");
            } else {
                char why[160];
                const char *text = not_xmpp_text(e, data, len, why, sizeof why);
                fail_stream(e, cond != EPODE_STREAM_NONE ? cond : EPODE_STREAM_NOT_WELL_FORMED,
                            text ? text : epode_parser_error_text(e->parser), EPODE_EPROTOCOL,
                            EPODE_REASON_PROTOCOL);
            }
            return EPODE_EPROTOCOL;
        }
        size_t left = (size_t)rc;
        if (e->restart_pending) {
            e->restart_pending = 0;
            if (e->pending == PEND_STARTTLS && left > 0) {
                fail_stream(e, EPODE_STREAM_POLICY_VIOLATION,
                            "the server sent cleartext after <proceed/>", EPODE_ETLS,
                            EPODE_REASON_TLS);
                return EPODE_ETLS;
            }
            run_pending(e);
        }
        data += len - left;
        len = left;
    }
    int rc = out_checked(e);
    if (e->ended)
        return rc < 0 ? rc : EPODE_ECLOSED;
    return 0;
}

void epode__engine_eof(epode__engine *e)
{
    if (e->ended)
        return;
    if (e->state == ST_CLOSING)
        end(e, EPODE_ECLOSED, EPODE_REASON_CLOSED, NULL, "closed");
    else
        end(e, EPODE_EEOF, EPODE_REASON_NETWORK, NULL,
            "the server closed the connection without closing the stream");
}

const char *epode__engine_output(const epode__engine *e, size_t *len)
{
    *len = e->out.len;
    return e->out.data;
}

void epode__engine_consume(epode__engine *e, size_t n)
{
    epode__buf_consume(&e->out, n);
}

int epode__engine_send(epode__engine *e, const epode_stanza_t *st)
{
    if (e->state != ST_READY || e->ended)
        return EPODE_ESTATE;
    if (!st)
        return EPODE_EINVAL;
    /* A handler sending while our answer found no room: that failure is
     * not ours to clear (out_checked ends the stream for it). */
    if (e->out.failed)
        return EPODE_ENOMEM;
    size_t before = e->out.len;
    write_stanza_q(e, st, 1); /* logged below once it is known to go out now */
    if (e->out.failed) {
        /* Keep what was queued before: drop the partial stanza. */
        e->out.failed = 0;
        e->out.len = before;
        return EPODE_ENOMEM;
    }
    /* Only stanzas count under stream management (XEP-0198 §4): a
     * top-level element of another namespace (a "nonza" such as
     * XEP-0352's <active/>) is written as is, never queued or resent. */
    const char *ns = epode_stanza_get_ns(st);
    int counted = e->sm->requested && (!ns || strcmp(ns, "jabber:client") == 0);
    if (counted) {
        if (epode__sm_push(e->sm, epode_stanza_get_id(st), e->out.data + before,
                           e->out.len - before, holds_password(st)) < 0) {
            e->out.len = before; /* not sent, not counted */
            return EPODE_ENOMEM;
        }
        if (e->sm_hold) {
            /* waits in the queue for <enabled/>, and is logged then (it
             * was logged twice, here and when it went) */
            e->out.len = before;
            return 0;
        }
    }
    log_out(e, before);
    if (counted) {
        unsigned every = e->cfg.sm_request_every ? e->cfg.sm_request_every : 5;
        if (++e->sm_since_request >= every)
            epode__engine_sm_request(e);
    }
    return 0;
}

int epode__engine_sm_request(epode__engine *e)
{
    /* Only on a stream where SM runs: the owner's state says "enabled"
     * from the last session while a new one is still logging in, and an
     * <r/> before authentication is a stream error. */
    if (!e->sm->requested || e->ended || (e->state != ST_READY && e->state != ST_CLOSING))
        return EPODE_ESTATE;
    if (e->sm_hold)
        return 0; /* asked once the queue goes out */
    e->sm_since_request = 0;
    write_raw(e, "<r xmlns='" NS_SM "'/>");
    return out_checked(e);
}

int epode__engine_sm_holding(const epode__engine *e) { return e->sm_hold && !e->ended; }

int epode__engine_sm_enabled(const epode__engine *e)
{
    return e->sm->enabled && (e->state == ST_READY || e->state == ST_CLOSING);
}
int epode__engine_sm_resumable(const epode__engine *e)
{
    return e->cfg.sm && e->sm->resumable && e->sm->id;
}
size_t epode__engine_sm_pending(const epode__engine *e) { return epode__sm_pending(e->sm); }

void epode__engine_sm_set_counters(epode__engine *e, uint32_t out, uint32_t in)
{
    e->sm->out = e->sm->acked = out;
    e->sm->in = in;
}

int epode__engine_send_raw(epode__engine *e, const char *data, size_t len)
{
    if (e->ended)
        return EPODE_ESTATE;
    epode__buf_append(&e->out, data, len);
    return out_checked(e);
}

int epode__engine_close(epode__engine *e)
{
    if (e->ended)
        return EPODE_ESTATE;
    if (e->state == ST_CLOSING)
        return 0;
    if (e->state == ST_IDLE || e->state == ST_WAIT_TLS) {
        end(e, EPODE_ECLOSED, EPODE_REASON_CLOSED, NULL, "closed");
        return 0;
    }
    if (e->sm_hold) {
        /* Sent after <enable/>, held for the answer: they belong to this
         * session, and must go out before our stream ends. */
        e->sm_hold = 0;
        epode__sm_each(e->sm, resend_one, e);
        write_raw(e, "<r xmlns='" NS_SM "'/>");
        write_close(e);
        e->state = ST_CLOSING;
        return out_status(e);
    }
    /* Ask for a last ack first: the server answers <r/> before it closes
     * its side, so what it handled is confirmed, not reported back. */
    if (e->sm->enabled && epode__sm_pending(e->sm))
        epode__engine_sm_request(e);
    write_close(e);
    e->state = ST_CLOSING;
    return out_checked(e);
}

void epode__engine_abort(epode__engine *e, int err, int reason, const char *text)
{
    end(e, err, reason, NULL, text);
}

/* The bytes a tree holds: its header and every block's storage. */
static size_t tree_bytes(const epode_stanza_t *st)
{
    const epode__tree *t = st ? st->tree : NULL;
    return t ? sizeof *t + t->size : 0;
}

void epode__engine_footprint(const epode__engine *e, epode__footprint *f)
{
    f->engine += sizeof *e + epode__str_bytes(e->domain) + epode__str_bytes(e->localpart) +
                 epode__str_bytes(e->resource) + epode__str_bytes(e->mechanisms) +
                 epode__str_bytes(e->bound_jid) + epode__str_bytes(e->redirect);
    if (e->password)
        f->engine += epode__str_bytes(e->password); /* page-backed until SASL starts */
    f->buffers += e->out.cap;
    f->features += tree_bytes(e->features);
    if (e->own_sm)
        f->sm += sizeof *e->own_sm + epode__sm_footprint(e->own_sm);
}

int epode__engine_compact(epode__engine *e)
{
    if (e->ended || e->in_recv)
        return EPODE_ESTATE;
    int rc = epode__parser_compact(e->parser);
    if (e->out.len == 0)
        epode__buf_free(&e->out);
    return rc;
}

int epode__engine_is_ready(const epode__engine *e) { return e->state == ST_READY; }
int epode__engine_has_ended(const epode__engine *e) { return e->ended; }
const char *epode__engine_bound_jid(const epode__engine *e) { return e->bound_jid; }
const char *epode__engine_mechanism(const epode__engine *e) { return e->mech[0] ? e->mech : NULL; }
const char *epode__engine_redirect(const epode__engine *e) { return e->redirect; }
int epode__engine_used_sasl2(const epode__engine *e) { return e->sasl2; }
int epode__engine_used_fast(const epode__engine *e) { return e->fast_used; }
int epode__engine_fast_refused(const epode__engine *e) { return e->fast_refused; }
int epode__engine_resume_unanswered(const epode__engine *e)
{
    return e->state == ST_RESUME;
}

int epode__engine_sasl2_sm_unanswered(const epode__engine *e)
{
    return e->sasl2 && (e->sasl2_sm_enable || e->sasl2_resume) && !e->authenticated;
}
int epode__engine_carbons_inline(const epode__engine *e)
{
    return e->carbons_inline && e->authenticated;
}
const epode_stanza_t *epode__engine_features(const epode__engine *e) { return e->features; }
