/* lib/dispatch/dispatch.h — handler tables for one connection: stanza
 * handlers matched by name / first child's namespace / type, IQ answer
 * waits keyed by id (with the sender they must come from, and a
 * deadline), and timed callbacks. Knows stanzas and times given to it;
 * never a socket or a clock of its own. */
#ifndef EPODE__DISPATCH_H
#define EPODE__DISPATCH_H

#include <stdint.h>

#include "epode/handler.h"

typedef struct epode__dispatch epode__dispatch;

int epode__dispatch_new(const epode_mem_t *mem, epode__dispatch **out);
void epode__dispatch_free(epode__dispatch *d);

int epode__dispatch_add(epode__dispatch *d, const char *name, const char *ns, const char *type,
                        epode_handler_cb cb, void *user, unsigned *id);
/* Waits for the answer to IQ `iq_id` sent to `to` (NULL: our server or
 * account), until `deadline` (monotonic ms). */
int epode__dispatch_add_iq(epode__dispatch *d, const char *iq_id, const char *to,
                           uint64_t deadline, epode_iq_cb cb, void *user, unsigned *id);
int epode__dispatch_add_timed(epode__dispatch *d, unsigned interval_ms, uint64_t now,
                              epode_conn_timer_cb cb, void *user, unsigned *id);
int epode__dispatch_remove(epode__dispatch *d, unsigned id);

/* Outgoing filters: matched like stanza handlers, run on a stanza about
 * to be sent (a copy the filter may change). */
int epode__dispatch_add_outgoing(epode__dispatch *d, const char *name, const char *ns,
                                 const char *type, epode_handler_cb cb, void *user, unsigned *id);
/* 1 if some outgoing filter matches st (so the sender copies it). */
int epode__dispatch_wants_outgoing(const epode__dispatch *d, const epode_stanza_t *st);
void epode__dispatch_outgoing(epode__dispatch *d, epode_conn_t *conn, epode_stanza_t *st);

/* Connection event listeners, run in the order they were added. */
int epode__dispatch_add_event(epode__dispatch *d, epode_conn_event_cb cb, void *user,
                              unsigned *id);
void epode__dispatch_event(epode__dispatch *d, epode_conn_t *conn, epode_conn_event_t ev);
/* The same, for the handlers registered before `mark` (from
 * epode__dispatch_mark()) only: one added while the event is being told
 * (a helper made in the application's READY callback) does not hear it
 * again — it acted on the state it found. 0: every handler. */
unsigned epode__dispatch_mark(const epode__dispatch *d);
void epode__dispatch_event_before(epode__dispatch *d, epode_conn_t *conn, epode_conn_event_t ev,
                                  unsigned mark);

/* Runs the handlers for an incoming stanza. `self` is our full JID (for
 * checking where IQ answers come from). Returns 1 if an IQ wait or a
 * handler took it, else 0. */
int epode__dispatch_stanza(epode__dispatch *d, epode_conn_t *conn, epode_stanza_t *st,
                           const char *self);
/* Connection ids are below this; the IM helpers' own ids (message
 * handlers) are from it up, so epode_conn_remove() never takes one of
 * theirs for one of ours. */
#define EPODE__DISPATCH_ID_END 0x80000000u

/* The id of a stanza handler that returned neither EPODE_HANDLED nor
 * EPODE_PASS and was not reported yet (each handler is reported once:
 * call until 0), and what it returned. */
unsigned epode__dispatch_take_bad_result(epode__dispatch *d, int *value);
/* Runs expired IQ waits (EPODE_ETIMEDOUT) and due timed callbacks. */
void epode__dispatch_expire(epode__dispatch *d, epode_conn_t *conn, uint64_t now);
/* Earliest deadline, UINT64_MAX if none. */
uint64_t epode__dispatch_next_deadline(const epode__dispatch *d);
/* Ends every IQ wait with EPODE_ECANCELED (the connection ended). */
/* Calls nothing more, ever (the connection was freed from inside one of
 * its callbacks): every registration is marked removed. */
void epode__dispatch_silence(epode__dispatch *d);
void epode__dispatch_cancel_iqs(epode__dispatch *d, epode_conn_t *conn);
/* Bytes the tables hold, struct included (bench/footprint.c). */
size_t epode__dispatch_footprint(const epode__dispatch *d);

#endif
