/* lib/im/forms.c — XEP-0004 data forms on the public stanza API: a form
 * object made from an `<x xmlns='jabber:x:data'/>` element or built by
 * hand, written back as an element. It owns copies of all it holds and
 * never keeps a pointer into the element it was parsed from. Everything
 * a parsed form holds is bounded (EPODE_FORM_MAX_*), so a hostile form
 * costs at most a constant factor of the stanza it came in. */
#include <epode.h>
#include <epode/forms.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

typedef struct form_option {
    char *label, *value;
} form_option;

struct epode_form_field {
    const epode_mem_t *mem;
    char *var, *label, *desc;
    char *type_name; /* as written, for a type epode does not know */
    epode_form_field_type_t type;
    int has_type;    /* written with a type attribute */
    int required;
    char **values;
    size_t nvalues, cap_values;
    form_option *options;
    size_t noptions, cap_options;
    epode_stanza_t *media; /* our own copy (a tree root), or NULL */
};

typedef struct field_list {
    epode_form_field_t **v;
    size_t n, cap;
} field_list;

struct epode_form {
    const epode_mem_t *mem;
    epode_form_type_t type;
    char *title;
    char **instr;
    size_t ninstr, cap_instr;
    field_list fields, reported;
    field_list *items;
    size_t nitems, cap_items;
};

static const char *const type_names[] = {
    [EPODE_FIELD_BOOLEAN] = "boolean",         [EPODE_FIELD_FIXED] = "fixed",
    [EPODE_FIELD_HIDDEN] = "hidden",           [EPODE_FIELD_JID_MULTI] = "jid-multi",
    [EPODE_FIELD_JID_SINGLE] = "jid-single",   [EPODE_FIELD_LIST_MULTI] = "list-multi",
    [EPODE_FIELD_LIST_SINGLE] = "list-single", [EPODE_FIELD_TEXT_MULTI] = "text-multi",
    [EPODE_FIELD_TEXT_PRIVATE] = "text-private", [EPODE_FIELD_TEXT_SINGLE] = "text-single",
};
#define NTYPES (sizeof type_names / sizeof type_names[0])

static const char *const form_type_names[] = {
    [EPODE_FORM_FORM] = "form", [EPODE_FORM_SUBMIT] = "submit",
    [EPODE_FORM_CANCEL] = "cancel", [EPODE_FORM_RESULT] = "result",
};

const char *epode_form_field_type_to_name(epode_form_field_type_t type)
{
    return type > EPODE_FIELD_UNKNOWN && (size_t)type < NTYPES ? type_names[type] : NULL;
}

epode_form_field_type_t epode_form_field_type_from_name(const char *name)
{
    if (name)
        for (size_t i = 1; i < NTYPES; i++)
            if (strcmp(type_names[i], name) == 0)
                return (epode_form_field_type_t)i;
    return EPODE_FIELD_UNKNOWN;
}

/* ---- text checks --------------------------------------------------------------- */

/* 1 if s is UTF-8 made only of characters XML 1.0 can carry. */
static int text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp;
        size_t n;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return 0;
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F, n = 1;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F, n = 2;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07, n = 3;
        } else {
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
            return 0;
        p += n + 1;
    }
    return 1;
}

/* ---- storage helpers ----------------------------------------------------------- */

static int grow(const epode_mem_t *mem, void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    while (ncap < need)
        ncap *= 2;
    void *n = im_realloc(mem, *arr, ncap * size);
    if (!n)
        return EPODE_ENOMEM;
    *arr = n;
    *cap = ncap;
    return 0;
}

/* Replaces *slot with a copy of s (NULL clears). */
static int set_string(const epode_mem_t *mem, char **slot, const char *s)
{
    char *copy = NULL;
    if (s) {
        if (!text_ok(s))
            return EPODE_EINVAL;
        if (!(copy = im_strdup(mem, s)))
            return EPODE_ENOMEM;
    }
    im_free(mem, *slot);
    *slot = copy;
    return 0;
}

static void field_free(epode_form_field_t *f)
{
    if (!f)
        return;
    const epode_mem_t *mem = f->mem;
    im_free(mem, f->var);
    im_free(mem, f->label);
    im_free(mem, f->desc);
    im_free(mem, f->type_name);
    for (size_t i = 0; i < f->nvalues; i++)
        im_free(mem, f->values[i]);
    im_free(mem, f->values);
    for (size_t i = 0; i < f->noptions; i++) {
        im_free(mem, f->options[i].label);
        im_free(mem, f->options[i].value);
    }
    im_free(mem, f->options);
    epode_stanza_unref(f->media);
    im_free(mem, f);
}

static void list_free(const epode_mem_t *mem, field_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        field_free(l->v[i]);
    im_free(mem, l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static epode_form_field_t *list_find(const field_list *l, const char *var)
{
    if (!var)
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i]->var && strcmp(l->v[i]->var, var) == 0)
            return l->v[i];
    return NULL;
}

/* A new field (not yet in any list). */
static int field_new(const epode_mem_t *mem, const char *var, epode_form_field_type_t type,
                     const char *type_name, const char *label, epode_form_field_t **out)
{
    if ((var && !text_ok(var)) || (label && !text_ok(label)) ||
        (type_name && !text_ok(type_name)))
        return EPODE_EINVAL;
    epode_form_field_t *f = im_zalloc(mem, sizeof *f);
    if (!f)
        return EPODE_ENOMEM;
    f->mem = mem;
    f->type = type;
    f->has_type = 1;
    if ((var && !(f->var = im_strdup(mem, var))) ||
        (label && !(f->label = im_strdup(mem, label))) ||
        (type == EPODE_FIELD_UNKNOWN && type_name && !(f->type_name = im_strdup(mem, type_name)))) {
        field_free(f);
        return EPODE_ENOMEM;
    }
    *out = f;
    return 0;
}

static int list_append(const epode_mem_t *mem, field_list *l, epode_form_field_t *f)
{
    if (l->n >= EPODE_FORM_MAX_FIELDS)
        return EPODE_ELIMIT;
    int rc = grow(mem, (void **)&l->v, &l->cap, l->n + 1, sizeof *l->v);
    if (rc < 0)
        return rc;
    l->v[l->n++] = f;
    return 0;
}

/* ---- life cycle ----------------------------------------------------------------- */

int epode_form_new(const epode_mem_t *mem, epode_form_type_t type, epode_form_t **out)
{
    if (!out || type < EPODE_FORM_FORM || type > EPODE_FORM_RESULT)
        return EPODE_EINVAL;
    epode_form_t *f = im_zalloc(mem, sizeof *f);
    if (!f)
        return EPODE_ENOMEM;
    f->mem = mem;
    f->type = type;
    *out = f;
    return 0;
}

void epode_form_free(epode_form_t *form)
{
    if (!form)
        return;
    const epode_mem_t *mem = form->mem;
    im_free(mem, form->title);
    for (size_t i = 0; i < form->ninstr; i++)
        im_free(mem, form->instr[i]);
    im_free(mem, form->instr);
    list_free(mem, &form->fields);
    list_free(mem, &form->reported);
    for (size_t i = 0; i < form->nitems; i++)
        list_free(mem, &form->items[i]);
    im_free(mem, form->items);
    im_free(mem, form);
}

/* ---- parsing -------------------------------------------------------------------- */

static int is_data(const epode_stanza_t *el, const char *name)
{
    const char *ns = epode_stanza_get_ns(el);
    return ns && strcmp(ns, EPODE_NS_DATA) == 0 && strcmp(epode_stanza_get_name(el), name) == 0;
}

/* Text of an element; NULL only when the tree could not join it. */
static const char *text_of(const epode_stanza_t *el)
{
    return epode_stanza_get_text(el);
}

static int field_push_value(epode_form_field_t *f, const char *v)
{
    if (f->nvalues >= EPODE_FORM_MAX_VALUES)
        return EPODE_ELIMIT;
    int rc = grow(f->mem, (void **)&f->values, &f->cap_values, f->nvalues + 1, sizeof *f->values);
    if (rc < 0)
        return rc;
    if (!(f->values[f->nvalues] = im_strdup(f->mem, v)))
        return EPODE_ENOMEM;
    f->nvalues++;
    return 0;
}

static int field_push_option(epode_form_field_t *f, const char *label, const char *value)
{
    if (f->noptions >= EPODE_FORM_MAX_VALUES)
        return EPODE_ELIMIT;
    int rc = grow(f->mem, (void **)&f->options, &f->cap_options, f->noptions + 1,
                  sizeof *f->options);
    if (rc < 0)
        return rc;
    form_option *o = &f->options[f->noptions];
    o->label = label ? im_strdup(f->mem, label) : NULL;
    o->value = im_strdup(f->mem, value);
    if ((label && !o->label) || !o->value) {
        im_free(f->mem, o->label);
        im_free(f->mem, o->value);
        return EPODE_ENOMEM;
    }
    f->noptions++;
    return 0;
}

static int parse_field(const epode_mem_t *mem, const epode_stanza_t *el, int need_var,
                       epode_form_field_t **out)
{
    const char *var = epode_stanza_get_attr(el, "var");
    const char *tname = epode_stanza_get_attr(el, "type");
    epode_form_field_type_t type = tname ? epode_form_field_type_from_name(tname)
                                         : EPODE_FIELD_TEXT_SINGLE;
    if (!var && (need_var || type != EPODE_FIELD_FIXED))
        return EPODE_EPROTOCOL;
    epode_form_field_t *f;
    int rc = field_new(mem, var, type, tname, epode_stanza_get_attr(el, "label"), &f);
    if (rc < 0)
        return rc == EPODE_EINVAL ? EPODE_EPROTOCOL : rc;
    f->has_type = tname != NULL;
    for (epode_stanza_t *c = epode_stanza_first_child(el); c && rc == 0;
         c = epode_stanza_next(c)) {
        const char *t;
        if (is_data(c, "value")) {
            rc = (t = text_of(c)) ? field_push_value(f, t) : EPODE_ENOMEM;
        } else if (is_data(c, "required")) {
            f->required = 1;
        } else if (is_data(c, "desc")) {
            rc = (t = text_of(c)) ? set_string(mem, &f->desc, t) : EPODE_ENOMEM;
        } else if (is_data(c, "option")) {
            epode_stanza_t *v = epode_stanza_find_child(c, "value", EPODE_NS_DATA);
            if (!v)
                continue; /* an option without a value offers nothing */
            rc = (t = text_of(v)) ? field_push_option(f, epode_stanza_get_attr(c, "label"), t)
                                  : EPODE_ENOMEM;
        } else if (!f->media && strcmp(epode_stanza_get_name(c), "media") == 0 &&
                   epode_stanza_get_ns(c) && strcmp(epode_stanza_get_ns(c), EPODE_NS_MEDIA) == 0) {
            rc = epode_stanza_copy(c, &f->media);
        }
    }
    if (rc < 0) {
        field_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int by_var(const void *a, const void *b)
{
    const epode_form_field_t *x = *(epode_form_field_t *const *)a;
    const epode_form_field_t *y = *(epode_form_field_t *const *)b;
    return strcmp(x->var ? x->var : "", y->var ? y->var : "");
}

/* EPODE_EPROTOCOL if two fields of l share a var (XEP-0004 §3.2): sorted
 * copies, so a big form costs n log n, not n² (items add up). */
static int unique_vars(const epode_mem_t *mem, const field_list *l)
{
    if (l->n < 2)
        return 0;
    epode_form_field_t **v = im_alloc(mem, l->n * sizeof *v);
    if (!v)
        return EPODE_ENOMEM;
    memcpy(v, l->v, l->n * sizeof *v);
    qsort(v, l->n, sizeof *v, by_var);
    int rc = 0;
    for (size_t i = 1; i < l->n && rc == 0; i++)
        if (v[i]->var && v[i - 1]->var && strcmp(v[i]->var, v[i - 1]->var) == 0)
            rc = EPODE_EPROTOCOL;
    im_free(mem, v);
    return rc;
}

/* Reads the <field/> children of el into l (vars unique within l). */
static int parse_fields(const epode_mem_t *mem, const epode_stanza_t *el, int need_var,
                        field_list *l)
{
    for (epode_stanza_t *c = epode_stanza_find_child(el, "field", EPODE_NS_DATA); c;
         c = epode_stanza_find_next(c, "field", EPODE_NS_DATA)) {
        if (l->n >= EPODE_FORM_MAX_FIELDS)
            return EPODE_ELIMIT;
        epode_form_field_t *f;
        int rc = parse_field(mem, c, need_var, &f);
        if (rc < 0)
            return rc;
        if ((rc = list_append(mem, l, f)) < 0) {
            field_free(f);
            return rc;
        }
    }
    return unique_vars(mem, l);
}

int epode_form_parse(const epode_mem_t *mem, const epode_stanza_t *x, epode_form_t **out)
{
    if (!x || !out || !is_data(x, "x"))
        return EPODE_EINVAL;
    const char *tname = epode_stanza_get_attr(x, "type");
    epode_form_type_t type = 0;
    for (int i = EPODE_FORM_FORM; i <= EPODE_FORM_RESULT; i++)
        if (tname && strcmp(tname, form_type_names[i]) == 0)
            type = (epode_form_type_t)i;
    if (!type)
        return EPODE_EPROTOCOL;
    epode_form_t *f;
    int rc = epode_form_new(mem, type, &f);
    if (rc < 0)
        return rc;
    for (epode_stanza_t *c = epode_stanza_first_child(x); c && rc == 0; c = epode_stanza_next(c)) {
        const char *t;
        if (is_data(c, "title") && !f->title)
            rc = (t = text_of(c)) ? set_string(mem, &f->title, t) : EPODE_ENOMEM;
        else if (is_data(c, "instructions"))
            rc = (t = text_of(c)) ? epode_form_add_instructions(f, t) : EPODE_ENOMEM;
        else if (is_data(c, "reported") && f->reported.n == 0)
            rc = parse_fields(mem, c, 1, &f->reported);
        else if (is_data(c, "item")) {
            if (f->nitems >= EPODE_FORM_MAX_ITEMS) {
                rc = EPODE_ELIMIT;
                break;
            }
            if ((rc = grow(mem, (void **)&f->items, &f->cap_items, f->nitems + 1,
                           sizeof *f->items)) < 0)
                break;
            field_list *l = &f->items[f->nitems++];
            memset(l, 0, sizeof *l);
            rc = parse_fields(mem, c, 1, l);
        }
        if (rc == EPODE_EINVAL)
            rc = EPODE_EPROTOCOL; /* text a form cannot carry */
    }
    if (rc == 0)
        rc = parse_fields(mem, x, 0, &f->fields);
    if (rc < 0) {
        epode_form_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

epode_stanza_t *epode_form_find(const epode_stanza_t *parent, const char *form_type)
{
    if (!parent)
        return NULL;
    for (epode_stanza_t *x = epode_stanza_find_child(parent, "x", EPODE_NS_DATA); x;
         x = epode_stanza_find_next(x, "x", EPODE_NS_DATA)) {
        if (!form_type)
            return x;
        for (epode_stanza_t *fl = epode_stanza_find_child(x, "field", EPODE_NS_DATA); fl;
             fl = epode_stanza_find_next(fl, "field", EPODE_NS_DATA)) {
            const char *var = epode_stanza_get_attr(fl, "var");
            if (var && strcmp(var, "FORM_TYPE") == 0) {
                const char *v = epode_stanza_child_text(fl, "value", EPODE_NS_DATA);
                if (v && strcmp(v, form_type) == 0)
                    return x;
                break;
            }
        }
    }
    return NULL;
}

/* ---- writing ------------------------------------------------------------------- */

static int add_text_child(epode_stanza_t *parent, const char *name, const char *text,
                          epode_stanza_t **out)
{
    epode_stanza_t *c;
    int rc = epode_stanza_add_child_new(parent, name, EPODE_NS_DATA, &c);
    if (rc == 0 && text && *text)
        rc = epode_stanza_add_text(c, text, (size_t)-1);
    if (rc == 0 && out)
        *out = c;
    return rc;
}

static int write_field(const epode_form_field_t *f, epode_stanza_t *parent)
{
    epode_stanza_t *el;
    int rc = epode_stanza_add_child_new(parent, "field", EPODE_NS_DATA, &el);
    if (rc == 0 && f->var)
        rc = epode_stanza_set_attr(el, "var", f->var);
    if (rc == 0 && f->has_type)
        rc = epode_stanza_set_attr(el, "type", epode_form_field_type_name(f));
    if (rc == 0 && f->label)
        rc = epode_stanza_set_attr(el, "label", f->label);
    if (rc == 0 && f->desc)
        rc = add_text_child(el, "desc", f->desc, NULL);
    if (rc == 0 && f->required)
        rc = epode_stanza_add_child_new(el, "required", EPODE_NS_DATA, NULL);
    for (size_t i = 0; rc == 0 && i < f->nvalues; i++)
        rc = add_text_child(el, "value", f->values[i], NULL);
    for (size_t i = 0; rc == 0 && i < f->noptions; i++) {
        epode_stanza_t *o;
        rc = epode_stanza_add_child_new(el, "option", EPODE_NS_DATA, &o);
        if (rc == 0 && f->options[i].label)
            rc = epode_stanza_set_attr(o, "label", f->options[i].label);
        if (rc == 0)
            rc = add_text_child(o, "value", f->options[i].value, NULL);
    }
    if (rc == 0 && f->media)
        rc = epode_stanza_add_child(el, f->media, NULL);
    return rc;
}

int epode_form_add_to(const epode_form_t *form, epode_stanza_t *parent, epode_stanza_t **out)
{
    if (!form || !parent)
        return EPODE_EINVAL;
    epode_stanza_t *x;
    int rc = epode_stanza_add_child_new(parent, "x", EPODE_NS_DATA, &x);
    if (rc == 0)
        rc = epode_stanza_set_attr(x, "type", form_type_names[form->type]);
    if (rc == 0 && form->title)
        rc = add_text_child(x, "title", form->title, NULL);
    for (size_t i = 0; rc == 0 && i < form->ninstr; i++)
        rc = add_text_child(x, "instructions", form->instr[i], NULL);
    for (size_t i = 0; rc == 0 && i < form->fields.n; i++)
        rc = write_field(form->fields.v[i], x);
    if (rc == 0 && form->reported.n) {
        epode_stanza_t *r;
        rc = epode_stanza_add_child_new(x, "reported", EPODE_NS_DATA, &r);
        for (size_t i = 0; rc == 0 && i < form->reported.n; i++)
            rc = write_field(form->reported.v[i], r);
    }
    for (size_t j = 0; rc == 0 && j < form->nitems; j++) {
        epode_stanza_t *it;
        rc = epode_stanza_add_child_new(x, "item", EPODE_NS_DATA, &it);
        for (size_t i = 0; rc == 0 && i < form->items[j].n; i++)
            rc = write_field(form->items[j].v[i], it);
    }
    if (rc == 0 && out)
        *out = x;
    return rc;
}

int epode_form_to_stanza(const epode_form_t *form, epode_stanza_t **out)
{
    if (!form || !out)
        return EPODE_EINVAL;
    /* Built under a scratch root, then copied out as its own tree: the
     * public API makes roots only with epode_stanza_new(). */
    epode_stanza_t *holder, *x = NULL, *copy;
    int rc = epode_stanza_new(form->mem, "holder", EPODE_NS_DATA, &holder);
    if (rc < 0)
        return rc;
    if ((rc = epode_form_add_to(form, holder, &x)) == 0 && (rc = epode_stanza_copy(x, &copy)) == 0)
        *out = copy;
    epode_stanza_unref(holder);
    return rc;
}

static int copy_field(const epode_mem_t *mem, const epode_form_field_t *src, int values_only,
                      epode_form_field_t **out)
{
    epode_form_field_t *f;
    int rc = field_new(mem, src->var, src->type, src->type_name, values_only ? NULL : src->label,
                       &f);
    if (rc < 0)
        return rc;
    f->has_type = values_only ? src->has_type && src->type == EPODE_FIELD_HIDDEN : src->has_type;
    for (size_t i = 0; rc == 0 && i < src->nvalues; i++)
        rc = field_push_value(f, src->values[i]);
    if (!values_only) {
        f->required = src->required;
        if (rc == 0 && src->desc)
            rc = set_string(mem, &f->desc, src->desc);
        for (size_t i = 0; rc == 0 && i < src->noptions; i++)
            rc = field_push_option(f, src->options[i].label, src->options[i].value);
        if (rc == 0 && src->media)
            rc = epode_stanza_copy(src->media, &f->media);
    }
    if (rc < 0) {
        field_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int epode_form_submit(const epode_form_t *form, epode_form_t **out)
{
    if (!form || !out)
        return EPODE_EINVAL;
    epode_form_t *s;
    int rc = epode_form_new(form->mem, EPODE_FORM_SUBMIT, &s);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < form->fields.n; i++) {
        const epode_form_field_t *src = form->fields.v[i];
        if (!src->var || src->type == EPODE_FIELD_FIXED)
            continue;
        epode_form_field_t *f;
        if ((rc = copy_field(form->mem, src, 1, &f)) == 0 &&
            (rc = list_append(form->mem, &s->fields, f)) < 0)
            field_free(f);
    }
    if (rc < 0) {
        epode_form_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- the form ------------------------------------------------------------------ */

epode_form_type_t epode_form_get_type(const epode_form_t *form)
{
    return form ? form->type : (epode_form_type_t)0;
}

const char *epode_form_get_title(const epode_form_t *form) { return form ? form->title : NULL; }

int epode_form_set_title(epode_form_t *form, const char *title)
{
    return form ? set_string(form->mem, &form->title, title) : EPODE_EINVAL;
}

size_t epode_form_instructions_count(const epode_form_t *form) { return form ? form->ninstr : 0; }

const char *epode_form_instructions_at(const epode_form_t *form, size_t i)
{
    return form && i < form->ninstr ? form->instr[i] : NULL;
}

int epode_form_add_instructions(epode_form_t *form, const char *text)
{
    if (!form || !text || !text_ok(text))
        return EPODE_EINVAL;
    if (form->ninstr >= EPODE_FORM_MAX_VALUES)
        return EPODE_ELIMIT;
    int rc = grow(form->mem, (void **)&form->instr, &form->cap_instr, form->ninstr + 1,
                  sizeof *form->instr);
    if (rc < 0)
        return rc;
    if (!(form->instr[form->ninstr] = im_strdup(form->mem, text)))
        return EPODE_ENOMEM;
    form->ninstr++;
    return 0;
}

const char *epode_form_get_form_type(const epode_form_t *form)
{
    epode_form_field_t *f = form ? list_find(&form->fields, "FORM_TYPE") : NULL;
    return f && f->type == EPODE_FIELD_HIDDEN ? epode_form_field_value(f) : NULL;
}

int epode_form_set_form_type(epode_form_t *form, const char *form_type)
{
    if (!form || !form_type)
        return EPODE_EINVAL;
    epode_form_field_t *f = list_find(&form->fields, "FORM_TYPE");
    if (f) {
        int rc = epode_form_field_set_value(f, form_type);
        if (rc == 0) {
            f->type = EPODE_FIELD_HIDDEN;
            f->has_type = 1;
        }
        return rc;
    }
    int rc = epode_form_add_field(form, "FORM_TYPE", EPODE_FIELD_HIDDEN, NULL, &f);
    if (rc < 0)
        return rc;
    if ((rc = epode_form_field_set_value(f, form_type)) < 0) {
        epode_form_remove_field(form, "FORM_TYPE");
        return rc;
    }
    /* first in the form, where XEP-0068 readers look */
    memmove(form->fields.v + 1, form->fields.v, (form->fields.n - 1) * sizeof *form->fields.v);
    form->fields.v[0] = f;
    return 0;
}

/* ---- fields ---------------------------------------------------------------------- */

size_t epode_form_field_count(const epode_form_t *form) { return form ? form->fields.n : 0; }

epode_form_field_t *epode_form_field_at(const epode_form_t *form, size_t i)
{
    return form && i < form->fields.n ? form->fields.v[i] : NULL;
}

epode_form_field_t *epode_form_get_field(const epode_form_t *form, const char *var)
{
    return form ? list_find(&form->fields, var) : NULL;
}

int epode_form_add_field(epode_form_t *form, const char *var, epode_form_field_type_t type,
                         const char *label, epode_form_field_t **out)
{
    if (!form || type <= EPODE_FIELD_UNKNOWN || (size_t)type >= NTYPES ||
        (!var && type != EPODE_FIELD_FIXED) || (var && list_find(&form->fields, var)))
        return EPODE_EINVAL;
    if (form->fields.n >= EPODE_FORM_MAX_FIELDS)
        return EPODE_ELIMIT;
    epode_form_field_t *f;
    int rc = field_new(form->mem, var, type, NULL, label, &f);
    if (rc < 0)
        return rc;
    if ((rc = list_append(form->mem, &form->fields, f)) < 0) {
        field_free(f);
        return rc;
    }
    if (out)
        *out = f;
    return 0;
}

int epode_form_remove_field(epode_form_t *form, const char *var)
{
    if (!form || !var)
        return EPODE_EINVAL;
    for (size_t i = 0; i < form->fields.n; i++) {
        epode_form_field_t *f = form->fields.v[i];
        if (f->var && strcmp(f->var, var) == 0) {
            memmove(form->fields.v + i, form->fields.v + i + 1,
                    (form->fields.n - i - 1) * sizeof *form->fields.v);
            form->fields.n--;
            field_free(f);
            return 0;
        }
    }
    return EPODE_ENOTFOUND;
}

const char *epode_form_field_var(const epode_form_field_t *f) { return f ? f->var : NULL; }

epode_form_field_type_t epode_form_field_type(const epode_form_field_t *f)
{
    return f ? f->type : EPODE_FIELD_UNKNOWN;
}

const char *epode_form_field_type_name(const epode_form_field_t *f)
{
    if (!f)
        return NULL;
    return f->type == EPODE_FIELD_UNKNOWN ? f->type_name : type_names[f->type];
}

const char *epode_form_field_label(const epode_form_field_t *f) { return f ? f->label : NULL; }
const char *epode_form_field_desc(const epode_form_field_t *f) { return f ? f->desc : NULL; }
int epode_form_field_required(const epode_form_field_t *f) { return f ? f->required : 0; }

int epode_form_field_set_desc(epode_form_field_t *f, const char *desc)
{
    return f ? set_string(f->mem, &f->desc, desc) : EPODE_EINVAL;
}

int epode_form_field_set_required(epode_form_field_t *f, int required)
{
    if (!f)
        return EPODE_EINVAL;
    f->required = required != 0;
    return 0;
}

size_t epode_form_field_value_count(const epode_form_field_t *f) { return f ? f->nvalues : 0; }

const char *epode_form_field_value_at(const epode_form_field_t *f, size_t i)
{
    return f && i < f->nvalues ? f->values[i] : NULL;
}

const char *epode_form_field_value(const epode_form_field_t *f)
{
    return epode_form_field_value_at(f, 0);
}

static int bool_of(const char *v, int *out)
{
    if (!v || !strcmp(v, "0") || !strcmp(v, "false"))
        *out = 0;
    else if (!strcmp(v, "1") || !strcmp(v, "true"))
        *out = 1;
    else
        return EPODE_EINVAL;
    return 0;
}

int epode_form_field_bool(const epode_form_field_t *f, int *out)
{
    if (!f || !out)
        return EPODE_EINVAL;
    int v;
    int rc = bool_of(epode_form_field_value(f), &v);
    if (rc == 0)
        *out = v;
    return rc;
}

void epode_form_field_clear_values(epode_form_field_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nvalues; i++)
        im_free(f->mem, f->values[i]);
    f->nvalues = 0;
}

int epode_form_field_set_value(epode_form_field_t *f, const char *value)
{
    if (!f || (value && !text_ok(value)))
        return EPODE_EINVAL;
    if (!value) {
        epode_form_field_clear_values(f);
        return 0;
    }
    char *copy = im_strdup(f->mem, value);
    if (!copy)
        return EPODE_ENOMEM;
    if (grow(f->mem, (void **)&f->values, &f->cap_values, 1, sizeof *f->values) < 0) {
        im_free(f->mem, copy);
        return EPODE_ENOMEM;
    }
    epode_form_field_clear_values(f);
    f->values[0] = copy;
    f->nvalues = 1;
    return 0;
}

int epode_form_field_add_value(epode_form_field_t *f, const char *value)
{
    if (!f || !value || !text_ok(value))
        return EPODE_EINVAL;
    return field_push_value(f, value);
}

size_t epode_form_field_option_count(const epode_form_field_t *f) { return f ? f->noptions : 0; }

const char *epode_form_field_option_at(const epode_form_field_t *f, size_t i, const char **label)
{
    if (!f || i >= f->noptions)
        return NULL;
    if (label)
        *label = f->options[i].label;
    return f->options[i].value;
}

int epode_form_field_add_option(epode_form_field_t *f, const char *label, const char *value)
{
    if (!f || !value || !text_ok(value) || (label && !text_ok(label)))
        return EPODE_EINVAL;
    return field_push_option(f, label, value);
}

const epode_stanza_t *epode_form_field_media(const epode_form_field_t *f)
{
    return f ? f->media : NULL;
}

const char *epode_form_get_value(const epode_form_t *form, const char *var)
{
    return epode_form_field_value(epode_form_get_field(form, var));
}

int epode_form_set_value(epode_form_t *form, const char *var, const char *value)
{
    if (!form || !var)
        return EPODE_EINVAL;
    epode_form_field_t *f = list_find(&form->fields, var);
    if (!f) {
        if (form->type == EPODE_FORM_FORM)
            return EPODE_ENOTFOUND;
        int rc = epode_form_add_field(form, var, EPODE_FIELD_TEXT_SINGLE, NULL, &f);
        if (rc < 0)
            return rc;
        f->has_type = 0;
        if ((rc = epode_form_field_set_value(f, value)) < 0)
            epode_form_remove_field(form, var);
        return rc;
    }
    return epode_form_field_set_value(f, value);
}

/* ---- reported and items ------------------------------------------------------------ */

size_t epode_form_reported_count(const epode_form_t *form) { return form ? form->reported.n : 0; }

epode_form_field_t *epode_form_reported_at(const epode_form_t *form, size_t i)
{
    return form && i < form->reported.n ? form->reported.v[i] : NULL;
}

size_t epode_form_item_count(const epode_form_t *form) { return form ? form->nitems : 0; }

size_t epode_form_item_field_count(const epode_form_t *form, size_t item)
{
    return form && item < form->nitems ? form->items[item].n : 0;
}

epode_form_field_t *epode_form_item_field_at(const epode_form_t *form, size_t item, size_t i)
{
    return form && item < form->nitems && i < form->items[item].n ? form->items[item].v[i] : NULL;
}

epode_form_field_t *epode_form_item_get_field(const epode_form_t *form, size_t item,
                                              const char *var)
{
    return form && item < form->nitems ? list_find(&form->items[item], var) : NULL;
}

/* ---- checking ----------------------------------------------------------------------- */

static int single_valued(epode_form_field_type_t t)
{
    return t != EPODE_FIELD_JID_MULTI && t != EPODE_FIELD_LIST_MULTI &&
           t != EPODE_FIELD_TEXT_MULTI && t != EPODE_FIELD_UNKNOWN;
}

static int has_option(const epode_form_field_t *f, const char *v)
{
    for (size_t i = 0; i < f->noptions; i++)
        if (strcmp(f->options[i].value, v) == 0)
            return 1;
    return 0;
}

static const char *check_field(const epode_form_field_t *f)
{
    if (f->type == EPODE_FIELD_FIXED)
        return NULL;
    if (f->required && (f->nvalues == 0 || (f->nvalues == 1 && !*f->values[0])))
        return "a required field has no value";
    if (single_valued(f->type) && f->nvalues > 1)
        return "a single-valued field has several values";
    for (size_t i = 0; i < f->nvalues; i++) {
        const char *v = f->values[i];
        int b;
        if (single_valued(f->type) && strpbrk(v, "\r\n"))
            return "a single-line field has a line break";
        switch (f->type) {
        case EPODE_FIELD_BOOLEAN:
            if (bool_of(v, &b) < 0)
                return "a boolean is not 0, 1, false or true";
            break;
        case EPODE_FIELD_JID_SINGLE:
        case EPODE_FIELD_JID_MULTI:
            if (epode_jid_validate(v) < 0)
                return "not a valid JID";
            break;
        case EPODE_FIELD_LIST_SINGLE:
        case EPODE_FIELD_LIST_MULTI:
            if (f->noptions && !has_option(f, v))
                return "a value is not one of the options";
            break;
        default:
            break;
        }
    }
    return NULL;
}

int epode_form_validate(const epode_form_t *form, const char **bad_var, const char **why)
{
    if (!form)
        return EPODE_EINVAL;
    for (size_t i = 0; i < form->fields.n; i++) {
        const char *w = check_field(form->fields.v[i]);
        if (w) {
            if (bad_var)
                *bad_var = form->fields.v[i]->var;
            if (why)
                *why = w;
            return EPODE_EINVAL;
        }
    }
    return 0;
}
