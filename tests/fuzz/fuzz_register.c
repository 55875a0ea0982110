/* tests/fuzz/fuzz_register.c — in-band registration against a server
 * that answers the form request with arbitrary bytes: a connection in
 * registration mode over a memory pipe, epode_register_account() with a
 * fill callback that fills every required field, and the fuzzer's bytes
 * as the body of the IQ result (or error, by the first byte) to the
 * fetch; a submission, if one comes, is answered with a result. The
 * outcome must come at most once, and nothing may crash or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "conn/conn_int.h"
#include "transport/transport.h"

static int outcomes;

static void on_done(epode_register_t *reg, int status, epode_stanza_cond_t cond, const char *text,
                    void *user)
{
    (void)reg, (void)status, (void)cond, (void)user;
    if (text)
        (void)strlen(text);
    if (++outcomes > 1)
        abort();
}

static int on_fill(epode_register_t *reg, epode_form_t *form, void *user)
{
    (void)user;
    (void)epode_register_answer(reg);
    (void)epode_register_oob_url(reg);
    for (size_t i = 0; i < epode_form_field_count(form); i++) {
        epode_form_field_t *f = epode_form_field_at(form, i);
        if (epode_form_field_required(f) && !epode_form_field_value(f))
            epode_form_field_set_value(f, "x");
    }
    return 0;
}

/* ids of the IQs the client sent, in order */
static char ids[4][64];
static int nids;

static void on_client(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev == EPODE_PARSER_STANZA && strcmp(epode_stanza_get_name(el), "iq") == 0 && nids < 4)
        snprintf(ids[nids++], sizeof ids[0], "%s", epode_stanza_get_id(el) ? epode_stanza_get_id(el) : "");
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        if (epode_global_init() < 0)
            abort();
        inited = 1;
    }
    outcomes = 0;
    nids = 0;
    epode_ctx_t *ctx = NULL;
    epode_conn_t *conn = NULL;
    epode__transport *client = NULL, *server = NULL;
    epode_parser_t *parser = NULL;
    epode_register_t *reg = NULL;
    if (epode_ctx_new(NULL, &ctx) < 0 || epode_conn_new(ctx, &conn) < 0 ||
        epode_conn_set_jid(conn, "newbie@example.com") < 0 ||
        epode_conn_set_tls(conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_register(conn, 1, 1) < 0 ||
        epode__memory_pair(NULL, &client, &server) < 0 ||
        epode_parser_new(NULL, on_client, NULL, &parser) < 0)
        abort();
    if (epode__conn_start_over(conn, client) < 0)
        abort();
    pump(ctx, conn, server, parser);
    static const char hdr[] =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='example.com' id='x' version='1.0'><stream:features><register xmlns='"
        "http://jabber.org/features/iq-register'/></stream:features>";
    send_all(ctx, conn, server, parser, hdr, sizeof hdr - 1);
    if (!epode_conn_is_ready(conn) || epode_register_new(conn, &reg) < 0 ||
        epode_register_account(reg, "newbie", "pw", on_fill, on_done, NULL) < 0)
        abort();
    pump(ctx, conn, server, parser);
    if (nids >= 1) {
        int error = size > 0 && (data[0] & 1);
        char head[160];
        int n = snprintf(head, sizeof head, "<iq type='%s' id='%s'>", error ? "error" : "result",
                         ids[0]);
        char *msg = malloc((size_t)n + size + 8);
        if (!msg)
            abort();
        memcpy(msg, head, (size_t)n);
        if (size > 1)
            memcpy(msg + n, data + 1, size - 1);
        size_t len = (size_t)n + (size > 1 ? size - 1 : 0);
        memcpy(msg + len, "</iq>", 5);
        send_all(ctx, conn, server, parser, msg, len + 5);
        free(msg);
        if (nids >= 2) {
            char answer[128];
            int m = snprintf(answer, sizeof answer, "<iq type='result' id='%s'/>", ids[1]);
            send_all(ctx, conn, server, parser, answer, (size_t)m);
        }
    }
    epode_register_free(reg);
    epode_conn_free(conn);
    epode__transport_free(server);
    epode_parser_free(parser);
    epode_ctx_free(ctx);
    return 0;
}
