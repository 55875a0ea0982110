/* tests/integration/im_modern_probe.c — the modern IM layer against real
 * servers (public API only): message features, blocking, CSI and MAM.
 *
 *   im_modern_probe --server H --port N --ca-file F --jid1 J --password1 P
 *                   [--jid2 J --password2 P] --mode MODE [--count N]
 *
 * A is account 1 (resource A), C account 2 (resource C).
 * features: C sends A a markable message, then a correction of it, a
 *   reaction, a reply with a quote, a retraction and a displayed marker
 *   (all built with epode/msgext.h); A prints one "msg ..." line each.
 * recv: only A logs in and prints a "msg ..." line for each of --count
 *   messages from anyone (a third-party client sends them).
 * blocking: A blocks C, then unblocks it, blocks two JIDs and unblocks
 *   all, printing "blocking ..." lines with the local list.
 * csi: A says inactive then active ("csi supported=S"), pinging the
 *   server after each ("csi ping inactive|active status=S").
 * mam: C sends A --count messages (default 5); A pages through its
 *   archive with C two at a time forwards ("mam page ..." and "mam ID
 *   STAMP FROM BODY"), asks the last page backwards ("mam last ..."),
 *   catches up from the second id ("mam catchup BODY") and asks a future
 *   time range ("mam future results=0").
 * mam-room: A joins --room (a new room: unlocked as an instant room),
 *   sends three groupchat messages and, once they are echoed, asks the
 *   room's archive ("room ID STAMP FROM BODY"); then a correction of the
 *   first is checked against its sender ("room same=1"). With --hold S
 *   it then prints "room holding" and stays in the room S seconds.
 * hostile: C sends A a message; M (account 3, --jid3/--password3) sends
 *   a correction and a retraction of it, then C a correction: A's "msg"
 *   lines show same=0 for M's and same=1 for C's (XEP-0308/0424 checks
 *   through a real server, which relays them untouched).
 * catchup: C sends A a message; A keeps the stanza-id our server stamped
 *   on it (trusted once the account announces urn:xmpp:sid:0), then its
 *   session ends for good (no resumption); C sends three more; A logs in
 *   afresh and catches up from the kept id ("catchup BODY" lines).
 * Ends with "OK" (exit 0) or "FAILED reason" (exit 1). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { A, C, M, N }; /* M: a third account (--jid3), "mallory" */

typedef struct probe {
    const char *mode;
    long count;
    epode_ctx_t *ctx;
    epode_conn_t *conn[N];
    int used[N], ready[N], closed[N];
    epode_messaging_t *msg[N];
    epode_blocking_t *blocking;
    epode_csi_t *csi;
    epode_mam_t *mam;
    epode_muc_t *muc;
    const char *room;
    char room_from[512];
    char last_id[128];
    int cut, reconnect_at;
    int hold_ticks; /* mam-room --hold: stay in the room this many ticks after */
    int started, step, got;
    char orig_from[512], orig_id[128];
    char ids[64][128];
    int nids;
    int finished, failed;
    char why[256];
} probe;

static probe P;

static const char *nz(const char *s)
{
    return s && *s ? s : "-";
}

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

static void esc_print(const char *s)
{
    for (; s && *s; s++)
        if (*s == '\n')
            fputs("\\n", stdout);
        else
            putchar(*s);
}

/* ---- features ------------------------------------------------------------- */

static int on_message(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn, (void)user;
    const char *from = epode_message_from(m);
    if (!from || (P.conn[C] && epode_jid_str_equal(from, epode_conn_bound_jid(P.conn[A]), 1)))
        return EPODE_PASS;
    if (!P.orig_from[0]) {
        snprintf(P.orig_from, sizeof P.orig_from, "%s", from);
        snprintf(P.orig_id, sizeof P.orig_id, "%s", nz(epode_message_ref_id(m)));
    }
    const char *body = epode_message_body(m, NULL);
    printf("msg %s body=", from);
    esc_print(nz(body));
    printf(" markable=%d", epode_message_is_markable(m));
    printf(" replace=%s", nz(epode_message_replace_id(m)));
    printf(" retract=%s", nz(epode_message_retract_id(m)));
    printf(" same=%d", epode_message_same_sender(m, P.orig_from, NULL, EPODE_SENDER_AUTO));
    const char *rid = epode_message_reactions_id(m);
    printf(" reactions=%s", nz(rid));
    for (size_t i = 0; rid && i < epode_message_reaction_count(m); i++)
        printf("%s%s", i ? "," : ":", epode_message_reaction_at(m, i));
    const char *to, *reply = epode_message_reply_id(m, &to);
    printf(" reply=%s:%s", nz(reply), nz(to));
    size_t a, b;
    if (body && epode_message_fallback(m, EPODE_NS_REPLY, &a, &b) == 0) {
        printf(" stripped=");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s%s", (int)a, body, body + b);
        esc_print(buf);
    }
    const char *mid;
    epode_marker_t mk = epode_message_marker(m, &mid);
    printf(" marker=%s:%s", nz(epode_marker_name(mk)), mk ? nz(mid) : "-");
    printf(" hints=%u\n", epode_message_hints(m));
    fflush(stdout);
    if (++P.got == (P.count ? P.count : 6))
        finish(0, "");
    return EPODE_HANDLED;
}

static void send_built_by(int who, epode_stanza_t *st)
{
    if (!st)
        return;
    epode_messaging_send(P.msg[who], st);
    epode_stanza_unref(st);
}

static void send_built(epode_stanza_t *st)
{
    send_built_by(C, st);
}

static void send_features(void)
{
    const char *to = epode_conn_bound_jid(P.conn[A]);
    epode_stanza_t *m = NULL;
    if (epode_message_build("chat", to, "Hello wrld", NULL, NULL, &m) < 0)
        return;
    epode_stanza_set_id(m, "orig-1");
    epode_message_add_markable(m);
    send_built(m);
    m = NULL;
    if (epode_message_build("chat", to, "Hello world", NULL, NULL, &m) == 0)
        epode_message_set_replace(m, "orig-1");
    send_built(m);
    const char *set[] = {"\xF0\x9F\x91\x8D", "\xE2\x9D\xA4"};
    m = NULL;
    epode_message_build_reactions("chat", to, "orig-1", set, 2, &m);
    send_built(m);
    m = NULL;
    epode_message_build_reply("chat", to, "Indeed", epode_conn_bound_jid(P.conn[C]), "orig-1",
                              "Hello world", &m);
    send_built(m);
    m = NULL;
    epode_message_build_retraction("chat", to, "orig-1", &m);
    send_built(m);
    m = NULL;
    epode_message_build_marker("chat", to, EPODE_MARKER_DISPLAYED, "orig-1", NULL, &m);
    send_built(m);
}

/* ---- blocking ---------------------------------------------------------------- */

static const char *ev_name(epode_blocking_event_t ev)
{
    switch (ev) {
    case EPODE_BLOCKING_LOADED: return "loaded";
    case EPODE_BLOCKING_BLOCKED: return "blocked";
    case EPODE_BLOCKING_UNBLOCKED: return "unblocked";
    case EPODE_BLOCKING_UNBLOCKED_ALL: return "unblocked-all";
    case EPODE_BLOCKING_LIMIT: return "limit";
    }
    return "?";
}

static void on_block_event(epode_blocking_t *b, epode_blocking_event_t ev, const char *const *jids,
                           size_t n, void *user)
{
    (void)b, (void)user;
    printf("blocking event %s", ev_name(ev));
    for (size_t i = 0; i < n; i++)
        printf(" %s", jids[i]);
    printf("\n");
    fflush(stdout);
    if (ev == EPODE_BLOCKING_LOADED && !P.started)
        P.started = 1; /* on_tick goes on */
}

static void print_list(const char *what)
{
    printf("blocking list after %s:", what);
    for (size_t i = 0; i < epode_blocking_count(P.blocking); i++)
        printf(" %s", epode_blocking_at(P.blocking, i));
    printf("\n");
    fflush(stdout);
}

static void on_block_result(epode_blocking_t *b, int status, epode_stanza_cond_t cond, void *user)
{
    (void)b;
    const char *what = user;
    printf("blocking result %s status=%d cond=%s\n", what, status, nz(epode_stanza_cond_name(cond)));
    print_list(what);
    if (status < 0 || cond != EPODE_COND_NONE) {
        finish(1, "a blocking request failed");
        return;
    }
    P.step++;
}

/* ---- csi --------------------------------------------------------------------- */

static void on_csi_ping(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn, (void)res;
    printf("csi ping %s status=%d\n", (const char *)user, status);
    fflush(stdout);
    if (status < 0)
        finish(1, "ping failed");
    else
        P.step++;
}

static void csi_ping(const char *what)
{
    epode_stanza_t *iq;
    if (epode_stanza_new_iq(NULL, "get", NULL, &iq) == 0) {
        const char *me = epode_conn_bound_jid(P.conn[A]);
        const char *at = strchr(me, '@');
        char dom[256];
        snprintf(dom, sizeof dom, "%.*s", (int)strcspn(at + 1, "/"), at + 1);
        epode_stanza_set_to(iq, dom);
        epode_stanza_add_child_new(iq, "ping", "urn:xmpp:ping", NULL);
        if (epode_conn_send_iq(P.conn[A], iq, 5000, on_csi_ping, (void *)what, NULL) < 0)
            finish(1, "could not ping");
        epode_stanza_unref(iq);
    }
}

/* ---- mam --------------------------------------------------------------------- */

static const char *mam_tag = "mam";

static void on_mam_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam, (void)user;
    char stamp[EPODE_TIME_BUFSIZE] = "-";
    long long ms;
    if (epode_message_delay(m, &ms, NULL, NULL) == 0)
        epode_time_format(ms, stamp, sizeof stamp);
    const char *id = epode_message_archive_id(m);
    if (!strcmp(mam_tag, "mam") && P.nids < 64)
        snprintf(P.ids[P.nids++], sizeof P.ids[0], "%s", id);
    printf("%s %s %s %s ", mam_tag, id, stamp, nz(epode_message_from(m)));
    esc_print(nz(epode_message_body(m, NULL)));
    printf("\n");
    fflush(stdout);
}

static char page_last[128], page_first[128];
static int mam_pending, mam_complete, mam_phase;

static void on_mam_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                        const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam, (void)user;
    printf("%s page status=%d cond=%s results=%zu complete=%d count=%ld first=%s last=%s\n",
           mam_tag, status, nz(epode_stanza_cond_name(cond)), results, complete, count, nz(first),
           nz(last));
    fflush(stdout);
    if (status < 0 || cond != EPODE_COND_NONE) {
        finish(1, "an archive query failed");
        return;
    }
    snprintf(page_last, sizeof page_last, "%s", last ? last : "");
    snprintf(page_first, sizeof page_first, "%s", first ? first : "");
    mam_complete = complete || results == 0;
    mam_pending = 0;
}

static int mam_fetch(const char *with, long long start, unsigned max, const char *after,
                     const char *before)
{
    epode_mam_query_t *q;
    int rc = epode_mam_query_new(NULL, &q);
    if (rc == 0 && with)
        rc = epode_mam_query_set_with(q, with);
    if (rc == 0 && start != EPODE_MAM_NO_TIME)
        rc = epode_mam_query_set_start(q, start);
    if (rc == 0)
        rc = epode_mam_query_set_page(q, max, after, before);
    if (rc == 0)
        rc = epode_mam_fetch(P.mam, q, on_mam_result, on_mam_done, NULL, NULL);
    epode_mam_query_free(q);
    if (rc < 0)
        finish(1, "could not query");
    return rc;
}

static char bare_c[512], bare_a[512];

static void mam_steps(void)
{
    /* step 0: C sends; A counts what arrives; then pages */
    if (P.step == 0 && !P.started) {
        P.started = 1;
        for (long i = 1; i <= P.count; i++) {
            char body[64];
            epode_stanza_t *m;
            snprintf(body, sizeof body, "archived %ld", i);
            if (epode_message_build("chat", epode_conn_bound_jid(P.conn[A]), body, NULL, NULL,
                                    &m) == 0) {
                epode_conn_send(P.conn[C], m);
                epode_stanza_unref(m);
            }
        }
        return;
    }
    if (P.got < P.count || mam_pending)
        return;
    mam_pending = 1;
    switch (mam_phase) {
    case 0: /* the first page forwards, two at a time, with C */
        mam_phase = 1;
        mam_fetch(bare_c, EPODE_MAM_NO_TIME, 2, NULL, NULL);
        break;
    case 1: /* the next page forwards, until complete */
        if (!mam_complete) {
            mam_fetch(bare_c, EPODE_MAM_NO_TIME, 2, page_last, NULL);
            break;
        }
        mam_phase = 2;
        mam_tag = "mam last";
        mam_fetch(bare_c, EPODE_MAM_NO_TIME, 2, NULL, "");
        break;
    case 2:
        mam_phase = 3;
        mam_tag = "mam catchup";
        if (P.nids < 2 || epode_mam_catch_up(P.mam, P.ids[1], 2, on_mam_result, on_mam_done, NULL,
                                            NULL) < 0)
            finish(1, "could not catch up");
        break;
    case 3:
        mam_phase = 4;
        mam_tag = "mam future";
        mam_fetch(bare_c, ((long long)time(NULL) + 3600) * 1000, 10, NULL, NULL);
        break;
    default:
        finish(0, "");
    }
}

static int on_count(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn, (void)user;
    if (epode_message_body(m, NULL))
        P.got++;
    return EPODE_PASS;
}

/* ---- catch-up after a session that could not be resumed ------------------------ */

static void on_catch_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam, (void)user;
    printf("catchup %s\n", nz(epode_message_body(m, NULL)));
    fflush(stdout);
}

static void on_catch_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond,
                          const char *first, const char *last, int complete, long count,
                          size_t results, void *user)
{
    (void)mam, (void)user, (void)first, (void)last, (void)count;
    printf("catchup done status=%d cond=%s results=%zu complete=%d\n", status,
           nz(epode_stanza_cond_name(cond)), results, complete);
    fflush(stdout);
    finish(status < 0 || cond != EPODE_COND_NONE, "the catch-up failed");
}

static int on_catch_msg(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn, (void)user;
    const char *body = epode_message_body(m, NULL);
    if (!body || P.cut || strcmp(body, "before the cut") != 0)
        return EPODE_PASS;
    const char *sid = epode_message_stanza_id(m);
    printf("live stanza-id %s\n", nz(sid));
    fflush(stdout);
    if (!sid) {
        finish(1, "no trusted stanza-id on the live message");
        return EPODE_PASS;
    }
    snprintf(P.last_id, sizeof P.last_id, "%s", sid);
    P.cut = 1;
    epode_conn_close(P.conn[A]); /* the session ends: the next one is fresh */
    return EPODE_PASS;
}

/* ---- room archive ------------------------------------------------------------ */

static void on_room_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam, (void)user;
    char stamp[EPODE_TIME_BUFSIZE] = "-";
    long long ms;
    if (epode_message_delay(m, &ms, NULL, NULL) == 0)
        epode_time_format(ms, stamp, sizeof stamp);
    printf("room %s %s %s %s\n", nz(epode_message_archive_id(m)), stamp, nz(epode_message_from(m)),
           nz(epode_message_body(m, NULL)));
    if (!P.room_from[0] && epode_message_from(m))
        snprintf(P.room_from, sizeof P.room_from, "%s", epode_message_from(m));
    fflush(stdout);
}

static void on_room_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                         const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam, (void)user, (void)first, (void)last, (void)count;
    printf("room page status=%d cond=%s results=%zu complete=%d\n", status,
           nz(epode_stanza_cond_name(cond)), results, complete);
    fflush(stdout);
    if (status < 0 || cond != EPODE_COND_NONE || results < 3) {
        finish(1, "the room archive query failed");
        return;
    }
    /* a correction from the same occupant, checked as a receiver would */
    char xml[1024];
    snprintf(xml, sizeof xml, "<message xmlns='jabber:client' from='%s' type='groupchat'><body>x"
             "</body><replace xmlns='urn:xmpp:message-correct:0' id='r1'/></message>", P.room_from);
    epode_stanza_t *st;
    epode_message_t *v;
    if (epode_stanza_from_text(NULL, xml, (size_t)-1, &st, NULL) == 0) {
        if (epode_message_view_new(NULL, st, &v) == 0) {
            printf("room same=%d\n", epode_message_same_sender(v, P.room_from, NULL,
                                                                EPODE_SENDER_AUTO));
            epode_message_view_free(v);
        }
        epode_stanza_unref(st);
    }
    if (P.hold_ticks) {
        printf("room holding\n"); /* the room stays while another client reads it */
        fflush(stdout);
        return;
    }
    finish(0, "");
}

static void on_muc(epode_conn_t *conn, const epode_muc_event_t *ev, void *user)
{
    (void)conn, (void)user;
    if (ev->type == EPODE_MUC_JOINED) {
        printf("room joined created=%d\n", ev->created);
        fflush(stdout);
        for (int i = 1; i <= 3; i++) {
            char body[64];
            snprintf(body, sizeof body, "room archived %d", i);
            epode_muc_send(ev->room, body);
        }
    } else if (ev->type == EPODE_MUC_MESSAGE && ev->is_self && !ev->is_history) {
        if (++P.got == 3) {
            epode_mam_query_t *q;
            if (epode_mam_query_new(NULL, &q) < 0 || epode_mam_query_set_archive(q, P.room) < 0 ||
                epode_mam_fetch(P.mam, q, on_room_result, on_room_done, NULL, NULL) < 0)
                finish(1, "could not ask the room archive");
            epode_mam_query_free(q);
        }
    } else if (ev->type == EPODE_MUC_ERROR && ev->fatal) {
        finish(1, "could not join the room");
    }
}

/* ---- the scenario ----------------------------------------------------------- */

static int on_tick(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    if (P.finished)
        return 0;
    if (P.reconnect_at && --P.reconnect_at == 0 && epode_conn_connect(P.conn[A]) < 0)
        finish(1, "could not connect again");
    if (P.hold_ticks && P.got >= 3 && P.room_from[0] && --P.hold_ticks == 0)
        finish(0, "");
    for (int i = 0; i < N; i++)
        if (P.used[i] && !P.ready[i])
            return 1;
    if (!strcmp(P.mode, "features")) {
        if (!P.started) {
            P.started = 1;
            send_features();
        }
    } else if (!strcmp(P.mode, "catchup")) {
        if (!P.started) {
            P.started = 1;
            epode_stanza_t *m;
            if (epode_message_build("chat", epode_conn_bound_jid(P.conn[A]), "before the cut",
                                    NULL, NULL, &m) == 0) {
                epode_conn_send(P.conn[C], m);
                epode_stanza_unref(m);
            }
        }
    } else if (!strcmp(P.mode, "hostile")) {
        /* C's message first; once A has it, M tries to change it */
        const char *to = epode_conn_bound_jid(P.conn[A]);
        epode_stanza_t *m = NULL;
        if (!P.started) {
            P.started = 1;
            P.count = 4;
            if (epode_message_build("chat", to, "the original", NULL, NULL, &m) == 0) {
                epode_stanza_set_id(m, "orig-1");
                send_built_by(C, m);
            }
        } else if (P.got == 1 && P.step == 0) {
            P.step = 1;
            if (epode_message_build("chat", to, "forged words", NULL, NULL, &m) == 0 &&
                epode_message_set_replace(m, "orig-1") == 0)
                send_built_by(M, m);
            m = NULL;
            if (epode_message_build_retraction("chat", to, "orig-1", &m) == 0)
                send_built_by(M, m);
            m = NULL;
            /* and C's own correction, which stands */
            if (epode_message_build("chat", to, "the correction", NULL, NULL, &m) == 0 &&
                epode_message_set_replace(m, "orig-1") == 0)
                send_built_by(C, m);
        }
    } else if (!strcmp(P.mode, "blocking")) {
        static int asked = -1;
        if (!P.started || asked == P.step)
            return 1;
        asked = P.step;
        const char *one[] = {bare_c};
        const char *two[] = {"spammer@example.invalid", "spam.example.invalid"};
        int rc = 0;
        switch (P.step) {
        case 0: rc = epode_blocking_block(P.blocking, one, 1, on_block_result, "block"); break;
        case 1:
            printf("blocking is_blocked %d\n", epode_blocking_is_blocked(P.blocking, bare_c));
            rc = epode_blocking_unblock(P.blocking, one, 1, on_block_result, "unblock");
            break;
        case 2: rc = epode_blocking_block(P.blocking, two, 2, on_block_result, "block2"); break;
        case 3: rc = epode_blocking_unblock_all(P.blocking, on_block_result, "unblock-all"); break;
        case 4: rc = epode_blocking_fetch(P.blocking, on_block_result, "fetch"); break;
        default: finish(0, ""); break;
        }
        if (rc < 0)
            finish(1, "could not send a blocking request");
    } else if (!strcmp(P.mode, "csi")) {
        static int asked = -1;
        if (asked == P.step)
            return 1;
        asked = P.step;
        if (P.step == 0) {
            printf("csi supported=%d\n", epode_csi_supported(P.csi));
            if (epode_csi_set_active(P.csi, 0) < 0)
                finish(1, "could not set inactive");
            csi_ping("inactive");
        } else if (P.step == 1) {
            if (epode_csi_set_active(P.csi, 1) < 0)
                finish(1, "could not set active");
            csi_ping("active");
        } else {
            finish(0, "");
        }
    } else if (!strcmp(P.mode, "mam")) {
        mam_steps();
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
    if (ev == EPODE_CONN_READY && i == A && P.cut) {
        printf("ready again %s\n", epode_conn_bound_jid(conn));
        fflush(stdout);
        if (epode_mam_catch_up(P.mam, P.last_id, 2, on_catch_result, on_catch_done, NULL, NULL) < 0)
            finish(1, "could not catch up");
        return;
    }
    if (ev == EPODE_CONN_DISCONNECTED && i == A && P.cut && !P.reconnect_at && !P.finished) {
        /* while A is away, C writes; A comes back in a second */
        for (int k = 1; k <= 3; k++) {
            char body[64];
            epode_stanza_t *m;
            snprintf(body, sizeof body, "while away %d", k);
            if (epode_message_build("chat", bare_a, body, NULL, NULL, &m) == 0) {
                epode_conn_send(P.conn[C], m);
                epode_stanza_unref(m);
            }
        }
        P.reconnect_at = 10;
        return;
    }
    if (ev == EPODE_CONN_READY) {
        P.ready[i] = 1;
        printf("ready %c %s\n", "ACM"[i], epode_conn_bound_jid(conn));
        fflush(stdout);
        if (i == C)
            snprintf(bare_c, sizeof bare_c, "%.*s", (int)strcspn(epode_conn_bound_jid(conn), "/"),
                     epode_conn_bound_jid(conn));
        if (i == A)
            snprintf(bare_a, sizeof bare_a, "%.*s", (int)strcspn(epode_conn_bound_jid(conn), "/"),
                     epode_conn_bound_jid(conn));
        epode_stanza_t *pres;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &pres) == 0) {
            epode_conn_send(conn, pres);
            epode_stanza_unref(pres);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        P.closed[i] = 1;
        if (!P.finished)
            finish(1, epode_conn_error_text(conn));
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
               *pw2 = NULL, *jid3 = NULL, *pw3 = NULL;
    unsigned port = 5222;
    P.mode = "features";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid1")) jid1 = v;
        else if (!strcmp(k, "--password1")) pw1 = v;
        else if (!strcmp(k, "--jid2")) jid2 = v;
        else if (!strcmp(k, "--password2")) pw2 = v;
        else if (!strcmp(k, "--jid3")) jid3 = v;
        else if (!strcmp(k, "--password3")) pw3 = v;
        else if (!strcmp(k, "--mode")) P.mode = v;
        else if (!strcmp(k, "--count")) P.count = atol(v);
        else if (!strcmp(k, "--room")) P.room = v;
        else if (!strcmp(k, "--hold")) P.hold_ticks = atoi(v) * 10;
        else {
            fprintf(stderr, "im_modern_probe: unknown option %s\n", k);
            return 64;
        }
    }
    int two = strcmp(P.mode, "recv") != 0 && strcmp(P.mode, "csi") != 0 &&
              strcmp(P.mode, "mam-room") != 0;
    if (!jid1 || !pw1 || (two && (!jid2 || !pw2))) {
        fprintf(stderr, "im_modern_probe: need --jid1 --password1 (--jid2 --password2)\n");
        return 64;
    }
    if (!strcmp(P.mode, "mam") && P.count <= 0)
        P.count = 5;
    P.used[A] = 1;
    P.used[C] = two;
    P.used[M] = !strcmp(P.mode, "hostile");
    if (P.used[M] && (!jid3 || !pw3)) {
        fprintf(stderr, "im_modern_probe: hostile needs --jid3 --password3\n");
        return 64;
    }
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &P.ctx) < 0)
        return 1;
    for (int i = 0; i < N; i++) {
        if (!P.used[i])
            continue;
        char full[512];
        snprintf(full, sizeof full, "%s/%c", i == C ? jid2 : i == M ? jid3 : jid1, "ACM"[i]);
        if (epode_conn_new(P.ctx, &P.conn[i]) < 0 || epode_conn_set_jid(P.conn[i], full) < 0 ||
            epode_conn_set_password(P.conn[i], i == C ? pw2 : i == M ? pw3 : pw1) < 0 ||
            epode_conn_set_server(P.conn[i], server, port) < 0 ||
            (ca && epode_conn_set_ca_file(P.conn[i], ca) < 0) ||
            epode_conn_add_event_cb(P.conn[i], on_event, (void *)(long)i, NULL) < 0 ||
            epode_messaging_new(P.conn[i], &P.msg[i]) < 0) {
            fprintf(stderr, "im_modern_probe: set-up failed\n");
            return 1;
        }
    }
    int rc = 0;
    if (!strcmp(P.mode, "features") || !strcmp(P.mode, "recv") || !strcmp(P.mode, "hostile"))
        rc = epode_messaging_handler_add(P.msg[A], NULL, on_message, NULL, NULL);
    else if (!strcmp(P.mode, "blocking"))
        rc = epode_blocking_new(P.conn[A], on_block_event, NULL, &P.blocking);
    else if (!strcmp(P.mode, "csi"))
        rc = epode_csi_new(P.conn[A], &P.csi);
    else if (!strcmp(P.mode, "mam")) {
        rc = epode_mam_new(P.conn[A], &P.mam);
        if (rc == 0)
            rc = epode_messaging_handler_add(P.msg[A], "chat", on_count, NULL, NULL);
    } else if (!strcmp(P.mode, "catchup")) {
        rc = epode_mam_new(P.conn[A], &P.mam);
        if (rc == 0)
            rc = epode_messaging_handler_add(P.msg[A], "chat", on_catch_msg, NULL, NULL);
    } else if (!strcmp(P.mode, "mam-room") && P.room) {
        rc = epode_mam_new(P.conn[A], &P.mam);
        if (rc == 0)
            rc = epode_muc_new(P.conn[A], on_muc, NULL, &P.muc);
        if (rc == 0)
            rc = epode_muc_join(P.muc, P.room, "alice", NULL, 0, -1, NULL);
    } else {
        fprintf(stderr, "im_modern_probe: unknown mode %s (mam-room needs --room)\n", P.mode);
        return 64;
    }
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[A], 100, on_tick, NULL, NULL);
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[A], 25000, on_timeout, NULL, NULL);
    for (int i = 0; i < N && rc == 0; i++)
        if (P.used[i])
            rc = epode_conn_connect(P.conn[i]);
    if (rc < 0) {
        fprintf(stderr, "im_modern_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(P.ctx);
    epode_blocking_free(P.blocking);
    epode_csi_free(P.csi);
    epode_mam_free(P.mam);
    epode_muc_free(P.muc);
    for (int i = 0; i < N; i++) {
        epode_messaging_free(P.msg[i]);
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
