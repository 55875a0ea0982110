/* tests/integration/im_commands_probe.c — ad-hoc commands (XEP-0050,
 * epode/commands.h) against real servers, public API only.
 *
 *   im_commands_probe --server H --port N --ca-file F --jid1 J --password1 P
 *                     [--jid2 J --password2 P] --mode MODE [--allow BAREJID]
 *                     [--count N] [--node NODE] [--target JID]
 *
 * A is account 1 (resource A), C account 2 (resource C).
 * bot: A offers "uptime" (one step) and "echo-form" (text, then a
 *   confirmation with prev/complete, then the echo as a result form) to
 *   its own account and to --allow; prints "ready A JID", a "served NODE
 *   STATUS" line for each session that ends, and ends a second after
 *   --count ended sessions (default 3).
 * pair: A as in bot (allowing C); C lists A's commands ("list NODE NAME"),
 *   runs uptime, runs echo-form through next, prev, next, complete, opens
 *   one more and cancels it, and names an unknown session ("error NODE
 *   COND SPECIFIC"). Each answer prints a "result NODE STATUS sid=yes|no
 *   notes=TYPE:TEXT|... form=TYPE,VAR:VALUE,... actions=A,..." line.
 * server: A lists --target's commands (default: its domain) and runs
 *   --node there, printing the same lines.
 * peer: as server, and when the answer asks for more (executing), A
 *   completes it with a submission of name=epode (a third-party bot).
 * Ends with "OK" (exit 0) or "FAILED reason" (exit 1). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A, C, N };

typedef struct probe {
    const char *mode, *allow, *node, *target;
    long count, served;
    epode_ctx_t *ctx;
    epode_conn_t *conn[N];
    int used[N], ready[N], closed[N];
    epode_disco_t *disco[N];
    epode_commands_t *cmds[N];
    long ticks, end_at;
    int started, step;
    char sid[128];
    int last_status;
    int finished, failed;
    char why[256];
} probe;

static probe P;

static void finish(int failed, const char *why)
{
    if (P.finished)
        return;
    P.finished = 1;
    P.failed = failed;
    snprintf(P.why, sizeof P.why, "%s", why);
    for (int i = 0; i < N; i++)
        if (P.used[i] && !P.closed[i])
            epode_conn_close(P.conn[i]);
}

/* ---- the bot ---------------------------------------------------------------- */

static int allow_cb(epode_commands_t *c, const char *requester, const char *node, void *user)
{
    (void)c, (void)node, (void)user;
    if (!requester)
        return 1;
    const char *me = epode_conn_bound_jid(P.conn[A]);
    if (me && epode_jid_str_equal(requester, me, 1))
        return 1;
    return P.allow && epode_jid_str_equal(requester, P.allow, 1);
}

static void served(const char *node, const char *status)
{
    printf("served %s %s\n", node, status);
    fflush(stdout);
    /* the answer goes out after this call; later requests (an unknown
     * session) still get theirs: end a second later */
    if (!strcmp(P.mode, "bot") && ++P.served == (P.count > 0 ? P.count : 3))
        P.end_at = P.ticks + 10;
}

static int uptime_cb(epode_commands_t *c, epode_command_session_t *s,
                     epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)c, (void)form, (void)user;
    if (action == EPODE_COMMAND_CANCEL)
        return 0;
    char text[64], num[24];
    snprintf(num, sizeof num, "%ld", P.ticks);
    snprintf(text, sizeof text, "up for %ld ticks", P.ticks);
    epode_form_t *r;
    if (epode_form_new(NULL, EPODE_FORM_RESULT, &r) == 0) {
        epode_form_add_field(r, "ticks", EPODE_FIELD_TEXT_SINGLE, "Ticks", NULL);
        epode_form_set_value(r, "ticks", num);
        epode_command_session_set_form(s, r);
        epode_form_free(r);
    }
    epode_command_session_add_note(s, EPODE_COMMAND_NOTE_INFO, text);
    served("uptime", "completed");
    return EPODE_COMMAND_COMPLETED;
}

static int echo_cb(epode_commands_t *c, epode_command_session_t *s,
                   epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)c, (void)user;
    char *kept = epode_command_session_get_user(s);
    if (action == EPODE_COMMAND_CANCEL) {
        free(kept);
        epode_command_session_set_user(s, NULL);
        served("echo-form", "canceled");
        return 0;
    }
    epode_form_t *f = NULL;
    if (action == EPODE_COMMAND_EXECUTE || action == EPODE_COMMAND_PREV) {
        if (epode_form_new(NULL, EPODE_FORM_FORM, &f) < 0)
            return -1;
        epode_form_set_title(f, "Echo");
        epode_form_field_t *fl;
        epode_form_add_field(f, "text", EPODE_FIELD_TEXT_SINGLE, "Text", &fl);
        epode_form_field_set_required(fl, 1);
        if (kept)
            epode_form_field_set_value(fl, kept);
        epode_command_session_set_form(s, f);
        epode_form_free(f);
        epode_command_session_set_actions(s, EPODE_COMMAND_ALLOW(EPODE_COMMAND_NEXT),
                                          EPODE_COMMAND_NEXT);
        return EPODE_COMMAND_EXECUTING;
    }
    if (action == EPODE_COMMAND_NEXT) {
        const char *text = form ? epode_form_get_value(form, "text") : NULL;
        if (!text || !*text) {
            epode_command_session_set_error(s, EPODE_COND_BAD_REQUEST,
                                            EPODE_COMMAND_ERROR_BAD_PAYLOAD, "a text is required");
            free(kept);
            epode_command_session_set_user(s, NULL);
            return EPODE_COMMAND_CANCELED;
        }
        free(kept);
        epode_command_session_set_user(s, strdup(text));
        if (epode_form_new(NULL, EPODE_FORM_FORM, &f) == 0) {
            epode_form_set_title(f, "Confirm");
            epode_form_add_field(f, "confirm", EPODE_FIELD_FIXED, NULL, NULL);
            epode_command_session_set_form(s, f);
            epode_form_free(f);
        }
        epode_command_session_add_note(s, EPODE_COMMAND_NOTE_WARN, "last chance");
        epode_command_session_set_actions(s,
                                          EPODE_COMMAND_ALLOW(EPODE_COMMAND_PREV) |
                                              EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE),
                                          EPODE_COMMAND_COMPLETE);
        return EPODE_COMMAND_EXECUTING;
    }
    /* complete */
    if (epode_form_new(NULL, EPODE_FORM_RESULT, &f) == 0) {
        epode_form_add_field(f, "echo", EPODE_FIELD_TEXT_SINGLE, NULL, NULL);
        epode_form_set_value(f, "echo", kept ? kept : "");
        epode_command_session_set_form(s, f);
        epode_form_free(f);
    }
    epode_command_session_add_note(s, EPODE_COMMAND_NOTE_INFO, kept ? kept : "");
    free(kept);
    epode_command_session_set_user(s, NULL);
    served("echo-form", "completed");
    return EPODE_COMMAND_COMPLETED;
}

/* ---- the requester ------------------------------------------------------------ */

static void print_result(const char *node, const epode_command_result_t *r)
{
    printf("result %s %s sid=%s notes=", node, epode_command_status_name(r->status),
           r->session_id ? "yes" : "no");
    for (size_t i = 0; i < r->nnotes; i++)
        printf("%s%s:%s", i ? "|" : "", epode_command_note_type_name(r->notes[i].type),
               r->notes[i].text);
    printf(" form=");
    if (r->form) {
        printf("%s", epode_form_type_name(epode_form_get_type(r->form)));
        for (size_t i = 0; i < epode_form_field_count(r->form); i++) {
            const epode_form_field_t *f = epode_form_field_at(r->form, i);
            if (epode_form_field_var(f))
                printf(",%s:%s", epode_form_field_var(f),
                       epode_form_field_value(f) ? epode_form_field_value(f) : "");
        }
    } else {
        printf("-");
    }
    printf(" actions=");
    for (int a = EPODE_COMMAND_NEXT; a <= EPODE_COMMAND_COMPLETE; a++)
        if (r->actions & EPODE_COMMAND_ALLOW(a))
            printf("%s,", epode_command_action_name((epode_command_action_t)a));
    printf("\n");
    fflush(stdout);
}

static void next_step(void);

static void on_result(epode_commands_t *c, const epode_command_result_t *r, int status,
                      epode_stanza_cond_t cond, epode_command_error_t specific, const char *text,
                      void *user)
{
    (void)c, (void)text;
    const char *node = user;
    if (status == EPODE_EPROTOCOL && cond != EPODE_COND_NONE) {
        printf("error %s %s %s\n", node, epode_stanza_cond_name(cond),
               specific ? epode_command_error_name(specific) : "-");
        fflush(stdout);
    } else if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "%s: %s", node, epode_strerror(status));
        finish(1, why);
        return;
    } else {
        print_result(node, r);
        snprintf(P.sid, sizeof P.sid, "%s", r->session_id ? r->session_id : "");
        P.last_status = (int)r->status;
    }
    P.step++;
    next_step();
}

static void on_list(epode_commands_t *c, const char *jid, const epode_disco_items_t *items,
                    int status, epode_stanza_cond_t cond, void *user)
{
    (void)c, (void)jid, (void)user;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "list: %s %s", epode_strerror(status),
                 cond ? epode_stanza_cond_name(cond) : "");
        finish(1, why);
        return;
    }
    for (size_t i = 0; i < items->nitems; i++)
        printf("list %s %s\n", items->items[i].node ? items->items[i].node : "-",
               items->items[i].name ? items->items[i].name : "-");
    fflush(stdout);
    P.step++;
    next_step();
}

static epode_form_t *submission(const char *text)
{
    epode_form_t *f;
    if (epode_form_new(NULL, EPODE_FORM_SUBMIT, &f) < 0)
        return NULL;
    epode_form_set_value(f, "text", text);
    return f;
}

static void fail_rc(int rc, const char *what)
{
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "%s: %s", what, epode_strerror(rc));
        finish(1, why);
    }
}

/* The requester's script, one request per step. */
static void next_step(void)
{
    int remote = !strcmp(P.mode, "server") || !strcmp(P.mode, "peer");
    epode_commands_t *c = P.cmds[remote ? A : C];
    char target[512];
    if (remote) {
        snprintf(target, sizeof target, "%s", P.target);
        switch (P.step) {
        case 0:
            fail_rc(epode_commands_list(c, target, on_list, NULL, NULL), "list");
            return;
        case 1:
            fail_rc(epode_commands_execute(c, target, P.node, NULL, on_result, (void *)P.node,
                                           NULL), "execute");
            return;
        case 2:
            if (P.last_status == EPODE_COMMAND_EXECUTING) {
                epode_form_t *f;
                int rc = epode_form_new(NULL, EPODE_FORM_SUBMIT, &f);
                if (rc == 0)
                    rc = epode_form_set_value(f, "name", "epode");
                if (rc == 0)
                    rc = epode_commands_continue(c, target, P.node, P.sid, EPODE_COMMAND_COMPLETE,
                                                 f, on_result, (void *)P.node, NULL);
                epode_form_free(f);
                fail_rc(rc, "complete");
                return;
            }
            finish(0, "");
            return;
        default:
            finish(0, "");
            return;
        }
    }
    snprintf(target, sizeof target, "%s", epode_conn_bound_jid(P.conn[A]));
    epode_form_t *f = NULL;
    int rc = 0;
    switch (P.step) {
    case 0:
        rc = epode_commands_list(c, target, on_list, NULL, NULL);
        break;
    case 1:
        rc = epode_commands_execute(c, target, "uptime", NULL, on_result, "uptime", NULL);
        break;
    case 2:
        rc = epode_commands_execute(c, target, "echo-form", NULL, on_result, "echo-form", NULL);
        break;
    case 3:
        f = submission("first");
        rc = epode_commands_continue(c, target, "echo-form", P.sid, EPODE_COMMAND_NEXT, f,
                                     on_result, "echo-form", NULL);
        break;
    case 4:
        rc = epode_commands_continue(c, target, "echo-form", P.sid, EPODE_COMMAND_PREV, NULL,
                                     on_result, "echo-form", NULL);
        break;
    case 5:
        f = submission("second");
        rc = epode_commands_continue(c, target, "echo-form", P.sid, EPODE_COMMAND_NEXT, f,
                                     on_result, "echo-form", NULL);
        break;
    case 6:
        rc = epode_commands_continue(c, target, "echo-form", P.sid, EPODE_COMMAND_COMPLETE, NULL,
                                     on_result, "echo-form", NULL);
        break;
    case 7:
        rc = epode_commands_execute(c, target, "echo-form", NULL, on_result, "echo-form", NULL);
        break;
    case 8:
        rc = epode_commands_continue(c, target, "echo-form", P.sid, EPODE_COMMAND_CANCEL, NULL,
                                     on_result, "echo-form", NULL);
        break;
    case 9:
        rc = epode_commands_continue(c, target, "echo-form", "no-such-session",
                                     EPODE_COMMAND_NEXT, NULL, on_result, "echo-form", NULL);
        break;
    default:
        printf("sessions open %zu\n", epode_commands_session_count(P.cmds[A]));
        finish(0, "");
        return;
    }
    epode_form_free(f);
    fail_rc(rc, "request");
}

/* ---- life cycle ---------------------------------------------------------------- */

static int on_tick(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    P.ticks++;
    if (P.end_at && P.ticks >= P.end_at)
        finish(0, "");
    if (!P.started && ((!strcmp(P.mode, "pair") && P.ready[A] && P.ready[C]) ||
                       ((!strcmp(P.mode, "server") || !strcmp(P.mode, "peer")) && P.ready[A]))) {
        P.started = 1;
        next_step();
    }
    return 1;
}

static int on_timeout(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    finish(1, "timed out");
    return 0;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    int i = (int)(long)user;
    if (ev == EPODE_CONN_READY) {
        P.ready[i] = 1;
        printf("ready %c %s\n", "AC"[i], epode_conn_bound_jid(conn));
        fflush(stdout);
        epode_stanza_t *pres;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &pres) == 0) {
            epode_conn_send(conn, pres);
            epode_stanza_unref(pres);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        P.closed[i] = 1;
        if (!P.finished) {
            char why[256];
            snprintf(why, sizeof why, "%c disconnected: %s", "AC"[i],
                     epode_strerror(epode_conn_error(conn)));
            finish(1, why);
        }
        int all = 1;
        for (int k = 0; k < N; k++)
            if (P.used[k] && !P.closed[k])
                all = 0;
        if (all)
            epode_ctx_stop(P.ctx);
    }
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *ca = NULL, *jid1 = NULL, *pw1 = NULL, *jid2 = NULL,
               *pw2 = NULL;
    unsigned port = 5222;
    P.mode = "bot";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid1")) jid1 = v;
        else if (!strcmp(k, "--password1")) pw1 = v;
        else if (!strcmp(k, "--jid2")) jid2 = v;
        else if (!strcmp(k, "--password2")) pw2 = v;
        else if (!strcmp(k, "--mode")) P.mode = v;
        else if (!strcmp(k, "--count")) P.count = atol(v);
        else if (!strcmp(k, "--allow")) P.allow = v;
        else if (!strcmp(k, "--node")) P.node = v;
        else if (!strcmp(k, "--target")) P.target = v;
        else {
            fprintf(stderr, "im_commands_probe: unknown option %s\n", k);
            return 64;
        }
    }
    int pair = !strcmp(P.mode, "pair");
    if (!jid1 || !pw1 || (pair && (!jid2 || !pw2)) ||
        (strcmp(P.mode, "bot") && !pair && strcmp(P.mode, "server") && strcmp(P.mode, "peer")) ||
        ((!strcmp(P.mode, "server") || !strcmp(P.mode, "peer")) && !P.node)) {
        fprintf(stderr, "im_commands_probe: need --jid1 --password1, a mode (bot, pair, "
                        "server --node N) and for pair --jid2 --password2\n");
        return 64;
    }
    if (pair)
        P.allow = jid2;
    if (!P.target)
        P.target = strchr(jid1, '@') ? strchr(jid1, '@') + 1 : jid1;
    P.used[A] = 1;
    P.used[C] = pair;
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &P.ctx) < 0)
        return 1;
    for (int i = 0; i < N; i++) {
        if (!P.used[i])
            continue;
        char full[512];
        snprintf(full, sizeof full, "%s/%c", i == C ? jid2 : jid1, "AC"[i]);
        if (epode_conn_new(P.ctx, &P.conn[i]) < 0 || epode_conn_set_jid(P.conn[i], full) < 0 ||
            epode_conn_set_password(P.conn[i], i == C ? pw2 : pw1) < 0 ||
            epode_conn_set_server(P.conn[i], server, port) < 0 ||
            (ca && epode_conn_set_ca_file(P.conn[i], ca) < 0) ||
            epode_conn_add_event_cb(P.conn[i], on_event, (void *)(long)i, NULL) < 0 ||
            epode_disco_new(P.conn[i], &P.disco[i]) < 0 ||
            epode_commands_new(P.conn[i], P.disco[i], &P.cmds[i]) < 0) {
            fprintf(stderr, "im_commands_probe: set-up failed\n");
            return 1;
        }
    }
    int rc = 0;
    if (!strcmp(P.mode, "bot") || pair) {
        rc = epode_commands_add(P.cmds[A], "uptime", "Uptime", uptime_cb, NULL);
        if (rc == 0)
            rc = epode_commands_add(P.cmds[A], "echo-form", "Echo a text", echo_cb, NULL);
        if (rc == 0)
            rc = epode_commands_set_access_cb(P.cmds[A], allow_cb, NULL);
    }
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[A], 100, on_tick, NULL, NULL);
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[A], 30000, on_timeout, NULL, NULL);
    for (int i = 0; i < N && rc == 0; i++)
        if (P.used[i])
            rc = epode_conn_connect(P.conn[i]);
    if (rc < 0) {
        fprintf(stderr, "im_commands_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(P.ctx);
    for (int i = 0; i < N; i++) {
        epode_commands_free(P.cmds[i]);
        epode_disco_free(P.disco[i]);
        epode_conn_free(P.conn[i]);
    }
    epode_ctx_free(P.ctx);
    if (P.failed) {
        printf("FAILED %s\n", P.why);
        return 1;
    }
    printf("OK\n");
    return 0;
}
