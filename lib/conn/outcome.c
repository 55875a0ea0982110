/* lib/conn/outcome.c — how a connection ended, as the application reads
 * it and as reconnection judges it: the notes (the error text, the
 * security line, the last connect error, the disconnect condition:
 * conn.h's epode_conn_error_text() & co.) and whether to try again.
 * Notes are on the heap only while there is something to say; a replaced
 * note is retired, not freed, until the next attempt (the application
 * may still hold the pointer); out of memory a note says so, never the
 * connection. conn.c formats them (note()) and decides when they change. */
#include "conn_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/utf8.h"

/* A note's text, with the link that keeps it alive once replaced: the
 * application may hold the pointer until the next connect or reconnection
 * attempt (conn.h), however often the note changes before that. */
typedef struct conn_note {
    struct conn_note *retired;
    char text[];
} conn_note;

/* What a note says when the words could not be kept (out of memory). */
static char note_oom[] = "out of memory (the explanation could not be kept)";

static void retire(epode_conn_t *c, char *text)
{
    if (!text || text == note_oom)
        return;
    conn_note *n = (conn_note *)(void *)(text - offsetof(conn_note, text));
    n->retired = c->retired;
    c->retired = n;
}

void epode__conn_vnote(epode_conn_t *c, char **slot, size_t max, const char *fmt, va_list ap)
{
    char tmp[NOTE_TEXT];
    if (max > sizeof tmp)
        max = sizeof tmp;
    char raw[NOTE_TEXT];
    int n = vsnprintf(raw, max, fmt, ap);
    if (n < 0)
        raw[0] = '\0';
    epode__one_line(tmp, max, raw); /* a server's words stay on one line */
    size_t len = strlen(tmp);
    if ((n >= 0 && (size_t)n >= max) || len + 1 >= max)
        len = epode__utf8_trim(tmp);
    char *fresh = NULL;
    if (len) {
        conn_note *cn = epode__alloc(c->ctx->mem, sizeof *cn + len + 1);
        if (cn) {
            cn->retired = NULL;
            memcpy(cn->text, tmp, len);
            cn->text[len] = '\0';
            fresh = cn->text;
        } else {
            fresh = note_oom;
        }
    }
    retire(c, *slot);
    *slot = fresh;
}

/* Conditions epode names itself or hears from servers (RFC 6120 stream
 * errors, RFC 6120 §6.5 SASL failures): kept as static names, so the
 * decisions made on them (reconnect or not, follow a redirect) never
 * depend on an allocation. */
static const char *const known_conditions[] = {
    "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
    "host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
    "invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed", "policy-violation",
    "remote-connection-failed", "reset", "resource-constraint", "restricted-xml",
    "see-other-host", "system-shutdown", "undefined-condition", "unsupported-encoding",
    "unsupported-feature", "unsupported-stanza-type", "unsupported-version", "aborted",
    "account-disabled", "credentials-expired", "encryption-required", "incorrect-encoding",
    "invalid-authzid", "invalid-mechanism", "malformed-request", "mechanism-too-weak",
    "temporary-auth-failure",
};

void epode__conn_note(epode_conn_t *c, char **slot, size_t max, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    epode__conn_vnote(c, slot, max, fmt, ap);
    va_end(ap);
}

void epode__conn_set_condition(epode_conn_t *c, const char *cond)
{
    retire(c, c->condition_note);
    c->condition_note = NULL;
    c->condition = NULL;
    if (!cond || !*cond)
        return;
    for (size_t i = 0; i < sizeof known_conditions / sizeof known_conditions[0]; i++)
        if (strcmp(cond, known_conditions[i]) == 0) {
            c->condition = known_conditions[i];
            return;
        }
    epode__conn_note(c, &c->condition_note, NOTE_CONDITION, "%s", cond);
    /* out of memory: a condition nobody can act on, as RFC 6120 has one */
    c->condition = c->condition_note != note_oom ? c->condition_note : "undefined-condition";
}

void epode__conn_clear_notes(epode_conn_t *c, int all)
{
    char **slots[] = {&c->text, &c->security, &c->last_connect_error};
    for (size_t i = 0; i < (all ? 3u : 2u); i++) {
        retire(c, *slots[i]);
        *slots[i] = NULL;
    }
    epode__conn_set_condition(c, NULL);
    if (!all)
        return;
    while (c->retired) {
        conn_note *n = c->retired;
        c->retired = n->retired;
        epode__dealloc(c->ctx->mem, n);
    }
}

/* ---- reconnect or not ------------------------------------------------------------- */

/* Stream errors after which trying again cannot help: the account or
 * the address is wrong, or another client took the resource over. */
static int stream_error_is_final(const char *cond)
{
    static const char *const final[] = {
        "conflict", "host-unknown", "host-gone", "not-authorized", "invalid-from",
        "invalid-namespace", "unsupported-version", "unsupported-encoding",
        "improper-addressing", "bad-namespace-prefix",
    };
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        if (strcmp(cond, final[i]) == 0)
            return 1;
    return 0;
}

/* Reconnect after a cut, a timeout, a server going away for a while, or
 * anything the server's data could cause (a stream error that is not
 * final, a protocol violation: DESIGN, "Bad input and limits") — with
 * backoff, and at most EPODE__MAX_FRUITLESS times in a row without progress.
 * Never after our own close, bad credentials, or a refused certificate
 * or missing TLS. */
int epode__conn_should_reconnect(const epode_conn_t *c)
{
    if (!c->reconnect || c->user_closed)
        return 0;
    if (c->reason == EPODE_REASON_NETWORK || c->reason == EPODE_REASON_TIMEOUT)
        return 1;
    /* A TLS failure is the link's (a cut mid-handshake or mid-record)
     * unless the certificate was refused or TLS is missing. */
    if (c->reason == EPODE_REASON_TLS)
        return c->err == EPODE_ETLS;
    if (c->fruitless >= EPODE__MAX_FRUITLESS)
        return 0;
    if (c->reason == EPODE_REASON_STREAM_ERROR)
        return !stream_error_is_final(c->condition ? c->condition : "");
    /* The server sent what we had to refuse: maybe a glitch of one
     * session (its parser, a resumption gone wrong). */
    return c->reason == EPODE_REASON_PROTOCOL;
}
