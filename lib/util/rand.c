/* lib/util/rand.c — random bytes for ids (and, later, nonces): straight
 * from getrandom(2), never a userspace PRNG seeded by time. */
#include "rand.h"

#include <errno.h>
#include <sys/random.h>

#include "epode/common.h"

int epode__random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return EPODE_ERANDOM;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int epode__random_id(char *out, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[64];
    if (len > sizeof raw)
        return EPODE_EINVAL;
    int rc = epode__random(raw, len);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[raw[i] & 63];
    out[len] = '\0';
    return 0;
}
