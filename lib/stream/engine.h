/* lib/stream/engine.h — the XMPP client session engine, sans-I/O (the
 * nghttp2 way): bytes in (epode__engine_recv), bytes out
 * (epode__engine_output/consume), events out through callbacks. It runs
 * the stream open and restarts, features, STARTTLS (asking its owner to
 * upgrade the transport; it never touches TLS itself), SASL, resource
 * binding, the legacy session, stream errors and close. It knows no
 * sockets, no clock and no loop. */
#ifndef EPODE__ENGINE_H
#define EPODE__ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "epode/common.h"
#include "epode/conn.h"
#include "epode/stanza.h"

typedef struct epode__engine epode__engine;

typedef struct epode__engine_config {
    const char *domain;     /* the XMPP domain */
    const char *localpart;  /* account name (SASL authcid); NULL: none */
    const char *resource;   /* requested at bind; NULL: server's choice */
    const char *password;
    const char *mechanisms; /* allowed SASL mechanisms, or NULL */
    epode_tls_mode_t tls_mode;
    size_t max_stanza_bytes; /* parser limit; 0: default */
    const size_t *limits;    /* by epode_parser_limit_t, 0 entries: default; or NULL */
    size_t nlimits;
    unsigned scram_min_iterations; /* 0: default */
    /* Stream-management state kept by the owner across connections (for
     * resumption); NULL: the engine keeps its own, forgotten with it. */
    struct epode__sm *sm_state;
    unsigned sm_request_every; /* <r/> after this many unacked stanzas (0: 5) */
    uint32_t sm_stuck_h;     /* a <resumed/> with this h again means the session is stuck */
    /* SASL2 (XEP-0388) instead of RFC 6120 SASL when the server offers
     * it, with inline Bind2 (XEP-0386), stream management inside it, and
     * FAST tokens (XEP-0484). */
    const char *ua_id;       /* <user-agent id/>: a stable UUID; NULL: none (no FAST then) */
    /* ...or asked for when a server first offers SASL2 (the owner makes it then; NULL: none) */
    const char *(*ua_id_cb)(void *user);
    const char *ua_software, *ua_device; /* its <software/>, <device/>, or NULL */
    const char *bind2_tag;   /* Bind2 <tag/>; NULL: "epode" */
    /* A FAST token to authenticate with instead of the password (inside
     * TLS only, when the server offers its mechanism), and its mechanism
     * (HT-SHA-256-NONE/-UNIQ/-EXPR). Copied as secrets. */
    const char *fast_token;
    const char *fast_mechanism;
    /* The bare JID the token was issued to: it is used only when that is
     * localpart@domain (a token never goes to another account). */
    const char *fast_token_jid;
    /* FAST: the server issued a token (token, its mechanism and expiry —
     * an XEP-0082 date-time, or NULL), or refused the one we used (all
     * NULL: forget it). The strings are wiped after the call; `user` is
     * the engine's. May be NULL. */
    void (*fast_token_cb)(void *user, const char *token, const char *mechanism,
                          const char *expiry);

    /* Flags, one bit each: the engine keeps its config for the session's
     * life, so every idle session carries them (set them to 0 or 1). */
    unsigned have_client_cert : 1;
    unsigned register_only : 1;      /* XEP-0077: stop before SASL; READY unauthenticated */
    unsigned register_cleartext : 1; /* ...even without TLS (explicitly insecure) */
    /* A message-framed transport (RFC 7395 WebSocket): <open/> and
     * <close/> instead of the stream header and end, each element a
     * message of its own that declares its namespaces. */
    unsigned framed : 1;
    /* XEP-0114 component: a jabber:component:accept stream to `domain`,
     * the handshake with `password` as the shared secret instead of
     * STARTTLS, SASL and bind (TLS, if any, is the owner's direct TLS);
     * no stream management. Stanzas in jabber:component:accept are handed
     * over as jabber:client, so the same handlers and helpers apply. */
    unsigned component : 1;
    unsigned sm : 1;                 /* enable stream management when offered */
    unsigned sm_resend : 1;          /* on a refused resume, resend (1) or hand back (0) */
    unsigned sm_stuck_check : 1;     /* the last resumed stream confirmed none of its resend */
    unsigned sasl2 : 1;              /* SASL2 when offered (above) */
    unsigned bind2_off : 1;          /* no Bind2: the classic bind (an exact resource) */
    unsigned sm_inline_off : 1;      /* never ask for SM inside SASL2/Bind2 (classic <enable/>, <resume/>) */
    unsigned bind2_carbons : 1;      /* enable carbons inline when offered */
    unsigned bind2_csi_inactive : 1; /* start CSI-inactive inline when offered */
    unsigned fast_request : 1;       /* ask for a FAST token at login */
} epode__engine_config;

/* What the owner knows about TLS on the link, handed to the engine when
 * TLS comes up (direct TLS before start; STARTTLS in tls_ready). */
typedef struct epode__tls_facts {
    int version;            /* 12 or 13 */
    unsigned key_bits;
    /* channel-binding data the owner could compute (len 0: none) */
    unsigned char tls_unique[64];
    size_t tls_unique_len;
    unsigned char tls_exporter[64];
    size_t tls_exporter_len;
    /* the certificate verified for the domain (not merely accepted by the
     * application's callback, nor verification off): FAST tokens are
     * used and asked for only then */
    int verified;
} epode__tls_facts;

enum epode__engine_event {
    EPODE__ENG_STARTTLS = 1, /* upgrade the transport now, then tls_ready */
    EPODE__ENG_AUTHENTICATED,
    EPODE__ENG_READY,
    EPODE__ENG_RESUMED  /* a previous session was resumed (no new bind) */
};

typedef struct epode__engine_cbs {
    void (*event)(void *user, int event);
    /* A stanza after READY (borrowed for the call). */
    void (*stanza)(void *user, epode_stanza_t *st);
    /* The stream is over: err is an EPODE_E… code (EPODE_ECLOSED for a
     * clean close), reason an epode_disconnect_reason_t, condition the
     * stream/SASL condition or NULL, text a sentence. Bytes already in
     * the output (e.g. our stream error) should still be flushed. */
    void (*ended)(void *user, int err, int reason, const char *condition, const char *text);
    /* XML traffic for logs (out = 1 for ours); credentials redacted. May
     * be NULL. */
    void (*log)(void *user, int out, const char *data, size_t len);
    /* Stream management: a sent stanza was acknowledged (acked 1) or is
     * given back unacknowledged (acked 0: the stream ended first). id
     * may be NULL; bytes are the stanza as written. May be NULL. */
    void (*sm_result)(void *user, int acked, const char *id, const char *bytes, size_t len);
    /* A stanza over the parser's local limits was skipped (the stream
     * goes on): `st` holds its name and from/to/id/type only, `limit` an
     * epode_parser_limit_t. May be NULL. */
    void (*skipped)(void *user, const epode_stanza_t *st, int limit);
} epode__engine_cbs;

int epode__engine_new(const epode_mem_t *mem, const epode__engine_config *cfg,
                      const epode__engine_cbs *cbs, void *user, epode__engine **out);
void epode__engine_free(epode__engine *e);

/* Opens the stream (writes our header). `tls` non-NULL when the link is
 * already TLS (direct TLS). */
int epode__engine_start(epode__engine *e, const epode__tls_facts *tls);
/* After EPODE__ENG_STARTTLS: the transport is now TLS, handshake done
 * and certificate accepted. Restarts the stream. */
int epode__engine_tls_ready(epode__engine *e, const epode__tls_facts *tls);

/* Feeds received bytes. Returns 0, or a negative code after `ended` has
 * been called (the engine is then finished; feed nothing more). */
int epode__engine_recv(epode__engine *e, const char *data, size_t len);
/* The transport reached end of stream. */
void epode__engine_eof(epode__engine *e);

/* Bytes to write (borrowed until the next engine call). */
const char *epode__engine_output(const epode__engine *e, size_t *len);
void epode__engine_consume(epode__engine *e, size_t n);

/* Serializes a stanza into the output (READY only: EPODE_ESTATE). */
int epode__engine_send(epode__engine *e, const epode_stanza_t *st);
/* Raw bytes (whitespace keepalive). */
int epode__engine_send_raw(epode__engine *e, const char *data, size_t len);
/* Writes </stream:stream>; `ended` follows when the server closes too
 * (or the owner times out and calls epode__engine_abort). */
int epode__engine_close(epode__engine *e);
/* Ends the engine from outside (network error, timeout): calls `ended`
 * with these values unless it already ended. */
void epode__engine_abort(epode__engine *e, int err, int reason, const char *text);

/* The link is idle: give back the parser's libxml2 context and an empty
 * output buffer (about 16 KB); both come back on the next bytes. */
int epode__engine_compact(epode__engine *e);

/* Adds what the engine holds to f (engine, buffers, features, sm when it
 * keeps its own; the parser's share by the parser's struct and saved
 * header, which bench/footprint.c measures on its own). */
struct epode__footprint;
void epode__engine_footprint(const epode__engine *e, struct epode__footprint *f);

int epode__engine_is_ready(const epode__engine *e);
/* 1 if the stream-management session can be resumed on a new stream. */
int epode__engine_sm_resumable(const epode__engine *e);
/* 1 while <enable/> waits for its answer (sent stanzas are held). */
int epode__engine_sm_holding(const epode__engine *e);
/* 1 once the server enabled stream management on this stream. */
int epode__engine_sm_enabled(const epode__engine *e);
/* Sends <r/> now (if stream management is on). */
int epode__engine_sm_request(epode__engine *e);
/* Stanzas sent and not yet acknowledged. */
size_t epode__engine_sm_pending(const epode__engine *e);
/* Tests: start the counters at these values (wrap-around tests). */
void epode__engine_sm_set_counters(epode__engine *e, uint32_t out, uint32_t in);
int epode__engine_has_ended(const epode__engine *e);
const char *epode__engine_bound_jid(const epode__engine *e);
/* SASL mechanism in use (after auth started), or NULL. */
const char *epode__engine_mechanism(const epode__engine *e);
/* 1 once the login used SASL2 (XEP-0388). */
int epode__engine_used_sasl2(const epode__engine *e);
/* 1 once the login used a FAST token (it may have been refused). */
int epode__engine_used_fast(const epode__engine *e);
/* 1 when the server refused our FAST token: log in with the password next. */
int epode__engine_fast_refused(const epode__engine *e);
/* 1 when this login asked for stream management inside SASL2 and has
 * not been answered (authenticated) yet: a server that never answers
 * such a login (Prosody 0.12 with mod_sasl2_sm) is told by this. */
int epode__engine_sasl2_sm_unanswered(const epode__engine *e);
/* 1 while a classic <resume/> waits for <resumed/> or <failed/>. */
int epode__engine_resume_unanswered(const epode__engine *e);
/* 1 when carbons were enabled inline at Bind2. */
int epode__engine_carbons_inline(const epode__engine *e);
/* The server's most recent <stream:features/> (borrowed), or NULL. */
const epode_stanza_t *epode__engine_features(const epode__engine *e);
/* The see-other-host target from a stream error, or NULL. */
const char *epode__engine_redirect(const epode__engine *e);

#endif
