/* lib/auth/fast.c — HT-SHA-256 for FAST (see fast.h). The token and the
 * hashes derived from it are credentials: they live in secret blocks or
 * on the stack only until written, and are wiped there. Never does I/O. */
#include "fast.h"

#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "util/alloc.h"
#include "util/secret.h"

enum epode__fast_cb epode__fast_mech_cb(const char *mech)
{
    static const char prefix[] = "HT-SHA-256-";
    if (!mech || strncmp(mech, prefix, sizeof prefix - 1) != 0)
        return EPODE__FAST_CB_UNKNOWN;
    const char *t = mech + sizeof prefix - 1;
    if (strcmp(t, "NONE") == 0)
        return EPODE__FAST_CB_NONE;
    if (strcmp(t, "UNIQ") == 0)
        return EPODE__FAST_CB_UNIQUE;
    if (strcmp(t, "EXPR") == 0)
        return EPODE__FAST_CB_EXPORTER;
    if (strcmp(t, "ENDP") == 0)
        return EPODE__FAST_CB_ENDPOINT;
    return EPODE__FAST_CB_UNKNOWN;
}

int epode__fast_hmac(const char *token, const char *label, const unsigned char *cb,
                     size_t cb_len, unsigned char out[EPODE__FAST_HMAC_LEN])
{
    if (!token || !label || (cb_len && !cb))
        return EPODE_EINVAL;
    size_t ll = strlen(label);
    /* label || cb on the stack: cb is at most 64 bytes (TLS facts) */
    unsigned char msg[32 + 512];
    if (ll > 32 || cb_len > 512)
        return EPODE_EINVAL;
    memcpy(msg, label, ll);
    if (cb_len)
        memcpy(msg + ll, cb, cb_len);
    int rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, token, strlen(token), msg, ll + cb_len, out);
    explicit_bzero(msg, sizeof msg);
    return rc < 0 ? EPODE_ENOMEM : 0;
}

int epode__fast_initial(const epode_mem_t *mem, const char *authcid, const char *token,
                        const unsigned char *cb, size_t cb_len, unsigned char **out,
                        size_t *out_len)
{
    if (!authcid || !*authcid || !token || !*token || !out || !out_len)
        return EPODE_EINVAL;
    size_t al = strlen(authcid);
    unsigned char *m = epode__secret_alloc(mem, al + 1 + EPODE__FAST_HMAC_LEN);
    if (!m)
        return EPODE_ENOMEM;
    memcpy(m, authcid, al);
    m[al] = '\0';
    int rc = epode__fast_hmac(token, "Initiator", cb, cb_len, m + al + 1);
    if (rc < 0) {
        epode__secret_free(mem, m);
        return rc;
    }
    *out = m;
    *out_len = al + 1 + EPODE__FAST_HMAC_LEN;
    return 0;
}

int epode__fast_check_responder(const char *token, const unsigned char *cb, size_t cb_len,
                                const unsigned char *data, size_t len)
{
    unsigned char want[EPODE__FAST_HMAC_LEN];
    if (!data || len != sizeof want || epode__fast_hmac(token, "Responder", cb, cb_len, want) < 0) {
        explicit_bzero(want, sizeof want);
        return 0;
    }
    unsigned diff = 0;
    for (size_t i = 0; i < sizeof want; i++)
        diff |= (unsigned)(want[i] ^ data[i]);
    explicit_bzero(want, sizeof want);
    return diff == 0;
}

int epode__fast_token_ok(const char *token)
{
    if (!token || !*token)
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)token; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= EPODE__FAST_TOKEN_MAX)
            return 0;
    return 1;
}

static int digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        *v = *v * 10 + (**p - '0');
    }
    return 0;
}

int epode__fast_parse_time(const char *s, long long *out)
{
    if (!s || !out)
        return EPODE_EINVAL;
    int Y, M, D, h, m, sec;
    const char *p = s;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
        digits(&p, 2, &D) || *p++ != 'T' || digits(&p, 2, &h) || *p++ != ':' ||
        digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return EPODE_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return EPODE_EINVAL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return EPODE_EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return EPODE_EINVAL;
        off = sign * (oh * 3600LL + om * 60LL);
    } else {
        return EPODE_EINVAL;
    }
    if (*p)
        return EPODE_EINVAL;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = (long long)timegm(&tm) - off;
    return 0;
}
