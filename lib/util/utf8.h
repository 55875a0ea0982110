/* lib/util/utf8.h — UTF-8 decoding and the XML character rules, shared by
 * the stanza builders (which refuse text XML cannot carry) and JIDs. */
#ifndef EPODE__UTF8_H
#define EPODE__UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at s[0..len). Returns its length in bytes (1-4)
 * and stores it in *cp; returns 0 for an invalid, overlong, surrogate or
 * truncated sequence. */
size_t epode__utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* 1 if s[0..len) is valid UTF-8 and every code point is an XML 1.0 Char
 * (no NUL, no C0 controls other than tab, LF and CR, no U+FFFE/U+FFFF). */
int epode__xml_text_ok(const char *s, size_t len);

/* Cuts s (NUL-terminated, from UTF-8 input cut by snprintf or the like)
 * back to whole characters: a trailing lead byte whose sequence is
 * incomplete goes, with its continuation bytes. Returns the new length. */
size_t epode__utf8_trim(char *s);

/* 1 if s is a non-empty XML NCName: XML 1.0 fifth edition's Name
 * character ranges, without ':'. */
int epode__xml_ncname_ok(const char *s, size_t len);

#endif
