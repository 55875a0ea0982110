/* tests/unit/test_names.c — epode_<enum>_name() for every public enum
 * (issue 14: programs each wrote their own table): every value has a
 * distinct lower-case snake name, the values around the enum give NULL,
 * and the names are the bindings' vocabulary (DESIGN: "tls_up" in C,
 * Python and Lua alike). */
#include "test.h"

#include <epode.h>

typedef const char *(*name_fn)(int);

/* Every value in [first, last] named, distinct, [a-z_]+; first-1 and
 * last+1 (and a far value) give NULL. 0 if so. */
static int check_enum(const char *what, name_fn fn, int first, int last)
{
    for (int v = first; v <= last; v++) {
        const char *n = fn(v);
        if (!n || !*n) {
            printf("# %s: value %d has no name\n", what, v);
            return -1;
        }
        for (const char *p = n; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || *p == '_')) {
                printf("# %s: \"%s\" is not lower-case snake\n", what, n);
                return -1;
            }
        for (int w = first; w < v; w++)
            if (strcmp(fn(w), n) == 0) {
                printf("# %s: \"%s\" twice\n", what, n);
                return -1;
            }
    }
    if (fn(first - 1) || fn(last + 1) || fn(1000) || fn(-1000)) {
        printf("# %s: a value outside the enum has a name\n", what);
        return -1;
    }
    return 0;
}

/* Each name function called with an int, through a wrapper of the
 * right type (no call through a mismatched function pointer). */
#define WRAP(fn, type)                                                                            \
    static const char *w_##fn(int v) { return fn((type)v); }
WRAP(epode_tls_mode_name, epode_tls_mode_t)
WRAP(epode_conn_event_name, epode_conn_event_t)
WRAP(epode_disconnect_reason_name, epode_disconnect_reason_t)
WRAP(epode_log_level_name, epode_log_level_t)
WRAP(epode_parser_event_name, epode_parser_event_t)
WRAP(epode_parser_limit_name, epode_parser_limit_t)
WRAP(epode_presence_change_name, epode_presence_change_t)
WRAP(epode_subscription_name, epode_subscription_t)
WRAP(epode_show_name, epode_show_t)
WRAP(epode_roster_event_name, epode_roster_event_t)
WRAP(epode_roster_sub_name, epode_roster_sub_t)
WRAP(epode_muc_event_type_name, epode_muc_event_type_t)
WRAP(epode_carbon_dir_name, epode_carbon_dir_t)
WRAP(epode_caps_limit_name, epode_caps_limit_t)
WRAP(epode_blocking_event_name, epode_blocking_event_t)
WRAP(epode_sender_mode_name, epode_sender_mode_t)
WRAP(epode_form_type_name, epode_form_type_t)
WRAP(epode_chatstate_name, epode_chatstate_t)
WRAP(epode_pubsub_error_name, epode_pubsub_error_t)
WRAP(epode_pubsub_event_type_name, epode_pubsub_event_type_t)
WRAP(epode_bookmarks_event_name, epode_bookmarks_event_t)
WRAP(epode_avatar_source_name, epode_avatar_source_t)
WRAP(epode_nickname_source_name, epode_nickname_source_t)

#define ENUM(fn, first, last) check_enum(#fn, w_##fn, first, last)

TEST(names_cover_every_value_of_every_enum)
{
    CHECK_INT(ENUM(epode_tls_mode_name, EPODE_TLS_REQUIRED, EPODE_TLS_DISABLED), 0);
    CHECK_INT(ENUM(epode_conn_event_name, EPODE_CONN_CONNECTING, EPODE_CONN_DRAINED), 0);
    CHECK_INT(ENUM(epode_disconnect_reason_name, EPODE_REASON_NONE, EPODE_REASON_TIMEOUT), 0);
    CHECK_INT(ENUM(epode_log_level_name, EPODE_LOG_ERROR, EPODE_LOG_XML), 0);
    CHECK_INT(ENUM(epode_parser_event_name, EPODE_PARSER_STREAM_OPEN, EPODE_PARSER_SKIPPED), 0);
    CHECK_INT(ENUM(epode_parser_limit_name, EPODE_LIMIT_STANZA_BYTES, EPODE_LIMIT_TEXT_BYTES), 0);
    CHECK_INT(ENUM(epode_presence_change_name, EPODE_PRESENCE_AVAILABLE, EPODE_PRESENCE_ERROR),
              0);
    CHECK_INT(ENUM(epode_subscription_name, EPODE_SUB_REQUEST, EPODE_SUB_ENDED), 0);
    CHECK_INT(ENUM(epode_show_name, EPODE_SHOW_UNAVAILABLE, EPODE_SHOW_CHAT), 0);
    CHECK_INT(ENUM(epode_roster_event_name, EPODE_ROSTER_RECEIVED, EPODE_ROSTER_FETCH_FAILED), 0);
    CHECK_INT(ENUM(epode_roster_sub_name, EPODE_ROSTER_SUB_NONE, EPODE_ROSTER_SUB_REMOVE), 0);
    CHECK_INT(ENUM(epode_muc_event_type_name, EPODE_MUC_JOINED, EPODE_MUC_LEFT), 0);
    CHECK_INT(ENUM(epode_carbon_dir_name, EPODE_CARBON_RECEIVED, EPODE_CARBON_SENT), 0);
    CHECK_INT(ENUM(epode_caps_limit_name, EPODE_CAPS_LIMIT_PEERS, EPODE_CAPS_LIMIT_MEMORY), 0);
    CHECK_INT(ENUM(epode_blocking_event_name, EPODE_BLOCKING_LOADED, EPODE_BLOCKING_LIMIT), 0);
    CHECK_INT(ENUM(epode_sender_mode_name, EPODE_SENDER_AUTO, EPODE_SENDER_OCCUPANT), 0);
    CHECK_INT(ENUM(epode_form_type_name, EPODE_FORM_FORM, EPODE_FORM_RESULT), 0);
    CHECK_INT(ENUM(epode_chatstate_name, EPODE_CHATSTATE_ACTIVE, EPODE_CHATSTATE_GONE), 0);
    CHECK_INT(ENUM(epode_pubsub_error_name, EPODE_PUBSUB_ERR_NONE, EPODE_PUBSUB_ERR_OTHER), 0);
    CHECK_INT(ENUM(epode_pubsub_event_type_name, EPODE_PUBSUB_PUBLISHED, EPODE_PUBSUB_DELETED), 0);
    CHECK_INT(ENUM(epode_bookmarks_event_name, EPODE_BOOKMARKS_LOADED,
                   EPODE_BOOKMARKS_FETCH_FAILED), 0);
    CHECK_INT(ENUM(epode_avatar_source_name, EPODE_AVATAR_PEP, EPODE_AVATAR_VCARD), 0);
    CHECK_INT(ENUM(epode_nickname_source_name, EPODE_NICKNAME_PEP, EPODE_NICKNAME_MESSAGE), 0);
}

TEST(names_are_the_bindings_vocabulary)
{
    CHECK_STR(epode_conn_event_name(EPODE_CONN_TLS_UP), "tls_up");
    CHECK_STR(epode_conn_event_name(EPODE_CONN_READY), "ready");
    CHECK_STR(epode_conn_event_name(EPODE_CONN_DISCONNECTED), "disconnected");
    CHECK_STR(epode_disconnect_reason_name(EPODE_REASON_NONE), "none");
    CHECK_STR(epode_disconnect_reason_name(EPODE_REASON_STREAM_ERROR), "stream_error");
    CHECK_STR(epode_tls_mode_name(EPODE_TLS_DIRECT), "direct");
    CHECK_STR(epode_log_level_name(EPODE_LOG_WARN), "warn");
    CHECK_STR(epode_parser_event_name(EPODE_PARSER_STANZA), "stanza");
    CHECK_STR(epode_parser_limit_name(EPODE_LIMIT_DEPTH), "depth");
    CHECK_STR(epode_presence_change_name(EPODE_PRESENCE_UNAVAILABLE), "unavailable");
    CHECK_STR(epode_subscription_name(EPODE_SUB_REQUEST), "request");
    CHECK_STR(epode_roster_event_name(EPODE_ROSTER_FETCH_FAILED), "fetch_failed");
    CHECK_STR(epode_muc_event_type_name(EPODE_MUC_OCCUPANT_CHANGED), "occupant_changed");
    CHECK_STR(epode_carbon_dir_name(EPODE_CARBON_SENT), "sent");
    CHECK_STR(epode_caps_limit_name(EPODE_CAPS_LIMIT_MEMORY), "memory");
    CHECK_STR(epode_blocking_event_name(EPODE_BLOCKING_UNBLOCKED_ALL), "unblocked_all");
    CHECK_STR(epode_sender_mode_name(EPODE_SENDER_OCCUPANT), "occupant");
    CHECK_STR(epode_form_type_name(EPODE_FORM_SUBMIT), "submit"); /* the XEP-0004 word */
}

TEST_MAIN
