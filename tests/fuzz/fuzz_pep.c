/* tests/fuzz/fuzz_pep.c — the PEP family fed arbitrary server bytes: a
 * ready connection over a memory pipe (registration mode: READY without a
 * login) with epode/pubsub.h (a fetch open, callbacks on every node),
 * epode/bookmarks.h (its fetch open), epode/avatar.h (a fetch of a
 * contact's avatar open) and epode/nickname.h; the fuzzer's bytes are the
 * server's stanzas — event notifications, items answers, presences —
 * with the tokens IQ1..IQ4 replaced by the real IQ ids so answers can be
 * accepted. Checked: every retraction delivered has an id, fetched
 * avatar bytes hash to the id they came with, the bookmark list stays
 * sorted and bounded, each request ends at most once; never a crash or a
 * leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <epode.h>

#include "conn/conn_int.h"
#include "transport/transport.h"

static char iqids[4][64];
static int niq, replies, fetched;

static void on_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                     const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                     void *user)
{
    (void)ps, (void)from, (void)msg, (void)user;
    if (!node || !*node || !epode_pubsub_event_type_name(type))
        abort();
    if (type == EPODE_PUBSUB_RETRACTED && (!item || !epode_pubsub_item_id(item)))
        abort();
    if (item && epode_pubsub_item_payload(item))
        (void)epode_stanza_get_name(epode_pubsub_item_payload(item));
}

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps, (void)user;
    replies++;
    for (size_t i = 0; i < epode_pubsub_reply_item_count(r); i++)
        (void)epode_pubsub_item_id(epode_pubsub_reply_item_at(r, i));
    if (epode_pubsub_reply_item_count(r) > EPODE_PUBSUB_MAX_ITEMS)
        abort();
}

static void on_bookmark(epode_bookmarks_t *b, epode_bookmarks_event_t ev, const epode_bookmark_t *bm,
                        void *user)
{
    (void)ev, (void)bm, (void)user;
    size_t n = epode_bookmarks_count(b);
    if (n > EPODE_BOOKMARKS_MAX)
        abort();
    for (size_t i = 1; i < n; i++)
        if (strcmp(epode_bookmark_room(epode_bookmarks_at(b, i - 1)),
                   epode_bookmark_room(epode_bookmarks_at(b, i))) >= 0)
            abort();
}

static void on_avatar(epode_avatar_t *av, const char *jid, const char *id, const char *type,
                      epode_avatar_source_t source, void *user)
{
    (void)av, (void)type, (void)user;
    if (!jid || !epode_avatar_source_name(source) || (id && *id && strlen(id) != 40))
        abort();
}

static void on_fetch(epode_avatar_t *av, int status, epode_stanza_cond_t cond, const char *jid,
                     const unsigned char *data, size_t len, const char *id, const char *type,
                     void *user)
{
    (void)av, (void)status, (void)cond, (void)jid, (void)type, (void)user;
    if (++fetched > 1)
        abort();
    if (data) {
        char h[41];
        if (!id || epode_avatar_hash(data, len, h, sizeof h) < 0 || strcasecmp(h, id) != 0)
            abort();
    }
}

static void on_nick(epode_nickname_t *n, const char *jid, const char *nick,
                    epode_nickname_source_t source, void *user)
{
    (void)n, (void)user;
    if (!jid || !nick || !epode_nickname_source_name(source))
        abort();
}

static void on_client(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev == EPODE_PARSER_STANZA && strcmp(epode_stanza_get_name(el), "iq") == 0 && niq < 4)
        snprintf(iqids[niq++], sizeof iqids[0], "%s", epode_stanza_get_id(el));
}

static void pump(epode_ctx_t *ctx, epode_conn_t *conn, epode__transport *server,
                 epode_parser_t *parser)
{
    char buf[65536];
    for (int round = 0; round < 50; round++) {
        int ran = 0;
        epode__conn_poke(conn);
        while (epode_ctx_run_once(ctx, 0) > 0)
            ran = 1;
        long n;
        while ((n = epode__transport_read(server, buf, sizeof buf)) > 0) {
            epode_parser_feed(parser, buf, (size_t)n);
            ran = 1;
        }
        if (!ran)
            return;
    }
}

static void send_all(epode_ctx_t *ctx, epode_conn_t *conn, epode__transport *server,
                     epode_parser_t *parser, const char *data, size_t len)
{
    size_t off = 0;
    for (int i = 0; off < len && i < 1000; i++) {
        long n = epode__transport_write(server, data + off, len - off);
        if (n > 0)
            off += (size_t)n;
        pump(ctx, conn, server, parser);
    }
}

static char *substitute(const uint8_t *data, size_t size, size_t *out_len)
{
    char *out = malloc(size * 16 + 1);
    if (!out)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        if (size - i >= 3 && !memcmp(data + i, "IQ", 2) && data[i + 2] >= '1' && data[i + 2] <= '4') {
            const char *rep = iqids[data[i + 2] - '1'];
            size_t n = strlen(rep);
            memcpy(out + o, rep, n);
            o += n;
            i += 3;
        } else {
            out[o++] = (char)data[i++];
        }
    }
    *out_len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        if (epode_global_init() < 0)
            abort();
        inited = 1;
    }
    niq = replies = fetched = 0;
    memset(iqids, 0, sizeof iqids);
    epode_ctx_t *ctx = NULL;
    epode_conn_t *conn = NULL;
    epode__transport *client = NULL, *server = NULL;
    epode_parser_t *parser = NULL;
    epode_pubsub_t *ps = NULL;
    epode_bookmarks_t *bm = NULL;
    epode_avatar_t *av = NULL;
    epode_nickname_t *nick = NULL;
    if (epode_ctx_new(NULL, &ctx) < 0 || epode_conn_new(ctx, &conn) < 0 ||
        epode_conn_set_jid(conn, "me@example.com") < 0 ||
        epode_conn_set_tls(conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_register(conn, 1, 1) < 0 ||
        epode__memory_pair(NULL, &client, &server) < 0 ||
        epode_parser_new(NULL, on_client, NULL, &parser) < 0 ||
        epode__conn_start_over(conn, client) < 0)
        abort();
    pump(ctx, conn, server, parser);
    static const char hdr[] =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='example.com' id='x' version='1.0'><stream:features><register xmlns='"
        "http://jabber.org/features/iq-register'/></stream:features>";
    send_all(ctx, conn, server, parser, hdr, sizeof hdr - 1);
    if (!epode_conn_is_ready(conn) || epode_pubsub_new(conn, NULL, &ps) < 0 ||
        epode_pubsub_add_event_cb(ps, NULL, on_event, NULL, NULL) < 0 ||
        epode_bookmarks_new(ps, on_bookmark, NULL, &bm) < 0 ||
        epode_avatar_new(ps, on_avatar, NULL, &av) < 0 ||
        epode_nickname_new(ps, on_nick, NULL, &nick) < 0 ||
        epode_pubsub_fetch(ps, "romeo@montague.lit", "urn:x", NULL, 5, on_reply, NULL, NULL) < 0 ||
        epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, NULL) < 0)
        abort();
    pump(ctx, conn, server, parser);
    size_t len;
    char *msg = substitute(data, size, &len);
    send_all(ctx, conn, server, parser, msg, len);
    free(msg);
    epode_nickname_free(nick);
    epode_avatar_free(av); /* an open fetch ends (once) here */
    epode_bookmarks_free(bm);
    epode_pubsub_free(ps);
    if (fetched != 1 || replies != 1)
        abort();
    epode_conn_free(conn);
    epode__transport_free(server);
    epode_parser_free(parser);
    epode_ctx_free(ctx);
    return 0;
}
