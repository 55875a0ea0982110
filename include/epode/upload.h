/* epode/upload.h — HTTP File Upload (XEP-0363, urn:xmpp:http:upload:0)
 * and sending the result as Out-of-Band data (XEP-0066, jabber:x:oob).
 *
 * An upload: find the server's upload service by service discovery (an
 * item of our server whose disco#info has the feature
 * urn:xmpp:http:upload:0; its max-file-size from the info's form), ask
 * it for a slot (file name, size, content type), PUT the bytes to the
 * slot's URL over HTTPS, and hand back the URL others GET it from.
 * The HTTP part runs on the connection's loop through libcurl's
 * multi-socket API (no thread): an application with its own loop sees
 * curl's sockets and deadlines through its watch and timer callbacks
 * like the connection's.
 *
 * Security. The PUT and GET URLs must be https:// (plain http:// only
 * with epode_upload_set_allow_http(), for tests on loopback); the
 * server's certificate is verified against the connection's CA file
 * (epode_conn_set_ca_file(), else the system store) and its name
 * checked — epode_conn_set_verify() and the certificate callback do not
 * loosen it. Of the slot's headers only Authorization, Cookie and
 * Expires are sent (XEP-0363 §5), with line breaks removed from their
 * values, so a hostile service cannot inject headers; redirects are not
 * followed.
 *
 * Without libcurl at build time (meson -Dcurl=disabled)
 * epode_upload_new() fails with EPODE_ENOTSUP; the slot parser and the
 * OOB helpers work regardless. Everything belongs to the connection's
 * thread; memory comes from the context's allocator. */
#ifndef EPODE_UPLOAD_H
#define EPODE_UPLOAD_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_HTTP_UPLOAD "urn:xmpp:http:upload:0" /**< HTTP File Upload (XEP-0363). */
#define EPODE_NS_OOB "jabber:x:oob" /**< Out-of-Band data in messages (XEP-0066). */

/* ---- slots (no connection needed) ----------------------------------------- */

/** One header the service wants on the PUT (already filtered: only
 * Authorization, Cookie and Expires; no line breaks). */
typedef struct epode_upload_header {
    const char *name;  /**< as the service spelled it */
    const char *value; /**< line breaks removed */
} epode_upload_header_t;

/** A slot: where to PUT the file and where it can be fetched. */
typedef struct epode_upload_slot {
    const char *put_url;                   /**< the PUT URL (never NULL) */
    const char *get_url;                   /**< the GET URL (never NULL) */
    const epode_upload_header_t *headers;  /**< headers for the PUT */
    size_t nheaders;                       /**< how many */
} epode_upload_slot_t;

/**
 * Reads a slot from an IQ result or its `<slot xmlns='urn:xmpp:http:upload:0'/>`
 * child. The URLs must be http:// or https:// (the scheme is checked
 * again, more strictly, at upload time), without spaces or control
 * characters; headers other than Authorization, Cookie and Expires are
 * dropped, line breaks are removed from the values. Caller frees *out
 * with epode_upload_slot_free(); memory from `mem` (NULL: libc).
 * Errors: EPODE_EINVAL (NULL), EPODE_ENOTFOUND (no slot),
 * EPODE_EPROTOCOL (no put or get URL, or a bad one), EPODE_ENOMEM.
 */
EPODE_API int epode_upload_slot_parse(const epode_mem_t *mem, const epode_stanza_t *el,
                                      epode_upload_slot_t **out);
/** Frees a slot (NULL: no-op). */
EPODE_API void epode_upload_slot_free(epode_upload_slot_t *slot);

/* ---- Out-of-Band data (XEP-0066) -------------------------------------------- */

/**
 * Sends a message to `to` whose body is `url` and which carries it
 * again as XEP-0066 Out-of-Band data (an x element in jabber:x:oob with
 * a url child), so clients show the file inline. `type` is the message type (NULL: "chat"). Errors as
 * epode_conn_send(), EPODE_EINVAL for a NULL or empty URL.
 */
EPODE_API int epode_upload_send_url(epode_conn_t *conn, const char *to, const char *type,
                                    const char *url);
/** The URL a message carries as XEP-0066 Out-of-Band data (borrowed
 * from the message), or NULL if it has none. */
EPODE_API const char *epode_oob_url(const epode_stanza_t *message);

/* ---- uploads ------------------------------------------------------------------ */

/** An upload helper on one connection (opaque). */
typedef struct epode_upload epode_upload_t;

/**
 * How an upload ended. On success `err` is 0 and `get_url` the URL to
 * share. Otherwise `err` says what failed and the other fields why:
 * - EPODE_ENOTFOUND: the server has no upload service;
 * - EPODE_ELIMIT: the file is larger than the service accepts
 *   (`max_file_size` is the limit when the service said it, by disco or
 *   in its `<file-too-large/>`; `condition` "not-acceptable" when the
 *   service refused the slot);
 * - EPODE_EREFUSED: the service refused the slot: `condition` is the
 *   stanza error condition ("resource-constraint" for a quota,
 *   "not-allowed", "forbidden", …), `text` its text, `retry_stamp` the
 *   time it says to try again (XEP-0082) for a temporary refusal;
 * - EPODE_EHTTP: the PUT got `http_status` (not 200/201);
 * - EPODE_EPROTOCOL: a slot or URL we refuse (not https://, malformed),
 *   or a 2xx `http_status` that came before the whole file went out;
 * - EPODE_ETIMEDOUT, EPODE_ECERT, EPODE_ETLS, EPODE_ENET, EPODE_EEOF,
 *   EPODE_EDNS: the HTTP transfer (`text` says more);
 * - EPODE_ETIMEDOUT / EPODE_ECANCELED: a disco or slot request went
 *   unanswered (in time / before the connection ended);
 * - EPODE_ECANCELED: canceled, or the connection or helper went away;
 * - EPODE_ENOMEM, or EPODE_ENET/EPODE_EINVAL for a file that could not
 *   be read.
 * A done callback may start another upload (a retry after a failed
 * discovery waits for a fresh one), except during epode_upload_free().
 * Every string is borrowed for the callback and may be NULL.
 */
typedef struct epode_upload_result {
    int err;                          /**< 0 or an EPODE_E… code */
    const char *get_url;              /**< the URL to share, on success */
    const char *condition;            /**< the service's stanza error condition */
    const char *text;                 /**< an explanation (service, HTTP or curl) */
    const char *retry_stamp;          /**< when to retry, from `<retry stamp/>` */
    unsigned long long max_file_size; /**< the service's limit (0: unknown) */
    long http_status;                 /**< the PUT's HTTP status (0: none) */
} epode_upload_result_t;

/** Called once per upload when it ends (never inside the call that
 * started it). The helper may be freed from here. */
typedef void (*epode_upload_done_cb)(epode_upload_t *up, unsigned id,
                                     const epode_upload_result_t *result, void *user);
/** Bytes of the PUT body sent so far, of `total`. Runs from the loop;
 * cancel from here with epode_upload_cancel() if needed. */
typedef void (*epode_upload_progress_cb)(epode_upload_t *up, unsigned id, unsigned long long sent,
                                         unsigned long long total, void *user);

/** What to upload: `data`/`len` (copied at start) or the file at `path`
 * (read while sending, so large files never sit in memory; opened at
 * start). */
typedef struct epode_upload_file {
    const char *filename;     /**< the name to announce (NULL: the last part of path) */
    const char *content_type; /**< MIME type (NULL: application/octet-stream) */
    const void *data;         /**< the bytes, or NULL */
    size_t len;               /**< how many */
    const char *path;         /**< or a file to read */
} epode_upload_file_t;

/**
 * Makes an upload helper for `conn`. Nothing is sent until the first
 * upload. Caller frees it with epode_upload_free(); freeing the
 * connection first lets the helper go quietly (its uploads end with
 * EPODE_ECANCELED). Errors: EPODE_EINVAL, EPODE_ENOMEM, EPODE_ENOTSUP
 * (built without libcurl).
 */
EPODE_API int epode_upload_new(epode_conn_t *conn, epode_upload_t **out);
/** Frees the helper; running uploads end with EPODE_ECANCELED (their done
 * callbacks run now). NULL: no-op. */
EPODE_API void epode_upload_free(epode_upload_t *up);

/** Uses service `jid` with limit `max_file_size` (0: unknown) instead of
 * discovering one; NULL forgets it (the next upload discovers again).
 * EPODE_EJID for an invalid JID, EPODE_ENOMEM. */
EPODE_API int epode_upload_set_service(epode_upload_t *up, const char *jid,
                                       unsigned long long max_file_size);
/** The service in use (discovered or set; borrowed), or NULL if not known yet. */
EPODE_API const char *epode_upload_service(const epode_upload_t *up);
/** The service's max-file-size (0: unknown or no limit announced). */
EPODE_API unsigned long long epode_upload_max_file_size(const epode_upload_t *up);

/** Accepts http:// PUT and GET URLs (`allow` 1). A loosening for tests on
 * loopback: the file and the slot's credentials then cross the network
 * in clear. Default 0: only https://. */
EPODE_API int epode_upload_set_allow_http(epode_upload_t *up, int allow);
/**
 * Connects to `address` (an IP address) whenever a URL names `host` on
 * `port`, without asking DNS (for example a service name /etc/hosts does
 * not know, in tests). The certificate is still checked against `host`.
 * Errors: EPODE_EINVAL (empty or with ':' in host, port 0, address not
 * an IP address), EPODE_ENOMEM.
 */
EPODE_API int epode_upload_add_resolve(epode_upload_t *up, const char *host, unsigned port,
                                       const char *address);
/** The slowest a PUT may go, in bytes a second (both ways together):
 * slower for the whole `stall_ms` of epode_upload_set_timeouts() and it
 * ends with EPODE_ETIMEDOUT, so that a server taking the file a few
 * bytes at a time cannot hold an upload open for ever. */
#define EPODE_UPLOAD_MIN_SPEED 1024

/** Timeouts: `slot_ms` for each disco and slot request (0: 30 s),
 * `stall_ms` for the PUT making no progress, or less than
 * EPODE_UPLOAD_MIN_SPEED bytes a second, that long (0: 60 s). */
EPODE_API int epode_upload_set_timeouts(epode_upload_t *up, unsigned slot_ms, unsigned stall_ms);

/**
 * Starts an upload: discovery (once per helper), slot request, PUT.
 * `done` is required and runs once, later; `progress` (may be NULL)
 * while the bytes go out. *id (may be NULL) names the upload for
 * epode_upload_cancel(). A file larger than the known max-file-size is
 * refused at once. Errors: EPODE_EINVAL (no done, no data and no path,
 * both, an empty filename, no filename for data), EPODE_ELIMIT (larger
 * than the service's known limit), EPODE_ENET (the file cannot be
 * opened), EPODE_EINVAL (it is not a regular file: a directory, a FIFO
 * — never waited on — or a device), EPODE_ESTATE (the connection is
 * not ready, or the helper is being freed: a done callback run by
 * epode_upload_free() cannot start another), EPODE_ENOMEM; on error
 * `done` is never called.
 */
EPODE_API int epode_upload_start(epode_upload_t *up, const epode_upload_file_t *file,
                                 epode_upload_done_cb done, epode_upload_progress_cb progress,
                                 void *user, unsigned *id);
/** Cancels an upload: its done callback runs now with EPODE_ECANCELED.
 * EPODE_ENOTFOUND if no such upload is running. */
EPODE_API int epode_upload_cancel(epode_upload_t *up, unsigned id);

#ifdef __cplusplus
}
#endif
#endif
