/* tests/fuzz/fuzz_commands.c — ad-hoc commands (epode/commands.h) fed
 * arbitrary server bytes: a ready connection over a memory pipe
 * (registration mode: READY without a login) offering two commands (a
 * two-step one, and one that answers later) through a disco helper to
 * anyone, with a list and an execute of another entity's commands open;
 * the fuzzer's bytes are the server's stanzas (requests to our commands,
 * answers), with IQ1..IQ4 replaced by the real ids of what we sent so
 * answers can be accepted. Checked: each request's callback runs at most
 * once and exactly once by the end, results are well formed, the open
 * sessions stay within the bound; never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "conn/conn_int.h"
#include "transport/transport.h"

static char iqids[4][64];
static int niq;
static int answers[2];
static epode_command_session_t *later;

static int allow_all(epode_commands_t *c, const char *requester, const char *node, void *user)
{
    (void)c, (void)requester, (void)node, (void)user;
    return 1;
}

static int steps_cb(epode_commands_t *c, epode_command_session_t *s,
                    epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)c, (void)user;
    if (action == EPODE_COMMAND_CANCEL)
        return 0;
    if (form)
        (void)epode_form_get_value(form, "text");
    if (epode_command_session_stage(s) < 2) {
        epode_form_t *f;
        if (epode_form_new(NULL, EPODE_FORM_FORM, &f) == 0) {
            epode_form_add_field(f, "text", EPODE_FIELD_TEXT_SINGLE, "Text", NULL);
            epode_command_session_set_form(s, f);
            epode_form_free(f);
        }
        epode_command_session_set_actions(s,
                                          EPODE_COMMAND_ALLOW(EPODE_COMMAND_NEXT) |
                                              EPODE_COMMAND_ALLOW(EPODE_COMMAND_PREV) |
                                              EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE),
                                          0);
        return EPODE_COMMAND_EXECUTING;
    }
    epode_command_session_add_note(s, EPODE_COMMAND_NOTE_INFO, "done");
    return EPODE_COMMAND_COMPLETED;
}

static int later_cb(epode_commands_t *c, epode_command_session_t *s,
                    epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)c, (void)form, (void)user;
    if (action == EPODE_COMMAND_CANCEL) {
        if (later == s)
            later = NULL;
        return 0;
    }
    if (later) /* answer the one before now */
        epode_command_session_reply(later, EPODE_COMMAND_COMPLETED);
    later = s;
    return EPODE_COMMAND_PENDING;
}

static void on_result(epode_commands_t *c, const epode_command_result_t *r, int status,
                      epode_stanza_cond_t cond, epode_command_error_t specific, const char *text,
                      void *user)
{
    (void)c, (void)cond;
    if (++answers[(intptr_t)user] > 1)
        abort();
    if (text)
        (void)strlen(text);
    if (specific && !epode_command_error_name(specific))
        abort();
    if (!r) {
        if (status == 0)
            abort();
        return;
    }
    if (status != 0 || !epode_command_status_name(r->status) || !r->jid || !r->node)
        abort();
    for (size_t i = 0; i < r->nnotes; i++)
        if (!r->notes[i].text || !epode_command_note_type_name(r->notes[i].type))
            abort();
    if (r->default_action && !(r->actions & EPODE_COMMAND_ALLOW(r->default_action)))
        abort();
    if (r->form)
        (void)epode_form_field_count(r->form);
}

static void on_list(epode_commands_t *c, const char *jid, const epode_disco_items_t *items,
                    int status, epode_stanza_cond_t cond, void *user)
{
    (void)c, (void)jid, (void)cond;
    if (++answers[(intptr_t)user] > 1 || (status == 0) != (items != NULL))
        abort();
}

static void on_client(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev != EPODE_PARSER_STANZA || strcmp(epode_stanza_get_name(el), "iq") != 0)
        return;
    const char *type = epode_stanza_get_type(el);
    if (niq < 4 && type && (!strcmp(type, "get") || !strcmp(type, "set")))
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
        if (size - i >= 3 && !memcmp(data + i, "IQ", 2) && data[i + 2] >= '1' &&
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
    niq = 0;
    answers[0] = answers[1] = 0;
    later = NULL;
    memset(iqids, 0, sizeof iqids);
    epode_ctx_t *ctx = NULL;
    epode_conn_t *conn = NULL;
    epode__transport *client = NULL, *server = NULL;
    epode_parser_t *parser = NULL;
    epode_disco_t *disco = NULL;
    epode_commands_t *cmds = NULL;
    if (epode_ctx_new(NULL, &ctx) < 0 || epode_conn_new(ctx, &conn) < 0 ||
        epode_conn_set_jid(conn, "me@example.com") < 0 ||
        epode_conn_set_tls(conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_register(conn, 1, 1) < 0 ||
        epode__memory_pair(NULL, &client, &server) < 0 ||
        epode_parser_new(NULL, on_client, NULL, &parser) < 0 ||
        epode_disco_new(conn, &disco) < 0 || epode_commands_new(conn, disco, &cmds) < 0 ||
        epode_commands_add(cmds, "steps", "Steps", steps_cb, NULL) < 0 ||
        epode_commands_add(cmds, "later", "Later", later_cb, NULL) < 0 ||
        epode_commands_set_access_cb(cmds, allow_all, NULL) < 0 ||
        epode_commands_set_limits(cmds, 3, 8, 0) < 0 ||
        epode__conn_start_over(conn, client) < 0)
        abort();
    pump(ctx, conn, server, parser);
    static const char hdr[] =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='example.com' id='x' version='1.0'><stream:features><register xmlns='"
        "http://jabber.org/features/iq-register'/></stream:features>";
    send_all(ctx, conn, server, parser, hdr, sizeof hdr - 1);
    if (!epode_conn_is_ready(conn) ||
        epode_commands_list(cmds, "peer@example.com/x", on_list, (void *)0, NULL) < 0 ||
        epode_commands_execute(cmds, "peer@example.com/x", "n", NULL, on_result, (void *)1,
                               NULL) < 0)
        abort();
    pump(ctx, conn, server, parser);
    size_t len;
    char *msg = substitute(data, size, &len);
    send_all(ctx, conn, server, parser, msg, len);
    free(msg);
    if (epode_commands_session_count(cmds) > 8)
        abort();
    epode_commands_free(cmds); /* open requests end (once) here */
    if (answers[0] != 1 || answers[1] != 1)
        abort();
    epode_disco_free(disco);
    epode_conn_free(conn);
    epode__transport_free(server);
    epode_parser_free(parser);
    epode_ctx_free(ctx);
    return 0;
}
