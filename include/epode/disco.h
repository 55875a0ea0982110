/* epode/disco.h — service discovery (XEP-0030, with XEP-0128 extended
 * information forms): a responder that answers disco#info and
 * disco#items about us from what the application and epode's helpers
 * register, and a client that asks any entity and hands back plain C
 * structures.
 *
 * A disco helper belongs to one connection: make it with
 * epode_disco_new() (before or after connecting; it survives reconnects)
 * and free it with epode_disco_free(). Freeing the connection first is
 * allowed: the helper becomes inert (it answers nothing, pending queries
 * are forgotten without their callbacks, asking returns EPODE_ESTATE,
 * epode_disco_conn() returns NULL; the registry still works); still free
 * it. Registrations are per node; the NULL node is the entity itself. */
#ifndef EPODE_DISCO_H
#define EPODE_DISCO_H

#include <stddef.h>
#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Service discovery, info (XEP-0030). */
#define EPODE_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
/** Service discovery, items (XEP-0030). */
#define EPODE_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define EPODE_NS_DATA "jabber:x:data" /**< Data forms (XEP-0004). */

/** A disco helper on one connection (opaque). */
typedef struct epode_disco epode_disco_t;

/* ---- results, as plain structures ------------------------------------ */

/** An identity. category and type are never NULL; name and lang may be. */
typedef struct epode_disco_identity {
    const char *category; /**< "client", "server", "conference", ... */
    const char *type;     /**< "bot", "pc", "text", ... */
    const char *name;     /**< a human-readable name, or NULL */
    const char *lang; /**< xml:lang */
} epode_disco_identity_t;

/** A data form field: var (may be NULL for fixed fields), type (NULL if
 * absent) and its values in document order. */
typedef struct epode_disco_field {
    const char *var;           /**< the field's name, or NULL */
    const char *type;          /**< the field's type, or NULL */
    const char *const *values; /**< its values, in document order */
    size_t nvalues;            /**< how many values */
} epode_disco_field_t;

/** An XEP-0128 extended information form (jabber:x:data). form_type is
 * the first value of the FORM_TYPE field, NULL if there is none; fields
 * include FORM_TYPE itself. */
typedef struct epode_disco_form {
    const char *form_type; /**< the FORM_TYPE value, or NULL */
    const char *type; /**< the form's type attribute ("result") */
    const epode_disco_field_t *fields; /**< every field, FORM_TYPE included */
    size_t nfields;                    /**< how many fields */
} epode_disco_form_t;

/**
 * A disco#info result. Entries a peer sent that XEP-0030 cannot make sense
 * of (an identity without category or type, a feature without var) are
 * skipped. Every string is borrowed from `query`, which the structure
 * keeps alive.
 */
typedef struct epode_disco_info {
    const char *node; /**< the node attribute of the answer, or NULL */
    const epode_disco_identity_t *identities; /**< the identities */
    size_t nidentities;                       /**< how many identities */
    const char *const *features;              /**< the feature namespaces */
    size_t nfeatures;                         /**< how many features */
    const epode_disco_form_t *forms;          /**< extended information forms */
    size_t nforms;                            /**< how many forms */
    const epode_stanza_t *query; /**< the `<query/>` it was read from */
} epode_disco_info_t;

/** An item. jid is a valid JID, never NULL; node and name may be NULL. */
typedef struct epode_disco_item {
    const char *jid;  /**< the item's JID */
    const char *node; /**< its node, or NULL */
    const char *name; /**< its name, or NULL */
} epode_disco_item_t;

/** A disco#items result (items without a valid jid are skipped). */
typedef struct epode_disco_items {
    const char *node;                /**< the node attribute of the answer, or NULL */
    const epode_disco_item_t *items; /**< the items */
    size_t nitems;                   /**< how many items */
    const epode_stanza_t *query;     /**< the `<query/>` it was read from */
} epode_disco_items_t;

/**
 * Reads a disco#info `<query/>` (or an IQ whose child it is) into a new
 * structure that takes a reference on `el`'s tree. Caller frees it with
 * epode_disco_info_free(). Errors: EPODE_EINVAL (NULL), EPODE_ENOTFOUND
 * (no disco#info query there), EPODE_ENOMEM.
 */
EPODE_API int epode_disco_info_parse(const epode_stanza_t *el, epode_disco_info_t **out);
/** Frees what epode_disco_info_parse() made. NULL is a no-op. */
EPODE_API void epode_disco_info_free(epode_disco_info_t *info);
/** 1 if `info` lists `feature`, else 0. */
EPODE_API int epode_disco_info_has_feature(const epode_disco_info_t *info, const char *feature);

/** Like epode_disco_info_parse() for disco#items. */
EPODE_API int epode_disco_items_parse(const epode_stanza_t *el, epode_disco_items_t **out);
/** Frees what epode_disco_items_parse() made. NULL is a no-op. */
EPODE_API void epode_disco_items_free(epode_disco_items_t *items);

/* ---- the helper -------------------------------------------------------- */

/**
 * Makes a disco helper on `conn` and starts answering disco#info and
 * disco#items requests. The entity starts with the identity client/bot
 * (no name) and the features disco#info and disco#items; change them
 * with the functions below. Caller owns *out. Errors: EPODE_EINVAL,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_disco_new(epode_conn_t *conn, epode_disco_t **out);

/** Stops answering, cancels pending queries (their callbacks are not
 * called) and frees the helper. Call it before or after freeing the
 * connection (see above), but not from inside one of this helper's own
 * callbacks. NULL is a no-op. */
EPODE_API void epode_disco_free(epode_disco_t *disco);

/** The connection the helper was made on; NULL once that was freed. */
EPODE_API epode_conn_t *epode_disco_conn(const epode_disco_t *disco);

/* ---- what we answer (per node; NULL node: ourselves) ------------------ */

/**
 * Adds an identity to `node`; one with the same category, type and lang
 * gets its name replaced. Strings are copied. Errors: EPODE_EINVAL
 * (category or type NULL or empty), EPODE_ENOMEM.
 */
EPODE_API int epode_disco_add_identity(epode_disco_t *disco, const char *node,
                                       const char *category, const char *type,
                                       const char *name, const char *lang);
/** Removes the identity category/type/lang (lang NULL: the one without
 * xml:lang) from `node`. EPODE_ENOTFOUND if there was none. */
EPODE_API int epode_disco_remove_identity(epode_disco_t *disco, const char *node,
                                          const char *category, const char *type,
                                          const char *lang);
/** Adds a feature to `node` (adding it twice is harmless). */
EPODE_API int epode_disco_add_feature(epode_disco_t *disco, const char *node, const char *var);
/** Removes a feature; EPODE_ENOTFOUND if it was not there. */
EPODE_API int epode_disco_remove_feature(epode_disco_t *disco, const char *node,
                                         const char *var);
/**
 * Adds an XEP-0128 form to `node`: `form` is an `<x xmlns='jabber:x:data'
 * type='result'/>` with a hidden FORM_TYPE field. It is copied; one with
 * the same FORM_TYPE is replaced. Errors: EPODE_EINVAL (not such a form),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_disco_add_form(epode_disco_t *disco, const char *node,
                                   const epode_stanza_t *form);
/** Removes the form with this FORM_TYPE; EPODE_ENOTFOUND if none. */
EPODE_API int epode_disco_remove_form(epode_disco_t *disco, const char *node,
                                      const char *form_type);
/**
 * Adds an item to what disco#items of `node` answers: `jid` (required, a
 * valid JID), `item_node` and `name` (NULL: none). The same jid and
 * item_node again replaces the name. Errors: EPODE_EJID, EPODE_ENOMEM.
 */
EPODE_API int epode_disco_add_item(epode_disco_t *disco, const char *node, const char *jid,
                                   const char *item_node, const char *name);
/** Removes the item jid/item_node from `node`; EPODE_ENOTFOUND if none. */
EPODE_API int epode_disco_remove_item(epode_disco_t *disco, const char *node,
                                      const char *jid, const char *item_node);

/**
 * Makes requests for node `alias` answered with what `target` (NULL:
 * ourselves) holds, the answer naming `alias` (entity capabilities use
 * this for "NODE#VER"). Setting an alias again retargets it. Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_disco_set_alias(epode_disco_t *disco, const char *alias,
                                    const char *target);
/** Removes an alias; EPODE_ENOTFOUND if none. */
EPODE_API int epode_disco_remove_alias(epode_disco_t *disco, const char *alias);

/**
 * Builds the `<query xmlns='…disco#info'/>` we would answer for `node`
 * (NULL: ourselves; aliases followed), node attribute included. Caller
 * owns *out. Errors: EPODE_ENOTFOUND (no such node), EPODE_ENOMEM.
 */
EPODE_API int epode_disco_build_info(epode_disco_t *disco, const char *node,
                                     epode_stanza_t **out);

/** Told that what `node` answers (NULL: ourselves) has changed. */
typedef void (*epode_disco_changed_cb)(epode_disco_t *disco, const char *node, void *user);
/** Adds a listener for changes; *id (may be NULL) is for
 * epode_disco_remove_changed_cb(). Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_disco_add_changed_cb(epode_disco_t *disco, epode_disco_changed_cb cb,
                                         void *user, unsigned *id);
/** Removes a change listener; EPODE_ENOTFOUND if no such id. */
EPODE_API int epode_disco_remove_changed_cb(epode_disco_t *disco, unsigned id);

/* ---- asking others ---------------------------------------------------- */

/**
 * The answer to a query. `status` 0: `info` (borrowed for the call; keep
 * it with epode_disco_info_parse(info->query, …)) holds the result.
 * Otherwise `info` is NULL and `status` is EPODE_EPROTOCOL (the entity
 * answered with an error — `cond` names its condition — or with no
 * disco#info query at all — `cond` EPODE_COND_NONE), EPODE_ETIMEDOUT or
 * EPODE_ECANCELED (the connection ended). `jid` and `node` are those
 * asked (borrowed; jid NULL for our own account).
 */
typedef void (*epode_disco_info_cb)(epode_disco_t *disco, const char *jid, const char *node,
                                    const epode_disco_info_t *info, int status,
                                    epode_stanza_cond_t cond, void *user);
/** Like epode_disco_info_cb for disco#items. */
typedef void (*epode_disco_items_cb)(epode_disco_t *disco, const char *jid, const char *node,
                                     const epode_disco_items_t *items, int status,
                                     epode_stanza_cond_t cond, void *user);

/**
 * Asks `jid` (NULL: our own account) for disco#info of `node` (NULL:
 * none) and calls `cb` once with the answer. Only an answer from `jid`
 * is accepted. `timeout_ms` 0 means 30 s. *id (may be NULL) is for
 * epode_disco_cancel(). Errors: EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE
 * (not connected, or the connection was freed), EPODE_ENOMEM; `cb` is
 * never called then.
 */
EPODE_API int epode_disco_get_info(epode_disco_t *disco, const char *jid, const char *node,
                                   unsigned timeout_ms, epode_disco_info_cb cb, void *user,
                                   unsigned *id);
/** Like epode_disco_get_info() for disco#items. */
EPODE_API int epode_disco_get_items(epode_disco_t *disco, const char *jid, const char *node,
                                    unsigned timeout_ms, epode_disco_items_cb cb, void *user,
                                    unsigned *id);
/** Forgets a pending query; its callback is not called. EPODE_ENOTFOUND
 * if it is not pending. */
EPODE_API int epode_disco_cancel(epode_disco_t *disco, unsigned id);

#ifdef __cplusplus
}
#endif
#endif
