/* lib/conn/conn_int.h — the context and connection objects, shared by
 * ctx.c and conn.c. The only layer that wires loop, net, transport,
 * stream engine and dispatch together. */
#ifndef EPODE__CONN_INT_H
#define EPODE__CONN_INT_H

#include <stdarg.h>
#include <stdint.h>

#include "dispatch/dispatch.h"
#include "epode/conn.h"
#include "epode/ctx.h"
#include "epode/handler.h"
#include "epode/loop.h"
#include "epode/transport.h"
#include "loop/loop.h"
#include "net/net.h"
#include "stream/engine.h"
#include "stream/sm.h"
#include "transport/transport.h"

/* Parser limits are indexed by epode_parser_limit_t (1..TEXT_BYTES). */
#define EPODE__NLIMITS (EPODE_LIMIT_TEXT_BYTES + 1)

/* One c-ares socket watched for the resolver. */
typedef struct net_watch {
    struct net_watch *next;
    epode_ctx_t *ctx;
    int fd;
    epode__io io;
} net_watch;

/* TLS credentials shared by the connections that use the same trust
 * settings (the system store costs megabytes: one per context). */
typedef struct creds_entry {
    struct creds_entry *next;
    char *ca_file, *cert_file, *key_file; /* NULL-able keys */
    epode__tls_creds *creds;
    unsigned refs;
} creds_entry;

struct epode_ctx {
    const epode_mem_t *mem;
    epode__loop *loop;
    epode__net *net;
    char *dns_servers;
    net_watch *net_watches;
    epode__timer net_timer;
    creds_entry *creds;
    unsigned conns;
    epode_log_cb log;
    epode_log_level_t log_level;
    void *log_user;
    size_t limits[EPODE__NLIMITS]; /* parser limit defaults (0: the parser's) */
};

enum conn_state {
    C_IDLE = 0,
    C_RESOLVING,
    C_CONNECTING,
    C_OPEN,    /* the transport stack opens (a proxy's tunnel, TLS's handshake) */
    C_STREAM,  /* the engine runs the stream */
    C_CLOSING  /* closing handshake in progress */
};

/* SASL2, Bind2 and FAST options and state of a connection (conn.c),
 * made on first need; all zero: the defaults. */
struct conn_modern {
    int sasl2_off, fast_off;
    int bind2_mode;      /* 0: unless the JID has a resource; 1: always; -1: never */
    unsigned bind2_flags;
    char *bind2_tag, *ua_id, *ua_software, *ua_device;
    epode_fast_load_cb fast_load;
    epode_fast_store_cb fast_store;
    void *fast_user;
    char *fast_token, *fast_mech, *fast_expiry; /* kept in memory; the token a secret */
    char *fast_jid;      /* the bare JID the kept token was issued to */
    int ua_id_made;      /* ua_id was generated here, not given by the application */
    int fast_retry;      /* our token was refused: log in again at once */
    int fast_skip;       /* ...and with the password, whatever the store says */
    int sm_inline_off;   /* the server never answered SM inside SASL2 */
};

/* An application's transport (epode_conn_set_transport): on the heap,
 * as most connections never have one (an inline table cost every idle
 * session 96 bytes). */
struct conn_app {
    epode_transport_ops_t ops; /* a full-size copy */
    void *user;
};

struct epode_conn {
    epode_ctx_t *ctx;

    /* options */
    char *jid, *localpart, *domain, *resource, *password;
    char *host;
    unsigned port;
    epode_tls_mode_t tls_mode;
    char *ca_file, *cert_file, *key_file;
    int tls_max;
    int tls_min;  /* 0: the default (12) */
    int verify;
    epode_cert_cb cert_cb;
    void *cert_user;
    char *mechanisms;
    unsigned keepalive_s;
    unsigned connect_ms, login_ms;
    int sm;
    epode_ack_cb ack_cb;
    void *ack_user;
    epode__sm sm_state;  /* kept across connections for resumption */
    unsigned sm_every, sm_wait_ms, sm_dead_ms;
    int sm_resend;
    uint64_t r_sent_at;  /* when we last asked for an ack (dead-link check) */
    int probing;         /* that ask was a keepalive's: an answer is due */
    uint64_t ready_at;   /* when this session became READY or RESUMED (0: not yet) */
    /* Back-pressure (epode_conn_set_drain_threshold, _set_send_limits). */
    size_t drain_low, max_unacked, max_pending;
    int drain_due;       /* DRAINED owed: above the low-water mark, or EBUSY */
    int stall_asked;     /* queue at its bound: <r/> asked for it */
    uint64_t stall_since; /* …and written (all output gone) at this time */
    epode__timer stall_timer; /* ends the stream if no ack by then */
    epode_stanza_t *last_presence; /* the last broadcast presence sent */
    int presence_pending; /* during READY: last_presence still to re-send */
    unsigned sessions;   /* READY count: >1 means a fresh session after a cut */
    int reconnect;       /* automatic reconnection on */
    unsigned rc_min, rc_max, rc_attempts;
    unsigned fruitless;  /* sessions ended by the server's word, no progress */
    int resume_unproven; /* resumed with stanzas to resend, none confirmed yet */
    int stuck_check;     /* that stream ended so: judge the next <resumed h/> */
    uint32_t stuck_h;    /* by this h (the server's count when it resumed) */
    size_t limits[EPODE__NLIMITS]; /* parser limits (0: the context's default) */
    unsigned scram_min_iterations;
    int register_only, register_cleartext; /* epode_conn_set_register */
    int component;       /* epode_conn_set_component: domain and password are its own */
    epode__proxy *proxy; /* epode_conn_set_proxy, or NULL */
    struct epode__ws_url *ws_url; /* epode_conn_set_websocket, or NULL */
    struct epode__bosh_url *bosh_url; /* epode_conn_set_bosh, or NULL (one of the two) */
    struct conn_discovery *discovery; /* set_websocket/set_bosh(NULL): XEP-0156, or NULL */
    struct conn_app *app; /* epode_conn_set_transport, or NULL: epode's own TCP */
    unsigned depth;      /* loop entry points running for this connection */
    int free_pending;    /* epode_conn_free() called: freed when depth is 0 */
    int user_closed;     /* epode_conn_close() was called: no reconnect */
    int compact_now;     /* logged in: give back the parser's context at once */
    epode__timer reconnect_timer;

    /* running */
    enum conn_state state;
    int starttls_pending;
    epode__query *query;
    epode__target *targets;
    size_t ntargets, next_target;
    int direct_tls; /* the current target wants TLS from the first byte */
    /* How this attempt's connects failed so far: 0 none tried, 1 every
     * one in name resolution (ends as EPODE_EDNS), 2 some otherwise. */
    int connect_failures;
    epode__transport *tr;
    int fd;
    int tls_verified;    /* the certificate verified for the domain */
    epode__io io;
    creds_entry *creds;
    epode__engine *engine;
    epode__dispatch *dispatch;
    /* The IQ request being dispatched (borrowed from it, NULL outside
     * its dispatch) and whether the application answered it already. */
    const char *iq_req_id, *iq_req_from;
    int iq_req_answered;
    unsigned redirects; /* see-other-host hops followed in this attempt */
    int pending_connecting_event;
    epode__timer kick, login_timer, keepalive_timer, close_timer, dispatch_timer, idle_timer, sm_timer;
    uint64_t last_write, last_read;

    /* outcome of the last connection */
    epode_disconnect_reason_t reason;
    int err;
    /* Notes for the application, on the heap and only while there is
     * something to say (an idle session carries none of the old 1 KB of
     * inline arrays): NULL means empty. Cut to the sizes in conn.c. */
    char *text, *security, *last_connect_error;
    const char *condition;  /* a static name, or condition_note */
    char *condition_note;   /* a condition epode does not know by name */
    struct conn_note *retired; /* replaced notes: alive until the next attempt */
    char *redirect;
    struct conn_modern *modern; /* SASL2, Bind2, FAST (issue 16); NULL: the defaults */
};

/* ---- how a connection ended (outcome.c) ------------------------------------------- */
/* The longest each note may be (bytes with the NUL): a server's text is
 * its to choose, and what the application reads back is one line, not a
 * megabyte. */
#define NOTE_CONDITION 64
#define NOTE_TEXT 600
#define NOTE_SECURITY 128
#define NOTE_CONNECT_ERROR 300
/* Replaces the note *slot (c->text, ->security, ->last_connect_error)
 * with the formatted text, cut to max - 1 bytes on a UTF-8 character
 * boundary; "" leaves it NULL. The old text is retired, not freed. */
void epode__conn_vnote(epode_conn_t *c, char **slot, size_t max, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
void epode__conn_note(epode_conn_t *c, char **slot, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The disconnect condition: a static name for every condition epode
 * knows (RFC 6120 stream errors and SASL failures), a note otherwise;
 * NULL or "" clears it. */
void epode__conn_set_condition(epode_conn_t *c, const char *cond);
/* Ends the notes' words for the application: `all` at a new attempt and
 * when the connection goes (the pointers may die then); otherwise (a
 * redirect followed within the attempt) they are only retired. */
void epode__conn_clear_notes(epode_conn_t *c, int all);
/* Sessions in a row that ended on the server's word (a stream error, or
 * data we refused) without any progress; then reconnection gives up, so
 * a stanza that kills every stream (ours or the server's) cannot make us
 * reconnect forever. A session of EPODE__LASTING_MS resets the count. */
#define EPODE__MAX_FRUITLESS 5
#define EPODE__LASTING_MS 60000
/* Whether the way c ended (reason, error, condition, fruitless count,
 * options) calls for automatic reconnection. */
int epode__conn_should_reconnect(const epode_conn_t *c);

/* ---- how a link comes up (link.c), and what it needs of conn.c -------------------- */
/* The first turn after connect: CONNECTING, then the targets (no lookup
 * with a named server, a proxy, a WebSocket URL or the application's pipe). */
void epode__link_start(epode_conn_t *c);
/* The resolver's answer (SRV targets), and each connect's outcome. */
void epode__link_targets(epode_conn_t *c, int status, const epode__target *t, size_t n);
void epode__link_connected(epode_conn_t *c, int status, int fd, const char *why);
/* Connects to the next usable target; none left ends the attempt. */
void epode__link_next_target(epode_conn_t *c);
/* The stack is open: checks the certificate, runs the stream over it. */
void epode__link_open(epode_conn_t *c);
/* STARTTLS: TLS onto the stack's top (`why`: a credentials file's trouble). */
int epode__link_starttls(epode_conn_t *c, char *why, size_t why_len);
/* conn.c's guards and steps, for link.c: the loop callbacks (entered
 * through the guard that defers a free), ending the link, events. */
void epode__conn_on_io(void *user, unsigned revents);
void epode__conn_on_connected(void *user, int status, int fd, const char *why);
void epode__conn_on_targets(void *user, int status, const epode__target *t, size_t n);
void epode__conn_on_login_timeout(void *user);
void epode__conn_fail(epode_conn_t *c, int err, epode_disconnect_reason_t reason, const char *text);
void epode__conn_record(epode_conn_t *c, int err, epode_disconnect_reason_t reason, const char *text);
void epode__conn_teardown(epode_conn_t *c);
void epode__conn_emit(epode_conn_t *c, epode_conn_event_t ev);
void epode__conn_pump(epode_conn_t *c);
int epode__conn_start_engine(epode_conn_t *c, const epode__tls_facts *tls);

/* What an outgoing chunk of XML looks like in the log (log_redact.c):
 * `data` itself, or `buf` (of `size` bytes) holding it with the
 * passwords of in-band registration replaced by "[redacted]"; *len is
 * updated. */
const char *epode__log_redact(const char *data, size_t *len, char *buf, size_t size);

/* Runs the stream over an already-open transport (tests: a memory pair
 * to a scripted server), skipping DNS, TCP and TLS; takes ownership of t
 * on success. The transport has no fd: call epode__conn_poke() after
 * putting bytes in its other end. */
int epode__conn_start_over(epode_conn_t *c, epode__transport *t);
/* Adds what the connection holds, by part, to f (bench/footprint.c): all
 * but the transport, the parser's own share and the loop's timer slots,
 * which that benchmark measures around them. */
struct epode__footprint;
void epode__conn_footprint(const epode_conn_t *c, struct epode__footprint *f);
void epode__conn_poke(epode_conn_t *c);

void epode__ctx_log(epode_ctx_t *ctx, epode_log_level_t level, const char *area,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Copies `in` to out (size > 0) as one line: CR and LF as \r and \n,
 * other control characters as '?' (log lines and notes carry servers'
 * words). Cut at size, NUL-terminated. */
void epode__one_line(char *out, size_t size, const char *in);
epode__net *epode__ctx_net(epode_ctx_t *ctx);
/* Shared TLS credentials for these settings (reference counted). On
 * failure `why` (may be NULL) says which file and why. */
int epode__ctx_creds_get(epode_ctx_t *ctx, const char *ca, const char *cert, const char *key,
                         char *why, size_t why_len, creds_entry **out);
void epode__ctx_creds_put(epode_ctx_t *ctx, creds_entry *e);

/* WebSocket (link.c): frees the connection's URLs (WebSocket, BOSH);
 * fills the layer's options from it and the connection's limits (0: no
 * WebSocket). */
struct epode__ws_options;
void epode__conn_ws_free(epode_conn_t *c);
/* curl's form of the connection's proxy ("socks5h://host:port" or
 * "http://host:port"; credentials apart) in buf; 1 if the proxy resolves
 * names itself (both kinds do), 0 without a proxy. */
int epode__conn_curl_proxy(const epode_conn_t *c, char *buf, size_t len);

/* XEP-0156 discovery (discover.c, with libcurl). want: remember the
 * kind asked for (bosh 1: BOSH, 0: WebSocket); free: forget it (a URL or
 * "" was set, or the connection goes); cancel: stop a running lookup
 * (the link is released). start (from link_start): 0 when there is
 * nothing to look up (no wish, or the URL is known), 1 when a lookup
 * runs (it continues with epode__link_start_found, or ends the attempt),
 * or an error. done: the lookup's outcome (through conn.c's guard). */
int epode__discover_want(epode_conn_t *c, int bosh);
void epode__discover_free(epode_conn_t *c);
void epode__discover_cancel(epode_conn_t *c);
int epode__discover_start(epode_conn_t *c);
void epode__discover_done(epode_conn_t *c, int status, const char *ws, const char *bosh,
                          const char *text);
void epode__conn_on_discovered(void *user, int status, const char *ws, const char *bosh,
                               const char *text);
/* link_start's second half: the endpoint is known (or SRV finds it). */
void epode__link_start_found(epode_conn_t *c);
int epode__conn_ws_options(const epode_conn_t *c, struct epode__ws_options *o);

#endif
