/* lib/util/base64.c — RFC 4648 base64 encoder and strict decoder. The
 * decoder is written for hostile input (it runs on what a server put in
 * <challenge/> and <success/>): table-driven, bounded, and it accepts one
 * canonical spelling only. */
#include "base64.h"

#include <stdint.h>

#include "alloc.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0-63 for alphabet characters, 64 for '=', 0xff for everything else. */
#define B64_PAD 64
#define B64_BAD 0xff

static const unsigned char decode_table[256] = {
#define B64_ROW16 B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, \
                  B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD
    /* 0x00-0x2f */
    B64_ROW16, B64_ROW16,
    B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD,
    B64_BAD, B64_BAD, B64_BAD, 62 /* + */, B64_BAD, B64_BAD, B64_BAD, 63 /* / */,
    /* 0x30-0x3f: 0-9, then '=' at 0x3d */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, B64_BAD, B64_BAD, B64_BAD, B64_PAD, B64_BAD, B64_BAD,
    /* 0x40-0x5f: A-Z */
    B64_BAD, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD,
    /* 0x60-0x7f: a-z */
    B64_BAD, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, B64_BAD, B64_BAD, B64_BAD, B64_BAD, B64_BAD,
    /* 0x80-0xff */
    B64_ROW16, B64_ROW16, B64_ROW16, B64_ROW16, B64_ROW16, B64_ROW16, B64_ROW16, B64_ROW16,
#undef B64_ROW16
};

size_t epode__base64_encoded_len(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > SIZE_MAX / 4)
        return 0;
    return groups * 4;
}

void epode__base64_encode(char *dst, const void *src, size_t len)
{
    const unsigned char *s = src;
    while (len >= 3) {
        uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
        dst[0] = alphabet[v >> 18];
        dst[1] = alphabet[(v >> 12) & 63];
        dst[2] = alphabet[(v >> 6) & 63];
        dst[3] = alphabet[v & 63];
        s += 3;
        dst += 4;
        len -= 3;
    }
    if (len == 1) {
        uint32_t v = (uint32_t)s[0] << 16;
        dst[0] = alphabet[v >> 18];
        dst[1] = alphabet[(v >> 12) & 63];
        dst[2] = '=';
        dst[3] = '=';
    } else if (len == 2) {
        uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8;
        dst[0] = alphabet[v >> 18];
        dst[1] = alphabet[(v >> 12) & 63];
        dst[2] = alphabet[(v >> 6) & 63];
        dst[3] = '=';
    }
}

int epode__base64_encode_alloc(const epode_mem_t *mem, const void *src, size_t len,
                               char **out, size_t *out_len)
{
    size_t n = epode__base64_encoded_len(len);
    if (len > 0 && (n == 0 || n == SIZE_MAX))
        return EPODE_ERANGE;
    char *p = epode__alloc(mem, n + 1);
    if (!p)
        return EPODE_ENOMEM;
    epode__base64_encode(p, src, len);
    p[n] = '\0';
    *out = p;
    if (out_len)
        *out_len = n;
    return 0;
}

size_t epode__base64_decoded_max(size_t len)
{
    return len / 4 * 3;
}

int epode__base64_decode(const char *src, size_t len, unsigned char *dst, size_t *out_len)
{
    if (len % 4 != 0)
        return EPODE_EINVAL;
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned a = decode_table[s[i]], b = decode_table[s[i + 1]];
        unsigned c = decode_table[s[i + 2]], d = decode_table[s[i + 3]];
        /* The first two characters of a group are never padding. */
        if (a >= B64_PAD || b >= B64_PAD || c == B64_BAD || d == B64_BAD)
            return EPODE_EINVAL;
        int last = i + 4 == len;
        if (c == B64_PAD) {
            /* "xx==": one byte; only in the last group, and the four
             * low bits of b are unused and must be zero. */
            if (!last || d != B64_PAD || (b & 15) != 0)
                return EPODE_EINVAL;
            dst[o++] = (unsigned char)(a << 2 | b >> 4);
        } else if (d == B64_PAD) {
            /* "xxx=": two bytes; the two low bits of c must be zero. */
            if (!last || (c & 3) != 0)
                return EPODE_EINVAL;
            dst[o++] = (unsigned char)(a << 2 | b >> 4);
            dst[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
        } else {
            dst[o++] = (unsigned char)(a << 2 | b >> 4);
            dst[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
            dst[o++] = (unsigned char)((c & 3) << 6 | d);
        }
    }
    *out_len = o;
    return 0;
}

int epode__base64_decode_alloc(const epode_mem_t *mem, const char *src, size_t len,
                               unsigned char **out, size_t *out_len)
{
    /* Reject before allocating: a hostile length costs nothing. */
    if (len % 4 != 0)
        return EPODE_EINVAL;
    unsigned char *p = epode__alloc(mem, epode__base64_decoded_max(len) + 1);
    if (!p)
        return EPODE_ENOMEM;
    size_t n;
    int rc = epode__base64_decode(src, len, p, &n);
    if (rc != 0) {
        epode__dealloc(mem, p);
        return rc;
    }
    p[n] = '\0';
    *out = p;
    *out_len = n;
    return 0;
}
