/* epode/csi.h — Client State Indication (XEP-0352): tell the server
 * whether a human is looking at this client (active) or not (inactive),
 * so it can hold back what is not urgent (presence updates, chat states)
 * while inactive and save the device's battery and data.
 *
 * The indication is sent only when the server offers it: its stream
 * features after authentication (epode_conn_stream_features()) list
 * `<csi xmlns='urn:xmpp:csi:0'/>`. The helper remembers the wanted
 * state across reconnects: a new session starts active on the server, so
 * an inactive client says so again at every READY; a resumed session
 * keeps what the server knew. `<active/>` and `<inactive/>` are not
 * stanzas: stream management does not count or resend them.
 *
 * Built on the public API only. Everything belongs to the connection's
 * thread; memory comes from the context's allocator. */
#ifndef EPODE_CSI_H
#define EPODE_CSI_H

#include "common.h"
#include "conn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_CSI "urn:xmpp:csi:0" /**< Client state indication (XEP-0352). */

/** A client-state helper (opaque). */
typedef struct epode_csi epode_csi_t;

/**
 * Makes the helper on `conn`; the state starts active (what a server
 * assumes) and nothing is sent until epode_csi_set_active() says
 * otherwise. Caller owns *out and frees it with epode_csi_free().
 * Freeing the connection first is allowed: the helper becomes inert.
 * Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_csi_new(epode_conn_t *conn, epode_csi_t **out);

/** Frees the helper (sends nothing). NULL is fine. */
EPODE_API void epode_csi_free(epode_csi_t *csi);

/**
 * Sets the wanted state (`active` non-zero: active). If the connection
 * is READY, the server offers CSI and the state differs from what it was
 * last told, `<active/>` or `<inactive/>` goes out now; otherwise the
 * wish is kept for the next READY. Returns 0 also when the server does
 * not offer CSI (see epode_csi_supported()). Errors: EPODE_EINVAL,
 * EPODE_ESTATE (the connection was freed), and as epode_conn_send()
 * (the wish is kept even then).
 */
EPODE_API int epode_csi_set_active(epode_csi_t *csi, int active);

/** The wanted state: 1 active, 0 inactive. */
EPODE_API int epode_csi_is_active(const epode_csi_t *csi);

/** 1 if the current session's server offers CSI, 0 if not (or not
 * READY). */
EPODE_API int epode_csi_supported(const epode_csi_t *csi);

#ifdef __cplusplus
}
#endif
#endif
