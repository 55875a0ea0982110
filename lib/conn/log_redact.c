/* lib/conn/log_redact.c — keeps credentials out of the XML log. SASL
 * payloads are redacted where the engine writes them; this file covers
 * what the application's own stanzas carry: in-band registration
 * (XEP-0077) sends passwords as element text, in <password/> and in the
 * <value/> of a data form's password fields. It only reads what is about
 * to be logged (never the bytes sent) and runs only when XML logging is
 * on. */
#include "conn_int.h"

#include <string.h>

/* 1 if data[0..len) starts with the NUL-terminated s. */
static int starts(const char *data, size_t len, const char *s)
{
    size_t n = strlen(s);
    return len >= n && memcmp(data, s, n) == 0;
}

/* 1 if data[0..len) contains s. */
static int has(const char *data, size_t len, const char *s)
{
    return memmem(data, len, s, strlen(s)) != NULL;
}

/* The text of every secret element replaced by "[redacted]". */
static size_t redact_register(const char *data, size_t len, char *red, size_t size)
{
    static const char mark[] = "[redacted]";
    size_t o = 0, i = 0;
    int secret_field = 0;
    while (i < len && o + sizeof mark < size) {
        if (data[i] != '<') {
            red[o++] = data[i++];
            continue;
        }
        const char *p = data + i, *gt = memchr(p, '>', len - i);
        size_t tag = gt ? (size_t)(gt - p) + 1 : len - i;
        int secret = 0;
        if (starts(p, len - i, "<field "))
            secret_field = has(p, tag, "var=\"password\"") || has(p, tag, "var=\"old_password\"") ||
                           has(p, tag, "var='password'") || has(p, tag, "var='old_password'");
        else if (starts(p, len - i, "</field>"))
            secret_field = 0;
        else if (starts(p, len - i, "<password>") || (secret_field && starts(p, len - i, "<value>")))
            secret = 1;
        if (o + tag + sizeof mark >= size)
            break;
        memcpy(red + o, p, tag);
        o += tag;
        i += tag;
        if (secret) {
            while (i < len && data[i] != '<')
                i++;
            memcpy(red + o, mark, sizeof mark - 1);
            o += sizeof mark - 1;
        }
    }
    return o;
}

const char *epode__log_redact(const char *data, size_t *len, char *buf, size_t size)
{
    if (*len <= 18 || !memmem(data, *len, "jabber:iq:register", 18))
        return data;
    *len = redact_register(data, *len, buf, size);
    return buf;
}
