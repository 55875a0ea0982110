/* tests/fuzz/fuzz_sasl.c — the SCRAM client (lib/auth over cyrus-sasl)
 * after a normal client-first message, fed an arbitrary server-first
 * message and then an arbitrary server-final one (as a challenge or as
 * <success/> data). It must never crash, leak or misbehave, and two
 * things must hold whatever the server sends:
 * - a client-final message goes out only for a well-formed iteration
 *   count at or above the floor (checked here independently);
 * - the exchange never succeeds: the server signature depends on our
 *   random nonce, which no input can know.
 *
 * Input: byte 0 chooses the set-up (bits 0-1 the mechanism, bit 2 the
 * server-final as a challenge instead of <success/> data, bit 3 "@N" in
 * the server-first stands for our client nonce — so inputs get past the
 * nonce check —, bit 4 an authzid, bit 5 the floor lowered to 1); byte 1
 * is the length of the server-first message; the rest after it is the
 * server-final message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "auth/sasl.h"

static const unsigned char exporter[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                                           31, 32};

/* The oracle's own reading of the count: the third attribute is "i="
 * and plain decimal digits, no leading zero, within [floor, 65536]. */
static int count_acceptable(const unsigned char *m, size_t n, unsigned floor)
{
    size_t at = 0;
    for (int commas = 0; commas < 2; commas++) {
        const unsigned char *c = memchr(m + at, ',', n - at);
        if (!c)
            return 0;
        at = (size_t)(c - m) + 1;
    }
    if (n - at < 3 || m[at] != 'i' || m[at + 1] != '=')
        return 0;
    at += 2;
    size_t digits = 0;
    unsigned long v = 0;
    while (at + digits < n && m[at + digits] != ',') {
        unsigned char d = m[at + digits];
        if (d < '0' || d > '9' || digits > 6)
            return 0;
        v = v * 10 + (unsigned long)(d - '0');
        digits++;
    }
    if (digits == 0 || (digits > 1 && m[at] == '0'))
        return 0;
    return v >= floor && v <= 65536;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (epode_global_init() != 0)
            abort();
        init = 1;
    }
    if (size < 2)
        return 0;
    unsigned setup = data[0];
    size_t first_len = data[1];
    data += 2, size -= 2;
    if (first_len > size)
        first_len = size;

    static const char *const mechs[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                        "SCRAM-SHA-256-PLUS"};
    const char *mech = mechs[setup & 3];
    epode__sasl_params p;
    memset(&p, 0, sizeof p);
    p.authcid = "user";
    p.password = "pencil";
    p.host = "example.org";
    p.allowed = mech;
    p.tls_active = 1;
    p.tls_key_bits = 256;
    p.cb_name = "tls-exporter";
    p.cb_data = exporter;
    p.cb_len = sizeof exporter;
    p.authzid = (setup & 16) ? "admin@example.org" : NULL;
    p.min_iterations = (setup & 32) ? 1 : 0;
    unsigned floor = p.min_iterations ? p.min_iterations : EPODE__SASL_MIN_ITERATIONS;

    epode__sasl *s = NULL;
    if (epode__sasl_new(NULL, &p, &s) != 0)
        return 0;
    const char *chosen;
    const unsigned char *out;
    size_t out_len;
    if (epode__sasl_start(s, &mech, 1, &chosen, &out, &out_len) != 0)
        abort(); /* a SCRAM the server offers, with a password: never refused */

    /* The server-first message, with "@N" spliced for our nonce. */
    unsigned char first[1024];
    size_t fl = 0;
    const unsigned char *r = out ? memmem(out, out_len, ",r=", 3) : NULL;
    const unsigned char *nonce = r ? r + 3 : NULL;
    size_t nonce_len = r ? out_len - (size_t)(nonce - out) : 0;
    for (size_t i = 0; i < first_len; i++) {
        if (fl + (nonce_len > 1 ? nonce_len : 1) > sizeof first)
            break;
        if ((setup & 8) && nonce && i + 1 < first_len && data[i] == '@' && data[i + 1] == 'N') {
            memcpy(first + fl, nonce, nonce_len);
            fl += nonce_len;
            i++;
        } else {
            first[fl++] = data[i];
        }
    }
    int rc = epode__sasl_step(s, first, fl, &out, &out_len);
    if (rc == 0) {
        if (!out || !count_acceptable(first, fl, floor))
            abort();
        const unsigned char *final = data + first_len;
        size_t final_len = size - first_len;
        if (setup & 4) {
            rc = epode__sasl_step(s, final, final_len, &out, &out_len);
            if (rc == 0)
                rc = epode__sasl_finish(s, NULL, 0);
        } else {
            rc = epode__sasl_finish(s, final, final_len);
        }
        if (rc == 0)
            abort(); /* a server signature no input can produce */
    }
    if (epode__sasl_error(s)[0] == '\0')
        abort(); /* every failure says why */
    epode__sasl_free(s);
    return 0;
}
