/* tests/fuzz/fuzz_mam.c — the archive and blocking helpers fed arbitrary
 * server bytes: a ready connection over a memory pipe (registration mode:
 * READY without a login) with epode/mam.h (a catch-up and a room query
 * open), epode/blocking.h (its fetch open) and the messaging helper;
 * the fuzzer's bytes are the server's stanzas, with the tokens QID1,
 * QID2, IQ1, IQ2 and IQ3 replaced by the real queryids and IQ ids so
 * results and answers can be accepted (IQ4 too). Checked: every delivered result
 * has a non-empty archive id and comes through a message view, each
 * query ends at most once, blocking's list stays sorted and bounded;
 * never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "conn/conn_int.h"
#include "transport/transport.h"

static int dones[2];
static char qids[2][64];
static char iqids[4][64];
static int nq, niq;

static void on_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam, (void)user;
    const char *id = epode_message_archive_id(m);
    if (!id || !*id || !epode_message_stanza(m))
        abort();
    long long ms;
    (void)epode_message_delay(m, &ms, NULL, NULL);
    (void)epode_message_body(m, NULL);
    (void)epode_message_reactions_id(m);
}

static void on_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                    const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam, (void)status, (void)cond, (void)complete, (void)results;
    if (first)
        (void)strlen(first);
    if (last)
        (void)strlen(last);
    if (count < -1)
        abort();
    if (++dones[(intptr_t)user] > 1)
        abort();
}

static void on_block(epode_blocking_t *b, epode_blocking_event_t ev, const char *const *jids,
                     size_t n, void *user)
{
    (void)ev, (void)user;
    for (size_t i = 0; i < n; i++)
        (void)strlen(jids[i]);
    size_t count = epode_blocking_count(b);
    if (count > 50)
        abort(); /* the bound set below */
    for (size_t i = 1; i < count; i++)
        if (strcmp(epode_blocking_at(b, i - 1), epode_blocking_at(b, i)) >= 0)
            abort();
}

static void on_client(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev != EPODE_PARSER_STANZA || strcmp(epode_stanza_get_name(el), "iq") != 0)
        return;
    if (niq < 4)
        snprintf(iqids[niq++], sizeof iqids[0], "%s", epode_stanza_get_id(el));
    epode_stanza_t *q = epode_stanza_find_child(el, "query", EPODE_NS_MAM);
    const char *qid = q ? epode_stanza_get_attr(q, "queryid") : NULL;
    if (qid && nq < 2)
        snprintf(qids[nq++], sizeof qids[0], "%s", qid);
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

/* The input with the tokens replaced (caller frees). */
static char *substitute(const uint8_t *data, size_t size, size_t *out_len)
{
    char *out = malloc(size * 16 + 1);
    if (!out)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (size - i >= 4 && !memcmp(data + i, "QID", 3) && (data[i + 3] == '1' || data[i + 3] == '2')) {
            rep = qids[data[i + 3] - '1'];
            skip = 4;
        } else if (size - i >= 3 && !memcmp(data + i, "IQ", 2) && data[i + 2] >= '1' &&
                   data[i + 2] <= '4') {
            rep = iqids[data[i + 2] - '1'];
            skip = 3;
        }
        if (rep) {
            size_t n = strlen(rep);
            memcpy(out + o, rep, n);
            o += n;
            i += skip;
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
    dones[0] = dones[1] = 0;
    nq = niq = 0;
    memset(qids, 0, sizeof qids);
    memset(iqids, 0, sizeof iqids);
    epode_ctx_t *ctx = NULL;
    epode_conn_t *conn = NULL;
    epode__transport *client = NULL, *server = NULL;
    epode_parser_t *parser = NULL;
    epode_mam_t *mam = NULL;
    epode_blocking_t *blocking = NULL;
    epode_messaging_t *msgs = NULL;
    epode_mam_query_t *q = NULL;
    if (epode_ctx_new(NULL, &ctx) < 0 || epode_conn_new(ctx, &conn) < 0 ||
        epode_conn_set_jid(conn, "me@example.com") < 0 ||
        epode_conn_set_tls(conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_register(conn, 1, 1) < 0 ||
        epode__memory_pair(NULL, &client, &server) < 0 ||
        epode_parser_new(NULL, on_client, NULL, &parser) < 0)
        abort();
    /* made before READY: on a registration-mode READY (no bound JID) its
     * question about our account cannot go out, which is not this test's */
    if (epode_messaging_new(conn, &msgs) < 0 || epode__conn_start_over(conn, client) < 0)
        abort();
    pump(ctx, conn, server, parser);
    static const char hdr[] =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='example.com' id='x' version='1.0'><stream:features><register xmlns='"
        "http://jabber.org/features/iq-register'/></stream:features>";
    send_all(ctx, conn, server, parser, hdr, sizeof hdr - 1);
    if (!epode_conn_is_ready(conn) || epode_mam_new(conn, &mam) < 0 ||
        epode_blocking_new(conn, on_block, NULL, &blocking) < 0 ||
        epode_blocking_set_max(blocking, 50) < 0 ||
        epode_mam_catch_up(mam, "last-1", 3, on_result, on_done, (void *)0, NULL) < 0 ||
        epode_mam_query_new(NULL, &q) < 0 || epode_mam_query_set_archive(q, "room@muc.example") < 0 ||
        epode_mam_query_set_page(q, 2, NULL, "") < 0 ||
        epode_mam_fetch(mam, q, on_result, on_done, (void *)1, NULL) < 0)
        abort();
    pump(ctx, conn, server, parser);
    size_t len;
    char *msg = substitute(data, size, &len);
    send_all(ctx, conn, server, parser, msg, len);
    free(msg);
    epode_mam_query_free(q);
    epode_mam_free(mam); /* open queries end (once) here */
    if (dones[0] != 1 || dones[1] != 1)
        abort();
    epode_blocking_free(blocking);
    epode_messaging_free(msgs);
    epode_conn_free(conn);
    epode__transport_free(server);
    epode_parser_free(parser);
    epode_ctx_free(ctx);
    return 0;
}
