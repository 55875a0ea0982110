/* epode/ctx.h — the context: process-wide set-up, the allocator, logging,
 * and the event loop every connection of the context runs on, built in or
 * driven by the application's own loop. A context and everything made
 * from it belong to one thread (epode_ctx_wakeup() excepted). */
#ifndef EPODE_CTX_H
#define EPODE_CTX_H

#include "common.h"
#include "parser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A context (opaque). */
typedef struct epode_ctx epode_ctx_t;

/**
 * Process-wide set-up of the libraries epode stands on (libxml2,
 * cyrus-sasl, c-ares, gnutls). Call once from the main thread before any
 * other epode function that makes a context; later calls do nothing.
 * epode never tears this state down (the host may share it). Errors:
 * EPODE_EAUTH (cyrus-sasl failed to initialize), EPODE_EDNS, EPODE_ETLS.
 */
EPODE_API int epode_global_init(void);

/** Log levels, most severe first. */
typedef enum epode_log_level {
    EPODE_LOG_ERROR = 0,
    EPODE_LOG_WARN,
    EPODE_LOG_INFO,
    EPODE_LOG_DEBUG,
    /** The XML traffic itself (credentials redacted). */
    EPODE_LOG_XML
} epode_log_level_t;
/** The name of a value of epode_log_level_t, e.g. "warn" for EPODE_LOG_WARN: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_log_level_name(epode_log_level_t level);

/** Receives log lines: `area` names the part ("tls", "sasl", "xml-in",
 * "xml-out", …); `msg` is borrowed for the call and has no newline. */
typedef void (*epode_log_cb)(void *user, epode_log_level_t level, const char *area,
                             const char *msg);

/**
 * Makes a context. `mem` (NULL: libc) is used for everything epode
 * allocates for it and must outlive it. Caller owns *out. Errors:
 * EPODE_ENOMEM, EPODE_ENET (epoll or eventfd could not be created),
 * EPODE_EDNS (c-ares channel).
 */
EPODE_API int epode_ctx_new(const epode_mem_t *mem, epode_ctx_t **out);

/** Frees the context. Every connection made from it must be freed first
 * (EPODE_ESTATE otherwise, and nothing is freed). NULL is fine. */
EPODE_API int epode_ctx_free(epode_ctx_t *ctx);

/** The allocator the context was made with (NULL: libc), for helpers
 * that allocate on the context's behalf. Borrowed. */
EPODE_API const epode_mem_t *epode_ctx_mem(const epode_ctx_t *ctx);

/** Sends log lines up to `max_level` to `cb` (NULL: silence, the default;
 * epode never prints by itself). */
EPODE_API void epode_ctx_set_log(epode_ctx_t *ctx, epode_log_level_t max_level, epode_log_cb cb,
                                 void *user);

/**
 * Uses these DNS servers instead of the system's ("127.0.0.1:5353",
 * comma-separated, as c-ares' ports CSV). For tests and private networks.
 * Must be called before the context's first connection starts a lookup
 * (EPODE_ESTATE after). Errors: EPODE_EINVAL, EPODE_ENOMEM, EPODE_ESTATE.
 */
EPODE_API int epode_ctx_set_dns_servers(epode_ctx_t *ctx, const char *servers);

/** The default of a parser limit for connections made from this context
 * from now on (see epode_conn_set_limit; 0 restores the library's own
 * default). EPODE_EINVAL for an unknown limit. */
EPODE_API int epode_ctx_set_limit(epode_ctx_t *ctx, epode_parser_limit_t limit, size_t value);

#ifdef __cplusplus
}
#endif
#endif
