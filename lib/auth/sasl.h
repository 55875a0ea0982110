/* lib/auth/sasl.h — SASL client through cyrus-sasl: choosing the
 * mechanism by epode's own preference (not cyrus' ranking), credentials,
 * channel binding and the GS2 flag, and the steps of the exchange. Pure
 * computation on strings: no XML (the stream engine wraps it), no I/O.
 *
 * What cyrus-sasl 2.1.28 does, and what this module does about it:
 * - sasl_client_start ranks mechanisms by its own idea of strength. We
 *   never let it choose: it is handed exactly one mechanism at a time, in
 *   our order, and the next one is tried only if cyrus answers SASL_NOMECH
 *   (plugin missing, or refused by the security properties).
 * - For a -PLUS mechanism cyrus reports the base name ("SCRAM-SHA-256"):
 *   the name given back by epode__sasl_start is ours, as offered.
 * - GS2 flag: "p=<type>" for -PLUS; "y" when we could bind on this TLS
 *   session (with any type: see can_bind) but the server offered no -PLUS
 *   mechanism at all, so a man in the middle who strips -PLUS is caught
 *   by the real server (RFC 5802 section 6); "n" otherwise — when we
 *   cannot bind at all, and when the server offered -PLUS but we cannot
 *   bind with a type it accepts (servers that offered -PLUS reject "y" as
 *   a downgrade).
 * - The SCRAM plugin does no SASLprep: the password goes out as the bytes
 *   the application gave (give it in normalized UTF-8 if the server
 *   stores SASLprep'ed passwords; ASCII passwords are unaffected). It
 *   refuses iteration counts above 65536 but has no floor, and reads the
 *   count with strtoul into an unsigned int ("+1", " 1" and 2^32 + 1 all
 *   mean 1): we refuse any count that is not plain decimal digits, above
 *   UINT_MAX, or below the floor set here (4096 by default).
 * - XEP-0474 (SSDP): when the server-first-message carries an "h"
 *   attribute, it must be the hash (the SCRAM mechanism's) of the
 *   mechanisms offered to epode__sasl_start and of server_cb_types, as
 *   the XEP builds it; otherwise the offer was changed on the way and the
 *   exchange fails (EPODE_EAUTH). Cyrus passes the attribute on untouched,
 *   so the server's signature covers it. No "h": nothing is checked.
 * - ANONYMOUS is done here, not by cyrus: its plugin sends
 *   "anonymous@<local hostname>" as trace data, which leaks the host
 *   name. We send an empty message (RFC 4505 allows it).
 * - Memory of cyrus' own (and its plugins') comes from malloc: only
 *   epode's structures go through the epode_mem_t. The plugins use our
 *   password secret in place, but sasl_dispose erases neither the PLAIN
 *   and SCRAM response buffers (we wipe those ourselves, through the
 *   pointer cyrus gave us) nor SCRAM's SaltedPassword inside the plugin's
 *   context (out of our reach). */
#ifndef EPODE__SASL_H
#define EPODE__SASL_H

#include <stddef.h>

#include "epode/common.h"

/* Once per process, from epode_global_init(): sasl_client_init, with a
 * global log callback that swallows what cyrus logs while loading its
 * plugins (it would go to syslog). Idempotent: later calls return 0 and
 * do nothing. Not thread-safe — neither is sasl_client_init: call it from
 * one thread before any connection exists. Never undone (no sasl_done:
 * the host may use cyrus-sasl itself). 0, EPODE_ENOMEM, or EPODE_EAUTH
 * when cyrus cannot initialize. */
int epode__sasl_global_init(void);

typedef struct epode__sasl epode__sasl;

/* Levels for the log callback. */
enum epode__sasl_log_level {
    EPODE__SASL_LOG_ERROR = 1,
    EPODE__SASL_LOG_WARN = 2,
    EPODE__SASL_LOG_DEBUG = 3
};
/* What cyrus logs for this client (msg borrowed for the call). Cyrus'
 * "pass" level, which may contain passwords, is never passed on. */
typedef void (*epode__sasl_log_fn)(void *user, int level, const char *msg);

/* Default for epode__sasl_params.min_iterations (RFC 5802 section 5.1 and
 * RFC 7677 section 4 ask for at least 4096). */
#define EPODE__SASL_MIN_ITERATIONS 4096u

typedef struct epode__sasl_params {
    const char *authcid;   /* the JID's localpart */
    const char *password;  /* may be NULL for EXTERNAL / ANONYMOUS */
    const char *authzid;   /* usually NULL */
    const char *service;   /* "xmpp" (NULL: "xmpp") */
    const char *host;      /* the XMPP domain */
    /* Mechanism names the application allows, in the order it prefers
     * them, separated by spaces, tabs or commas (case-insensitive, at
     * most 32 names); NULL: epode's default order
     *   EXTERNAL (only when client_cert is set)
     *   SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS
     *   SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN.
     * ANONYMOUS only when listed here. Listing a mechanism does not lift
     * the other rules: PLAIN (and LOGIN) only inside TLS, -PLUS only with
     * channel-binding data, password mechanisms only with a password. */
    const char *allowed;
    int tls_active;        /* PLAIN only inside TLS */
    unsigned tls_key_bits; /* SASL_SSF_EXTERNAL (0 without TLS) */
    /* A client certificate is configured: EXTERNAL becomes eligible (and
     * first in the default order). EXTERNAL's authentication identity
     * for cyrus is authcid, or host when authcid is NULL; what goes to the
     * server is authzid or nothing (an empty response, XEP-0178). */
    int client_cert;
    /* Channel binding the client can compute on this session: name
     * ("tls-unique", "tls-exporter") and data; NULL/0 if none. Without a
     * XEP-0440 list from the server only tls-unique and tls-exporter are
     * used; the caller passes the one its TLS version supports (tls-unique
     * on 1.2, tls-exporter on 1.3) — or, when the server advertised
     * XEP-0440 types, one of those if it can compute it. At most 512
     * bytes. */
    const char *cb_name;
    const unsigned char *cb_data;
    size_t cb_len;
    /* XEP-0440 list the server advertised (separated by spaces), or NULL.
     * When given, -PLUS is used only if cb_name is in it. */
    const char *server_cb_types;
    /* The client could compute channel-binding data on this TLS session
     * (tls-unique or tls-exporter), even if not of a type the server
     * accepts (cb_len 0 then): with no -PLUS offered, SCRAM says "y".
     * Implied by cb_len > 0. */
    int can_bind;
    /* Lowest SCRAM iteration count accepted from the server; 0:
     * EPODE__SASL_MIN_ITERATIONS. (Cyrus itself refuses more than 65536.) */
    unsigned min_iterations;
    /* Cyrus' log lines for this client; NULL: dropped. */
    epode__sasl_log_fn log;
    void *log_user;
} epode__sasl_params;

/* Prepares a client. The params' strings and data are copied (the
 * password into a secret, util/secret.h: kept out of core dumps, wiped
 * on free and as soon as authentication succeeds); p may go away after
 * the call.
 * `mem` (NULL: libc) must outlive the client. 0, EPODE_EINVAL (bad
 * allowed list, cb_len without cb_name/cb_data or too long), EPODE_ENOMEM,
 * EPODE_ESTATE (epode__sasl_global_init not called). On failure *out is
 * untouched. */
int epode__sasl_new(const epode_mem_t *mem, const epode__sasl_params *p, epode__sasl **out);
/* Disposes of the cyrus connection, wipes the password. NULL: no-op. */
void epode__sasl_free(epode__sasl *s);

/* Starts with the server's offered mechanisms (array of names). On
 * success *mech is the chosen mechanism as the server spelled it
 * (borrowed, valid while s lives) and *out, *out_len the initial response
 * (*out NULL: none; an empty response is *out != NULL with *out_len 0 —
 * the engine writes "=" for it). Errors: EPODE_ENOMECH (nothing
 * acceptable: the message says which were offered and why the allowed
 * ones were refused), EPODE_EAUTH, EPODE_ENOMEM, EPODE_ESTATE (called
 * twice). The raw bytes are not base64: the engine encodes. *out is
 * borrowed until the next call on s. Outputs are set only on success. */
int epode__sasl_start(epode__sasl *s, const char *const *offered, size_t n_offered,
                      const char **mech, const unsigned char **out, size_t *out_len);
/* One challenge in, one response out (raw bytes; *out is never NULL, and
 * may be empty: send an empty <response/>; borrowed until the next call
 * on s). EPODE_EAUTH if the server's data is wrong (bad nonce, too few or
 * too many iterations, bad server signature); EPODE_ESTATE when no
 * challenge is expected (exchange not started, complete or failed). */
int epode__sasl_step(epode__sasl *s, const unsigned char *in, size_t in_len,
                     const unsigned char **out, size_t *out_len);
/* The server said <success/> with this additional data (may be empty):
 * 0 only if the mechanism's exchange is complete and the server proved
 * itself (SCRAM's server signature verified). EPODE_EAUTH otherwise —
 * an empty <success/> where SCRAM's final message was due, a <success/>
 * before the last step, unexpected data after a complete exchange, a
 * wrong server signature. EPODE_ESTATE if not started, or called again.
 * On success the cyrus connection is released at once (the engine may
 * keep s only for its mechanism name). */
int epode__sasl_finish(epode__sasl *s, const unsigned char *in, size_t in_len);
/* A sentence about the last failure (borrowed; "" if none). */
const char *epode__sasl_error(const epode__sasl *s);

#endif
