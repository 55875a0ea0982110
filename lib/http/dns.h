/* lib/http/dns.h — address lookups with c-ares on epode's loop for the
 * HTTP users (see dns.c): the answer becomes a CURLOPT_RESOLVE entry, so
 * curl never resolves (its resolver is a thread whose removal blocks). */
#ifndef EPODE__HTTP_DNS_H
#define EPODE__HTTP_DNS_H

#include "epode/common.h"
#include "loop/loop.h"

typedef struct epode__http_dns epode__http_dns;
typedef struct epode__http_lookup epode__http_lookup;

/* status 0 and `addrs` "a,b,[v6]" (borrowed for the call), or an error:
 * EPODE_EDNS (no such name, no address), EPODE_ETIMEDOUT, EPODE_ENOMEM. */
typedef void (*epode__http_dns_cb)(void *user, int status, const char *addrs);

/* A resolver on loop l; `servers` NULL (the system's) or c-ares' csv
 * with ports ("127.0.0.1:5300"). EPODE_EINVAL, EPODE_ENOMEM, EPODE_EDNS. */
int epode__http_dns_new(const epode_mem_t *mem, epode__loop *l, const char *servers,
                        epode__http_dns **out);
/* Ends every lookup without calling back, stops its watches, frees. NULL:
 * no-op. From inside a lookup's callback the freeing waits until that
 * callback returns. */
void epode__http_dns_free(epode__http_dns *d);
/* Looks up host's addresses (A and AAAA); cb runs once from the loop,
 * never inside this call. *out (may be NULL) names it for cancel until
 * cb runs. EPODE_EINVAL, EPODE_ENOMEM. */
int epode__http_dns_lookup(epode__http_dns *d, const char *host, epode__http_dns_cb cb,
                           void *user, epode__http_lookup **out);
/* Its callback will not run. */
void epode__http_dns_cancel(epode__http_lookup *l);

#endif
