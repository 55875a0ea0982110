/* epode/stanza.h — the element tree every stanza is made of, its builders
 * and accessors, and the RFC 6120 error conditions.
 *
 * Ownership in one paragraph: a tree has one reference count, held by its
 * root, and the root owns all of the tree's storage. Every element inside
 * is a borrowed handle that stays valid while the tree lives. Calling
 * epode_stanza_ref() or epode_stanza_unref() on any element of a tree
 * counts on the whole tree. Strings returned by getters are borrowed from
 * the tree as well. Adding an element that belongs to another tree copies
 * it. An element removed from its parent stays readable until the tree is
 * freed (its storage is released with the tree, not before).
 *
 * Namespaces: every element records its namespace URI and the prefix it
 * was written with (NULL for the default namespace). A child added with a
 * NULL namespace takes its parent's. A root made with a NULL namespace has
 * none and, when serialized inside a stream, inherits the stream's
 * default (jabber:client).
 */
#ifndef EPODE_STANZA_H
#define EPODE_STANZA_H

#include <stddef.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An element of a stanza tree (opaque). */
typedef struct epode_stanza epode_stanza_t;

#define EPODE_NS_CLIENT "jabber:client" /**< The client stream's default namespace (RFC 6120). */
/** The stream namespace (the stream: prefix). */
#define EPODE_NS_STREAMS "http://etherx.jabber.org/streams"
/** Stanza error conditions (RFC 6120 §8.3). */
#define EPODE_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
/** Stream error conditions (RFC 6120 §4.9). */
#define EPODE_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define EPODE_NS_XML "http://www.w3.org/XML/1998/namespace" /**< The xml: prefix (xml:lang). */

/* ---- stream error conditions (RFC 6120 §4.9.3) ---------------------- */

/** The stream error conditions as an X-macro list, X(NAME, "name"): it
 * makes epode_stream_cond_t (EPODE_STREAM_NAME) and the names. */
#define EPODE_STREAM_CONDITIONS(X)                                             \
    X(BAD_FORMAT, "bad-format")                                                \
    X(BAD_NAMESPACE_PREFIX, "bad-namespace-prefix")                            \
    X(CONFLICT, "conflict")                                                    \
    X(CONNECTION_TIMEOUT, "connection-timeout")                                \
    X(HOST_GONE, "host-gone")                                                  \
    X(HOST_UNKNOWN, "host-unknown")                                            \
    X(IMPROPER_ADDRESSING, "improper-addressing")                              \
    X(INTERNAL_SERVER_ERROR, "internal-server-error")                          \
    X(INVALID_FROM, "invalid-from")                                            \
    X(INVALID_NAMESPACE, "invalid-namespace")                                  \
    X(INVALID_XML, "invalid-xml")                                              \
    X(NOT_AUTHORIZED, "not-authorized")                                        \
    X(NOT_WELL_FORMED, "not-well-formed")                                      \
    X(POLICY_VIOLATION, "policy-violation")                                    \
    X(REMOTE_CONNECTION_FAILED, "remote-connection-failed")                    \
    X(RESET, "reset")                                                          \
    X(RESOURCE_CONSTRAINT, "resource-constraint")                              \
    X(RESTRICTED_XML, "restricted-xml")                                        \
    X(SEE_OTHER_HOST, "see-other-host")                                        \
    X(SYSTEM_SHUTDOWN, "system-shutdown")                                      \
    X(UNDEFINED_CONDITION, "undefined-condition")                              \
    X(UNSUPPORTED_ENCODING, "unsupported-encoding")                            \
    X(UNSUPPORTED_FEATURE, "unsupported-feature")                              \
    X(UNSUPPORTED_STANZA_TYPE, "unsupported-stanza-type")                      \
    X(UNSUPPORTED_VERSION, "unsupported-version")

/** Stream error conditions. EPODE_STREAM_NONE (0) means "no error". */
typedef enum epode_stream_cond {
    EPODE_STREAM_NONE = 0,
#define EPODE__SC_ENUM(id, name) EPODE_STREAM_##id,
    EPODE_STREAM_CONDITIONS(EPODE__SC_ENUM)
#undef EPODE__SC_ENUM
    EPODE_STREAM__COUNT
} epode_stream_cond_t;

/** The RFC 6120 name of a stream condition ("not-well-formed"); "none"
 * for EPODE_STREAM_NONE, NULL for a value outside the enum. Static. */
EPODE_API const char *epode_stream_cond_name(epode_stream_cond_t cond);

/** The condition with this RFC 6120 name, or EPODE_STREAM_NONE if the
 * name is not one (NULL included). */
EPODE_API epode_stream_cond_t epode_stream_cond_from_name(const char *name);

/* ---- stanza error conditions and types (RFC 6120 §8.3) -------------- */

/** The stanza error conditions as an X-macro list, X(NAME, "name", TYPE):
 * each with the error type RFC 6120 §8.3.3 shows for it. It makes
 * epode_stanza_cond_t (EPODE_COND_NAME) and the names. */
#define EPODE_STANZA_CONDITIONS(X)                                             \
    X(BAD_REQUEST, "bad-request", MODIFY)                                      \
    X(CONFLICT, "conflict", CANCEL)                                            \
    X(FEATURE_NOT_IMPLEMENTED, "feature-not-implemented", CANCEL)              \
    X(FORBIDDEN, "forbidden", AUTH)                                            \
    X(GONE, "gone", CANCEL)                                                    \
    X(INTERNAL_SERVER_ERROR, "internal-server-error", CANCEL)                  \
    X(ITEM_NOT_FOUND, "item-not-found", CANCEL)                                \
    X(JID_MALFORMED, "jid-malformed", MODIFY)                                  \
    X(NOT_ACCEPTABLE, "not-acceptable", MODIFY)                                \
    X(NOT_ALLOWED, "not-allowed", CANCEL)                                      \
    X(NOT_AUTHORIZED, "not-authorized", AUTH)                                  \
    X(POLICY_VIOLATION, "policy-violation", MODIFY)                            \
    X(RECIPIENT_UNAVAILABLE, "recipient-unavailable", WAIT)                    \
    X(REDIRECT, "redirect", MODIFY)                                            \
    X(REGISTRATION_REQUIRED, "registration-required", AUTH)                    \
    X(REMOTE_SERVER_NOT_FOUND, "remote-server-not-found", CANCEL)              \
    X(REMOTE_SERVER_TIMEOUT, "remote-server-timeout", WAIT)                    \
    X(RESOURCE_CONSTRAINT, "resource-constraint", WAIT)                        \
    X(SERVICE_UNAVAILABLE, "service-unavailable", CANCEL)                      \
    X(SUBSCRIPTION_REQUIRED, "subscription-required", AUTH)                    \
    X(UNDEFINED_CONDITION, "undefined-condition", CANCEL)                      \
    X(UNEXPECTED_REQUEST, "unexpected-request", WAIT)

/** Stanza error conditions. EPODE_COND_NONE (0) means "no error". */
typedef enum epode_stanza_cond {
    EPODE_COND_NONE = 0,
#define EPODE__C_ENUM(id, name, type) EPODE_COND_##id,
    EPODE_STANZA_CONDITIONS(EPODE__C_ENUM)
#undef EPODE__C_ENUM
    EPODE_COND__COUNT
} epode_stanza_cond_t;

/** Stanza error types. EPODE_ERRTYPE_DEFAULT picks the condition's usual
 * type when building an error. */
typedef enum epode_error_type {
    EPODE_ERRTYPE_DEFAULT = 0,
    EPODE_ERRTYPE_AUTH,
    EPODE_ERRTYPE_CANCEL,
    EPODE_ERRTYPE_CONTINUE,
    EPODE_ERRTYPE_MODIFY,
    EPODE_ERRTYPE_WAIT
} epode_error_type_t;

/** The RFC 6120 name of a stanza condition ("item-not-found"); NULL for
 * EPODE_COND_NONE or a value outside the enum. Static storage. */
EPODE_API const char *epode_stanza_cond_name(epode_stanza_cond_t cond);
/** The condition with this name, or EPODE_COND_NONE. */
EPODE_API epode_stanza_cond_t epode_stanza_cond_from_name(const char *name);
/** "auth", "cancel", "continue", "modify", "wait"; NULL for DEFAULT or
 * out of range. Static storage. */
EPODE_API const char *epode_error_type_name(epode_error_type_t type);
/** The type with this name, or EPODE_ERRTYPE_DEFAULT if none matches. */
EPODE_API epode_error_type_t epode_error_type_from_name(const char *name);
/** The type RFC 6120 §8.3.3 associates with a condition. */
EPODE_API epode_error_type_t epode_stanza_cond_default_type(epode_stanza_cond_t cond);

/* ---- trees: life cycle ---------------------------------------------- */

/**
 * Makes a new tree holding one element. `name` is the local name (no
 * prefix; use epode_stanza_set_prefix() for one); `ns` its namespace URI
 * or NULL for none. `mem` is the allocator for the whole tree (NULL: libc).
 * On success *out is a root with one reference, which the caller owns and
 * ends with epode_stanza_unref(). Errors: EPODE_EINVAL (NULL or empty
 * name, name not a valid XML NCName), EPODE_ENOMEM. *out is untouched on
 * failure.
 */
EPODE_API int epode_stanza_new(const epode_mem_t *mem, const char *name,
                               const char *ns, epode_stanza_t **out);

/** Takes a reference on the tree `el` belongs to; returns `el`. */
EPODE_API epode_stanza_t *epode_stanza_ref(epode_stanza_t *el);

/** Drops a reference on the tree `el` belongs to; the last one frees the
 * tree and every handle into it. NULL is a no-op. */
EPODE_API void epode_stanza_unref(epode_stanza_t *el);

/**
 * Deep-copies `el` and everything below it into a new tree whose root is
 * the copy; the new tree uses the same allocator. The copy keeps `el`'s
 * effective namespace even if it was inherited. Caller owns *out (one
 * reference). Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_copy(const epode_stanza_t *el, epode_stanza_t **out);

/** Returns 1 if the two elements have the same name, namespace, prefix,
 * attributes (in any order), and equal children and text in the same
 * order; 0 otherwise. Adjacent text pieces compare as one. */
EPODE_API int epode_stanza_equal(const epode_stanza_t *a, const epode_stanza_t *b);

/* ---- names and namespaces ------------------------------------------- */

/** Local name (borrowed). */
EPODE_API const char *epode_stanza_get_name(const epode_stanza_t *el);
/** Namespace URI (borrowed), NULL if the element has none. */
EPODE_API const char *epode_stanza_get_ns(const epode_stanza_t *el);
/** Prefix the element is written with (borrowed), NULL for default. */
EPODE_API const char *epode_stanza_get_prefix(const epode_stanza_t *el);
/** Sets the prefix (NULL: default namespace). EPODE_EINVAL if `prefix` is
 * not an NCName or is "xml"/"xmlns"; EPODE_ENOMEM. */
EPODE_API int epode_stanza_set_prefix(epode_stanza_t *el, const char *prefix);
/** Sets the namespace URI (NULL: none). EPODE_ENOMEM. */
EPODE_API int epode_stanza_set_ns(epode_stanza_t *el, const char *ns);
/** The parent element, NULL for a root or a removed element (borrowed). */
EPODE_API epode_stanza_t *epode_stanza_get_parent(const epode_stanza_t *el);

/* ---- attributes ----------------------------------------------------- */

/**
 * Attribute value by name (borrowed), NULL if absent. Plain names match
 * un-namespaced attributes; "xml:lang" (the only prefixed attribute XMPP
 * uses routinely) matches the XML namespace's `lang`. Other namespaced
 * attributes are reached with epode_stanza_get_attr_ns().
 */
EPODE_API const char *epode_stanza_get_attr(const epode_stanza_t *el, const char *name);
/** Attribute value by local name and namespace URI (NULL ns: none). */
EPODE_API const char *epode_stanza_get_attr_ns(const epode_stanza_t *el,
                                               const char *name, const char *ns);
/**
 * Sets an attribute, replacing any value it had. `name` is a local name
 * or "xml:lang"; the value is any UTF-8 text (it is escaped on output).
 * A NULL value removes the attribute. Errors: EPODE_EINVAL (bad name,
 * invalid UTF-8 or characters XML cannot carry), EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_set_attr(epode_stanza_t *el, const char *name, const char *value);
/** Like epode_stanza_set_attr() for an attribute in namespace `ns`,
 * written with `prefix` (required when ns is not NULL). */
EPODE_API int epode_stanza_set_attr_ns(epode_stanza_t *el, const char *name,
                                       const char *ns, const char *prefix,
                                       const char *value);
/** Removes an attribute; EPODE_ENOTFOUND if it was not there. */
EPODE_API int epode_stanza_remove_attr(epode_stanza_t *el, const char *name);
/** Number of attributes. */
EPODE_API size_t epode_stanza_attr_count(const epode_stanza_t *el);
/** The i-th attribute (0-based, in document order): its local name,
 * namespace URI (NULL if none) and value, all borrowed. Any out pointer
 * may be NULL. EPODE_ERANGE if i is past the end. */
EPODE_API int epode_stanza_attr_at(const epode_stanza_t *el, size_t i, const char **name,
                                   const char **ns, const char **value);

/* ---- text ----------------------------------------------------------- */

/**
 * The element's own character data (its text children, concatenated;
 * text inside child elements not included). Borrowed; "" if none. When the
 * text is split in several pieces (mixed content), the joined copy is kept
 * in the tree. NULL only on allocation failure.
 */
EPODE_API const char *epode_stanza_get_text(const epode_stanza_t *el);
/**
 * Appends `len` bytes of text (len may be (size_t)-1 for NUL-terminated)
 * after the element's last child. Any text is accepted as long as it is
 * valid UTF-8 made of characters XML allows; it is escaped on output.
 * Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_add_text(epode_stanza_t *el, const char *text, size_t len);
/** Replaces all children (elements and text) with this text. */
EPODE_API int epode_stanza_set_text(epode_stanza_t *el, const char *text);

/* ---- children ------------------------------------------------------- */

/** First child element (text skipped), NULL if none. Borrowed. */
EPODE_API epode_stanza_t *epode_stanza_first_child(const epode_stanza_t *el);
/** Next sibling element (text skipped), NULL at the end. Borrowed. */
EPODE_API epode_stanza_t *epode_stanza_next(const epode_stanza_t *el);
/**
 * First child element matching `name` and `ns` (either may be NULL for
 * "any"). Borrowed; NULL if none. To find further matches, continue with
 * epode_stanza_find_next().
 */
EPODE_API epode_stanza_t *epode_stanza_find_child(const epode_stanza_t *el,
                                                  const char *name, const char *ns);
/** Next sibling after `el` matching `name` and `ns` (NULL: any). */
EPODE_API epode_stanza_t *epode_stanza_find_next(const epode_stanza_t *el,
                                                 const char *name, const char *ns);
/** Text of the first child matching name/ns, NULL if there is no such
 * child (borrowed). The usual way to read a `<body/>`. */
EPODE_API const char *epode_stanza_child_text(const epode_stanza_t *el,
                                              const char *name, const char *ns);
/**
 * Makes a new element and appends it as the last child of `parent`. A NULL
 * `ns` takes the parent's namespace. *out (may be NULL) receives the new
 * child, borrowed from the tree. Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_add_child_new(epode_stanza_t *parent, const char *name,
                                         const char *ns, epode_stanza_t **out);
/**
 * Appends a deep copy of `child` (from this tree or any other) to `parent`.
 * The caller keeps its own reference to `child`'s tree. *out (may be NULL)
 * receives the copy. Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_add_child(epode_stanza_t *parent, const epode_stanza_t *child,
                                     epode_stanza_t **out);
/** Unlinks `child` from its parent. It stays readable until its tree is
 * freed. EPODE_EINVAL if it has no parent. */
EPODE_API int epode_stanza_remove(epode_stanza_t *child);

/* ---- stanza builders and common attributes -------------------------- */

/**
 * A `<message/>` in jabber:client. `type` ("chat", "normal", "headline",
 * "groupchat"; NULL: none), `to` (NULL: none) and `body` (NULL: no body)
 * are copied. Caller owns *out. Errors: EPODE_EJID (`to` is not a valid
 * JID, epode_jid_validate(); nothing is made — epode_conn_send() refuses
 * such an address the same way), EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_new_message(const epode_mem_t *mem, const char *type, const char *to,
                                       const char *body, epode_stanza_t **out);
/** A `<presence/>` in jabber:client with optional type (NULL: available)
 * and to. Caller owns *out. Errors: EPODE_EJID (invalid `to`, as for
 * epode_stanza_new_message()), EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_stanza_new_presence(const epode_mem_t *mem, const char *type, const char *to,
                                        epode_stanza_t **out);
/**
 * An `<iq/>` in jabber:client. `type` is required ("get", "set", "result"
 * or "error"); `id` NULL generates a fresh random one. Caller owns *out.
 * Errors: EPODE_EINVAL, EPODE_ENOMEM, EPODE_ERANDOM.
 */
EPODE_API int epode_stanza_new_iq(const epode_mem_t *mem, const char *type, const char *id,
                                  epode_stanza_t **out);

/** Sets a fresh random id (16 characters of base64url) on the stanza and,
 * if `id` is not NULL, points *id at it (borrowed). */
EPODE_API int epode_stanza_set_new_id(epode_stanza_t *el, const char **id);

/** The `id` attribute (borrowed; NULL if absent). */
EPODE_API const char *epode_stanza_get_id(const epode_stanza_t *el);
/** The `type` attribute (borrowed; NULL if absent). */
EPODE_API const char *epode_stanza_get_type(const epode_stanza_t *el);
/** The `to` attribute (borrowed; NULL if absent). */
EPODE_API const char *epode_stanza_get_to(const epode_stanza_t *el);
/** The `from` attribute (borrowed; NULL if absent). */
EPODE_API const char *epode_stanza_get_from(const epode_stanza_t *el);
/** Sets (NULL: removes) the `id` attribute; errors as epode_stanza_set_attr(). */
EPODE_API int epode_stanza_set_id(epode_stanza_t *el, const char *id);
/** Sets (NULL: removes) the `type` attribute; errors as epode_stanza_set_attr(). */
EPODE_API int epode_stanza_set_type(epode_stanza_t *el, const char *type);
/** Sets (NULL: removes) the `to` attribute; errors as epode_stanza_set_attr().
 * The value is not checked here (a stanza is data); epode_conn_send()
 * refuses a stanza whose `to` or `from` is not a JID with EPODE_EJID. */
EPODE_API int epode_stanza_set_to(epode_stanza_t *el, const char *to);
/** Sets (NULL: removes) the `from` attribute; errors as epode_stanza_set_attr(). */
EPODE_API int epode_stanza_set_from(epode_stanza_t *el, const char *from);

/**
 * Starts a reply to `st`: an empty element of the same name and namespace,
 * `to` set to st's `from` (absent if st had none), `from` to st's `to`,
 * the same id; an IQ get/set gets type "result", other stanzas keep their
 * type. No children are copied. Caller owns *out.
 */
EPODE_API int epode_stanza_reply(const epode_stanza_t *st, epode_stanza_t **out);

/**
 * An error reply to `st` (RFC 6120 §8.3): to/from swapped, same id,
 * type="error", and an `<error/>` child with `type` (EPODE_ERRTYPE_DEFAULT:
 * the condition's usual one), the condition element and, if `text` is not
 * NULL, a `<text/>`. When `include_original` is non-zero the original's
 * children are copied in before the error, as RFC 6120 allows. A stanza
 * that is itself an error is refused with EPODE_EINVAL (errors must never
 * be answered with errors). Caller owns *out.
 */
EPODE_API int epode_stanza_error_reply(const epode_stanza_t *st, epode_stanza_cond_t cond,
                                       epode_error_type_t type, const char *text,
                                       int include_original, epode_stanza_t **out);

/**
 * Reads the `<error/>` of an error stanza: its condition (EPODE_COND_
 * UNDEFINED_CONDITION if the child names none epode knows), its type
 * (DEFAULT if absent or unknown) and its text (borrowed, NULL if none).
 * Any out pointer may be NULL. EPODE_ENOTFOUND if there is no `<error/>`.
 */
EPODE_API int epode_stanza_get_error(const epode_stanza_t *st, epode_stanza_cond_t *cond,
                                     epode_error_type_t *type, const char **text);

/* ---- text form ------------------------------------------------------ */

/** Flags for epode_stanza_to_text(). */
enum {
    /** Write as the stanza appears inside a client stream: the default
     * namespace jabber:client and the prefix `stream` are taken as
     * already declared. Without it the text stands alone and declares
     * every namespace it uses. */
    EPODE_TEXT_IN_STREAM = 1u << 0,
    /** Escape line breaks inside text as character references, so the
     * whole stanza is one line (still the same XML once parsed). */
    EPODE_TEXT_ONE_LINE = 1u << 1
};

/**
 * Serializes `el` and its subtree. On success *text is a NUL-terminated
 * string the caller frees with epode_free(), and *len (may be NULL) its
 * length. Errors: EPODE_EINVAL, EPODE_ENOMEM; outputs untouched then.
 */
EPODE_API int epode_stanza_to_text(const epode_stanza_t *el, unsigned flags, char **text,
                                   size_t *len);

/**
 * Parses one complete element (no stream around it, no XML declaration
 * needed) into a new tree; `len` (size_t)-1 means NUL-terminated. The
 * same restrictions as on a stream apply (no DTD, comments, PIs or
 * entities beyond the predefined ones) and the default parser limits.
 * Caller owns *out. Errors: EPODE_EXML (bad XML; *cond, if not NULL, says
 * which RFC 6120 condition), EPODE_ELIMIT (likewise, policy-violation),
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_stanza_from_text(const epode_mem_t *mem, const char *text, size_t len,
                                     epode_stanza_t **out, epode_stream_cond_t *cond);

#ifdef __cplusplus
}
#endif
#endif
