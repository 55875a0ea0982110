/* tests/integration/im_pep_probe.c — the PEP family against real servers
 * (public API only): nickname, avatar and bookmarks between two accounts.
 *
 *   im_pep_probe --server H --port N --ca-file F --jid1 J --password1 P
 *                [--jid2 J --password2 P] [--peer JID] --mode MODE
 *
 * Every connection has disco, caps, pubsub and a presence tracker that
 * approves subscriptions and asks back (so PEP notifications can flow).
 * pep: A (account 1, resource A) and C (account 2) subscribe to each
 *   other; B is account 1 again (resource B). A publishes its nick, an
 *   avatar and a bookmark. C prints "nick FROM NICK SOURCE" and
 *   "avatar FROM ID SOURCE" for what it learns (PEP notifications
 *   through +notify, then the XEP-0153 hash in A's next presence), and
 *   fetches the avatar ("avatar-fetch status=S len=N match=M type=T").
 *   B prints "bookmark EVENT ROOM autojoin=A nick=N" for the notifications
 *   about A's (its own account's) bookmarks and, with autojoin set on its
 *   MUC helper, joins the room ("muc B joined ROOM as NICK"); A removes
 *   the bookmark; B fetches the list again ("bookmarks loaded count=N").
 * slix: only A; it subscribes to --peer (a slixmpp client that approves,
 *   subscribes back and then publishes its nick and an avatar), prints
 *   what it learns as above, fetches the avatar and the nick node
 *   ("nick-fetch NICK"), then sends the peer a "done" message.
 * service: A and C on a pubsub service (--service JID): A publishes a
 *   first item (the node is made), C subscribes ("subscribe STATE"), A
 *   publishes a second ("event C published FROM NODE ID PAYLOAD"), C
 *   fetches ("items N"), unsubscribes, and A deletes the node ("deleted").
 * Ends with "OK" (exit 0) or "FAILED reason" (exit 1). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A, B, C, N };

typedef struct side {
    epode_conn_t *conn;
    epode_disco_t *disco;
    epode_caps_t *caps;
    epode_pubsub_t *ps;
    epode_presence_tracker_t *pt;
    epode_roster_t *roster; /* subscription requests go to resources that asked for it */
    epode_avatar_t *av;
    epode_nickname_t *nick;
    epode_bookmarks_t *bm;
    epode_muc_t *muc; /* B: autojoin through it */
    int used, ready, closed, approved;
    char bare[512];
} side;

static struct {
    const char *mode, *peer, *service;
    int svc_step, svc_event;
    epode_ctx_t *ctx;
    side s[N];
    int step, ticks, wait_until;
    int nick_pep, avatar_pep, avatar_vcard, fetched, nick_fetched, bm_added, bm_removed, loaded;
    int autojoined;
    char avatar_id[64];
    unsigned char png[300];
    int finished, failed;
    char why[256];
} P;

static void finish(int failed, const char *why)
{
    if (P.finished)
        return;
    P.finished = 1;
    P.failed = failed;
    snprintf(P.why, sizeof P.why, "%s", why);
    for (int i = 0; i < N; i++)
        if (P.s[i].used && !P.s[i].closed)
            epode_conn_close(P.s[i].conn);
}

static int side_of_conn(epode_conn_t *conn)
{
    for (int i = 0; i < N; i++)
        if (P.s[i].conn == conn)
            return i;
    return -1;
}

/* ---- what C (or A in slix mode) learns ------------------------------------------- */

static void on_nick(epode_nickname_t *n, const char *jid, const char *nick,
                    epode_nickname_source_t source, void *user)
{
    (void)n;
    long who = (long)user;
    printf("nick %c %s %s %s\n", "ABC"[who], jid, nick, epode_nickname_source_name(source));
    fflush(stdout);
    if (source == EPODE_NICKNAME_PEP && strcmp(nick, "") != 0)
        P.nick_pep = 1;
}

static void on_fetched(epode_avatar_t *av, int status, epode_stanza_cond_t cond, const char *jid,
                       const unsigned char *data, size_t len, const char *id, const char *type,
                       void *user)
{
    (void)av, (void)jid, (void)user;
    int match = data && len == sizeof P.png && memcmp(data, P.png, len) == 0;
    printf("avatar-fetch status=%s cond=%s len=%zu match=%d id=%s type=%s\n",
           status ? epode_err_name(status) : "0", epode_stanza_cond_name(cond) ? epode_stanza_cond_name(cond) : "-",
           len, match, id ? id : "-", type ? type : "-");
    fflush(stdout);
    P.fetched = data ? 1 : -1;
}

static void on_avatar(epode_avatar_t *av, const char *jid, const char *id, const char *type,
                      epode_avatar_source_t source, void *user)
{
    (void)type;
    long who = (long)user;
    printf("avatar %c %s %s %s\n", "ABC"[who], jid, id ? (*id ? id : "none") : "unknown",
           epode_avatar_source_name(source));
    fflush(stdout);
    int from_peer = P.peer ? epode_jid_str_equal(jid, P.peer, 1) == 1
                           : epode_jid_str_equal(jid, P.s[A].bare, 1) == 1;
    if (!from_peer || !id || !*id || (!P.peer && who != C))
        return;
    if (source == EPODE_AVATAR_VCARD) {
        P.avatar_vcard = 1;
        return;
    }
    if (!P.avatar_pep) {
        P.avatar_pep = 1;
        snprintf(P.avatar_id, sizeof P.avatar_id, "%s", id);
        char bare[512];
        snprintf(bare, sizeof bare, "%.*s", (int)strcspn(jid, "/"), jid);
        if (epode_avatar_fetch(av, bare, on_fetched, NULL) < 0)
            finish(1, "avatar fetch refused");
    }
}

static void on_bookmark(epode_bookmarks_t *b, epode_bookmarks_event_t ev, const epode_bookmark_t *bm,
                        void *user)
{
    long who = (long)user;
    if (ev == EPODE_BOOKMARKS_LOADED) {
        printf("bookmarks %c loaded count=%zu\n", "ABC"[who], epode_bookmarks_count(b));
        if (who == B && P.bm_removed)
            P.loaded = 1;
    } else {
        printf("bookmark %c %s %s autojoin=%d nick=%s name=%s\n", "ABC"[who], epode_bookmarks_event_name(ev),
               bm ? epode_bookmark_room(bm) : "-", bm ? epode_bookmark_autojoin(bm) : 0,
               bm && epode_bookmark_nick(bm) ? epode_bookmark_nick(bm) : "-",
               bm && epode_bookmark_name(bm) ? epode_bookmark_name(bm) : "-");
        if (who == B && ev == EPODE_BOOKMARKS_ADDED)
            P.bm_added = 1;
        if (who == B && ev == EPODE_BOOKMARKS_REMOVED)
            P.bm_removed = 1;
    }
    fflush(stdout);
}

static void on_muc(epode_conn_t *conn, const epode_muc_event_t *ev, void *user)
{
    (void)conn, (void)user;
    if (ev->type == EPODE_MUC_JOINED) {
        printf("muc B joined %s as %s\n", epode_muc_room_jid(ev->room), epode_muc_room_nick(ev->room));
        fflush(stdout);
        P.autojoined = 1;
    } else if (ev->type == EPODE_MUC_ERROR) {
        printf("muc B error %s\n", epode_stanza_cond_name(ev->cond) ? epode_stanza_cond_name(ev->cond) : "-");
        fflush(stdout);
    }
}

/* ---- what A does ------------------------------------------------------------------ */

static void on_set(epode_nickname_t *n, int status, epode_stanza_cond_t cond, epode_pubsub_error_t perr,
                   void *user)
{
    (void)n, (void)user;
    printf("nick-set status=%d cond=%s perr=%s\n", status, epode_stanza_cond_name(cond) ? epode_stanza_cond_name(cond) : "-",
           epode_pubsub_error_name(perr));
    fflush(stdout);
    if (status || cond)
        finish(1, "nick publish failed");
}

static void on_published(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                         epode_pubsub_error_t perr, const char *id, void *user)
{
    (void)av, (void)user;
    printf("avatar-publish status=%d cond=%s perr=%s id=%s\n", status,
           epode_stanza_cond_name(cond) ? epode_stanza_cond_name(cond) : "-",
           epode_pubsub_error_name(perr), id ? id : "-");
    fflush(stdout);
    if (status || cond)
        finish(1, "avatar publish failed");
}

static void on_bm_result(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                         epode_pubsub_error_t perr, void *user)
{
    (void)user;
    printf("bookmark-request status=%d cond=%s perr=%s count=%zu\n", status,
           epode_stanza_cond_name(cond) ? epode_stanza_cond_name(cond) : "-",
           epode_pubsub_error_name(perr), epode_bookmarks_count(b));
    fflush(stdout);
    if (status || cond)
        finish(1, "bookmark request failed");
}

static void on_nick_items(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps, (void)user;
    const epode_pubsub_item_t *it = epode_pubsub_reply_item_at(r, 0);
    const char *nick = it ? epode_nickname_from_stanza(epode_stanza_get_parent(epode_pubsub_item_payload(it)))
                          : NULL;
    printf("nick-fetch ok=%d %s\n", epode_pubsub_reply_ok(r), nick ? nick : "-");
    fflush(stdout);
    P.nick_fetched = nick ? 1 : -1;
}

/* ---- a pubsub service ------------------------------------------------------------ */

#define SVC_NODE "epode-news"

static void on_svc_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                         const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                         void *user)
{
    (void)ps, (void)msg, (void)user;
    epode_stanza_t *p = item ? epode_pubsub_item_payload(item) : NULL;
    printf("event C %s %s %s %s %s\n", epode_pubsub_event_type_name(type), from ? from : "-", node,
           item && epode_pubsub_item_id(item) ? epode_pubsub_item_id(item) : "-",
           p && epode_stanza_get_text(p) ? epode_stanza_get_text(p) : "-");
    fflush(stdout);
    if (type == EPODE_PUBSUB_PUBLISHED && item && epode_pubsub_item_id(item) &&
        strcmp(epode_pubsub_item_id(item), "second") == 0)
        P.svc_event = 1;
}

static void on_svc_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    const char *what = user;
    if (!epode_pubsub_reply_ok(r)) {
        char why[256];
        snprintf(why, sizeof why, "%s: status=%d cond=%s perr=%s", what, epode_pubsub_reply_status(r),
                 epode_stanza_cond_name(epode_pubsub_reply_cond(r)) ? epode_stanza_cond_name(epode_pubsub_reply_cond(r)) : "-",
                 epode_pubsub_error_name(epode_pubsub_reply_pubsub_error(r)));
        finish(1, why);
        return;
    }
    if (strcmp(what, "subscribe") == 0)
        printf("subscribe %s\n", epode_pubsub_reply_subscription(r) ? epode_pubsub_reply_subscription(r) : "-");
    else if (strcmp(what, "fetch") == 0)
        printf("items %zu\n", epode_pubsub_reply_item_count(r));
    else if (strcmp(what, "delete") == 0)
        printf("deleted\n");
    fflush(stdout);
    P.svc_step++;
}

static int svc_publish(const char *id, const char *text)
{
    epode_stanza_t *p;
    epode_form_t *opts;
    int rc = epode_stanza_new(NULL, "entry", "urn:example:news", &p);
    if (rc == 0 && (rc = epode_stanza_set_text(p, text)) == 0 &&
        (rc = epode_pubsub_options_new(NULL, &opts)) == 0) {
        epode_form_set_value(opts, "pubsub#access_model", "open");
        rc = epode_pubsub_publish(P.s[A].ps, P.service, SVC_NODE, id, p, opts, on_svc_reply,
                                  (void *)"publish", NULL);
        epode_form_free(opts);
    }
    epode_stanza_unref(p);
    return rc;
}

/* One step of the service mode per completed request. */
static void svc_tick(void)
{
    static int started = -1;
    if (started == P.svc_step)
        return; /* the last request is still out */
    int rc = 0;
    switch (P.svc_step) {
    case 0: rc = svc_publish("first", "one"); break;
    case 1:
        rc = epode_pubsub_subscribe(P.s[C].ps, P.service, SVC_NODE, on_svc_reply,
                                    (void *)"subscribe", NULL);
        break;
    case 2: rc = svc_publish("second", "two"); break;
    case 3:
        if (!P.svc_event)
            return; /* the notification first */
        rc = epode_pubsub_fetch(P.s[C].ps, P.service, SVC_NODE, NULL, 0, on_svc_reply,
                                (void *)"fetch", NULL);
        break;
    case 4:
        rc = epode_pubsub_unsubscribe(P.s[C].ps, P.service, SVC_NODE, NULL, on_svc_reply,
                                      (void *)"unsubscribe", NULL);
        break;
    case 5:
        rc = epode_pubsub_delete_node(P.s[A].ps, P.service, SVC_NODE, on_svc_reply,
                                      (void *)"delete", NULL);
        break;
    default: finish(0, ""); return;
    }
    started = P.svc_step;
    if (rc < 0)
        finish(1, "a service request was refused");
}

static int on_sub(epode_conn_t *conn, const char *from, epode_subscription_t what,
                  const char *status, void *user)
{
    (void)status, (void)user;
    int i = side_of_conn(conn);
    if (i >= 0 && what == EPODE_SUB_APPROVED) {
        P.s[i].approved = 1;
        printf("approved %c %s\n", "ABC"[i], from);
        fflush(stdout);
    }
    return EPODE_SUB_DEFER; /* the MUTUAL policy answers */
}

static int send_presence(side *s)
{
    return epode_presence_send(s->conn, EPODE_SHOW_AVAILABLE, NULL, 0);
}

static int on_tick(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    if (P.finished)
        return 0;
    P.ticks++;
    int slix = P.peer != NULL;
    for (int i = 0; i < N; i++)
        if (P.s[i].used && !P.s[i].ready)
            return 1;
    if (P.service) {
        svc_tick();
        return 1;
    }
    switch (P.step) {
    case 0: /* everyone ready: A asks C (or the peer) for a subscription */
        if (epode_presence_subscribe(P.s[A].conn, slix ? P.peer : P.s[C].bare, NULL) < 0)
            finish(1, "subscribe refused");
        P.step = 1;
        break;
    case 1: /* both ways approved */
        if (P.s[A].approved && (slix || P.s[C].approved)) {
            /* presence again, now that each may see the other's (ejabberd
             * notifies the contacts its session has sent presence to) */
            for (int i = 0; i < N; i++)
                if (P.s[i].used)
                    send_presence(&P.s[i]);
            P.wait_until = P.ticks + 15;
            P.step = 2;
        }
        break;
    case 2: /* let presences (with caps) settle, then publish */
        if (P.ticks < P.wait_until)
            break;
        if (slix) {
            P.step = 10;
            break;
        }
        if (epode_nickname_set(P.s[A].nick, "Alice Pep", on_set, NULL) < 0 ||
            epode_avatar_publish(P.s[A].av, P.png, sizeof P.png, "image/png", 1, 1, on_published, NULL) < 0 ||
            epode_bookmarks_add(P.s[A].bm, "pep-room@conference.localhost", "The PEP Room", 1, "alice", NULL,
                                on_bm_result, NULL) < 0)
            finish(1, "publish refused");
        P.step = 3;
        break;
    case 3: /* C learnt nick and avatar, B the bookmark: A's presence, then removal */
        if (P.nick_pep && P.fetched && P.bm_added && P.autojoined) {
            if (P.fetched < 0) {
                finish(1, "avatar fetch failed");
                break;
            }
            send_presence(&P.s[A]);
            if (epode_bookmarks_remove(P.s[A].bm, "pep-room@conference.localhost", on_bm_result, NULL) < 0)
                finish(1, "remove refused");
            P.wait_until = P.ticks + 40;
            P.step = 4;
        }
        break;
    case 4: /* ejabberd 23.01 notifies no retraction here: B's fetch tells then */
        if (P.avatar_vcard && !P.bm_removed && P.ticks >= P.wait_until) {
            printf("bookmark B no-removal-notification\n");
            fflush(stdout);
            P.bm_removed = 1;
        }
        if (P.bm_removed && P.avatar_vcard) {
            if (epode_bookmarks_fetch(P.s[B].bm, NULL, NULL) < 0)
                finish(1, "fetch refused");
            P.step = 5;
        }
        break;
    case 5:
        if (P.loaded)
            finish(0, "");
        break;
    case 10: /* slix: the peer's nick and avatar arrive */
        if (P.nick_pep && P.fetched) {
            if (P.fetched < 0) {
                finish(1, "avatar fetch failed");
                break;
            }
            if (epode_pubsub_fetch(P.s[A].ps, P.peer, EPODE_NS_NICK, NULL, 1, on_nick_items, NULL, NULL) < 0)
                finish(1, "nick fetch refused");
            P.step = 11;
        }
        break;
    case 11:
        if (P.nick_fetched) {
            epode_stanza_t *m;
            if (epode_message_build("chat", P.peer, "done", NULL, NULL, &m) == 0) {
                epode_conn_send(P.s[A].conn, m);
                epode_stanza_unref(m);
            }
            P.wait_until = P.ticks + 5;
            P.step = 12;
        }
        break;
    case 12:
        if (P.ticks >= P.wait_until)
            finish(P.nick_fetched < 0, P.nick_fetched < 0 ? "nick fetch failed" : "");
        break;
    }
    return 1;
}

static int on_timeout(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    char why[128];
    snprintf(why, sizeof why, "timed out at step %d", P.step);
    finish(1, why);
    return 0;
}

/* EPODE_PROBE_LOG=1 in the environment: the XML traffic on stderr. */
static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user, (void)level;
    fprintf(stderr, "%s %s\n", area, msg);
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    int i = (int)(long)user;
    side *s = &P.s[i];
    if (ev == EPODE_CONN_READY) {
        s->ready = 1;
        const char *me = epode_conn_bound_jid(conn);
        snprintf(s->bare, sizeof s->bare, "%.*s", (int)strcspn(me, "/"), me);
        printf("ready %c %s\n", "ABC"[i], me);
        fflush(stdout);
        send_presence(s);
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        s->closed = 1;
        if (!P.finished)
            finish(1, epode_conn_error_text(conn));
        int all = 1;
        for (int k = 0; k < N; k++)
            if (P.s[k].used && !P.s[k].closed)
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
    P.mode = "pep";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid1")) jid1 = v;
        else if (!strcmp(k, "--password1")) pw1 = v;
        else if (!strcmp(k, "--jid2")) jid2 = v;
        else if (!strcmp(k, "--password2")) pw2 = v;
        else if (!strcmp(k, "--peer")) P.peer = v;
        else if (!strcmp(k, "--service")) P.service = v;
        else if (!strcmp(k, "--mode")) P.mode = v;
        else {
            fprintf(stderr, "im_pep_probe: unknown option %s\n", k);
            return 64;
        }
    }
    int pep = strcmp(P.mode, "pep") == 0, svc = strcmp(P.mode, "service") == 0;
    if (!jid1 || !pw1 || ((pep || svc) && (!jid2 || !pw2)) || (svc && !P.service) ||
        (!pep && !svc && (strcmp(P.mode, "slix") || !P.peer))) {
        fprintf(stderr, "im_pep_probe: need --jid1 --password1 and --jid2/--password2 (pep), "
                        "--service too (service) or --peer (slix)\n");
        return 64;
    }
    if (pep || svc)
        P.peer = NULL;
    if (!svc)
        P.service = NULL;
    /* a PNG signature, then bytes that are not all alike */
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(P.png, sig, sizeof sig);
    for (size_t i = sizeof sig; i < sizeof P.png; i++)
        P.png[i] = (unsigned char)(i * 7 + 3);
    P.s[A].used = 1;
    P.s[B].used = pep;
    P.s[C].used = pep || svc;
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &P.ctx) < 0)
        return 1;
    if (getenv("EPODE_PROBE_LOG"))
        epode_ctx_set_log(P.ctx, EPODE_LOG_XML, on_log, NULL);
    int rc = 0;
    for (int i = 0; i < N && rc == 0; i++) {
        side *s = &P.s[i];
        if (!s->used)
            continue;
        char full[512];
        snprintf(full, sizeof full, "%s/%c", i == C ? jid2 : jid1, "ABC"[i]);
        if (epode_conn_new(P.ctx, &s->conn) < 0 || epode_conn_set_jid(s->conn, full) < 0 ||
            epode_conn_set_password(s->conn, i == C ? pw2 : pw1) < 0 ||
            epode_conn_set_server(s->conn, server, port) < 0 ||
            (ca && epode_conn_set_ca_file(s->conn, ca) < 0) ||
            epode_conn_add_event_cb(s->conn, on_event, (void *)(long)i, NULL) < 0 ||
            epode_disco_new(s->conn, &s->disco) < 0 ||
            epode_caps_new(s->disco, "https://epode.example/pep-probe", &s->caps) < 0 ||
            epode_pubsub_new(s->conn, s->disco, &s->ps) < 0 ||
            epode_roster_new(s->conn, &s->roster) < 0 ||
            epode_presence_tracker_new(s->conn, &s->pt) < 0 ||
            epode_presence_tracker_set_subscription_cb(s->pt, on_sub, NULL) < 0 ||
            epode_presence_tracker_set_auto_accept(s->pt, EPODE_AUTO_ACCEPT_MUTUAL) < 0)
            rc = -1;
        if (rc == 0 && i == C && svc)
            rc = epode_pubsub_add_event_cb(s->ps, SVC_NODE, on_svc_event, NULL, NULL);
        if (rc == 0 && (i == A || i == C) && !svc)
            rc = epode_avatar_new(s->ps, on_avatar, (void *)(long)i, &s->av) < 0 ||
                 epode_nickname_new(s->ps, on_nick, (void *)(long)i, &s->nick) < 0 ? -1 : 0;
        if (rc == 0 && (i == A || i == B) && pep)
            rc = epode_bookmarks_new(s->ps, on_bookmark, (void *)(long)i, &s->bm) < 0 ? -1 : 0;
        if (rc == 0 && i == B && pep)
            rc = epode_muc_new(s->conn, on_muc, NULL, &s->muc) < 0 ||
                 epode_bookmarks_set_autojoin(s->bm, s->muc, "bee") < 0 ? -1 : 0;
    }
    if (rc == 0)
        rc = epode_conn_add_timer(P.s[A].conn, 100, on_tick, NULL, NULL);
    if (rc == 0)
        rc = epode_conn_add_timer(P.s[A].conn, 30000, on_timeout, NULL, NULL);
    for (int i = 0; i < N && rc == 0; i++)
        if (P.s[i].used)
            rc = epode_conn_connect(P.s[i].conn);
    if (rc < 0) {
        fprintf(stderr, "im_pep_probe: set-up failed\n");
        return 1;
    }
    epode_ctx_run(P.ctx);
    for (int i = 0; i < N; i++) {
        side *s = &P.s[i];
        epode_bookmarks_free(s->bm);
        epode_muc_free(s->muc);
        epode_nickname_free(s->nick);
        epode_avatar_free(s->av);
        epode_pubsub_free(s->ps);
        epode_caps_free(s->caps);
        epode_disco_free(s->disco);
        epode_presence_tracker_free(s->pt);
        epode_roster_free(s->roster);
        epode_conn_free(s->conn);
    }
    epode_ctx_free(P.ctx);
    if (P.failed) {
        printf("FAILED %s\n", P.why);
        return 1;
    }
    printf("OK\n");
    return 0;
}
