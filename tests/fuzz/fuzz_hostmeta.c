/* tests/fuzz/fuzz_hostmeta.c — the XEP-0156 host-meta parsers (XRD with
 * libxml2, JRD with epode's own JSON reader) on arbitrary bytes: the
 * first byte picks the parser, the rest is the document. Whatever comes
 * in, a parse gives only wss:// WebSocket and https:// BOSH URLs that
 * epode__hostmeta_url_ok accepts, NUL-terminated notes, no URL on
 * failure, and nothing may crash, leak or read out of bounds (the
 * document is copied to a buffer of exactly its size). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "epode/common.h"
#include "http/hostmeta.h"

static void check(const epode__hostmeta_links *l, int rc)
{
    if (memchr(l->note, '\0', sizeof l->note) == NULL ||
        memchr(l->websocket, '\0', sizeof l->websocket) == NULL ||
        memchr(l->bosh, '\0', sizeof l->bosh) == NULL)
        abort();
    if (rc != 0 && rc != EPODE_EPROTOCOL && rc != EPODE_ELIMIT && rc != EPODE_ENOMEM)
        abort();
    if (rc != 0 && (l->websocket[0] || l->bosh[0] || !l->note[0]))
        abort();
    if (l->websocket[0] && (!epode__hostmeta_url_ok(l->websocket, 1) ||
                            strncasecmp(l->websocket, "wss://", 6) != 0))
        abort();
    if (l->bosh[0] && (!epode__hostmeta_url_ok(l->bosh, 0) || strncasecmp(l->bosh, "https://", 8) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    char *doc = malloc(n ? n : 1);
    if (!doc)
        return 0;
    memcpy(doc, data + 1, n);
    static epode__hostmeta_links l;
    int rc = (data[0] & 1) ? epode__hostmeta_parse_json(doc, n, &l)
                           : epode__hostmeta_parse_xrd(doc, n, &l);
    check(&l, rc);
    free(doc);
    return 0;
}
