/* tests/fuzz/fuzz_from_text.c — epode_stanza_from_text on arbitrary
 * bytes: never crashes or leaks, an error always names a condition, and
 * whatever parses serializes to text that parses to an equal tree and
 * serializes to the same text again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    epode_stanza_t *st;
    epode_stream_cond_t cond;
    int rc = epode_stanza_from_text(NULL, (const char *)data, size, &st, &cond);
    if (rc != 0) {
        if ((rc == EPODE_EXML || rc == EPODE_ELIMIT) && cond == EPODE_STREAM_NONE)
            abort();
        return 0;
    }
    char *t1, *t2;
    size_t l1, l2;
    if (epode_stanza_to_text(st, 0, &t1, &l1) != 0)
        abort();
    epode_stanza_t *back;
    rc = epode_stanza_from_text(NULL, t1, l1, &back, &cond);
    if (rc == 0) {
        if (!epode_stanza_equal(st, back))
            abort();
        if (epode_stanza_to_text(back, 0, &t2, &l2) != 0)
            abort();
        if (l1 != l2 || memcmp(t1, t2, l1) != 0)
            abort();
        epode_free(t2);
        epode_stanza_unref(back);
    } else if (rc != EPODE_ELIMIT) {
        abort();
    }
    epode_free(t1);
    epode_stanza_unref(st);
    return 0;
}
