/* lib/net/net.h — finding and reaching an XMPP server: c-ares lookups of
 * SRV (_xmpps-client and _xmpp-client, RFC 6120 §3.2, XEP-0368) and of
 * addresses (A and AAAA), then non-blocking connects tried address by
 * address with a timeout each. Everything runs on the caller's event loop:
 * sockets and deadlines are reported upward through epode__net_io and
 * driven with epode__net_process(); nothing here blocks or calls the loop.
 *
 * Files: resolve.c (the channel, the io/timer glue, query lifetime and
 * deferred delivery), srv.c (SRV lookups and RFC 2782 ordering),
 * connect.c (address lookups and connect attempts). */
#ifndef EPODE__NET_H
#define EPODE__NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "epode/common.h"

/* Interest bits given to watch(). Same values as EPODE__READ and
 * EPODE__WRITE in lib/loop/loop.h (net may not include loop). */
enum { EPODE__NET_READ = 1, EPODE__NET_WRITE = 2 };

/* How net tells its owner what to watch.
 *
 * watch(user, fd, events): events is EPODE__NET_READ|EPODE__NET_WRITE; 0
 * means "stop watching fd", always said before net closes it (and before
 * a connected fd is handed over). Readiness is level-triggered.
 * timer(user, ms): call epode__net_process(net, -1, 0) after ms (0: as
 * soon as possible, -1: no deadline any more). Each call replaces the
 * previous deadline.
 *
 * These two only record interest: they may be called from inside any net
 * function (c-ares opens and closes its sockets whenever it likes), and
 * they must not call back into net. The result callbacks of lookups and
 * connects are different: they run only inside epode__net_process() (or
 * epode__net_free()), never inside the call that started them, even when
 * c-ares answers at once (numeric hosts, /etc/hosts, errors). Such
 * answers are queued and announced with timer(0). */
typedef struct epode__net_io {
    void (*watch)(void *user, int fd, unsigned events);
    void (*timer)(void *user, long timeout_ms);
    void *user;
} epode__net_io;

typedef struct epode__net epode__net; /* one per context: a c-ares channel */

typedef struct epode__net_options {
    /* NULL: the system's resolv.conf; else "127.0.0.1:5300" style (c-ares
     * csv with ports; IPv6 as "[::1]:53") — tests point it at their own
     * responder. An empty string is EPODE_EINVAL. */
    const char *dns_servers;
    /* Time for a DNS query's first try (c-ares doubles it on each further
     * round over the servers); 0: resolv.conf or c-ares' default (5 s). */
    unsigned dns_timeout_ms;
    /* Tries per server; 0: resolv.conf or c-ares' default (4). */
    unsigned dns_tries;
} epode__net_options;

/* Makes the channel. io is copied; mem must outlive the net. Errors:
 * EPODE_EINVAL (no io callbacks, bad dns_servers), EPODE_ENOMEM,
 * EPODE_EDNS (c-ares could not initialise). `*out` is untouched on error. */
int epode__net_new2(const epode_mem_t *mem, const epode__net_io *io,
                    const epode__net_options *opts, epode__net **out);
/* The same with only dns_servers set. */
int epode__net_new(const epode_mem_t *mem, const epode__net_io *io, const char *dns_servers,
                   epode__net **out);
/* Ends everything still pending: each callback not yet delivered runs with
 * EPODE_ECANCELED before this returns (those callbacks may cancel other
 * queries but start none), every socket is announced with watch(fd, 0)
 * and closed, a pending deadline is withdrawn with timer(-1), and the net
 * is freed. NULL is a no-op. Never call it from inside a net callback. */
void epode__net_free(epode__net *n);
/* The owner's loop says fd is ready for revents (EPODE__NET_READ/WRITE;
 * report errors and hang-ups as both), or, with fd -1, that the deadline
 * was reached. Runs due work and delivers queued results; always ends by
 * reporting the next deadline through timer(). */
void epode__net_process(epode__net *n, int fd, unsigned revents);

/* One place to connect to. */
typedef struct epode__target {
    char host[256];
    uint16_t port;
    int direct_tls; /* from _xmpps-client: TLS from the first byte */
} epode__target;

typedef struct epode__query epode__query; /* a lookup or connect in flight */

/* Resolves where to connect for an XMPP domain: _xmpps-client._tcp and
 * _xmpp-client._tcp SRV records (both asked at once, with ares_query: no
 * search domains) merged, ordered by priority, then by RFC 2782 weighted
 * random choice within a priority (direct TLS first at equal priority and
 * weight). A single "." target on _xmpp-client, or on both, means "no
 * service" (status EPODE_EDNS): no fallback then. When neither name has
 * records (NXDOMAIN, no data, server failure, or a "." only on
 * _xmpps-client): the domain itself on 5222, not direct TLS. An IP literal
 * or "localhost" skips DNS and gives itself on 5222. A DNS server that does
 * not answer gives EPODE_ETIMEDOUT.
 *
 * cb gets status 0 and the list (borrowed: valid during the call), or a
 * negative error (EPODE_EDNS, EPODE_ETIMEDOUT, EPODE_ENOMEM,
 * EPODE_ECANCELED from epode__net_free) with t NULL and n 0. It runs once,
 * from epode__net_process(). On an error return (EPODE_EINVAL: bad domain,
 * EPODE_ENOMEM, EPODE_ESTATE: net being freed) cb is never called. out may
 * be NULL; *out is valid until cb returns or the query is canceled. */
typedef void (*epode__targets_cb)(void *user, int status, const epode__target *t, size_t n);
int epode__net_resolve_xmpp(epode__net *n, const char *domain, epode__targets_cb cb, void *user,
                            epode__query **out);

/* Connects to host:port (host: a name, an IPv4 or IPv6 literal, the latter
 * with or without brackets; "localhost" comes from /etc/hosts or is the
 * loopback address): resolves A and AAAA (IPv6 and IPv4 interleaved, IPv6
 * first, each family in the order DNS gave), then tries each address in
 * turn with a non-blocking connect (SOCK_NONBLOCK|SOCK_CLOEXEC) and
 * `timeout_ms` per attempt (0: no limit of ours, the kernel's applies),
 * until one succeeds.
 *
 * cb gets status 0 and the connected non-blocking fd (ownership passes to
 * the callee; net has already said watch(fd, 0)), or fd -1 and an error:
 * EPODE_EDNS (no such host, no address), EPODE_ETIMEDOUT (the DNS lookup
 * or every attempt timed out), EPODE_ENET (an attempt failed otherwise),
 * EPODE_ENOMEM, EPODE_ECANCELED (from epode__net_free). `why` is never
 * NULL and is borrowed for the call: on success the address reached, on
 * failure each address tried and what happened, in words (strerror's,
 * e.g. "[::1]:5222: Connection refused; 127.0.0.1:5222: timed out").
 * Runs once, from epode__net_process(). Errors returned (cb never called):
 * EPODE_EINVAL (empty or too long host, port 0, no cb), EPODE_ENOMEM,
 * EPODE_ESTATE. out as above. */
typedef void (*epode__connect_cb)(void *user, int status, int fd, const char *why);
int epode__net_connect(epode__net *n, const char *host, uint16_t port, unsigned timeout_ms,
                       epode__connect_cb cb, void *user, epode__query **out);

/* Cancels a lookup or connect; its callback is not called afterwards and
 * its sockets are announced with watch(fd, 0), then closed. Safe at every
 * stage and from inside other net callbacks; a no-op from inside the
 * query's own callback. NULL is a no-op. Never use q after its callback
 * has returned or after this call. */
void epode__query_cancel(epode__query *q);

/* How many c-ares channels this net has made: 1, plus one each time it
 * was remade after repeated DNS timeouts or unreachable servers (c-ares
 * 1.18 reads resolv.conf only when a channel is made). For tests, logs. */
unsigned epode__net_channel_generation(const epode__net *n);

/* ======================================================================
 * Private to the .c files of lib/net: the pieces they share. Everything
 * below needs EPODE__NET_PRIVATE defined before this header is included.
 * ====================================================================== */
#ifdef EPODE__NET_PRIVATE

#include <ares.h>
#include <sys/types.h>

enum epode__query_kind { EPODE__Q_SRV, EPODE__Q_CONNECT };

enum epode__query_state {
    EPODE__Q_LOOKUP,     /* waiting for c-ares */
    EPODE__Q_RESOLVED,   /* connect: addresses known, attempts start in process */
    EPODE__Q_CONNECTING, /* connect: an attempt is under way on q->fd */
    EPODE__Q_DONE,       /* result ready, waiting to be delivered */
    EPODE__Q_FINISHED,   /* delivered or canceled: no callback any more */
};

/* One SRV record as received (host is c-ares' expanded name). */
typedef struct epode__srv_rec {
    uint16_t priority, weight, port;
    int direct_tls;
    char host[256];
} epode__srv_rec;

/* The answer to one of the two SRV queries. */
typedef struct epode__srv_answer {
    epode__query *q;
    int done;
    int status; /* ARES_… */
    epode__srv_rec *recs;
    size_t n;
} epode__srv_answer;

typedef struct epode__net_addr {
    socklen_t len;
    struct sockaddr_storage ss;
} epode__net_addr;

struct epode__query {
    epode__net *net;
    epode__query *prev, *next; /* net->queries */
    epode__query *ready_next;  /* net's ready queue, while queued */
    enum epode__query_kind kind;
    enum epode__query_state state;
    int queued;       /* on the ready queue */
    int delivering;   /* inside its own callback */
    int ares_pending; /* c-ares callbacks still to come for it */
    int status;       /* result, once DONE */
    void *user;

    /* SRV */
    epode__targets_cb targets_cb;
    char domain[256];
    epode__srv_answer srv[2]; /* [0] _xmpps-client, [1] _xmpp-client */
    epode__target *targets;
    size_t ntargets;

    /* connect */
    epode__connect_cb connect_cb;
    char host[256];
    uint16_t port;
    unsigned timeout_ms;
    epode__net_addr *addrs;
    size_t naddrs, next_addr;
    int fd;            /* the attempt under way, watched */
    int result_fd;     /* connected, unwatched, not yet handed over */
    uint64_t deadline; /* of the attempt under way; 0: none */
    unsigned attempts, timeouts;
    char why[512];
};

/* resolve.c */
uint64_t epode__net_now_ms(void);
const epode_mem_t *epode__net_mem(const epode__net *n);
/* 0, or EPODE_ESTATE while the net is being freed. */
int epode__net_usable(const epode__net *n);
/* A zeroed query of that kind, linked into n. NULL: out of memory. */
epode__query *epode__net_query_new(epode__net *n, enum epode__query_kind kind);
/* Frees a query that never got going (start failed before any c-ares
 * call); its callback is never called. */
void epode__net_query_discard(epode__query *q);
/* Puts q on the ready queue (result to deliver, or work for process). */
void epode__net_queue(epode__query *q);
/* The channel to ask, remade first if repeated failures call for it and
 * nothing is pending on it. */
ares_channel epode__net_channel(epode__net *n);
/* Around each c-ares call made for q: begin before the call (the callback
 * may run inside it); end first thing in the callback. end returns 1 if q
 * still wants the answer, else 0 — and then q may already be freed. */
void epode__net_ares_begin(epode__query *q);
int epode__net_ares_end(epode__query *q, int ares_status);
/* ARES_… → EPODE_E… */
int epode__net_err(int ares_status);
void epode__net_watch(epode__net *n, int fd, unsigned events);
/* Reports the next deadline (force: even if unchanged). */
void epode__net_update_timer(epode__net *n, int force);

/* srv.c */
void epode__srv_release(epode__query *q);
void epode__srv_deliver(epode__query *q);
/* Orders records in place per RFC 2782 (+ direct TLS preference). */
void epode__srv_order(epode__srv_rec *r, size_t n);

/* connect.c */
/* RESOLVED → starts attempts; may end DONE. */
void epode__connect_advance(epode__query *q);
/* fd is q->fd and the loop says it is ready. */
void epode__connect_ready(epode__query *q, unsigned revents);
/* Ends the attempt under way if its deadline passed. */
void epode__connect_check_deadline(epode__query *q, uint64_t now);
void epode__connect_release(epode__query *q);
void epode__connect_deliver(epode__query *q);

#endif /* EPODE__NET_PRIVATE */

#endif
