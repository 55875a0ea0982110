/* lib/util/base64.h — RFC 4648 base64 (standard alphabet, with padding),
 * as XMPP's SASL elements carry it. Decoding is strict (RFC 6120 6.4.2
 * and RFC 4648 section 3.3/3.5): no whitespace, no characters outside the
 * alphabet, length a multiple of 4, '=' only as the last one or two
 * characters, and the unused bits before the padding must be zero, so
 * every byte string has exactly one accepted encoding. Pure computation:
 * no I/O, and allocation only in the *_alloc helpers. */
#ifndef EPODE__BASE64_H
#define EPODE__BASE64_H

#include <stddef.h>

#include "epode/common.h"

/* Characters the encoding of n bytes takes (no NUL counted): 4*ceil(n/3).
 * 0 when n is so large that the length would not fit in size_t (n == 0
 * gives 0 too: there is nothing to write either way). */
size_t epode__base64_encoded_len(size_t n);

/* Writes exactly epode__base64_encoded_len(len) characters to dst (no NUL).
 * dst must have room for them; src and dst must not overlap. */
void epode__base64_encode(char *dst, const void *src, size_t len);

/* Encodes into a new NUL-terminated string allocated with mem (caller
 * frees it with epode__dealloc(mem, …)). *out_len (may be NULL) gets the
 * length without the NUL. 0, EPODE_ENOMEM or EPODE_ERANGE (too long); on
 * failure *out is untouched. */
int epode__base64_encode_alloc(const epode_mem_t *mem, const void *src, size_t len,
                               char **out, size_t *out_len);

/* An upper bound of the bytes a len-character encoding decodes to
 * (len / 4 * 3). */
size_t epode__base64_decoded_max(size_t len);

/* Decodes src[0..len) into dst, which has room for
 * epode__base64_decoded_max(len) bytes; *out_len gets the decoded length.
 * The empty string decodes to nothing (0). Returns 0, or EPODE_EINVAL for
 * anything but a canonical encoding (then dst's content is unspecified
 * and *out_len untouched). */
int epode__base64_decode(const char *src, size_t len, unsigned char *dst, size_t *out_len);

/* Decodes into a new block allocated with mem, with one NUL byte after
 * the data (not counted in *out_len) so it can be handed to APIs that
 * want a terminator. Caller frees with epode__dealloc(mem, …). 0,
 * EPODE_EINVAL or EPODE_ENOMEM; on failure *out is untouched. */
int epode__base64_decode_alloc(const epode_mem_t *mem, const char *src, size_t len,
                               unsigned char **out, size_t *out_len);

#endif
