/* tests/fuzz/fuzz_forms.c — XEP-0004 data forms read from arbitrary
 * bytes: epode_form_parse() on whatever epode_stanza_from_text() makes of
 * them (the root, or the first data form inside it), every getter read to
 * its end, the form validated, turned into a submission, written out and
 * read back. What a parsed form writes must parse again into a form that
 * writes the same element. Never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

static size_t sink; /* keeps the reads below from being optimized out */

static void touch(const char *s)
{
    if (s)
        sink += strlen(s);
}

static void walk_field(const epode_form_field_t *f)
{
    touch(epode_form_field_var(f));
    touch(epode_form_field_type_name(f));
    touch(epode_form_field_label(f));
    touch(epode_form_field_desc(f));
    sink += (size_t)epode_form_field_required(f);
    for (size_t i = 0; i < epode_form_field_value_count(f); i++) {
        const char *v = epode_form_field_value_at(f, i);
        if (!v)
            abort();
        touch(v);
    }
    for (size_t i = 0; i < epode_form_field_option_count(f); i++) {
        const char *label = NULL, *v = epode_form_field_option_at(f, i, &label);
        if (!v)
            abort();
        touch(v), touch(label);
    }
    int b;
    if (epode_form_field_bool(f, &b) == 0)
        sink += (size_t)b;
    if (epode_form_field_media(f))
        sink++;
    if (epode_form_field_type(f) != EPODE_FIELD_FIXED && !epode_form_field_var(f))
        abort(); /* the parser promises a var */
}

static void walk(const epode_form_t *form)
{
    touch(epode_form_get_title(form));
    touch(epode_form_get_form_type(form));
    for (size_t i = 0; i < epode_form_instructions_count(form); i++)
        touch(epode_form_instructions_at(form, i));
    for (size_t i = 0; i < epode_form_field_count(form); i++) {
        const epode_form_field_t *f = epode_form_field_at(form, i);
        walk_field(f);
        if (epode_form_field_var(f) && epode_form_get_field(form, epode_form_field_var(f)) != f)
            abort(); /* vars are unique */
    }
    for (size_t i = 0; i < epode_form_reported_count(form); i++)
        walk_field(epode_form_reported_at(form, i));
    for (size_t j = 0; j < epode_form_item_count(form); j++)
        for (size_t i = 0; i < epode_form_item_field_count(form, j); i++)
            walk_field(epode_form_item_field_at(form, j, i));
    const char *bad = NULL, *why = NULL;
    if (epode_form_validate(form, &bad, &why) < 0 && !why)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    epode_stanza_t *root;
    if (epode_stanza_from_text(NULL, (const char *)data, size, &root, NULL) != 0)
        return 0;
    const epode_stanza_t *x = root;
    if (strcmp(epode_stanza_get_name(root), "x") != 0)
        x = epode_form_find(root, NULL);
    epode_form_t *form;
    if (x && epode_form_parse(NULL, x, &form) == 0) {
        walk(form);
        epode_form_t *sub;
        if (epode_form_submit(form, &sub) == 0) {
            walk(sub);
            epode_form_free(sub);
        }
        epode_stanza_t *out, *out2;
        if (epode_form_to_stanza(form, &out) == 0) {
            epode_form_t *again;
            if (epode_form_parse(NULL, out, &again) != 0)
                abort(); /* what we write, we read */
            if (epode_form_to_stanza(again, &out2) == 0) {
                if (!epode_stanza_equal(out, out2))
                    abort();
                epode_stanza_unref(out2);
            }
            epode_form_free(again);
            epode_stanza_unref(out);
        }
        epode_form_free(form);
    }
    epode_stanza_unref(root);
    return 0;
}
