/* tests/fuzz/fuzz_jid.c — libFuzzer target for JIDs: any string either
 * fails cleanly or yields a JID whose normalized form is stable and
 * consistent across every entry point (new, validate, new_from_parts,
 * copy, str_equal). Aborts on a broken invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "epode/jid.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

static void check_valid(const char *text, epode_jid_t *jid)
{
    const char *full = epode_jid_full(jid);
    const char *bare = epode_jid_bare(jid);
    const char *local = epode_jid_local(jid);
    const char *domain = epode_jid_domain(jid);
    const char *resource = epode_jid_resource(jid);

    require(domain != NULL && full != NULL && bare != NULL);
    require(epode_jid_validate(text) == 0);

    /* bare is a prefix of full; the rest is "/resource" or nothing. */
    size_t bare_len = strlen(bare);
    require(strncmp(full, bare, bare_len) == 0);
    if (resource) {
        require(full[bare_len] == '/' && strcmp(full + bare_len + 1, resource) == 0);
        require(!epode_jid_is_bare(jid));
    } else {
        require(full[bare_len] == '\0' && epode_jid_is_bare(jid));
    }
    if (local)
        require(strncmp(bare, local, strlen(local)) == 0 && bare[strlen(local)] == '@' &&
                strcmp(bare + strlen(local) + 1, domain) == 0);
    else
        require(strcmp(bare, domain) == 0);

    /* Normalization is idempotent: the full form parses to an equal JID. */
    epode_jid_t *again = NULL;
    int rc = epode_jid_new(NULL, full, &again);
    if (rc == EPODE_ENOMEM)
        return;
    require(rc == 0);
    require(epode_jid_equal(jid, again) && epode_jid_compare(jid, again) == 0);
    require(strcmp(epode_jid_full(again), full) == 0);
    epode_jid_free(again);

    /* Building from the parts gives the same JID. */
    epode_jid_t *parts = NULL;
    rc = epode_jid_new_from_parts(NULL, local, domain, resource, &parts);
    require(rc == 0 || rc == EPODE_ENOMEM);
    if (rc == 0) {
        require(epode_jid_equal(jid, parts));
        epode_jid_free(parts);
    }

    epode_jid_t *copy = NULL;
    rc = epode_jid_copy(jid, &copy);
    require(rc == 0 || rc == EPODE_ENOMEM);
    if (rc == 0) {
        require(epode_jid_equal(jid, copy) && epode_jid_bare_equal(jid, copy));
        epode_jid_free(copy);
    }

    /* The allocation-free comparison agrees with the parsed one. */
    require(epode_jid_str_equal(text, full, 0));
    require(epode_jid_str_equal(text, bare, 1));
    require(epode_jid_str_equal(full, text, 0));
    require(epode_jid_str_equal(text, bare, 0) == (resource == NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    epode_jid_t *sentinel = (epode_jid_t *)&sentinel, *jid = sentinel;
    int rc = epode_jid_new(NULL, text, &jid);
    if (rc == 0) {
        check_valid(text, jid);
        epode_jid_free(jid);
    } else {
        require(jid == sentinel);
        require(rc == EPODE_EJID || rc == EPODE_ENOMEM);
        if (rc == EPODE_EJID) {
            require(epode_jid_validate(text) == EPODE_EJID);
            require(!epode_jid_str_equal(text, text, 0));
            require(!epode_jid_str_equal(text, text, 1));
        }
    }
    free(text);
    return 0;
}
