/* lib/im/names.c — the names of the values of the IM helpers' public
 * enums whose helpers had none (presence changes and subscriptions,
 * roster events, MUC events, carbons, caps limits, blocking events, the
 * sender-check mode, form types): lower-case snake words for logs,
 * bindings and tools. Static strings; NULL for a value outside the enum.
 * Never allocates; uses nothing but the enums. */
#include <epode.h>

#define NAME_AT(table, first, v)                                                                   \
    ((int)(v) >= (first) && (int)(v) - (first) < (int)(sizeof table / sizeof *table)               \
         ? table[(int)(v) - (first)]                                                               \
         : NULL)

const char *epode_presence_change_name(epode_presence_change_t change)
{
    static const char *const names[] = {"available", "changed", "unavailable", "error"};
    return NAME_AT(names, EPODE_PRESENCE_AVAILABLE, change);
}

const char *epode_subscription_name(epode_subscription_t what)
{
    static const char *const names[] = {"request", "approved", "revoked", "ended"};
    return NAME_AT(names, EPODE_SUB_REQUEST, what);
}

const char *epode_roster_event_name(epode_roster_event_t event)
{
    static const char *const names[] = {"received", "added", "updated", "removed",
                                        "fetch_failed"};
    return NAME_AT(names, EPODE_ROSTER_RECEIVED, event);
}

const char *epode_muc_event_type_name(epode_muc_event_type_t type)
{
    static const char *const names[] = {"joined",  "occupant_joined", "occupant_changed",
                                        "occupant_left", "message", "private",
                                        "subject", "error",           "left"};
    return NAME_AT(names, EPODE_MUC_JOINED, type);
}

const char *epode_carbon_dir_name(epode_carbon_dir_t dir)
{
    static const char *const names[] = {"received", "sent"};
    return NAME_AT(names, EPODE_CARBON_RECEIVED, dir);
}

const char *epode_caps_limit_name(epode_caps_limit_t limit)
{
    static const char *const names[] = {"peers", "queries", "memory"};
    return NAME_AT(names, EPODE_CAPS_LIMIT_PEERS, limit);
}

const char *epode_blocking_event_name(epode_blocking_event_t event)
{
    static const char *const names[] = {"loaded", "blocked", "unblocked", "unblocked_all",
                                        "limit"};
    return NAME_AT(names, EPODE_BLOCKING_LOADED, event);
}

const char *epode_sender_mode_name(epode_sender_mode_t mode)
{
    static const char *const names[] = {"auto", "direct", "occupant"};
    return NAME_AT(names, EPODE_SENDER_AUTO, mode);
}

const char *epode_form_type_name(epode_form_type_t type)
{
    static const char *const names[] = {"form", "submit", "cancel", "result"};
    return NAME_AT(names, EPODE_FORM_FORM, type);
}
