/* epode/jid.h — Jabber IDs (RFC 7622): parsing, validation, normalized
 * parts and comparison.
 *
 * Normalization, chosen deliberately: no Debian C library implements
 * PRECIS, so epode applies the parts of RFC 7622 that need no Unicode
 * tables and documents the rest. Input must be valid UTF-8 (no overlong
 * forms, no surrogates). The localpart and domainpart are case-folded in
 * ASCII (A-Z to a-z); non-ASCII letters are kept as they are. A trailing
 * dot on the domain is removed. The resourcepart is kept exactly.
 * Comparison is on the normalized form, so "Juliet@Example.COM." equals
 * "juliet@example.com". Two JIDs that differ only by non-ASCII case or
 * Unicode normalization compare unequal (the safe direction for the
 * anti-spoofing checks built on it).
 *
 * Rules enforced (RFC 7622 §3): each part at most 1023 bytes (the
 * domainpart measured without its stripped trailing dot), none empty
 * when present; the localpart refuses  " & ' / : < > @  spaces and control
 * characters; the domainpart is an IPv6 literal in brackets, or labels of
 * 1 to 63 bytes made of letters, digits, '-' and non-ASCII characters,
 * with no space, control or the characters above; the resourcepart
 * refuses only control characters. "Spaces" are U+0020, U+00A0, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000; "controls"
 * are U+0000-U+001F and U+007F-U+009F. An IPv6 literal is lowercased but
 * not otherwise rewritten, so "[::1]" and "[0::1]" compare unequal.
 */
#ifndef EPODE_JID_H
#define EPODE_JID_H

#include <stddef.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A parsed, validated and normalized JID (opaque, immutable). */
typedef struct epode_jid epode_jid_t;

/**
 * Parses `text` ("[local@]domain[/resource]"). Caller owns *out and frees
 * it with epode_jid_free(). Errors: EPODE_EJID (not a valid JID; nothing
 * allocated), EPODE_EINVAL (NULL argument), EPODE_ENOMEM.
 */
EPODE_API int epode_jid_new(const epode_mem_t *mem, const char *text, epode_jid_t **out);

/**
 * Builds a JID from parts (`local` and `resource` may be NULL); each part
 * is validated as if parsed. Caller owns *out. Errors as epode_jid_new().
 */
EPODE_API int epode_jid_new_from_parts(const epode_mem_t *mem, const char *local,
                                       const char *domain, const char *resource,
                                       epode_jid_t **out);

/** Frees a JID. NULL is a no-op. */
EPODE_API void epode_jid_free(epode_jid_t *jid);

/** Copies a JID. Caller owns *out. EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_jid_copy(const epode_jid_t *jid, epode_jid_t **out);

/** 0 if `text` is a valid JID, EPODE_EJID if not (EPODE_EINVAL for NULL).
 * Allocates nothing. */
EPODE_API int epode_jid_validate(const char *text);

/** Normalized parts, borrowed from the JID; local and resource are NULL
 * when absent, the domain never is (NULL `jid` gives NULL). */
EPODE_API const char *epode_jid_local(const epode_jid_t *jid);
/** The normalized domainpart (borrowed; never NULL for a valid JID). */
EPODE_API const char *epode_jid_domain(const epode_jid_t *jid);
/** The resourcepart as given (borrowed), or NULL for a bare JID. */
EPODE_API const char *epode_jid_resource(const epode_jid_t *jid);
/** The normalized bare JID "local@domain" (or "domain"), borrowed. */
EPODE_API const char *epode_jid_bare(const epode_jid_t *jid);
/** The whole normalized JID, borrowed. */
EPODE_API const char *epode_jid_full(const epode_jid_t *jid);
/** 1 if the JID has no resource, else 0 (0 for NULL). */
EPODE_API int epode_jid_is_bare(const epode_jid_t *jid);

/** 1 if both JIDs are equal in normalized form (all three parts), else 0
 * (0 if either is NULL). */
EPODE_API int epode_jid_equal(const epode_jid_t *a, const epode_jid_t *b);
/** 1 if the bare parts (local and domain) are equal, else 0. */
EPODE_API int epode_jid_bare_equal(const epode_jid_t *a, const epode_jid_t *b);
/** A total order on normalized JIDs (negative, 0, positive), for sorting:
 * the byte order of epode_jid_full(), NULL first. 0 exactly when
 * epode_jid_equal() says 1 (or both are NULL). */
EPODE_API int epode_jid_compare(const epode_jid_t *a, const epode_jid_t *b);

/**
 * Compares two JID strings without keeping anything: 1 if both are valid
 * and equal once normalized, 0 otherwise (an invalid JID equals nothing).
 * `bare_only` non-zero ignores resources. Allocates nothing.
 */
EPODE_API int epode_jid_str_equal(const char *a, const char *b, int bare_only);

#ifdef __cplusplus
}
#endif
#endif
