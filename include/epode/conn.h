/* epode/conn.h — a client connection: options, lifecycle, events, sending.
 *
 * Secure by default: TLS is required and verified against the system trust
 * store (or a CA file) and the XMPP domain (RFC 6125); PLAIN is never sent
 * outside TLS; SCRAM is preferred, with channel binding when the server
 * offers it. Every loosening is an explicit option below.
 *
 * Life cycle: epode_conn_new → setters → epode_conn_connect → events
 * (CONNECTING, TLS_UP, AUTHENTICATED, READY) → stanzas → epode_conn_close
 * → DISCONNECTED (reason CLOSED) → epode_conn_free. A connection whose
 * stream ended may be connected again. */
#ifndef EPODE_CONN_H
#define EPODE_CONN_H

#include "common.h"
#include "ctx.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A connection (opaque). */
typedef struct epode_conn epode_conn_t;

/** Makes an unconnected connection in `ctx`. Caller owns *out. */
EPODE_API int epode_conn_new(epode_ctx_t *ctx, epode_conn_t **out);

/** Frees a connection. If it is still connected the socket is closed at
 * once, without a closing handshake; unconfirmed stanzas are dropped
 * without reports. NULL is fine. Safe from inside the connection's own
 * callbacks, handlers and outgoing filters: nothing more is called, and
 * the memory goes when the callback's caller returns. Safe before the IM
 * helpers made on it: they hear EPODE_CONN_FREED (inside this call, the
 * only event it delivers) and become inert; free them afterwards as
 * usual. */
EPODE_API void epode_conn_free(epode_conn_t *conn);

/* ---- options (before epode_conn_connect) -------------------------------- */

/** The account: a bare JID, or a full JID whose resource is requested at
 * bind. Errors: EPODE_EJID. Strings passed to setters are copied.
 * Changing the bare JID (another account on the same connection) forgets
 * what belonged to the old one: its FAST token kept in memory, its
 * stream-management session (stanzas it never confirmed are given back
 * to the ack callback as unacknowledged) and a user-agent id epode made
 * (one set with epode_conn_set_user_agent stays). */
EPODE_API int epode_conn_set_jid(epode_conn_t *conn, const char *jid);
/** The password (kept in memory wiped on free). NULL clears it. */
EPODE_API int epode_conn_set_password(epode_conn_t *conn, const char *password);
/** Connect to this host and port instead of looking up SRV records
 * (port 0: 5222, or 5223 with direct TLS). Name checks still use the
 * XMPP domain. NULL host restores the lookup. EPODE_EINVAL for a port
 * over 65535 or a host with spaces or control characters. */
EPODE_API int epode_conn_set_server(epode_conn_t *conn, const char *host, unsigned port);

/** How TLS is used. */
typedef enum epode_tls_mode {
    /** STARTTLS required (the default); with an explicit server, or when
     * SRV lists _xmpps-client targets, direct TLS is used where offered. */
    EPODE_TLS_REQUIRED = 0,
    /** TLS from the first byte (XEP-0368, ALPN "xmpp-client"). */
    EPODE_TLS_DIRECT,
    /** STARTTLS if the server offers it, cleartext otherwise. Explicitly
     * insecure; PLAIN stays forbidden without TLS. */
    EPODE_TLS_OPTIONAL,
    /** Never TLS (loopback tests and tunnels only). */
    EPODE_TLS_DISABLED
} epode_tls_mode_t;
/** The name of a value of epode_tls_mode_t, e.g. "direct" for EPODE_TLS_DIRECT: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_tls_mode_name(epode_tls_mode_t mode);
/** Chooses how TLS is used (default EPODE_TLS_REQUIRED). EPODE_EINVAL for
 * a value outside the enum. Takes effect at the next connect. */
EPODE_API int epode_conn_set_tls(epode_conn_t *conn, epode_tls_mode_t mode);

/**
 * Trust this CA file (PEM) instead of the system store (NULL: the system
 * store again). The file is read and parsed now, so a wrong path is an
 * error here, not "could not start TLS" at connect time: EPODE_ETLS if
 * it cannot be read or holds no PEM certificate (the context's log, at
 * EPODE_LOG_ERROR, names the file and gnutls' reason), EPODE_EINVAL for
 * a NULL connection, EPODE_ENOMEM. On error the previous setting stays.
 * The file is read again at each connect; if it has gone bad since,
 * the connection ends with reason EPODE_REASON_TLS, EPODE_ETLS and an
 * error text naming the file. The path is copied.
 */
EPODE_API int epode_conn_set_ca_file(epode_conn_t *conn, const char *path);
/**
 * A client certificate and key (PEM) for SASL EXTERNAL (both NULL:
 * none). Both files are read and parsed now, and the key must belong to
 * the certificate: EPODE_ETLS otherwise (the log names the files and the
 * reason), EPODE_EINVAL for only one of the two or a NULL connection,
 * EPODE_ENOMEM. On error the previous setting stays; a file that goes
 * bad before a connect ends it as for epode_conn_set_ca_file().
 */
EPODE_API int epode_conn_set_client_cert(epode_conn_t *conn, const char *cert_file,
                                         const char *key_file);
/** Highest TLS version to offer: 12 (TLS 1.2) or 13 (the default). */
EPODE_API int epode_conn_set_tls_max_version(epode_conn_t *conn, int version);
/**
 * Lowest TLS version to accept: 10 (TLS 1.0), 11 (TLS 1.1), 12 (TLS 1.2,
 * the default) or 13 (TLS 1.3 only); EPODE_EINVAL otherwise. 10 and 11
 * loosen security: only for an old server that cannot be upgraded, as
 * those versions rest on SHA-1 and MD5 and on CBC ciphers with known
 * weaknesses. Whatever the version, the key exchange is forward secret
 * (no RSA key transport). A minimum above the maximum makes connecting
 * fail with EPODE_EINVAL. epode_conn_security() names the version used.
 */
EPODE_API int epode_conn_set_tls_min_version(epode_conn_t *conn, int version);

/**
 * Decides about a server certificate that failed verification: return 1 to
 * accept it anyway, 0 to refuse (the default without a callback). `reason`
 * says what failed ("signed by an unknown authority", "issued for another
 * name", …); `der`/`der_len` is the certificate. Runs inside the loop.
 */
typedef int (*epode_cert_cb)(epode_conn_t *conn, const char *reason, const unsigned char *der,
                             size_t der_len, void *user);
/** Sets the certificate callback (NULL: refuse every certificate that
 * fails verification, the default). `user` is passed back to it. */
EPODE_API int epode_conn_set_cert_cb(epode_conn_t *conn, epode_cert_cb cb, void *user);
/** Turns certificate verification off entirely (`verify` 0). Explicit and
 * dangerous: anyone on the path can impersonate the server. */
EPODE_API int epode_conn_set_verify(epode_conn_t *conn, int verify);

/** Restricts and orders the SASL mechanisms (space-separated, e.g.
 * "SCRAM-SHA-256 SCRAM-SHA-1"). Default: SCRAM-SHA-512/256/1 with -PLUS
 * first, then PLAIN (inside TLS only); EXTERNAL with a client certificate;
 * ANONYMOUS only when listed here. */
EPODE_API int epode_conn_set_mechanisms(epode_conn_t *conn, const char *mechanisms);

/** Seconds between keepalives when the link is idle (0: off; default
 * 60): a whitespace, or with stream management enabled and nothing heard
 * for the period, an ack request that must be answered within the
 * dead-link time (epode_conn_set_sm_policy), so a session that receives
 * only notices a link that died in silence. Takes effect at once. */
EPODE_API int epode_conn_set_keepalive(epode_conn_t *conn, unsigned seconds);
/** Milliseconds allowed for each TCP connect attempt and for the whole
 * login (stream to READY). Defaults 10000 and 30000. */
EPODE_API int epode_conn_set_timeouts(epode_conn_t *conn, unsigned connect_ms, unsigned login_ms);

/** Sets one of the parser's local limits for this connection's streams
 * (see epode_parser_limit_t in epode/parser.h; the defaults accept what
 * Prosody and ejabberd relay). A stanza over a limit is skipped and
 * logged, the stream goes on, and an IQ request gets policy-violation;
 * only malformed or restricted XML ends the stream. `value` 0 restores
 * the context's default (epode_ctx_set_limit). Takes effect on the next
 * stream. EPODE_EINVAL for an unknown limit. */
EPODE_API int epode_conn_set_limit(epode_conn_t *conn, epode_parser_limit_t limit, size_t value);

/** The least SCRAM iteration count accepted from the server (default
 * 4096, RFC 7677's floor; a lower count means the password is stored
 * weakly). Lowering it is a loosening of security: only for a server you
 * know. EPODE_EINVAL for 0. */
EPODE_API int epode_conn_set_scram_min_iterations(epode_conn_t *conn, unsigned iterations);

/**
 * SASL2 (XEP-0388, default on): when the server offers it, log in with
 * one `<authenticate/>` instead of RFC 6120 SASL — the same mechanism
 * choice, channel binding and checks (epode_conn_set_mechanisms, the
 * SCRAM floor), plus a `<user-agent/>` (epode_conn_set_user_agent),
 * resource binding inline (Bind2, XEP-0386: epode_conn_set_bind2), stream
 * management enabled or resumed inline, and FAST tokens
 * (epode_conn_set_fast). Servers without it (ejabberd 23.01, Prosody
 * without the community modules) get legacy SASL as before. If the
 * server asks for a SASL2 task epode does not implement (`<continue/>`),
 * the connection ends with EPODE_REASON_AUTH, EPODE_EAUTH, condition
 * "unsupported-task" and a text naming the tasks. Stream management
 * (epode_conn_set_stream_management) is asked for inside the login where
 * the server offers it there; an answer that does not come with the
 * login's success means the classic `<enable/>` right after it, and a
 * login the server never answers at all (Prosody 0.12 with mod_sasl2_sm)
 * is tried once more at the login timeout without it, with no
 * DISCONNECTED in between. Takes effect at the next connect. EPODE_EINVAL
 * for a NULL connection.
 */
EPODE_API int epode_conn_set_sasl2(epode_conn_t *conn, int enable);

/**
 * The user agent SASL2 announces (XEP-0388 §4): `id` a UUID in its
 * 36-character text form, the same for every login of this installation
 * (the server files FAST tokens and Bind2 resources under it), and an
 * optional software name and device description (NULL: none; software
 * defaults to "epode"). With `id` NULL, epode makes a random (version 4)
 * UUID: read it with epode_conn_get_user_agent_id() and keep it for the
 * next run. Copied. EPODE_EINVAL for an id that is not a UUID,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_conn_set_user_agent(epode_conn_t *conn, const char *id, const char *software,
                                        const char *device);

/** The user-agent id in use: the one set, or the one epode made (made
 * now if none yet). Borrowed: valid until the next
 * epode_conn_set_user_agent() or the connection's end. NULL only for a
 * NULL connection or out of memory. */
EPODE_API const char *epode_conn_get_user_agent_id(epode_conn_t *conn);

/** Bind2 flag (epode_conn_set_bind2): enable message carbons (XEP-0280) inline. */
#define EPODE_BIND2_CARBONS 1u
/** Bind2 flag (epode_conn_set_bind2): start the session inactive (XEP-0352) inline. */
#define EPODE_BIND2_CSI_INACTIVE 2u

/**
 * Resource binding inside SASL2 (XEP-0386). The server makes the resource
 * from `tag` (NULL: "epode"; Prosody makes "tag~<hash of the user-agent
 * id>"); `flags` (EPODE_BIND2_* OR'ed) asks for carbons and CSI in
 * the same round trip where the server offers them inline. By default
 * Bind2 is used unless the JID has a resource (which Bind2 cannot ask
 * for): calling this makes it used either way; `enable` 0 turns it off
 * (classic bind after SASL2). EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_conn_set_bind2(epode_conn_t *conn, int enable, const char *tag,
                                   unsigned flags);

/** A FAST token (XEP-0484) as the application keeps it. */
typedef struct epode_fast_token {
    const char *jid;       /**< the bare JID it was issued to */
    const char *mechanism; /**< "HT-SHA-256-NONE", "-UNIQ" or "-EXPR" */
    const char *token;     /**< the secret itself */
    const char *expiry;    /**< XEP-0082 date-time, or NULL if the server gave none */
} epode_fast_token_t;

/** Loads the token stored for `jid` (bare) into *out: return 1 with the
 * strings filled (borrowed; epode copies them during the call), 0 when
 * there is none, negative on error (logged; the password is used). */
typedef int (*epode_fast_load_cb)(epode_conn_t *conn, const char *jid, epode_fast_token_t *out,
                                  void *user);
/** Stores `token` (the server issued or rotated it), or forgets the
 * stored one when token->token is NULL (the server refused it). The
 * strings are borrowed for the call and wiped after it: keep a copy,
 * and keep it as carefully as a password. */
typedef void (*epode_fast_store_cb)(epode_conn_t *conn, const epode_fast_token_t *token,
                                    void *user);

/**
 * FAST (XEP-0484, default on): at a login with the password over SASL2
 * inside TLS, ask the server for a token; later logins and every
 * reconnection present the token instead (HT-SHA-256: no PBKDF2 on
 * either side), bound to the TLS session where possible (-UNIQ on
 * TLS 1.2, -EXPR on TLS 1.3, -NONE otherwise). A token the server
 * refuses is forgotten (the store hook hears token NULL) and the
 * connection logs in again at once with the password, without reporting
 * a disconnection. A token is never sent, nor asked for, without TLS
 * whose certificate verified for the domain: not with verification off
 * (epode_conn_set_verify), nor over a certificate only the application's
 * callback accepted (epode_conn_set_cert_cb) — whoever is on the other
 * side could replay it (-NONE) or relay it; the password is used then.
 * Nor is it used for another account than the JID's (a loaded token
 * whose jid differs is ignored; one kept in memory is forgotten when the
 * JID changes), nor after its expiry. A token the server issues with
 * spaces or control characters, or over 1024 bytes, is not kept (nor
 * handed to `store`); an expiry that is no XEP-0082 date-time is dropped.
 *
 * Tokens live in the connection's memory (as secrets, wiped) unless
 * `load`/`store` are given: then `load` is asked at every connect, and
 * `store` hears every new token — the way to keep one across runs (also
 * keep the user-agent id: tokens are filed under it). `enable` 0: no
 * token is requested or used. EPODE_EINVAL for a NULL connection or only
 * one of load/store.
 */
EPODE_API int epode_conn_set_fast(epode_conn_t *conn, int enable, epode_fast_load_cb load,
                                  epode_fast_store_cb store, void *user);

/**
 * Registration mode (XEP-0077 in-band registration, default off): the
 * stream stops after TLS instead of authenticating, and the connection
 * reports EPODE_CONN_READY unauthenticated — epode_conn_bound_jid() is
 * NULL, epode_conn_stream_features() gives the features offered before
 * SASL (with `<register xmlns='http://jabber.org/features/iq-register'/>`
 * when the server advertises registration), and only IQs with the server
 * make sense: the registration helper (epode/register.h) sends them.
 * The JID's domain names the server; no password is needed. Close the
 * connection once done and log in with a connection in the normal mode.
 * Do not combine it with automatic reconnection or stream management.
 *
 * Without TLS (EPODE_TLS_OPTIONAL against a server without STARTTLS, or
 * EPODE_TLS_DISABLED) the stream is ended instead, with reason
 * EPODE_REASON_TLS and EPODE_ENOTLS, since a registration carries the
 * password in clear — unless `allow_cleartext` is non-zero, an explicit
 * loosening of security for loopback tests and tunnels. Takes effect at
 * the next connect. EPODE_EINVAL for a NULL connection.
 */
EPODE_API int epode_conn_set_register(epode_conn_t *conn, int enable, int allow_cleartext);

/**
 * Component mode (XEP-0114): instead of logging in to an account, the
 * connection opens a `jabber:component:accept` stream to the server's
 * component port and proves itself with the handshake (hex SHA-1 of the
 * server's stream id and `secret`). It then sends and receives stanzas
 * for any JID of `domain` (the component's own address, e.g.
 * "gateway.example.org") with the same handlers, loop, keepalive and
 * reconnection as a client; there is no SASL, resource binding, roster
 * or stream management. Incoming stanzas are handed over as jabber:client
 * ones, so every handler and helper that reads them works unchanged.
 * epode_conn_bound_jid() is `domain` once READY.
 *
 * The server must be named with epode_conn_set_server() (components have
 * no SRV records; port 0 means 5347); epode_conn_connect() says
 * EPODE_EINVAL otherwise. The secret is copied and kept like a password:
 * wiped when freed, and each stream's copy wiped once the handshake is
 * written. A refused handshake (wrong secret, or a domain the server does
 * not serve) ends the connection with the server's stream error: reason
 * EPODE_REASON_STREAM_ERROR, condition "not-authorized" as a rule, and a
 * text saying the component handshake was refused; it is never retried.
 *
 * TLS: a component port speaks either cleartext (usually on loopback) or
 * TLS from the first byte. With the default EPODE_TLS_REQUIRED the stream
 * goes in clear to a loopback address only (the address connected to is
 * checked); to any other address the connection ends with
 * EPODE_REASON_TLS and EPODE_ENOTLS. EPODE_TLS_DIRECT uses direct TLS,
 * verified against `domain` as usual. EPODE_TLS_OPTIONAL or
 * EPODE_TLS_DISABLED allow cleartext to any address: an explicit
 * loosening of security (the secret's digest and every stanza travel in
 * clear), for trusted networks only.
 *
 * Every stanza sent (message, presence, iq) must carry a `from` in
 * `domain` (the domain itself or a JID at it): epode fills in nothing,
 * and epode_conn_send() refuses a stanza without one, or with another
 * domain, with EPODE_EJID before anything is sent (the server would
 * reject it). The IQ errors epode sends on its own answer from the
 * address the request was sent to.
 *
 * Only while idle; do not combine with epode_conn_set_jid() (a JID set
 * after this replaces the domain). `domain` NULL leaves component mode,
 * clearing the domain and the secret.
 * Errors: EPODE_EJID (`domain` is not a bare domain), EPODE_EINVAL (no
 * secret, or a NULL connection), EPODE_ESTATE (not idle), EPODE_ENOMEM.
 */
EPODE_API int epode_conn_set_component(epode_conn_t *conn, const char *domain,
                                       const char *secret);

/* ---- stream management (XEP-0198) ------------------------------------------ */

/**
 * Asks the server for stream management once logged in, if it offers
 * it (default: off). Every stanza sent after that is kept, as the bytes
 * written, until the server acknowledges it; epode asks for an ack every
 * 5 stanzas and at most 1 s after sending, answers the server's requests,
 * and ends the stream with an error if the server acknowledges more than
 * was sent. Sessions are resumable: with epode_conn_set_reconnect() a cut
 * is followed by resumption and the unacknowledged stanzas are resent;
 * otherwise, when the stream ends, every stanza still unacknowledged is
 * handed back through the ack callback (acked 0) — never silently lost.
 */
EPODE_API int epode_conn_set_stream_management(epode_conn_t *conn, int enable);

/**
 * Told about each stanza sent under stream management: `acked` 1 once the
 * server confirmed it, 0 when the stream ended first (the application may
 * send it again: `xml`/`len` are its bytes as written, borrowed for the
 * call). `id` is the stanza's id attribute (borrowed; NULL if it had none
 * — give stanzas ids to tell them apart).
 */
typedef void (*epode_ack_cb)(epode_conn_t *conn, int acked, const char *id, const char *xml,
                             size_t len, void *user);
/** Sets the acknowledgement callback (NULL: none). `user` is passed back. */
EPODE_API int epode_conn_set_ack_cb(epode_conn_t *conn, epode_ack_cb cb, void *user);

/**
 * Automatic reconnection (default: off). After the link is cut, times out,
 * or the server goes away for a while (system-shutdown and similar stream
 * errors), epode waits — `min_ms` the first time, doubling up to `max_ms`,
 * each wait drawn between half and all of that (jitter), reset once
 * logged in again — then connects again, looking the server up anew. With
 * stream management it resumes the session first (EPODE_CONN_RESUMED,
 * unacknowledged stanzas resent); if the server refuses, it logs in afresh
 * (READY), hands the unconfirmed stanzas back through the ack callback (or
 * resends them, see epode_conn_set_sm_policy) and sends the last
 * broadcast presence again.
 * Also after what the server's data may cause: a stream error that is not
 * final (not conflict, host-unknown, not-authorized and the like) or a
 * protocol violation — at most 5 such sessions in a row with nothing
 * acknowledged (a session that lasts 60 s resets the count). Never after
 * epode_conn_close(), failed authentication, a refused certificate or
 * missing TLS (a link cut during the TLS handshake is a cut). A resumed
 * session that took none of what was resent (the server's h says so) is
 * left for a fresh one: DISCONNECTED then says so, reason NETWORK.
 * DISCONNECTED is still reported for every cut; epode_conn_close() while
 * waiting stops the policy. EPODE_EINVAL for min_ms 0 or max < min.
 */
EPODE_API int epode_conn_set_reconnect(epode_conn_t *conn, int enable, unsigned min_ms,
                                       unsigned max_ms);

/**
 * Tunes stream management: ask for an ack every `request_every`
 * unacknowledged stanzas (default 5) and `ack_wait_ms` after sending at
 * the latest (default 1000); if nothing at all comes from the server for
 * `dead_ms` after asking (default 30000), the link is dead: the connection
 * ends with EPODE_REASON_TIMEOUT (and reconnects, if enabled).
 * `resend_unacked`: when a resumption is refused, send the unconfirmed
 * stanzas again on the new session (1) instead of handing them back
 * through the ack callback (0, the default; a resent message may then
 * arrive twice — give messages ids (XEP-0359 origin-id) so receivers can
 * drop duplicates). EPODE_EINVAL for 0 values or dead_ms < ack_wait_ms.
 */
EPODE_API int epode_conn_set_sm_policy(epode_conn_t *conn, unsigned request_every,
                                       unsigned ack_wait_ms, unsigned dead_ms, int resend_unacked);

/** 1 while stream management is enabled on the current stream. */
EPODE_API int epode_conn_sm_enabled(const epode_conn_t *conn);

/* ---- back-pressure ------------------------------------------------------------ */

/**
 * The low-water mark for EPODE_CONN_DRAINED, in bytes (default 65536;
 * 0: only once everything is written). When the bytes not yet written to
 * the transport (epode_conn_pending_bytes) have been above it, DRAINED
 * comes once they are at or below it again — a sender that paused on
 * a big backlog resumes there. Any time; takes effect at the next loop
 * turn. EPODE_EINVAL for a NULL connection only.
 */
EPODE_API int epode_conn_set_drain_threshold(epode_conn_t *conn, size_t low_water);

/**
 * Bounds what a connection keeps for the server (DESIGN: nothing the
 * server does can make the client's memory grow without bound).
 * `max_pending_bytes` (default 16 MiB) bounds the bytes held for
 * sending: the output buffer plus, under stream management, the stanzas
 * not yet acknowledged; `max_unacked_stanzas` (default 100000) bounds
 * that queue's length. 0 restores a default. Any time.
 *
 * Reaching either bound makes epode_conn_send() refuse new stanzas with
 * EPODE_EBUSY (nothing is sent or counted; the caller keeps its stanza):
 * wait for EPODE_CONN_DRAINED, then send again. Under stream management
 * epode then asks for an ack; if the server acknowledges none of the
 * queued stanzas within the dead-link time of epode_conn_set_sm_policy
 * (`dead_ms`, counted once the request is written), the connection ends
 * with EPODE_REASON_TIMEOUT (EPODE_ETIMEDOUT, "the server acknowledged
 * nothing of N stanzas…"): the unacknowledged stanzas are resent on a
 * resumed session, or handed back through the ack callback, as at any
 * other end. Stanzas epode writes on its own (answers to the server's
 * IQs, acks, keepalives) are not refused.
 */
EPODE_API int epode_conn_set_send_limits(epode_conn_t *conn, size_t max_unacked_stanzas,
                                         size_t max_pending_bytes);

/** 1 while an EPODE_CONN_DRAINED event is due: READY, and either the
 * bytes not yet written are above the low-water mark or a send was
 * refused with EPODE_EBUSY since the last DRAINED. A sender may wait for
 * DRAINED when this is 1 and go on at once when it is 0. */
EPODE_API int epode_conn_is_draining(const epode_conn_t *conn);

/* ---- events ---------------------------------------------------------------- */

/** What happened to a connection, in the order it happens. */
typedef enum epode_conn_event {
    EPODE_CONN_CONNECTING = 1,  /**< resolving and connecting */
    EPODE_CONN_TLS_UP,          /**< TLS established and accepted */
    EPODE_CONN_AUTHENTICATED,   /**< SASL succeeded */
    EPODE_CONN_READY,           /**< resource bound: stanzas may flow */
    EPODE_CONN_DISCONNECTED,    /**< the connection ended; see reason */
    EPODE_CONN_RESUMED          /**< a stream-management session was resumed
                                     after a reconnection: the same session
                                     (bound JID, presence, rooms) goes on,
                                     unacknowledged stanzas were resent; no
                                     READY follows */,
    EPODE_CONN_FREED            /**< epode_conn_free() was called: the last
                                     event, delivered inside that call to
                                     the callbacks added with
                                     epode_conn_add_event_cb(), so helpers
                                     built on the connection let go of it
                                     (they become inert; freeing them later
                                     is still required and safe) */,
    EPODE_CONN_DRAINED          /**< sending is welcome again: the bytes
                                     not yet written to the transport fell
                                     to the low-water mark (see
                                     epode_conn_set_drain_threshold) after
                                     having been above it, or a send was
                                     refused with EPODE_EBUSY and there is
                                     room again. Once per crossing, from
                                     the loop, only while READY */
} epode_conn_event_t;
/** The name of a value of epode_conn_event_t, e.g. "tls_up" for EPODE_CONN_TLS_UP: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_conn_event_name(epode_conn_event_t event);

/** Why a connection ended (for EPODE_CONN_DISCONNECTED). */
typedef enum epode_disconnect_reason {
    EPODE_REASON_NONE = 0,
    EPODE_REASON_CLOSED,       /**< we closed it (epode_conn_close) */
    EPODE_REASON_NETWORK,      /**< DNS, connect, reset, or the peer hung up.
                                    epode_conn_error() tells them apart:
                                    EPODE_EDNS when the server could not
                                    be found (no SRV or address records
                                    for any target; the text names the
                                    host and the resolver's answer),
                                    EPODE_EEOF when the server closed the
                                    connection without closing the stream,
                                    EPODE_ENET for the rest (refused,
                                    unreachable, connect timed out,
                                    reset) */
    EPODE_REASON_TLS,          /**< handshake failed, certificate refused,
                                    STARTTLS missing where required */
    EPODE_REASON_AUTH,         /**< SASL failed; see the SASL condition */
    EPODE_REASON_STREAM_ERROR, /**< the server sent a stream error */
    EPODE_REASON_PROTOCOL,     /**< the server broke the protocol; we sent
                                    a stream error */
    EPODE_REASON_TIMEOUT       /**< connect, login or liveness timed out */
} epode_disconnect_reason_t;
/** The name of a value of epode_disconnect_reason_t, e.g. "stream_error" for EPODE_REASON_STREAM_ERROR: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_disconnect_reason_name(epode_disconnect_reason_t reason);

/** The event callback: runs from the loop, never inside the call that
 * caused the event — except EPODE_CONN_FREED, which every listener still
 * added hears inside epode_conn_free(). So a listener whose `user` dies
 * before the connection must be removed first (epode_conn_remove()), or
 * the connection freed first. */
typedef void (*epode_conn_event_cb)(epode_conn_t *conn, epode_conn_event_t event, void *user);
/**
 * Adds a listener for connection events. Any number may be added (the IM
 * helpers add their own to learn about READY and DISCONNECTED); they run
 * in the order they were added. It also hears EPODE_CONN_FREED, inside
 * epode_conn_free(), unless removed before (see epode_conn_event_cb). A listener added while an event is being
 * delivered (a helper made at READY) first hears the next event. *id (may
 * be NULL) receives a non-zero id for epode_conn_remove(). Errors:
 * EPODE_EINVAL (NULL conn or cb), EPODE_ENOMEM.
 */
EPODE_API int epode_conn_add_event_cb(epode_conn_t *conn, epode_conn_event_cb cb, void *user,
                                      unsigned *id);

/** After DISCONNECTED: why, as above. */
EPODE_API epode_disconnect_reason_t epode_conn_reason(const epode_conn_t *conn);
/** After DISCONNECTED: the negative EPODE_E… code that fits the reason. */
EPODE_API int epode_conn_error(const epode_conn_t *conn);
/** After DISCONNECTED: the condition name — the RFC 6120 stream error
 * condition (ours or the server's), or the SASL failure condition
 * ("not-authorized") — or NULL. Borrowed until the next connect. */
EPODE_API const char *epode_conn_condition(const epode_conn_t *conn);
/** After DISCONNECTED: a one-line explanation (never NULL; "" when there
 * is none). Borrowed until the next connect or reconnection attempt. */
EPODE_API const char *epode_conn_error_text(const epode_conn_t *conn);
/**
 * Redirects (RFC 6120 see-other-host): epode follows one by itself, on
 * the same connection attempt and without a DISCONNECTED in between,
 * only if the stream error came over TLS whose certificate verifies for
 * the XMPP domain — even with verification turned off or a certificate
 * accepted by the certificate callback, a redirect over an unverified
 * certificate is refused. The new host is checked against the same XMPP
 * domain and TLS mode, never against the name in the redirect. At most
 * 3 redirects are followed per attempt (epode_conn_connect() or an
 * automatic reconnection). A redirect received before TLS (or over an
 * unverified certificate) ends the connection: reason
 * EPODE_REASON_STREAM_ERROR, condition "see-other-host", and the text
 * says it was refused ("refused a see-other-host redirect to … received
 * before TLS"). A 4th one ends it with "gave up after 3 see-other-host
 * redirects".
 *
 * After DISCONNECTED: the host a see-other-host error named when it came
 * over verified TLS but was not followed (the limit above), or NULL —
 * also NULL for a refused redirect, which no one should follow.
 * Borrowed until the next connect.
 */
EPODE_API const char *epode_conn_redirect(const epode_conn_t *conn);
/** Once READY: the full JID the server bound (borrowed), else NULL. */
EPODE_API const char *epode_conn_bound_jid(const epode_conn_t *conn);
/**
 * Once READY: the server's stream features after authentication (the
 * `<stream:features/>` element, borrowed until the connection ends or
 * reconnects), so helpers can see what the server offers (roster
 * versioning, stream management, …). NULL when not READY.
 */
EPODE_API const epode_stanza_t *epode_conn_stream_features(const epode_conn_t *conn);
/** Once TLS_UP: the SASL mechanism chosen later, "TLS 1.3" style version
 * and whether channel binding was used, as one line; NULL before.
 * Borrowed until the next connect or reconnection attempt. */
EPODE_API const char *epode_conn_security(const epode_conn_t *conn);
/** The connection's context. */
EPODE_API epode_ctx_t *epode_conn_ctx(const epode_conn_t *conn);

/* ---- doing things ----------------------------------------------------------- */

/** Starts connecting; progress comes as events. Errors: EPODE_ESTATE
 * (already connecting or connected), EPODE_EINVAL (no JID). */
EPODE_API int epode_conn_connect(epode_conn_t *conn);

/**
 * Queues a stanza for sending: it is serialized into the connection's
 * output at once (the caller keeps its reference and may change or free
 * the stanza afterwards) and written when the socket allows. Errors:
 * EPODE_EJID (the stanza's `to` or `from` attribute is not a valid JID,
 * epode_jid_validate(): checked first, in every state; nothing is sent
 * or counted), EPODE_ESTATE (not READY), EPODE_EINVAL, EPODE_ENOMEM,
 * EPODE_EBUSY (a bound of epode_conn_set_send_limits is reached: nothing
 * was sent; send again after EPODE_CONN_DRAINED). Every helper that
 * sends through this (presence, messaging, MUC, ping, …) therefore says
 * EPODE_EJID for a bad address too. Outgoing filters
 * (epode_conn_add_filter()) run after the check.
 *
 * A top-level element in a namespace other than jabber:client (a
 * "nonza", such as XEP-0352's `<inactive xmlns='urn:xmpp:csi:0'/>`) is
 * written the same way, but stream management neither counts, keeps nor
 * resends it (XEP-0198 counts stanzas only).
 */
EPODE_API int epode_conn_send(epode_conn_t *conn, const epode_stanza_t *stanza);

/** Closes the stream gracefully (`</stream:stream>`, TLS close_notify);
 * DISCONNECTED with reason CLOSED follows. Safe in any state, from any
 * callback; EPODE_ESTATE if already disconnected. */
EPODE_API int epode_conn_close(epode_conn_t *conn);

/** 1 once READY and until the stream ends. */
EPODE_API int epode_conn_is_ready(const epode_conn_t *conn);

/** 1 while an automatic reconnection is scheduled (see
 * epode_conn_set_reconnect): from the DISCONNECTED event of a cut that
 * will be retried until the next attempt starts. 0 otherwise — after
 * epode_conn_close(), or when the policy gave up on the reason. Lets an
 * application (or a binding) tell a pause from the end. */
EPODE_API int epode_conn_will_reconnect(const epode_conn_t *conn);

/** Bytes queued but not yet written to the socket (see
 * epode_conn_set_drain_threshold). */
EPODE_API size_t epode_conn_pending_bytes(const epode_conn_t *conn);

#ifdef __cplusplus
}
#endif
#endif
