/* epode/forms.h — XEP-0004 Data Forms: parse a jabber:x:data form element
 * into a form object, read and change its fields, check the values
 * against the field types, and write it back as an element (a filled
 * form, a submission, a cancel, a result). Used by in-band registration
 * (XEP-0077), service discovery extensions (XEP-0128), ad-hoc commands
 * (XEP-0050), MAM queries (XEP-0313) and room configuration; applications
 * use it for their own forms too. Built on the public stanza API only.
 *
 * Ownership: a form owns copies of everything it holds (strings, the
 * media elements of XEP-0221). Fields are borrowed handles into their
 * form, valid until the form is freed or the field removed; strings
 * returned by getters are borrowed likewise, until the value changes.
 *
 * Limits: a parsed form keeps at most EPODE_FORM_MAX_FIELDS fields (in
 * the form, in `<reported/>` and in each `<item/>`), EPODE_FORM_MAX_VALUES
 * values and as many options per field, EPODE_FORM_MAX_ITEMS items;
 * beyond that parsing fails with EPODE_ELIMIT, so a hostile form cannot
 * make the client's memory or time grow without bound. */
#ifndef EPODE_FORMS_H
#define EPODE_FORMS_H

#include <stddef.h>

#include "common.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_DATA "jabber:x:data" /**< Data forms (XEP-0004). */
#define EPODE_NS_MEDIA "urn:xmpp:media-element" /**< Media elements in forms (XEP-0221). */

/** At most this many fields in a form epode parses. */
#define EPODE_FORM_MAX_FIELDS 1000
/** At most this many values in one field. */
#define EPODE_FORM_MAX_VALUES 1000
/** At most this many items in a form's reported table. */
#define EPODE_FORM_MAX_ITEMS 10000

/** A data form (opaque). */
typedef struct epode_form epode_form_t;
/** One field of a form (opaque, borrowed from its form). */
typedef struct epode_form_field epode_form_field_t;

/** The form's type (the `type` attribute of `<x/>`). */
typedef enum epode_form_type {
    EPODE_FORM_FORM = 1, /**< asks for values ("form") */
    EPODE_FORM_SUBMIT,   /**< answers a form ("submit") */
    EPODE_FORM_CANCEL,   /**< declines to answer ("cancel") */
    EPODE_FORM_RESULT    /**< returns data ("result") */
} epode_form_type_t;
/** The name of a value of epode_form_type_t, e.g. "submit" for EPODE_FORM_SUBMIT: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_form_type_name(epode_form_type_t type);

/** A field's type (XEP-0004 §3.3). A field without a type attribute is
 * text-single. EPODE_FIELD_UNKNOWN keeps a type epode does not know: its
 * name is kept (epode_form_field_type_name) and written back unchanged,
 * and its values are checked as text. */
typedef enum epode_form_field_type {
    EPODE_FIELD_UNKNOWN = 0,
    EPODE_FIELD_BOOLEAN,
    EPODE_FIELD_FIXED,
    EPODE_FIELD_HIDDEN,
    EPODE_FIELD_JID_MULTI,
    EPODE_FIELD_JID_SINGLE,
    EPODE_FIELD_LIST_MULTI,
    EPODE_FIELD_LIST_SINGLE,
    EPODE_FIELD_TEXT_MULTI,
    EPODE_FIELD_TEXT_PRIVATE,
    EPODE_FIELD_TEXT_SINGLE
} epode_form_field_type_t;

/** The XEP-0004 name of a field type ("jid-single"); NULL for
 * EPODE_FIELD_UNKNOWN or a value outside the enum. Static storage. */
EPODE_API const char *epode_form_field_type_to_name(epode_form_field_type_t type);
/** The field type with this name; EPODE_FIELD_UNKNOWN if none (NULL
 * included). */
EPODE_API epode_form_field_type_t epode_form_field_type_from_name(const char *name);

/* ---- life cycle --------------------------------------------------------- */

/**
 * Makes an empty form of `type` with allocator `mem` (NULL: libc).
 * Caller owns *out and frees it with epode_form_free(). Errors:
 * EPODE_EINVAL (type outside the enum, out NULL), EPODE_ENOMEM.
 */
EPODE_API int epode_form_new(const epode_mem_t *mem, epode_form_type_t type, epode_form_t **out);

/** Frees a form and everything it holds. NULL is a no-op. */
EPODE_API void epode_form_free(epode_form_t *form);

/**
 * Reads `x`, an `<x xmlns='jabber:x:data'/>` element (borrowed; it is
 * not kept), into a new form made with `mem` (NULL: libc). Kept: type,
 * title, instructions, fields (var, type, label, desc, required, values,
 * options, the XEP-0221 `<media/>` element copied as it is), the
 * `<reported/>` fields and the `<item/>` rows. Unknown children are
 * ignored. Caller owns *out.
 *
 * Errors (nothing is made then): EPODE_EINVAL (NULL arguments, or `x` is
 * not a data form), EPODE_EPROTOCOL (a type attribute that is not one of
 * the four, a field other than fixed without `var`, the same `var` twice
 * in a form or an item), EPODE_ELIMIT (past the limits above),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_form_parse(const epode_mem_t *mem, const epode_stanza_t *x,
                               epode_form_t **out);

/** Finds the first data form child of `parent` (borrowed; NULL if none)
 * whose FORM_TYPE is `form_type` (NULL: any form). */
EPODE_API epode_stanza_t *epode_form_find(const epode_stanza_t *parent, const char *form_type);

/**
 * Writes the form as a new `<x xmlns='jabber:x:data'/>` element appended
 * to `parent`; *out (may be NULL) receives it, borrowed from parent's
 * tree. Everything the form holds is written (for an answer to a form,
 * use epode_form_submit() first: a submission carries only values).
 * Errors: EPODE_EINVAL, EPODE_ENOMEM (parent may then hold a partial
 * element: remove it with epode_stanza_remove()).
 */
EPODE_API int epode_form_add_to(const epode_form_t *form, epode_stanza_t *parent,
                                epode_stanza_t **out);

/** Like epode_form_add_to() but makes a new tree with the form's
 * allocator whose root is the `<x/>`. Caller owns *out (one reference). */
EPODE_API int epode_form_to_stanza(const epode_form_t *form, epode_stanza_t **out);

/**
 * Makes the submission that answers `form` (XEP-0004 §3.2): a new form of
 * type submit holding, for every field that has a var and is not fixed,
 * its var, its type and its values (no labels, descriptions or
 * options). The values are not checked: call epode_form_validate()
 * first. Caller owns *out. Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_form_submit(const epode_form_t *form, epode_form_t **out);

/* ---- the form --------------------------------------------------------------- */

/** The form's type (0 for NULL). */
EPODE_API epode_form_type_t epode_form_get_type(const epode_form_t *form);
/** The title (borrowed), NULL if none. */
EPODE_API const char *epode_form_get_title(const epode_form_t *form);
/** Sets (NULL: removes) the title. Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_form_set_title(epode_form_t *form, const char *title);
/** How many `<instructions/>` lines the form has. */
EPODE_API size_t epode_form_instructions_count(const epode_form_t *form);
/** The i-th instructions line (borrowed), NULL past the end. */
EPODE_API const char *epode_form_instructions_at(const epode_form_t *form, size_t i);
/** Appends an instructions line. Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_form_add_instructions(epode_form_t *form, const char *text);

/**
 * The form's FORM_TYPE (XEP-0068): the value of the hidden field named
 * FORM_TYPE (borrowed), NULL if there is none.
 */
EPODE_API const char *epode_form_get_form_type(const epode_form_t *form);
/** Sets the FORM_TYPE: a hidden field, first in the form, with this one
 * value (added if missing). Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_form_set_form_type(epode_form_t *form, const char *form_type);

/* ---- fields --------------------------------------------------------------------- */

/** Number of fields (outside `<reported/>` and items). */
EPODE_API size_t epode_form_field_count(const epode_form_t *form);
/** The i-th field in document order (borrowed), NULL past the end. */
EPODE_API epode_form_field_t *epode_form_field_at(const epode_form_t *form, size_t i);
/** The field named `var` (borrowed), NULL if none. */
EPODE_API epode_form_field_t *epode_form_get_field(const epode_form_t *form, const char *var);

/**
 * Appends a field. `var` may be NULL only for EPODE_FIELD_FIXED; a var
 * the form already has is refused (EPODE_EINVAL). `label` may be NULL.
 * `type` EPODE_FIELD_UNKNOWN is refused. *out (may be NULL) receives the
 * field. Errors: EPODE_EINVAL, EPODE_ELIMIT (EPODE_FORM_MAX_FIELDS),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_form_add_field(epode_form_t *form, const char *var,
                                   epode_form_field_type_t type, const char *label,
                                   epode_form_field_t **out);
/** Removes the field named `var`. EPODE_ENOTFOUND if there is none. */
EPODE_API int epode_form_remove_field(epode_form_t *form, const char *var);

/** The field's var (borrowed), NULL for a fixed field without one. */
EPODE_API const char *epode_form_field_var(const epode_form_field_t *field);
/** The field's type. */
EPODE_API epode_form_field_type_t epode_form_field_type(const epode_form_field_t *field);
/** The field's type as written in the form (borrowed): the XEP-0004 name,
 * or the unknown name a parsed form carried. */
EPODE_API const char *epode_form_field_type_name(const epode_form_field_t *field);
/** The label (borrowed), NULL if none. */
EPODE_API const char *epode_form_field_label(const epode_form_field_t *field);
/** The `<desc/>` (borrowed), NULL if none. */
EPODE_API const char *epode_form_field_desc(const epode_form_field_t *field);
/** 1 if the field carries `<required/>`. */
EPODE_API int epode_form_field_required(const epode_form_field_t *field);
/** Sets (NULL: removes) the description. */
EPODE_API int epode_form_field_set_desc(epode_form_field_t *field, const char *desc);
/** Marks the field required (1) or not (0). */
EPODE_API int epode_form_field_set_required(epode_form_field_t *field, int required);

/** How many values the field has. */
EPODE_API size_t epode_form_field_value_count(const epode_form_field_t *field);
/** The i-th value (borrowed), NULL past the end. */
EPODE_API const char *epode_form_field_value_at(const epode_form_field_t *field, size_t i);
/** The first value (borrowed), NULL if none. */
EPODE_API const char *epode_form_field_value(const epode_form_field_t *field);
/**
 * A boolean field's value: *out is 1 for "1"/"true", 0 for "0"/"false"
 * or no value (XEP-0004 §3.3: the default is false). EPODE_EINVAL for any
 * other value.
 */
EPODE_API int epode_form_field_bool(const epode_form_field_t *field, int *out);

/** Replaces all values with `value` (NULL: no value). The value is any
 * UTF-8 text XML can carry; it is checked against the type only by
 * epode_form_validate(). Errors: EPODE_EINVAL, EPODE_ENOMEM (the old
 * values stay then). */
EPODE_API int epode_form_field_set_value(epode_form_field_t *field, const char *value);
/** Appends a value (for the -multi types). Errors: EPODE_EINVAL,
 * EPODE_ELIMIT (EPODE_FORM_MAX_VALUES), EPODE_ENOMEM. */
EPODE_API int epode_form_field_add_value(epode_form_field_t *field, const char *value);
/** Removes every value. */
EPODE_API void epode_form_field_clear_values(epode_form_field_t *field);

/** How many `<option/>`s the field has (list types). */
EPODE_API size_t epode_form_field_option_count(const epode_form_field_t *field);
/** The i-th option: its value (return; borrowed) and its label (*label,
 * may be NULL; NULL when the option has none). NULL past the end. */
EPODE_API const char *epode_form_field_option_at(const epode_form_field_t *field, size_t i,
                                                 const char **label);
/** Appends an option. Errors: EPODE_EINVAL, EPODE_ELIMIT, EPODE_ENOMEM. */
EPODE_API int epode_form_field_add_option(epode_form_field_t *field, const char *label,
                                          const char *value);

/**
 * The field's XEP-0221 `<media xmlns='urn:xmpp:media-element'/>` element
 * as the form carried it (a CAPTCHA image's URIs, for instance), or NULL.
 * Borrowed from the form. The data it points at (a `cid:` URI of
 * XEP-0231 bits of binary) travels elsewhere in the stanza.
 */
EPODE_API const epode_stanza_t *epode_form_field_media(const epode_form_field_t *field);

/* ---- shortcuts by var --------------------------------------------------------- */

/** The first value of the field `var` (borrowed), NULL if no such field
 * or no value. */
EPODE_API const char *epode_form_get_value(const epode_form_t *form, const char *var);
/**
 * Sets the field `var` to the one value `value` (NULL: no value). A
 * missing field is added as text-single (to fill a submission), unless
 * the form is of type form: then EPODE_ENOTFOUND. Errors: EPODE_EINVAL,
 * EPODE_ENOTFOUND, EPODE_ELIMIT, EPODE_ENOMEM.
 */
EPODE_API int epode_form_set_value(epode_form_t *form, const char *var, const char *value);

/* ---- reported fields and items (multi-item results) -------------------------- */

/** Number of `<reported/>` fields (the columns of the items). */
EPODE_API size_t epode_form_reported_count(const epode_form_t *form);
/** The i-th reported field (borrowed), NULL past the end. */
EPODE_API epode_form_field_t *epode_form_reported_at(const epode_form_t *form, size_t i);
/** Number of `<item/>` rows. */
EPODE_API size_t epode_form_item_count(const epode_form_t *form);
/** Number of fields in item `item`; 0 past the end. */
EPODE_API size_t epode_form_item_field_count(const epode_form_t *form, size_t item);
/** The i-th field of item `item` (borrowed), NULL past either end. */
EPODE_API epode_form_field_t *epode_form_item_field_at(const epode_form_t *form, size_t item,
                                                       size_t i);
/** The field `var` of item `item` (borrowed), NULL if none. */
EPODE_API epode_form_field_t *epode_form_item_get_field(const epode_form_t *form, size_t item,
                                                        const char *var);

/* ---- checking ---------------------------------------------------------------------- */

/**
 * Checks every field's values against its type (XEP-0004 §3.3): a
 * required field has a value (fixed fields excepted); single-valued
 * types (boolean, fixed, hidden, jid-single, list-single, text-private,
 * text-single) have at most one value, and it is one line; a boolean is
 * 0, 1, false or true; jid-single and jid-multi values are valid JIDs;
 * a list value is one of the field's options when it has options. Items
 * are not checked. On failure *bad_var (may be NULL) points at the var
 * of the first bad field (borrowed; NULL for a field without var) and
 * *why (may be NULL) at a static sentence saying what is wrong.
 * Returns 0 when all fields are fine, EPODE_EINVAL otherwise.
 */
EPODE_API int epode_form_validate(const epode_form_t *form, const char **bad_var,
                                  const char **why);

#ifdef __cplusplus
}
#endif
#endif
