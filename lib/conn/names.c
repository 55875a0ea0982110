/* lib/conn/names.c — the names of the values of the connection's and the
 * context's public enums (conn.h, ctx.h), for logs, bindings and tools:
 * lower-case snake words, the same ones the Python and Lua bindings use.
 * Static strings; NULL for a value outside the enum. Never allocates. */
#include "epode/conn.h"
#include "epode/ctx.h"
#include "epode/handler.h"

#define NAME_AT(table, first, v)                                                                   \
    ((int)(v) >= (first) && (int)(v) - (first) < (int)(sizeof table / sizeof *table)               \
         ? table[(int)(v) - (first)]                                                               \
         : NULL)

const char *epode_tls_mode_name(epode_tls_mode_t mode)
{
    static const char *const names[] = {"required", "direct", "optional", "disabled"};
    return NAME_AT(names, EPODE_TLS_REQUIRED, mode);
}

const char *epode_conn_event_name(epode_conn_event_t event)
{
    static const char *const names[] = {"connecting", "tls_up",  "authenticated", "ready",
                                        "disconnected", "resumed", "freed",         "drained"};
    return NAME_AT(names, EPODE_CONN_CONNECTING, event);
}

const char *epode_disconnect_reason_name(epode_disconnect_reason_t reason)
{
    static const char *const names[] = {"none", "closed",       "network",  "tls",
                                        "auth", "stream_error", "protocol", "timeout"};
    return NAME_AT(names, EPODE_REASON_NONE, reason);
}

const char *epode_log_level_name(epode_log_level_t level)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "xml"};
    return NAME_AT(names, EPODE_LOG_ERROR, level);
}

const char *epode_handler_result_name(epode_handler_result_t result)
{
    static const char *const names[] = {"handled", "pass"};
    return NAME_AT(names, EPODE_HANDLED, result);
}
