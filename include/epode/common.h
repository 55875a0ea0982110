/* epode/common.h — what every part of the public API shares: the export
 * macro, the error codes, the allocator hook and memory handed back to the
 * application. Nothing here allocates or does I/O. */
#ifndef EPODE_COMMON_H
#define EPODE_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define EPODE_API __attribute__((visibility("default")))
#else
#define EPODE_API
#endif

#define EPODE_VERSION_MAJOR 0 /**< The version of the headers (epode_version(): the library's). */
#define EPODE_VERSION_MINOR 1 /**< Minor version of the headers. */
#define EPODE_VERSION_PATCH 0 /**< Patch version of the headers. */
#define EPODE_VERSION_STRING "0.1.0" /**< "MAJOR.MINOR.PATCH" of the headers. */

/**
 * The error codes. Every function that can fail returns `int`: 0 on
 * success, one of these (all negative) on failure. The list is an X-macro
 * so the enum, epode_strerror() and epode_err_name() never disagree.
 * Codes are stable: new ones are only ever added at the end.
 */
#define EPODE_ERRORS(X)                                                        \
    X(NOMEM, -1, "out of memory")                                              \
    X(INVAL, -2, "invalid argument")                                           \
    X(JID, -3, "malformed JID")                                                \
    X(XML, -4, "XML stream error (see the parser's condition)")                \
    X(LIMIT, -5, "a configured limit was exceeded")                            \
    X(NOTFOUND, -6, "no such element, attribute or entry")                     \
    X(STATE, -7, "not allowed in the current state")                           \
    X(RANDOM, -8, "the system random source failed")                           \
    X(RANGE, -9, "value out of range")                                         \
    X(AGAIN, -10, "operation would block; try again when ready")               \
    X(NET, -11, "network error")                                               \
    X(TLS, -12, "TLS error")                                                   \
    X(CERT, -13, "the server's certificate was not accepted")                  \
    X(NOTLS, -14, "the server does not offer TLS, which is required")          \
    X(AUTH, -15, "authentication failed")                                      \
    X(NOMECH, -16, "no SASL mechanism acceptable to both sides")               \
    X(DNS, -17, "name resolution failed")                                      \
    X(TIMEDOUT, -18, "timed out")                                              \
    X(CLOSED, -19, "the connection is closed")                                 \
    X(STREAM, -20, "the server ended the stream with an error")                \
    X(PROTOCOL, -21, "the server broke the protocol")                          \
    X(CANCELED, -22, "canceled")                                               \
    X(EOF, -23, "the peer closed the connection")                              \
    X(BUSY, -24, "too much unsent data: wait for DRAINED")                     \
    X(NOTSUP, -25, "not supported by this build of epode")                     \
    X(REFUSED, -26, "the service refused the request")                         \
    X(HTTP, -27, "the HTTP server answered with an error status")

/** Error codes (negative). 0 is success and has no name here. */
typedef enum epode_err {
#define EPODE__ERR_ENUM(name, code, text) EPODE_E##name = (code),
    EPODE_ERRORS(EPODE__ERR_ENUM)
#undef EPODE__ERR_ENUM
} epode_err_t;

/** A human-readable sentence for an error code (0 gives "success").
 * Never NULL; unknown codes give "unknown error". Static storage. */
EPODE_API const char *epode_strerror(int err);

/** The symbolic name of an error code without its prefix, e.g. "NOMEM"
 * for EPODE_ENOMEM, "OK" for 0, "UNKNOWN" otherwise. Static storage.
 *
 * Every other public enum has a name function next to it, named after
 * its type: epode_conn_event_name(EPODE_CONN_TLS_UP) is "tls_up",
 * epode_disconnect_reason_name(), epode_show_name(), … They return a
 * static lower-case string (snake case, the words the Python and Lua
 * bindings use; protocol words as the protocol spells them, e.g.
 * epode_stream_cond_name() gives "see-other-host") and NULL for a value
 * outside the enum. Error codes keep this function's upper-case names:
 * Lua's errors use them as they are ("NOMEM"); Python spells its
 * constants and Error.name like the C constants, with the E
 * (epode.ENOMEM, "ENOMEM"), as its errno module does. */
EPODE_API const char *epode_err_name(int err);

/**
 * An allocator. epode allocates everything it owns through one of these,
 * so an application can count, pool or fail allocations. Every function
 * that takes a `const epode_mem_t *` accepts NULL for the C library's
 * malloc/realloc/free. The structure is read, not copied: it must outlive
 * every object made with it. `free(NULL)` must be harmless; `realloc` has
 * C semantics (NULL pointer allocates; returning NULL leaves the block).
 */
typedef struct epode_mem {
    void *(*malloc)(size_t size, void *user);             /**< like malloc(3) */
    void *(*realloc)(void *ptr, size_t size, void *user); /**< like realloc(3) */
    void (*free)(void *ptr, void *user);                  /**< like free(3) */
    void *user;                                           /**< passed to all three */
} epode_mem_t;

/**
 * Frees memory that an epode function handed to the caller with the words
 * "free it with epode_free()" (serialized text, for instance). Such blocks
 * remember the allocator that made them, so this needs none. NULL is a
 * no-op.
 */
EPODE_API void epode_free(void *ptr);

/** The library's version as "MAJOR.MINOR.PATCH" (static storage). */
EPODE_API const char *epode_version(void);

#ifdef __cplusplus
}
#endif
#endif
