/* epode/version.h — XEP-0092 Software Version: answers jabber:iq:version
 * queries with the name, version and (optionally) operating system the
 * application sets, and asks other entities theirs. Built on the public
 * API only. */
#ifndef EPODE_IM_VERSION_H
#define EPODE_IM_VERSION_H

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_VERSION "jabber:iq:version" /**< Software version (XEP-0092). */

/** A software-version helper bound to one connection (opaque). */
typedef struct epode_software_version epode_software_version_t;

/**
 * Makes the helper on `conn` and starts answering version queries with
 * `name` and `version` (both required) and `os` (NULL: not disclosed).
 * The strings are copied. Survives reconnects. Caller owns *out and frees
 * it with epode_software_version_free(). Freeing the connection first is
 * allowed: the helper becomes inert (pending queries are forgotten, their
 * callbacks not called; epode_software_version_query() returns EPODE_ESTATE);
 * still free it. Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_software_version_new(epode_conn_t *conn, const char *name,
                                         const char *version, const char *os,
                                         epode_software_version_t **out);

/** Changes what is answered (same rules as at creation). On failure the
 * old values stay. Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_software_version_set(epode_software_version_t *v, const char *name,
                                         const char *version, const char *os);

/** Stops answering, forgets pending queries (their callbacks are not
 * called) and frees the helper. NULL is a no-op. */
EPODE_API void epode_software_version_free(epode_software_version_t *v);

/**
 * The answer to epode_software_version_query(). `status` 0 and `cond`
 * EPODE_COND_NONE: `name`, `version` and `os` are what the entity said
 * (each borrowed for the call; NULL when absent). `status` 0 with another
 * `cond`: it answered with that error. `status` EPODE_ETIMEDOUT or
 * EPODE_ECANCELED: no answer.
 */
typedef void (*epode_software_version_cb)(epode_conn_t *conn, const char *jid, int status,
                                 epode_stanza_cond_t cond, const char *name,
                                 const char *version, const char *os, void *user);

/**
 * Asks `jid` (NULL: our server) for its software version; `cb` is called
 * once. `timeout_ms` 0 means 30 s. Errors: EPODE_EINVAL, EPODE_EJID,
 * EPODE_ESTATE (not READY, or the connection was freed), EPODE_ENOMEM;
 * `cb` is never called then.
 */
EPODE_API int epode_software_version_query(epode_software_version_t *v, const char *jid,
                                  unsigned timeout_ms, epode_software_version_cb cb, void *user);

#ifdef __cplusplus
}
#endif
#endif
