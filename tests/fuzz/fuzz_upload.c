/* tests/fuzz/fuzz_upload.c — the XEP-0363 slot parser and the XEP-0066
 * URL reader on arbitrary children of an IQ result (and of a message).
 * Whatever comes in, a parsed slot has http(s) URLs without spaces or
 * control characters, and only Authorization, Cookie and Expires headers
 * whose values hold no line break; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <epode.h>

static void check_url(const char *u)
{
    if (!u || (strncasecmp(u, "https://", 8) != 0 && strncasecmp(u, "http://", 7) != 0))
        abort();
    for (; *u; u++)
        if ((unsigned char)*u <= 0x20 || *u == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char head[] = "<iq type='result' xmlns='jabber:client'>";
    static const char tail[] = "</iq>";
    if (size > 65536)
        return 0;
    size_t n = sizeof head - 1 + size + sizeof tail - 1;
    char *text = malloc(n);
    if (!text)
        return 0;
    memcpy(text, head, sizeof head - 1);
    memcpy(text + sizeof head - 1, data, size);
    memcpy(text + sizeof head - 1 + size, tail, sizeof tail - 1);
    epode_stanza_t *iq = NULL;
    if (epode_stanza_from_text(NULL, text, n, &iq, NULL) == 0) {
        epode_upload_slot_t *slot = NULL;
        if (epode_upload_slot_parse(NULL, iq, &slot) == 0) {
            check_url(slot->put_url);
            check_url(slot->get_url);
            for (size_t i = 0; i < slot->nheaders; i++) {
                const char *name = slot->headers[i].name;
                if (strcasecmp(name, "Authorization") && strcasecmp(name, "Cookie") &&
                    strcasecmp(name, "Expires"))
                    abort();
                if (strpbrk(slot->headers[i].value, "\r\n"))
                    abort();
            }
            epode_upload_slot_free(slot);
        }
        const char *url = epode_oob_url(iq);
        if (url)
            (void)strlen(url);
        epode_stanza_unref(iq);
    }
    free(text);
    return 0;
}
