/* lib/util/utf8.c — strict UTF-8 decoding (RFC 3629) and XML character
 * checks. Pure functions, no allocation. */
#include "utf8.h"

#include <string.h>

size_t epode__utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2; v = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3; v = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4; v = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static int xml_char(uint32_t c)
{
    if (c < 0x20)
        return c == 0x9 || c == 0xA || c == 0xD;
    return c != 0xFFFE && c != 0xFFFF;
}

/* 1 if none of the 8 bytes is a control character (< 0x20) or non-ASCII:
 * the common case, checked a word at a time. */
static int word_plain_ascii(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    /* (w - 0x20 per byte) borrows into the high bit exactly for bytes < 0x20 */
    return ((w | ((w - ones * 0x20) & ~w)) & highs) == 0;
}

int epode__xml_text_ok(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8 && word_plain_ascii(s + i)) {
            i += 8;
            continue;
        }
        if (s[i] >= 0x20 && s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = epode__utf8_decode(s + i, len - i, &cp);
        if (n == 0 || !xml_char(cp))
            return 0;
        i += n;
    }
    return 1;
}

/* XML 1.0 fifth edition's NameStartChar and NameChar (without ':'), exactly:
 * a name epode accepts is one it will write, and every XML parser (ours
 * included) must read it back. */
static int name_start(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) ||
           (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) ||
           (c >= 0x200C && c <= 0x200D) || (c >= 0x2070 && c <= 0x218F) ||
           (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF) ||
           (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0xEFFFF);
}

static int name_char(uint32_t c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == 0xB7 ||
           (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

int epode__xml_ncname_ok(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = epode__utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return 0;
        if (i == 0 ? !name_start(cp) : !name_char(cp))
            return 0;
        i += n;
    }
    return 1;
}

size_t epode__utf8_trim(char *s)
{
    size_t len = strlen(s), i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0) {
        s[0] = '\0'; /* nothing but continuation bytes */
        return 0;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (i - 1) < need)
        s[len = i - 1] = '\0';
    return len;
}
