/* tests/unit/test_im_commands.c — ad-hoc commands (XEP-0050) against a
 * scripted server: our commands listed through disco and filtered per
 * requester, sessions through every action, the bounds (per requester,
 * timeout), the errors XEP-0050 names for bad session ids, unknown or
 * refused actions, malformed forms and unauthorized requesters,
 * answers left pending; and the requester side: listing, executing,
 * continuing, errors with their specific conditions; freeing orders and
 * failing allocations. */
#include "test.h"

#include <unistd.h>

#include "scripted.h"

TEST_MAIN

#define ME "bot@example.com/r1"
#define OWN "bot@example.com/phone" /* our own account: allowed by default */
#define EVE "eve@evil.example/x"

/* ---- the provider side -------------------------------------------------------- */

typedef struct bot {
    int calls, cancels;
    epode_command_action_t last_action;
    char last_value[64];
    unsigned last_stage;
    int ret;                  /* what the command returns when not scripted below */
    int two_step;             /* run the two-stage script */
    epode_command_session_t *pending;
} bot;

static int hello_cb(epode_commands_t *cmds, epode_command_session_t *s,
                    epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)cmds;
    bot *b = user;
    b->calls++;
    b->last_action = action;
    b->last_stage = epode_command_session_stage(s);
    b->last_value[0] = '\0';
    if (form && epode_form_get_value(form, "text"))
        snprintf(b->last_value, sizeof b->last_value, "%s", epode_form_get_value(form, "text"));
    if (action == EPODE_COMMAND_CANCEL) {
        b->cancels++;
        return 0;
    }
    if (b->ret == EPODE_COMMAND_PENDING) {
        b->pending = s;
        return EPODE_COMMAND_PENDING;
    }
    if (b->two_step && (action == EPODE_COMMAND_EXECUTE || action == EPODE_COMMAND_PREV)) {
        epode_form_t *f;
        epode_form_new(NULL, EPODE_FORM_FORM, &f);
        epode_form_set_title(f, "Echo");
        epode_form_add_field(f, "text", EPODE_FIELD_TEXT_SINGLE, "Text", NULL);
        epode_command_session_set_form(s, f);
        epode_form_free(f);
        epode_command_session_set_actions(s, EPODE_COMMAND_ALLOW(EPODE_COMMAND_NEXT),
                                          EPODE_COMMAND_NEXT);
        return EPODE_COMMAND_EXECUTING;
    }
    if (b->two_step && action == EPODE_COMMAND_NEXT) {
        epode_command_session_set_actions(s,
                                          EPODE_COMMAND_ALLOW(EPODE_COMMAND_PREV) |
                                              EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE),
                                          EPODE_COMMAND_COMPLETE);
        epode_command_session_add_note(s, EPODE_COMMAND_NOTE_INFO, "press complete");
        return EPODE_COMMAND_EXECUTING;
    }
    epode_command_session_add_note(s, EPODE_COMMAND_NOTE_INFO, "hello");
    epode_form_t *r;
    epode_form_new(NULL, EPODE_FORM_RESULT, &r);
    epode_form_add_field(r, "uptime", EPODE_FIELD_TEXT_SINGLE, NULL, NULL);
    epode_form_set_value(r, "uptime", "42");
    epode_command_session_set_form(s, r);
    epode_form_free(r);
    return b->ret ? b->ret : EPODE_COMMAND_COMPLETED;
}

typedef struct provider {
    scripted s;
    epode_disco_t *disco;
    epode_commands_t *cmds;
    bot b;
} provider;

static int provider_setup(provider *p, const epode_mem_t *mem)
{
    memset(&p->b, 0, sizeof p->b);
    if (scripted_login_mem(&p->s, mem, "bot@example.com", ME) < 0 ||
        epode_disco_new(p->s.conn, &p->disco) < 0 ||
        epode_commands_new(p->s.conn, p->disco, &p->cmds) < 0)
        return -1;
    return epode_commands_add(p->cmds, "hello", "Say hello", hello_cb, &p->b);
}

static void provider_free(provider *p)
{
    epode_commands_free(p->cmds);
    epode_disco_free(p->disco);
    scripted_free(&p->s);
}

/* The server relays a command request; returns the client's answer. */
static epode_stanza_t *request(provider *p, const char *from, const char *attrs,
                               const char *payload)
{
    char xml[4096];
    snprintf(xml, sizeof xml,
             "<iq type='set' id='c1' from='%s' to='" ME "'><command xmlns='"
             EPODE_NS_COMMANDS "' %s>%s</command></iq>",
             from, attrs, payload ? payload : "");
    scripted_send(&p->s, xml);
    return scripted_next(&p->s);
}

static epode_stanza_t *command_of(const epode_stanza_t *iq)
{
    return iq ? epode_stanza_find_child(iq, "command", EPODE_NS_COMMANDS) : NULL;
}

/* The stanza condition and the commands-specific element of an error. */
static const char *error_of(const epode_stanza_t *iq, const char **specific)
{
    *specific = NULL;
    epode_stanza_cond_t cond;
    if (!iq || strcmp(epode_stanza_get_type(iq), "error") != 0 ||
        epode_stanza_get_error(iq, &cond, NULL, NULL) < 0)
        return "";
    epode_stanza_t *err = epode_stanza_find_child(iq, "error", NULL);
    epode_stanza_t *sp = err ? epode_stanza_find_child(err, NULL, EPODE_NS_COMMANDS) : NULL;
    *specific = sp ? epode_stanza_get_name(sp) : NULL;
    return epode_stanza_cond_name(cond);
}

static char sid_buf[64];
static const char *sid_of(const epode_stanza_t *iq)
{
    const char *sid = epode_stanza_get_attr(command_of(iq), "sessionid");
    snprintf(sid_buf, sizeof sid_buf, "%s", sid ? sid : "");
    return sid_buf;
}

TEST(commands_feature_and_list_in_disco_filtered_per_requester)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    CHECK_INT(epode_commands_add(p.cmds, "secret", "Secret", hello_cb, &p.b), 0);
    CHECK_INT(epode_commands_add(p.cmds, "hello", "Again", hello_cb, &p.b), EPODE_ESTATE);
    scripted_send(&p.s, "<iq type='get' id='i1' from='" EVE "'><query xmlns='"
                        EPODE_NS_DISCO_INFO "'/></iq>");
    epode_disco_info_t *info;
    CHECK_INT(epode_disco_info_parse(scripted_next(&p.s), &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, EPODE_NS_COMMANDS), 1);
    epode_disco_info_free(info);

    const char *ask = "<iq type='get' id='i2' from='%s'><query xmlns='" EPODE_NS_DISCO_ITEMS
                      "' node='" EPODE_NS_COMMANDS "'/></iq>";
    char xml[512];
    snprintf(xml, sizeof xml, ask, OWN);
    scripted_send(&p.s, xml);
    epode_disco_items_t *items;
    CHECK_INT(epode_disco_items_parse(scripted_next(&p.s), &items), 0);
    CHECK_INT(items->nitems, 2);
    CHECK_STR(items->items[0].jid, ME);
    CHECK_STR(items->items[0].node, "hello");
    CHECK_STR(items->items[0].name, "Say hello");
    CHECK_STR(items->items[1].node, "secret");
    epode_disco_items_free(items);

    snprintf(xml, sizeof xml, ask, EVE); /* not our account: sees nothing */
    scripted_send(&p.s, xml);
    CHECK_INT(epode_disco_items_parse(scripted_next(&p.s), &items), 0);
    CHECK_INT(items->nitems, 0);
    epode_disco_items_free(items);

    /* the command's own node */
    scripted_send(&p.s, "<iq type='get' id='i3' from='" OWN "'><query xmlns='"
                        EPODE_NS_DISCO_INFO "' node='hello'/></iq>");
    CHECK_INT(epode_disco_info_parse(scripted_next(&p.s), &info), 0);
    CHECK_INT(info->nidentities, 1);
    CHECK_STR(info->identities[0].category, "automation");
    CHECK_STR(info->identities[0].type, "command-node");
    epode_disco_info_free(info);

    CHECK_INT(epode_commands_remove(p.cmds, "secret"), 0);
    CHECK_INT(epode_commands_remove(p.cmds, "secret"), EPODE_ENOTFOUND);
    snprintf(xml, sizeof xml, ask, OWN);
    scripted_send(&p.s, xml);
    CHECK_INT(epode_disco_items_parse(scripted_next(&p.s), &items), 0);
    CHECK_INT(items->nitems, 1);
    epode_disco_items_free(items);
    provider_free(&p);
}

static int allow_all(epode_commands_t *c, const char *requester, const char *node, void *user)
{
    (void)c;
    (void)requester;
    (void)user;
    return strcmp(node, "hello") == 0;
}

TEST(commands_access_callback_decides_listing_and_running)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    CHECK_INT(epode_commands_add(p.cmds, "admin", "Admin", hello_cb, &p.b), 0);
    epode_stanza_t *r = request(&p, EVE, "node='hello' action='execute'", NULL);
    const char *sp;
    CHECK_STR(error_of(r, &sp), "item-not-found"); /* not allowed: does not exist for it */
    CHECK_INT(p.b.calls, 0);
    CHECK_INT(epode_commands_set_access_cb(p.cmds, allow_all, NULL), 0);
    r = request(&p, EVE, "node='hello' action='execute'", NULL);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "completed");
    r = request(&p, EVE, "node='admin'", NULL);
    CHECK_STR(error_of(r, &sp), "item-not-found");
    scripted_send(&p.s, "<iq type='get' id='i2' from='" EVE "'><query xmlns='"
                        EPODE_NS_DISCO_ITEMS "' node='" EPODE_NS_COMMANDS "'/></iq>");
    epode_disco_items_t *items;
    CHECK_INT(epode_disco_items_parse(scripted_next(&p.s), &items), 0);
    CHECK_INT(items->nitems, 1);
    CHECK_STR(items->items[0].node, "hello");
    epode_disco_items_free(items);
    /* back to the default: our own account only */
    CHECK_INT(epode_commands_set_access_cb(p.cmds, NULL, NULL), 0);
    r = request(&p, EVE, "node='hello'", NULL);
    CHECK_STR(error_of(r, &sp), "item-not-found");
    r = request(&p, OWN, "node='nope'", NULL);
    CHECK_STR(error_of(r, &sp), "item-not-found");
    provider_free(&p);
}

TEST(commands_single_stage_completes_with_notes_and_result_form)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    epode_stanza_t *r = request(&p, OWN, "node='hello' action='execute'", NULL);
    CHECK_STR(epode_stanza_get_type(r), "result");
    CHECK_STR(epode_stanza_get_to(r), OWN);
    epode_stanza_t *c = command_of(r);
    CHECK_STR(epode_stanza_get_attr(c, "status"), "completed");
    CHECK_STR(epode_stanza_get_attr(c, "node"), "hello");
    CHECK(strlen(sid_of(r)) > 8);
    CHECK(epode_stanza_find_child(c, "actions", NULL) == NULL);
    epode_stanza_t *note = epode_stanza_find_child(c, "note", EPODE_NS_COMMANDS);
    CHECK_STR(epode_stanza_get_attr(note, "type"), "info");
    CHECK_STR(epode_stanza_get_text(note), "hello");
    epode_form_t *f;
    CHECK_INT(epode_form_parse(NULL, epode_form_find(c, NULL), &f), 0);
    CHECK_INT(epode_form_get_type(f), EPODE_FORM_RESULT);
    CHECK_STR(epode_form_get_value(f, "uptime"), "42");
    epode_form_free(f);
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    CHECK_INT(p.b.cancels, 0);
    /* no action attribute means execute too */
    r = request(&p, OWN, "node='hello'", NULL);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "completed");
    provider_free(&p);
}

#define SUBMIT(v) "<x xmlns='jabber:x:data' type='submit'><field var='text'><value>" v \
    "</value></field></x>"

TEST(commands_multi_stage_next_prev_complete_and_execute_as_default)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    epode_stanza_t *r = request(&p, OWN, "node='hello' action='execute'", NULL);
    epode_stanza_t *c = command_of(r);
    CHECK_STR(epode_stanza_get_attr(c, "status"), "executing");
    epode_stanza_t *acts = epode_stanza_find_child(c, "actions", EPODE_NS_COMMANDS);
    CHECK_STR(epode_stanza_get_attr(acts, "execute"), "next");
    CHECK(epode_stanza_find_child(acts, "next", NULL) != NULL);
    CHECK(epode_stanza_find_child(acts, "complete", NULL) == NULL);
    CHECK(epode_form_find(c, NULL) != NULL);
    char sid[64], attrs[256];
    snprintf(sid, sizeof sid, "%s", sid_of(r));
    CHECK_INT(epode_commands_session_count(p.cmds), 1);

    /* complete is not allowed yet: bad-action, the session stays */
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='complete'", sid);
    const char *sp;
    r = request(&p, OWN, attrs, SUBMIT("x"));
    CHECK_STR(error_of(r, &sp), "bad-request");
    CHECK_STR(sp, "bad-action");
    CHECK_INT(epode_commands_session_count(p.cmds), 1);

    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'", sid);
    r = request(&p, OWN, attrs, SUBMIT("one"));
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "executing");
    CHECK_STR(sid_of(r), sid);
    CHECK_INT(p.b.last_action, EPODE_COMMAND_NEXT);
    CHECK_STR(p.b.last_value, "one");
    CHECK_INT(p.b.last_stage, 1);
    CHECK_STR(epode_stanza_child_text(command_of(r), "note", EPODE_NS_COMMANDS),
              "press complete");

    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='prev'", sid);
    r = request(&p, OWN, attrs, NULL);
    CHECK_INT(p.b.last_action, EPODE_COMMAND_PREV);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "executing");

    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'", sid);
    r = request(&p, OWN, attrs, SUBMIT("two"));
    CHECK_STR(p.b.last_value, "two");
    /* execute within a session is the default action: complete here */
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='execute'", sid);
    r = request(&p, OWN, attrs, SUBMIT("three"));
    CHECK_INT(p.b.last_action, EPODE_COMMAND_COMPLETE);
    CHECK_STR(p.b.last_value, "three");
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "completed");
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    /* the session is gone */
    r = request(&p, OWN, attrs, NULL);
    CHECK_STR(error_of(r, &sp), "bad-request");
    CHECK_STR(sp, "bad-sessionid");
    provider_free(&p);
}

TEST(commands_cancel_ends_the_session_and_tells_the_command)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    epode_stanza_t *r = request(&p, OWN, "node='hello'", NULL);
    char attrs[256];
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='cancel'", sid_of(r));
    r = request(&p, OWN, attrs, NULL);
    CHECK_STR(epode_stanza_get_type(r), "result");
    epode_stanza_t *c = command_of(r);
    CHECK_STR(epode_stanza_get_attr(c, "status"), "canceled");
    CHECK(epode_stanza_find_child(c, "actions", NULL) == NULL);
    CHECK_INT(p.b.cancels, 1);
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    provider_free(&p);
    CHECK_INT(p.b.cancels, 1); /* not told twice */
}

TEST(commands_bad_session_ids_and_actions)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    const char *sp;
    epode_stanza_t *r = request(&p, OWN, "node='hello' sessionid='nope' action='next'", NULL);
    CHECK_STR(error_of(r, &sp), "bad-request");
    CHECK_STR(sp, "bad-sessionid");
    r = request(&p, OWN, "node='hello' action='next'", NULL); /* nothing to continue */
    CHECK_STR(error_of(r, &sp), "bad-request");
    CHECK_STR(sp, "bad-sessionid");
    r = request(&p, OWN, "node='hello' action='jump'", NULL);
    CHECK_STR(error_of(r, &sp), "bad-request");
    CHECK_STR(sp, "malformed-action");

    r = request(&p, OWN, "node='hello'", NULL);
    char sid[64], attrs[256];
    snprintf(sid, sizeof sid, "%s", sid_of(r));
    /* another resource of our own account, the right id: not its session */
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'", sid);
    r = request(&p, "bot@example.com/other", attrs, SUBMIT("x"));
    CHECK_STR(error_of(r, &sp), "bad-request");
    CHECK_STR(sp, "bad-sessionid");
    /* the right requester, the id under another node */
    CHECK_INT(epode_commands_add(p.cmds, "other", "Other", hello_cb, &p.b), 0);
    snprintf(attrs, sizeof attrs, "node='other' sessionid='%s' action='next'", sid);
    r = request(&p, OWN, attrs, SUBMIT("x"));
    CHECK_STR(sp, "bad-sessionid");
    CHECK_INT(p.b.calls, 1);
    /* still usable by its owner */
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'", sid);
    r = request(&p, OWN, attrs, SUBMIT("mine"));
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "executing");
    CHECK_STR(p.b.last_value, "mine");
    provider_free(&p);
}

TEST(commands_malformed_forms_are_bad_payload)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    const char *sp;
    epode_stanza_t *r = request(&p, OWN, "node='hello'", NULL);
    char attrs[256];
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'", sid_of(r));
    static const char *const bad[] = {
        "<x xmlns='jabber:x:data' type='form'><field var='text'/></x>",    /* not a submission */
        "<x xmlns='jabber:x:data' type='bogus'/>",                          /* no such type */
        "<x xmlns='jabber:x:data' type='submit'><field><value>v</value></field></x>", /* no var */
        "<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = request(&p, OWN, attrs, bad[i]);
        CHECK_STR(error_of(r, &sp), "bad-request");
        CHECK_STR(sp, "bad-payload");
    }
    CHECK_INT(p.b.calls, 1);
    CHECK_INT(epode_commands_session_count(p.cmds), 1);
    /* a request without a <command/> node at all */
    r = request(&p, OWN, "", NULL);
    CHECK_STR(error_of(r, &sp), "item-not-found");
    provider_free(&p);
}

TEST(commands_sessions_per_requester_are_bounded)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    CHECK_INT(epode_commands_set_limits(p.cmds, 2, 3, 0), 0);
    const char *sp;
    CHECK_STR(epode_stanza_get_attr(command_of(request(&p, OWN, "node='hello'", NULL)), "status"),
              "executing");
    CHECK_STR(epode_stanza_get_attr(command_of(request(&p, OWN, "node='hello'", NULL)), "status"),
              "executing");
    CHECK_STR(error_of(request(&p, OWN, "node='hello'", NULL), &sp), "resource-constraint");
    CHECK_INT(epode_commands_session_count(p.cmds), 2);
    /* another requester has its own share, up to the total of strangers */
    CHECK_INT(epode_commands_set_access_cb(p.cmds, allow_all, NULL), 0);
    for (int i = 0; i < 3; i++) {
        char from[64];
        snprintf(from, sizeof from, "u%d@other.example/r", i);
        CHECK_STR(epode_stanza_get_attr(command_of(request(&p, from, "node='hello'", NULL)),
                                        "status"), "executing");
    }
    CHECK_STR(error_of(request(&p, "u9@other.example/r", "node='hello'", NULL), &sp),
              "resource-constraint");
    /* our own account's sessions are outside that total */
    CHECK_STR(epode_stanza_get_attr(command_of(request(&p, "bot@example.com/b", "node='hello'",
                                                       NULL)), "status"), "executing");
    CHECK_INT(epode_commands_session_count(p.cmds), 6);
    provider_free(&p);
    CHECK_INT(p.b.cancels, 6); /* every open session heard its end */
}

TEST(commands_sessions_time_out_and_then_are_expired)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    CHECK_INT(epode_commands_set_limits(p.cmds, 0, 0, 30), 0);
    epode_stanza_t *r = request(&p, OWN, "node='hello'", NULL);
    char attrs[256];
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'", sid_of(r));
    for (int i = 0; i < 40 && epode_commands_session_count(p.cmds); i++)
        epode_ctx_run_once(p.s.ctx, 5);
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    CHECK_INT(p.b.cancels, 1);
    const char *sp;
    r = request(&p, OWN, attrs, SUBMIT("late"));
    CHECK_STR(error_of(r, &sp), "not-allowed");
    CHECK_STR(sp, "session-expired");
    CHECK_INT(p.b.calls, 2); /* execute and the timeout's cancel */
    provider_free(&p);
}

TEST(commands_answer_left_pending_goes_out_on_reply)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.ret = EPODE_COMMAND_PENDING;
    epode_stanza_t *r = request(&p, OWN, "node='hello'", NULL);
    CHECK(r == NULL);
    CHECK(p.b.pending != NULL);
    /* a second request in the same session meanwhile waits its turn */
    char attrs[256];
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='complete'",
             epode_command_session_id(p.b.pending));
    const char *sp;
    r = request(&p, OWN, attrs, NULL);
    CHECK_STR(error_of(r, &sp), "unexpected-request");
    CHECK_INT(epode_command_session_add_note(p.b.pending, EPODE_COMMAND_NOTE_WARN, "late"), 0);
    CHECK_INT(epode_command_session_reply(p.b.pending, EPODE_COMMAND_PENDING), EPODE_EINVAL);
    CHECK_INT(epode_command_session_reply(p.b.pending, EPODE_COMMAND_COMPLETED), 0);
    scripted_pump(&p.s);
    r = scripted_next(&p.s);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "completed");
    epode_stanza_t *note = epode_stanza_find_child(command_of(r), "note", NULL);
    CHECK_STR(epode_stanza_get_attr(note, "type"), "warn");
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    provider_free(&p);
}

static int replies_inside_cb(epode_commands_t *cmds, epode_command_session_t *s,
                             epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)cmds, (void)form, (void)user;
    if (action == EPODE_COMMAND_CANCEL)
        return 0;
    epode_command_session_add_note(s, EPODE_COMMAND_NOTE_INFO, "at once");
    if (epode_command_session_reply(s, EPODE_COMMAND_COMPLETED) != 0)
        return -1;
    return EPODE_COMMAND_PENDING; /* and then says it will answer later */
}

TEST(commands_reply_from_inside_the_callback_is_sent_once)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    CHECK_INT(epode_commands_add(p.cmds, "now", "Now", replies_inside_cb, NULL), 0);
    epode_stanza_t *r = request(&p, OWN, "node='now'", NULL);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "completed");
    CHECK_STR(epode_stanza_child_text(command_of(r), "note", EPODE_NS_COMMANDS), "at once");
    CHECK(scripted_next(&p.s) == NULL); /* one answer only */
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    provider_free(&p);
}

static int failing_cb(epode_commands_t *cmds, epode_command_session_t *s,
                      epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)cmds;
    (void)form;
    int *mode = user;
    if (action == EPODE_COMMAND_CANCEL)
        return 0;
    if (*mode == 1)
        epode_command_session_set_error(s, EPODE_COND_NOT_AUTHORIZED,
                                        EPODE_COMMAND_ERROR_BAD_LOCALE, "no");
    return *mode == 2 ? 77 : EPODE_COMMAND_EXECUTING;
}

TEST(commands_errors_set_by_the_command_and_bad_returns)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    int mode = 1;
    CHECK_INT(epode_commands_add(p.cmds, "fail", "Fail", failing_cb, &mode), 0);
    const char *sp;
    epode_stanza_t *r = request(&p, OWN, "node='fail'", NULL);
    CHECK_STR(error_of(r, &sp), "not-authorized");
    CHECK_STR(sp, "bad-locale");
    mode = 2;
    r = request(&p, OWN, "node='fail'", NULL);
    CHECK_STR(error_of(r, &sp), "internal-server-error");
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    provider_free(&p);
}

/* ---- regressions from the issue-17 review ------------------------------------------ */

/* A cancel callback that answers the other pending sessions at once
 * ("one ended: finish the others"): removing the command ends the
 * sessions one by one while the callback frees its neighbours. */
static epode_command_session_t *held[2];
static int nheld;

static int answers_others_cb(epode_commands_t *cmds, epode_command_session_t *s,
                             epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)cmds, (void)form;
    int *cancels = user;
    if (action == EPODE_COMMAND_CANCEL) {
        ++*cancels;
        for (int i = 0; i < nheld; i++)
            if (held[i] && held[i] != s) {
                epode_command_session_t *o = held[i];
                held[i] = NULL;
                epode_command_session_reply(o, EPODE_COMMAND_COMPLETED);
            }
        for (int i = 0; i < nheld; i++)
            if (held[i] == s)
                held[i] = NULL;
        return 0;
    }
    if (nheld < 2)
        held[nheld++] = s;
    return EPODE_COMMAND_PENDING;
}

TEST(commands_remove_survives_a_cancel_callback_that_ends_other_sessions)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    int cancels = 0;
    nheld = 0;
    CHECK_INT(epode_commands_add(p.cmds, "slow", "Slow", answers_others_cb, &cancels), 0);
    CHECK(request(&p, OWN, "node='slow'", NULL) == NULL);
    CHECK(request(&p, OWN, "node='slow'", NULL) == NULL);
    CHECK_INT(epode_commands_session_count(p.cmds), 2);
    CHECK_INT(epode_commands_remove(p.cmds, "slow"), 0); /* freed a session under the walk */
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    CHECK_INT(cancels, 1); /* the other one was answered, not canceled */
    scripted_pump(&p.s);
    int withdrawn = 0, completed = 0;
    for (epode_stanza_t *r; (r = scripted_next(&p.s)) != NULL;) {
        const char *sp;
        if (strcmp(error_of(r, &sp), "item-not-found") == 0)
            withdrawn++;
        else if (command_of(r) &&
                 strcmp(epode_stanza_get_attr(command_of(r), "status"), "completed") == 0)
            completed++;
    }
    CHECK_INT(withdrawn, 1);
    CHECK_INT(completed, 1);
    provider_free(&p);
}

static int open_to_all(epode_commands_t *c, const char *requester, const char *node, void *user)
{
    (void)c, (void)requester, (void)user;
    return strcmp(node, "hello") == 0;
}

/* Forgets what the client sent so far (the recorder holds 512). */
static void scripted_forget(scripted *s)
{
    for (int k = 0; k < s->nsent; k++)
        epode_stanza_unref(s->sent[k]);
    s->nsent = s->next = 0;
}

static int opens(provider *p, const char *from)
{
    epode_stanza_t *r = request(p, from, "node='hello'", NULL);
    int ok = r && strcmp(epode_stanza_get_type(r), "result") == 0;
    if (p->s.nsent > 400)
        scripted_forget(&p->s);
    return ok;
}

/* One hostile domain minting full JIDs gets its share, not every
 * session; another domain still gets in, and so does our own account
 * whatever strangers hold. */
TEST(commands_one_domain_cannot_take_every_session)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1; /* sessions stay open */
    CHECK_INT(epode_commands_set_access_cb(p.cmds, open_to_all, NULL), 0);
    char from[128];
    int opened = 0;
    for (int i = 0; i < EPODE_COMMANDS_SESSIONS_MAX + 5; i++) {
        snprintf(from, sizeof from, "x%d@evil.example/r", i);
        opened += opens(&p, from);
    }
    CHECK_INT(opened, EPODE_COMMANDS_SESSIONS_PER_DOMAIN);
    /* one account with many resources: its own share */
    opened = 0;
    for (int i = 0; i < 3 * EPODE_COMMANDS_SESSIONS_PER_ACCOUNT; i++) {
        snprintf(from, sizeof from, "mallory@other.example/r%d", i);
        opened += opens(&p, from);
    }
    CHECK_INT(opened, EPODE_COMMANDS_SESSIONS_PER_ACCOUNT);
    CHECK_INT(opens(&p, "carol@other.example/r"), 1);
    /* our own account, with the access callback back to the default */
    CHECK_INT(epode_commands_set_access_cb(p.cmds, NULL, NULL), 0);
    epode_stanza_t *r = request(&p, OWN, "node='hello'", NULL);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "executing");

    /* with the total filled by strangers (many domains), our own
     * account is still served */
    provider_free(&p);
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.two_step = 1;
    CHECK_INT(epode_commands_set_access_cb(p.cmds, open_to_all, NULL), 0);
    CHECK_INT(epode_commands_set_limits(p.cmds, 0, 20, 0), 0);
    opened = 0;
    for (int i = 0; i < 30; i++) {
        snprintf(from, sizeof from, "x@d%d.example/r", i);
        opened += opens(&p, from);
    }
    CHECK_INT(opened, 20);
    const char *sp;
    CHECK_STR(error_of(request(&p, "y@new.example/r", "node='hello'", NULL), &sp),
              "resource-constraint");
    r = request(&p, OWN, "node='hello'", NULL);
    CHECK_STR(epode_stanza_get_attr(command_of(r), "status"), "executing");
    CHECK_INT(epode_commands_session_count(p.cmds), 21);
    provider_free(&p);
}

/* A command that answered PENDING and never replies: after the session
 * timeout the requester hears not-allowed + session-expired and the
 * command hears cancel; a late reply is refused. */
TEST(commands_pending_answer_times_out)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    p.b.ret = EPODE_COMMAND_PENDING;
    CHECK_INT(epode_commands_set_limits(p.cmds, 0, 0, 30), 0);
    CHECK(request(&p, OWN, "node='hello'", NULL) == NULL);
    CHECK_INT(epode_commands_session_count(p.cmds), 1);
    char sid[64];
    snprintf(sid, sizeof sid, "%s", epode_command_session_id(p.b.pending));
    for (int i = 0; i < 40 && epode_commands_session_count(p.cmds); i++)
        epode_ctx_run_once(p.s.ctx, 5);
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    CHECK_INT(p.b.cancels, 1);
    scripted_pump(&p.s);
    const char *sp;
    epode_stanza_t *r = scripted_next(&p.s);
    CHECK_STR(error_of(r, &sp), "not-allowed");
    CHECK_STR(sp, "session-expired");
    CHECK_STR(epode_stanza_get_to(r), OWN);
    CHECK(scripted_next(&p.s) == NULL);
    /* the id is remembered as expired */
    char attrs[256];
    snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='complete'", sid);
    CHECK_STR(error_of(request(&p, OWN, attrs, NULL), &sp), "not-allowed");
    CHECK_STR(sp, "session-expired");
    provider_free(&p);
    CHECK_INT(p.b.cancels, 1);
}

/* A stranger cannot tell a hidden command from a missing one, by
 * executing it or by disco#info on its node. */
TEST(commands_hidden_from_strangers_by_execute_and_disco_info)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    CHECK_INT(epode_commands_add(p.cmds, "secret-admin", "Wipe the database", hello_cb, &p.b), 0);
    const char *sp;
    CHECK_STR(error_of(request(&p, EVE, "node='secret-admin'", NULL), &sp), "item-not-found");
    CHECK_STR(error_of(request(&p, EVE, "node='nope'", NULL), &sp), "item-not-found");
    CHECK_INT(p.b.calls, 0);
    const char *ask = "<iq type='get' id='i1' from='%s' to='" ME "'><query xmlns='"
                      EPODE_NS_DISCO_INFO "' node='%s'/></iq>";
    char xml[512];
    const char *nodes[] = {"secret-admin", "nope"};
    for (int i = 0; i < 2; i++) {
        snprintf(xml, sizeof xml, ask, EVE, nodes[i]);
        scripted_send(&p.s, xml);
        epode_stanza_t *r = scripted_next(&p.s);
        CHECK_STR(error_of(r, &sp), "item-not-found");
        CHECK(epode_stanza_find_child(r, "query", NULL) == NULL);
        CHECK_STR(epode_stanza_get_id(r), "i1");
        CHECK_STR(epode_stanza_get_to(r), EVE);
    }
    /* our own account still sees it */
    snprintf(xml, sizeof xml, ask, OWN, "secret-admin");
    scripted_send(&p.s, xml);
    epode_disco_info_t *info;
    CHECK_INT(epode_disco_info_parse(scripted_next(&p.s), &info), 0);
    CHECK_INT(info->nidentities, 1);
    CHECK_STR(info->identities[0].name, "Wipe the database");
    epode_disco_info_free(info);
    /* and disco#info on other nodes is left alone */
    snprintf(xml, sizeof xml, "<iq type='get' id='i2' from='%s'><query xmlns='"
             EPODE_NS_DISCO_INFO "'/></iq>", EVE);
    scripted_send(&p.s, xml);
    CHECK_INT(epode_disco_info_parse(scripted_next(&p.s), &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, EPODE_NS_COMMANDS), 1);
    epode_disco_info_free(info);
    provider_free(&p);
}

TEST(commands_argument_checks)
{
    provider p;
    CHECK_INT(provider_setup(&p, NULL), 0);
    CHECK_INT(epode_commands_new(NULL, NULL, &p.cmds), EPODE_EINVAL);
    CHECK_INT(epode_commands_add(p.cmds, "", "x", hello_cb, NULL), EPODE_EINVAL);
    CHECK_INT(epode_commands_add(p.cmds, "n", NULL, hello_cb, NULL), EPODE_EINVAL);
    CHECK_INT(epode_commands_add(p.cmds, "n", "x", NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_commands_execute(p.cmds, "not a jid@", "n", NULL, NULL, NULL, NULL),
              EPODE_EJID);
    CHECK_INT(epode_commands_continue(p.cmds, "a@b", "n", NULL, EPODE_COMMAND_NEXT, NULL, NULL,
                                      NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_commands_continue(p.cmds, "a@b", "n", "s", 99, NULL, NULL, NULL, NULL),
              EPODE_EINVAL);
    CHECK_INT(epode_commands_cancel(p.cmds, 12345), EPODE_ENOTFOUND);
    CHECK_STR(epode_command_action_name(EPODE_COMMAND_PREV), "prev");
    CHECK_STR(epode_command_status_name(EPODE_COMMAND_CANCELED), "canceled");
    CHECK_STR(epode_command_note_type_name(EPODE_COMMAND_NOTE_WARN), "warn");
    CHECK_STR(epode_command_error_name(EPODE_COMMAND_ERROR_SESSION_EXPIRED), "session-expired");
    CHECK(epode_command_error_name(EPODE_COMMAND_ERROR_NONE) == NULL);
    CHECK(epode_command_action_name(0) == NULL);
    provider_free(&p);
}

/* ---- the requester side ----------------------------------------------------------- */

typedef struct got {
    int calls, status;
    epode_stanza_cond_t cond;
    epode_command_error_t specific;
    epode_command_status_t st;
    char sid[64], note[64], value[64], text[64];
    unsigned actions;
    epode_command_action_t def;
    size_t nitems, nnotes;
    int note_type;
} got;

static void on_result(epode_commands_t *c, const epode_command_result_t *r, int status,
                      epode_stanza_cond_t cond, epode_command_error_t specific, const char *text,
                      void *user)
{
    (void)c;
    got *g = user;
    g->calls++;
    g->status = status;
    g->cond = cond;
    g->specific = specific;
    snprintf(g->text, sizeof g->text, "%s", text ? text : "");
    if (!r)
        return;
    g->st = r->status;
    snprintf(g->sid, sizeof g->sid, "%s", r->session_id ? r->session_id : "");
    g->nnotes = r->nnotes;
    if (r->nnotes) {
        snprintf(g->note, sizeof g->note, "%s", r->notes[0].text);
        g->note_type = (int)r->notes[0].type;
    }
    const char *v = r->form ? epode_form_get_value(r->form, "uptime") : NULL;
    snprintf(g->value, sizeof g->value, "%s", v ? v : "");
    g->actions = r->actions;
    g->def = r->default_action;
}

static void on_list(epode_commands_t *c, const char *jid, const epode_disco_items_t *items,
                    int status, epode_stanza_cond_t cond, void *user)
{
    (void)c;
    (void)jid;
    got *g = user;
    g->calls++;
    g->status = status;
    g->cond = cond;
    g->nitems = items ? items->nitems : 0;
}

#define PEER "admin@example.com/desk"

static void answer(scripted *s, const epode_stanza_t *iq, const char *type, const char *payload)
{
    char xml[4096];
    snprintf(xml, sizeof xml, "<iq type='%s' id='%s' from='%s'>%s</iq>", type,
             epode_stanza_get_id(iq), epode_stanza_get_to(iq), payload);
    scripted_send(s, xml);
}

TEST(commands_client_lists_executes_continues)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", "me@example.com/r"), 0);
    epode_commands_t *c;
    CHECK_INT(epode_commands_new(s.conn, NULL, &c), 0);
    got g = {0};
    CHECK_INT(epode_commands_list(c, PEER, on_list, &g, NULL), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = scripted_next(&s);
    CHECK_STR(epode_stanza_get_to(iq), PEER);
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", EPODE_NS_DISCO_ITEMS);
    CHECK_STR(epode_stanza_get_attr(q, "node"), EPODE_NS_COMMANDS);
    answer(&s, iq, "result", "<query xmlns='" EPODE_NS_DISCO_ITEMS "' node='" EPODE_NS_COMMANDS
                              "'><item jid='" PEER "' node='a' name='A'/><item jid='" PEER
                              "' node='b' name='B'/></query>");
    CHECK_INT(g.calls, 1);
    CHECK_INT(g.status, 0);
    CHECK_INT(g.nitems, 2);

    memset(&g, 0, sizeof g);
    CHECK_INT(epode_commands_execute(c, PEER, "a", NULL, on_result, &g, NULL), 0);
    scripted_pump(&s);
    iq = scripted_next(&s);
    epode_stanza_t *cmd = command_of(iq);
    CHECK_STR(epode_stanza_get_type(iq), "set");
    CHECK_STR(epode_stanza_get_attr(cmd, "node"), "a");
    CHECK_STR(epode_stanza_get_attr(cmd, "action"), "execute");
    CHECK(epode_stanza_get_attr(cmd, "sessionid") == NULL);
    answer(&s, iq, "result",
           "<command xmlns='" EPODE_NS_COMMANDS "' node='a' sessionid='S1' status='executing'>"
           "<actions execute='next'><next/><prev/><bogus/></actions>"
           "<note type='warn'>careful</note>"
           "<x xmlns='jabber:x:data' type='form'><field var='text'/></x></command>");
    CHECK_INT(g.calls, 1);
    CHECK_INT(g.status, 0);
    CHECK_INT(g.st, EPODE_COMMAND_EXECUTING);
    CHECK_STR(g.sid, "S1");
    CHECK_INT(g.actions, EPODE_COMMAND_ALLOW(EPODE_COMMAND_NEXT) |
                             EPODE_COMMAND_ALLOW(EPODE_COMMAND_PREV));
    CHECK_INT(g.def, EPODE_COMMAND_NEXT);
    CHECK_STR(g.note, "careful");
    CHECK_INT(g.note_type, EPODE_COMMAND_NOTE_WARN);

    epode_form_t *f;
    CHECK_INT(epode_form_new(NULL, EPODE_FORM_SUBMIT, &f), 0);
    CHECK_INT(epode_form_set_value(f, "text", "hi"), 0);
    CHECK_INT(epode_commands_continue(c, PEER, "a", "S1", EPODE_COMMAND_NEXT, f, on_result, &g,
                                      NULL), 0);
    epode_form_free(f);
    scripted_pump(&s);
    iq = scripted_next(&s);
    cmd = command_of(iq);
    CHECK_STR(epode_stanza_get_attr(cmd, "sessionid"), "S1");
    CHECK_STR(epode_stanza_get_attr(cmd, "action"), "next");
    CHECK(epode_form_find(cmd, NULL) != NULL);
    answer(&s, iq, "result",
           "<command xmlns='" EPODE_NS_COMMANDS "' node='a' sessionid='S1' status='completed'>"
           "<note>done</note><x xmlns='jabber:x:data' type='result'><field var='uptime'>"
           "<value>7</value></field></x></command>");
    CHECK_INT(g.calls, 2);
    CHECK_INT(g.st, EPODE_COMMAND_COMPLETED);
    CHECK_STR(g.value, "7");
    CHECK_INT(g.note_type, EPODE_COMMAND_NOTE_INFO);
    CHECK_INT(g.actions, 0);

    /* an error answer with its specific condition */
    CHECK_INT(epode_commands_continue(c, PEER, "a", "S1", EPODE_COMMAND_CANCEL, NULL, on_result,
                                      &g, NULL), 0);
    scripted_pump(&s);
    iq = scripted_next(&s);
    CHECK_STR(epode_stanza_get_attr(command_of(iq), "action"), "cancel");
    answer(&s, iq, "error",
           "<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
           "<bad-sessionid xmlns='" EPODE_NS_COMMANDS "'/><text xmlns='urn:ietf:params:xml:ns:"
           "xmpp-stanzas'>gone</text></error>");
    CHECK_INT(g.calls, 3);
    CHECK_INT(g.status, EPODE_EPROTOCOL);
    CHECK_INT(g.cond, EPODE_COND_BAD_REQUEST);
    CHECK_INT(g.specific, EPODE_COMMAND_ERROR_BAD_SESSIONID);
    CHECK_STR(g.text, "gone");

    /* answers that are not commands */
    CHECK_INT(epode_commands_execute(c, PEER, "a", NULL, on_result, &g, NULL), 0);
    scripted_pump(&s);
    answer(&s, scripted_next(&s), "result", "");
    CHECK_INT(g.calls, 4);
    CHECK_INT(g.status, EPODE_EPROTOCOL);
    CHECK_INT(g.cond, EPODE_COND_NONE);
    CHECK_INT(epode_commands_execute(c, PEER, "a", NULL, on_result, &g, NULL), 0);
    scripted_pump(&s);
    answer(&s, scripted_next(&s), "result",
           "<command xmlns='" EPODE_NS_COMMANDS "' node='a' status='weird'/>");
    CHECK_INT(g.calls, 5);
    CHECK_INT(g.status, EPODE_EPROTOCOL);

    /* cancel by id, and pending at free */
    unsigned id;
    CHECK_INT(epode_commands_execute(c, PEER, "a", NULL, on_result, &g, &id), 0);
    CHECK_INT(epode_commands_cancel(c, id), 0);
    CHECK_INT(g.calls, 6);
    CHECK_INT(g.status, EPODE_ECANCELED);
    CHECK_INT(epode_commands_execute(c, PEER, "a", NULL, on_result, &g, NULL), 0);
    epode_commands_free(c);
    CHECK_INT(g.calls, 7);
    CHECK_INT(g.status, EPODE_ECANCELED);
    scripted_free(&s);
}

TEST(commands_outlive_their_connection)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    provider p;
    CHECK_INT(provider_setup(&p, &mm.mem), 0);
    p.b.two_step = 1;
    CHECK(request(&p, OWN, "node='hello'", NULL) != NULL);
    got g = {0};
    CHECK_INT(epode_commands_execute(p.cmds, PEER, "a", NULL, on_result, &g, NULL), 0);
    scripted_pump(&p.s);
    epode_conn_free(p.s.conn);
    p.s.conn = NULL;
    CHECK_INT(p.b.cancels, 1); /* the session ended with the connection */
    CHECK_INT(epode_commands_session_count(p.cmds), 0);
    CHECK_INT(epode_commands_execute(p.cmds, PEER, "a", NULL, on_result, &g, NULL), EPODE_ESTATE);
    CHECK_INT(g.calls, 0);
    epode_commands_free(p.cmds);
    CHECK_INT(g.calls, 1);
    CHECK_INT(g.status, EPODE_ECANCELED);
    epode_disco_free(p.disco);
    scripted_free(&p.s);
    CHECK_INT(mm.live, 0);
}

/* Every allocation failing in turn: clean errors, nothing left behind. */
TEST(commands_survive_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 2000; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        provider p;
        memset(&p, 0, sizeof p);
        CHECK_INT(scripted_login_mem(&p.s, &mm.mem, "bot@example.com", ME), 0);
        CHECK_INT(epode_disco_new(p.s.conn, &p.disco), 0);
        p.b.two_step = 1;
        got g = {0};
        mm.fail_at = mm.calls + fail;
        int rc = epode_commands_new(p.s.conn, p.disco, &p.cmds);
        if (rc == 0)
            rc = epode_commands_add(p.cmds, "hello", "Hello", hello_cb, &p.b);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            /* a stranger's session too (its JID is parsed for the shares) */
            epode_commands_set_access_cb(p.cmds, allow_all, NULL);
            request(&p, EVE, "node='hello'", NULL);
            epode_commands_set_access_cb(p.cmds, NULL, NULL);
            epode_stanza_t *r = request(&p, OWN, "node='hello'", NULL);
            char attrs[256];
            snprintf(attrs, sizeof attrs, "node='hello' sessionid='%s' action='next'",
                     r ? sid_of(r) : "x");
            request(&p, OWN, attrs, SUBMIT("v"));
            scripted_send(&p.s, "<iq type='get' id='i2' from='" OWN "'><query xmlns='"
                                EPODE_NS_DISCO_ITEMS "' node='" EPODE_NS_COMMANDS "'/></iq>");
            rc = epode_commands_execute(p.cmds, PEER, "a", NULL, on_result, &g, NULL);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_commands_free(p.cmds);
        epode_disco_free(p.disco);
        scripted_free(&p.s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}
