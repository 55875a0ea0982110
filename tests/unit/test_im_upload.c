/* tests/unit/test_im_upload.c — HTTP File Upload (XEP-0363) against a
 * scripted XMPP server (disco, slot answers and refusals) and the test's
 * one-request HTTP server on loopback (the PUT), plus the slot parser
 * and the Out-of-Band helpers. */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "httpd.h"
#include "scripted.h"

TEST_MAIN

#define ME "me@example.com/r"

typedef struct outcome {
    int calls;
    unsigned id;
    int err;
    char url[256], condition[64], text[256], retry[64];
    unsigned long long max;
    long status;
    int progress_calls;
    unsigned long long sent, total;
    epode_upload_t *free_me; /* freed from the done callback */
} outcome;

static void on_done(epode_upload_t *up, unsigned id, const epode_upload_result_t *r, void *user)
{
    (void)up;
    outcome *o = user;
    o->calls++;
    o->id = id;
    o->err = r->err;
    snprintf(o->url, sizeof o->url, "%s", r->get_url ? r->get_url : "");
    snprintf(o->condition, sizeof o->condition, "%s", r->condition ? r->condition : "");
    snprintf(o->text, sizeof o->text, "%s", r->text ? r->text : "");
    snprintf(o->retry, sizeof o->retry, "%s", r->retry_stamp ? r->retry_stamp : "");
    o->max = r->max_file_size;
    o->status = r->http_status;
    if (o->free_me)
        epode_upload_free(o->free_me);
}

static void on_progress(epode_upload_t *up, unsigned id, unsigned long long sent,
                        unsigned long long total, void *user)
{
    (void)up, (void)id;
    outcome *o = user;
    o->progress_calls++;
    o->sent = sent;
    o->total = total;
}

/* Runs the context's loop (the PUT) until the upload is done. */
static void run_until_done(scripted *s, outcome *o)
{
    uint64_t until = epode__now_ms() + 10000;
    while (!o->calls && epode__now_ms() < until) {
        epode_ctx_run_once(s->ctx, 50);
        scripted_pump(s);
    }
}

static int attr_is(const epode_stanza_t *el, const char *name, const char *value)
{
    const char *v = epode_stanza_get_attr(el, name);
    return v && strcmp(v, value) == 0;
}

/* Answers the discovery: items (upload.example.com and a MUC), the
 * server's info (no upload), the upload service's info with a limit. */
static int answer_discovery(scripted *s, const char *max)
{
    epode_stanza_t *items = scripted_next(s);
    if (!items || !attr_is(items, "to", "example.com") ||
        !epode_stanza_find_child(items, "query", "http://jabber.org/protocol/disco#items"))
        return -1;
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<iq type='result' from='example.com' id='%s'><query xmlns='http://jabber.org/"
             "protocol/disco#items'><item jid='conference.example.com'/>"
             "<item jid='upload.example.com'/></query></iq>",
             epode_stanza_get_id(items));
    scripted_send(s, xml);
    for (int i = 0; i < 3; i++) {
        epode_stanza_t *info = scripted_next(s);
        if (!info)
            return -1;
        const char *to = epode_stanza_get_attr(info, "to");
        if (strcmp(to, "upload.example.com") == 0)
            snprintf(xml, sizeof xml,
                     "<iq type='result' from='%s' id='%s'><query xmlns='http://jabber.org/"
                     "protocol/disco#info'><identity category='store' type='file'/>"
                     "<feature var='urn:xmpp:http:upload:0'/><x xmlns='jabber:x:data' "
                     "type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:"
                     "upload:0</value></field><field var='max-file-size'><value>%s</value>"
                     "</field></x></query></iq>",
                     to, epode_stanza_get_id(info), max);
        else
            snprintf(xml, sizeof xml,
                     "<iq type='result' from='%s' id='%s'><query xmlns='http://jabber.org/"
                     "protocol/disco#info'><feature var='http://jabber.org/protocol/disco#info'/>"
                     "</query></iq>",
                     to, epode_stanza_get_id(info));
        scripted_send(s, xml);
    }
    return 0;
}

static void answer_slot(scripted *s, const epode_stanza_t *req, const char *inner)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq type='result' from='upload.example.com' id='%s'>%s</iq>",
             epode_stanza_get_id(req), inner);
    scripted_send(s, xml);
}

static void answer_slot_error(scripted *s, const epode_stanza_t *req, const char *error)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq type='error' from='upload.example.com' id='%s'>%s</iq>",
             epode_stanza_get_id(req), error);
    scripted_send(s, xml);
}

static int setup(scripted *s, epode_upload_t **up)
{
    signal(SIGPIPE, SIG_IGN);
    if (scripted_login(s, "example.com", ME) < 0 || epode_upload_new(s->conn, up) < 0)
        return -1;
    return epode_upload_set_allow_http(*up, 1);
}

TEST(upload_discovers_the_service_gets_a_slot_and_puts)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    srv *h = srv_start(SRV_ANSWER, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    outcome o = {0};
    epode_upload_file_t f = {.filename = "a b.txt", .content_type = "text/plain",
                             .data = "hello file", .len = 10};
    unsigned id = 0;
    CHECK_INT(epode_upload_start(up, &f, on_done, on_progress, &o, &id), 0);
    CHECK(id != 0);
    scripted_pump(&s);
    CHECK_INT(answer_discovery(&s, "5000"), 0);
    CHECK_STR(epode_upload_service(up), "upload.example.com");
    CHECK_INT(epode_upload_max_file_size(up), 5000);
    epode_stanza_t *req = scripted_next(&s);
    CHECK(req != NULL);
    CHECK(attr_is(req, "to", "upload.example.com"));
    epode_stanza_t *r = epode_stanza_find_child(req, "request", EPODE_NS_HTTP_UPLOAD);
    CHECK(r != NULL);
    CHECK(attr_is(r, "filename", "a b.txt"));
    CHECK(attr_is(r, "size", "10"));
    CHECK(attr_is(r, "content-type", "text/plain"));
    char inner[1024];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/up/a'>"
             "<header name='Authorization'>Basic Zm9v\r\nX-Injected: 1</header>"
             "<header name='Cookie'>c=1</header><header name='Host'>evil.example</header>"
             "<header name='X-Other'>no</header></put>"
             "<get url='https://files.example.com/a'/></slot>", h->port);
    answer_slot(&s, req, inner);
    run_until_done(&s, &o);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, 0);
    CHECK_INT(o.id, id);
    CHECK_STR(o.url, "https://files.example.com/a");
    CHECK(strncmp(h->request, "PUT /up/a HTTP/1.1\r\n", 20) == 0);
    CHECK(strstr(h->request, "\r\nAuthorization: Basic Zm9vX-Injected: 1\r\n"));
    CHECK(strstr(h->request, "\r\nCookie: c=1\r\n"));
    CHECK(strstr(h->request, "\r\nContent-Type: text/plain\r\n"));
    CHECK(strstr(h->request, "\r\nContent-Length: 10\r\n"));
    CHECK(!strstr(h->request, "evil.example"));
    CHECK(!strstr(h->request, "X-Other"));
    CHECK(!strstr(h->request, "\r\nX-Injected"));
    CHECK(strstr(h->request, "\r\n\r\nhello file"));
    CHECK_INT(o.sent, 10);
    CHECK_INT(o.total, 10);
    /* a second upload skips discovery; a known limit refuses at once */
    char big[6000] = {0};
    epode_upload_file_t g = {.filename = "big", .data = big, .len = sizeof big};
    CHECK_INT(epode_upload_start(up, &g, on_done, NULL, &o, NULL), EPODE_ELIMIT);
    epode_upload_free(up);
    srv_stop(h);
    scripted_free(&s);
}

TEST(upload_streams_a_file_from_disk)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    char path[] = "/tmp/epode-upload-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    static char data[200000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('A' + i % 23);
    CHECK_INT(write(fd, data, sizeof data), sizeof data);
    close(fd);
    srv *h = srv_start(SRV_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(epode_upload_set_service(up, "upload.example.com", 0), 0);
    outcome o = {0};
    epode_upload_file_t f = {.path = path};
    CHECK_INT(epode_upload_start(up, &f, on_done, on_progress, &o, NULL), 0);
    scripted_pump(&s);
    epode_stanza_t *req = scripted_next(&s);
    CHECK(req != NULL);
    epode_stanza_t *r = epode_stanza_find_child(req, "request", EPODE_NS_HTTP_UPLOAD);
    CHECK(attr_is(r, "filename", strrchr(path, '/') + 1));
    CHECK(attr_is(r, "size", "200000"));
    CHECK(attr_is(r, "content-type", "application/octet-stream"));
    char inner[512];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://localhost:%u/f'/>"
             "<get url='https://files.example.com/f'/></slot>", h->port); /* a name: c-ares */
    answer_slot(&s, req, inner);
    run_until_done(&s, &o);
    unlink(path);
    CHECK_INT(o.err, 0);
    CHECK(o.progress_calls > 0);
    CHECK_INT(o.sent, 200000);
    char *body = strstr(h->request, "\r\n\r\n") + 4;
    CHECK_INT(h->request_len - (size_t)(body - h->request), sizeof data);
    CHECK(memcmp(body, data, sizeof data) == 0);
    epode_upload_free(up);
    srv_stop(h);
    scripted_free(&s);
}

/* Starts an upload with the service set and returns its slot request. */
static epode_stanza_t *start_with_service(scripted *s, epode_upload_t *up, outcome *o)
{
    if (epode_upload_set_service(up, "upload.example.com", 0) < 0)
        return NULL;
    epode_upload_file_t f = {.filename = "x.bin", .data = "xyz", .len = 3};
    if (epode_upload_start(up, &f, on_done, NULL, o, NULL) < 0)
        return NULL;
    scripted_pump(s);
    return scripted_next(s);
}

TEST(upload_file_too_large_gives_the_limit)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    answer_slot_error(&s, req, "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:"
                               "ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
                               "File too large</text><file-too-large xmlns='urn:xmpp:http:upload:0'>"
                               "<max-file-size>2</max-file-size></file-too-large></error>");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_ELIMIT);
    CHECK_INT(o.max, 2);
    CHECK_STR(o.condition, "not-acceptable");
    CHECK_STR(o.text, "File too large");
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_quota_refusal_gives_condition_and_retry)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    answer_slot_error(&s, req, "<error type='wait'><resource-constraint xmlns='urn:ietf:params:"
                               "xml:ns:xmpp-stanzas'/><retry xmlns='urn:xmpp:http:upload:0' "
                               "stamp='2026-12-07T08:00:00Z'/></error>");
    CHECK_INT(o.err, EPODE_EREFUSED);
    CHECK_STR(o.condition, "resource-constraint");
    CHECK_STR(o.retry, "2026-12-07T08:00:00Z");
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_not_allowed_is_refused)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    answer_slot_error(&s, req, "<error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:"
                               "ns:xmpp-stanzas'/></error>");
    CHECK_INT(o.err, EPODE_EREFUSED);
    CHECK_STR(o.condition, "not-allowed");
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_bad_slots_are_protocol_errors)
{
    static const char *bad[] = {
        "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/p'/></slot>",
        "<slot xmlns='urn:xmpp:http:upload:0'><get url='https://a.example/g'/></slot>",
        "<slot xmlns='urn:xmpp:http:upload:0'><put url='javascript:alert(1)'/>"
        "<get url='https://a.example/g'/></slot>",
        "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/p q'/>"
        "<get url='https://a.example/g'/></slot>",
        "<slot xmlns='urn:xmpp:http:upload:0'><put url='https:///p'/>"
        "<get url='https://a.example/g'/></slot>",
        "<other xmlns='urn:xmpp:http:upload:0'/>",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        scripted s;
        epode_upload_t *up;
        CHECK_INT(setup(&s, &up), 0);
        outcome o = {0};
        epode_stanza_t *req = start_with_service(&s, up, &o);
        CHECK(req != NULL);
        answer_slot(&s, req, bad[i]);
        CHECK_INT(o.calls, 1);
        CHECK_INT(o.err, EPODE_EPROTOCOL);
        epode_upload_free(up);
        scripted_free(&s);
    }
}

TEST(upload_cleartext_urls_need_allow_http)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    CHECK_INT(epode_upload_set_allow_http(up, 0), 0);
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    answer_slot(&s, req, "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:9/p'/>"
                         "<get url='https://a.example/g'/></slot>");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_EPROTOCOL);
    epode_upload_free(up);
    scripted_free(&s);
}

static void put_answered_mode(enum srv_mode mode, const char *answer, int want_err,
                              long want_status)
{
    scripted s;
    epode_upload_t *up;
    if (setup(&s, &up) < 0) {
        test__failed_now = 1;
        return;
    }
    srv *h = srv_start(mode, answer);
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    char inner[512];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/p'/>"
             "<get url='https://a.example/g'/></slot>", h->port);
    answer_slot(&s, req, inner);
    run_until_done(&s, &o);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, want_err);
    CHECK_INT(o.status, want_status);
    CHECK_STR(o.url, "");
    epode_upload_free(up);
    srv_stop(h);
    scripted_free(&s);
}

static void put_answered(const char *answer, int want_err, long want_status)
{
    put_answered_mode(SRV_ANSWER, answer, want_err, want_status);
}

TEST(upload_http_failures_have_their_status)
{
    put_answered("HTTP/1.1 500 Internal\r\nContent-Length: 0\r\n\r\n", EPODE_EHTTP, 500);
    if (test__failed_now)
        return;
    put_answered("HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n", EPODE_ELIMIT, 413);
    if (test__failed_now)
        return;
    put_answered("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", EPODE_EHTTP, 403);
    if (test__failed_now)
        return;
    /* an endless error page: the status still decides */
    put_answered_mode(SRV_ENDLESS, "HTTP/1.1 507 Insufficient Storage\r\nContent-Length: "
                      "100000000\r\n\r\n", EPODE_EHTTP, 507);
}

TEST(upload_without_a_service_is_not_found)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    outcome o = {0};
    epode_upload_file_t f = {.filename = "x", .data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &f, on_done, NULL, &o, NULL), 0);
    scripted_pump(&s);
    epode_stanza_t *items = scripted_next(&s);
    CHECK(items != NULL);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' from='example.com' id='%s'><query xmlns='http://"
                              "jabber.org/protocol/disco#items'/></iq>", epode_stanza_get_id(items));
    scripted_send(&s, xml);
    epode_stanza_t *info = scripted_next(&s);
    CHECK(info != NULL);
    snprintf(xml, sizeof xml, "<iq type='error' from='example.com' id='%s'><error type='cancel'>"
                              "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                              "</error></iq>", epode_stanza_get_id(info));
    scripted_send(&s, xml);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_ENOTFOUND);
    CHECK(epode_upload_service(up) == NULL);
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_cancel_ends_once_and_ignores_the_late_slot)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    CHECK_INT(epode_upload_set_service(up, "upload.example.com", 0), 0);
    outcome o = {0};
    unsigned id;
    epode_upload_file_t f = {.filename = "x", .data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &f, on_done, NULL, &o, &id), 0);
    scripted_pump(&s);
    epode_stanza_t *req = scripted_next(&s);
    CHECK(req != NULL);
    CHECK_INT(epode_upload_cancel(up, id), 0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_ECANCELED);
    CHECK_INT(epode_upload_cancel(up, id), EPODE_ENOTFOUND);
    answer_slot(&s, req, "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/p'/>"
                         "<get url='https://a.example/g'/></slot>");
    CHECK_INT(o.calls, 1);
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_freed_with_uploads_running_and_from_a_callback)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    srv *h = srv_start(SRV_SILENT, NULL);
    outcome a = {0}, b = {0};
    epode_stanza_t *req = start_with_service(&s, up, &a);
    CHECK(req != NULL);
    char inner[512];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/p'/>"
             "<get url='https://a.example/g'/></slot>", h->port);
    answer_slot(&s, req, inner);
    for (int i = 0; i < 5; i++)
        epode_ctx_run_once(s.ctx, 20); /* the PUT is in flight */
    epode_upload_file_t f = {.filename = "y", .data = "y", .len = 1};
    CHECK_INT(epode_upload_start(up, &f, on_done, NULL, &b, NULL), 0); /* waits for its slot */
    a.free_me = up; /* the first done frees the helper: the second still ends */
    epode_upload_free(up);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.err, EPODE_ECANCELED);
    CHECK_INT(b.calls, 1);
    CHECK_INT(b.err, EPODE_ECANCELED);
    srv_stop(h);
    scripted_free(&s);
}

TEST(upload_connection_freed_first)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    epode_conn_free(s.conn);
    s.conn = NULL;
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_ECANCELED);
    epode_upload_file_t f = {.filename = "y", .data = "y", .len = 1};
    CHECK_INT(epode_upload_start(up, &f, on_done, NULL, &o, NULL), EPODE_ESTATE);
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_start_checks_its_arguments)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    outcome o = {0};
    epode_upload_file_t f = {.filename = "x", .data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &f, NULL, NULL, &o, NULL), EPODE_EINVAL);
    epode_upload_file_t none = {.filename = "x"};
    CHECK_INT(epode_upload_start(up, &none, on_done, NULL, &o, NULL), EPODE_EINVAL);
    epode_upload_file_t noname = {.data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &noname, on_done, NULL, &o, NULL), EPODE_EINVAL);
    epode_upload_file_t crlf = {.filename = "x", .content_type = "text/plain\r\nX: y",
                                .data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &crlf, on_done, NULL, &o, NULL), EPODE_EINVAL);
    epode_upload_file_t slash = {.filename = "../x", .data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &slash, on_done, NULL, &o, NULL), EPODE_EINVAL);
    epode_upload_file_t missing = {.path = "/nonexistent/epode/file"};
    CHECK_INT(epode_upload_start(up, &missing, on_done, NULL, &o, NULL), EPODE_ENET);
    epode_upload_file_t dir = {.path = "/tmp"};
    CHECK_INT(epode_upload_start(up, &dir, on_done, NULL, &o, NULL), EPODE_EINVAL);
    CHECK_INT(epode_upload_set_service(up, "not a jid@@", 0), EPODE_EJID);
    CHECK_INT(epode_upload_add_resolve(up, "host", 443, "127.0.0.1"), 0);
    CHECK_INT(epode_upload_add_resolve(up, "ho:st", 443, "127.0.0.1"), EPODE_EINVAL);
    CHECK_INT(epode_upload_add_resolve(up, "host", 0, "127.0.0.1"), EPODE_EINVAL);
    CHECK_INT(epode_upload_add_resolve(up, "host", 443, "localhost"), EPODE_EINVAL);
    CHECK_INT(epode_upload_add_resolve(up, "host", 443, "::1"), 0);
    CHECK_INT(o.calls, 0);
    scripted_pump(&s);
    CHECK(scripted_next(&s) == NULL); /* nothing was sent */
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_slot_parse_filters_headers)
{
    epode_stanza_t *iq = NULL;
    const char *xml = "<iq type='result' xmlns='jabber:client'><slot xmlns='urn:xmpp:http:upload:0'>"
                      "<put url='https://u.example/p'><header name='authorization'>a&#10;b</header>"
                      "<header name='Expires'>Tue</header><header name='Content-Length'>9</header>"
                      "<header>nameless</header></put><get url='https://u.example/g'/></slot></iq>";
    CHECK_INT(epode_stanza_from_text(NULL, xml, strlen(xml), &iq, NULL), 0);
    epode_upload_slot_t *slot = NULL;
    CHECK_INT(epode_upload_slot_parse(NULL, iq, &slot), 0);
    CHECK_STR(slot->put_url, "https://u.example/p");
    CHECK_STR(slot->get_url, "https://u.example/g");
    CHECK_INT(slot->nheaders, 2);
    CHECK_STR(slot->headers[0].name, "authorization");
    CHECK_STR(slot->headers[0].value, "ab");
    CHECK_STR(slot->headers[1].name, "Expires");
    epode_upload_slot_free(slot);
    CHECK_INT(epode_upload_slot_parse(NULL, epode_stanza_first_child(iq), &slot), 0);
    epode_upload_slot_free(slot);
    CHECK_INT(epode_upload_slot_parse(NULL, NULL, &slot), EPODE_EINVAL);
    epode_stanza_unref(iq);
}

TEST(upload_send_url_carries_oob)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", ME), 0);
    CHECK_INT(epode_upload_send_url(s.conn, "you@example.com", NULL, "https://f.example/x?y=1&z"), 0);
    CHECK_INT(epode_upload_send_url(s.conn, "you@example.com", NULL, ""), EPODE_EINVAL);
    scripted_pump(&s);
    epode_stanza_t *m = scripted_next(&s);
    CHECK(m != NULL);
    CHECK(attr_is(m, "type", "chat"));
    CHECK_STR(epode_stanza_child_text(m, "body", NULL), "https://f.example/x?y=1&z");
    CHECK_STR(epode_oob_url(m), "https://f.example/x?y=1&z");
    CHECK(epode_oob_url(NULL) == NULL);
    scripted_free(&s);
}

TEST(upload_sweeps_allocations_and_always_ends_once)
{
    signal(SIGPIPE, SIG_IGN);
    for (long fail = 0; fail < 400; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
        srv *h = srv_start(SRV_ANSWER, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        mm.fail_at = mm.calls + fail;
        epode_upload_t *up = NULL;
        outcome o = {0};
        int rc = epode_upload_new(s.conn, &up);
        if (rc == 0)
            rc = epode_upload_set_allow_http(up, 1);
        if (rc == 0)
            rc = epode_upload_set_timeouts(up, 500, 0);
        epode_upload_file_t f = {.filename = "x.txt", .data = "hello", .len = 5};
        if (rc == 0)
            rc = epode_upload_start(up, &f, on_done, NULL, &o, NULL);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            scripted_pump(&s);
            /* discovery, answered as far as the client got */
            epode_stanza_t *st;
            while ((st = scripted_next(&s)) != NULL && !o.calls) {
                char xml[1024];
                const char *to = epode_stanza_get_attr(st, "to");
                if (epode_stanza_find_child(st, "query", "http://jabber.org/protocol/disco#items"))
                    snprintf(xml, sizeof xml,
                             "<iq type='result' from='example.com' id='%s'><query xmlns='http://"
                             "jabber.org/protocol/disco#items'><item jid='upload.example.com'/>"
                             "</query></iq>", epode_stanza_get_id(st));
                else if (epode_stanza_find_child(st, "query", "http://jabber.org/protocol/disco#info"))
                    snprintf(xml, sizeof xml,
                             "<iq type='result' from='%s' id='%s'><query xmlns='http://jabber.org/"
                             "protocol/disco#info'>%s</query></iq>", to, epode_stanza_get_id(st),
                             strcmp(to, "upload.example.com") == 0
                                 ? "<feature var='urn:xmpp:http:upload:0'/>" : "");
                else
                    snprintf(xml, sizeof xml,
                             "<iq type='result' from='upload.example.com' id='%s'><slot xmlns="
                             "'urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/p'><header "
                             "name='Cookie'>c</header></put><get url='https://g.example/x'/>"
                             "</slot></iq>", epode_stanza_get_id(st), h->port);
                scripted_send(&s, xml);
            }
            uint64_t until = epode__now_ms() + 3000;
            while (!o.calls && epode__now_ms() < until) {
                epode_ctx_run_once(s.ctx, 20);
                scripted_pump(&s);
            }
            CHECK(o.calls <= 1);
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_conn_free(s.conn); /* the connection first: ends what is left */
        s.conn = NULL;
        if (rc == 0) {
            CHECK_INT(o.calls, 1);
            /* ECANCELED: the connection itself gave up (its stream
             * could not go on), and freeing it ended the upload */
            CHECK(o.err == 0 || o.err == EPODE_ENOMEM || o.err == EPODE_ECANCELED);
        }
        epode_upload_free(up);
        scripted_free(&s);
        srv_stop(h);
        CHECK_INT(mm.live, 0);
        if (getenv("UPLOAD_SWEEP_VERBOSE"))
            printf("# fail %ld: rc %d calls %d err %d done %d\n", fail, rc, o.calls, o.err, done);
        if (done && o.err == 0)
            break;
    }
}

TEST(upload_helper_freed_from_the_done_of_a_finished_put)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    srv *h = srv_start(SRV_ANSWER, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    outcome o = {0};
    o.free_me = up;
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    char inner[512];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/p'/>"
             "<get url='https://a.example/g'/></slot>", h->port);
    answer_slot(&s, req, inner);
    run_until_done(&s, &o);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, 0);
    CHECK_STR(o.url, "https://a.example/g");
    for (int i = 0; i < 5; i++)
        epode_ctx_run_once(s.ctx, 10); /* nothing of the helper's is left on the loop */
    srv_stop(h);
    scripted_free(&s); /* the context's loop frees with no io or timer of ours */
}

TEST(upload_put_host_that_does_not_resolve)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    CHECK_INT(epode_ctx_set_dns_servers(s.ctx, "127.0.0.1:9"), 0); /* nobody answers */
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    answer_slot(&s, req, "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://up.example.invalid/p'/>"
                         "<get url='https://up.example.invalid/g'/></slot>");
    run_until_done(&s, &o);
    CHECK_INT(o.calls, 1);
    CHECK(o.err == EPODE_EDNS || o.err == EPODE_ETIMEDOUT);
    CHECK(strstr(o.text, "up.example.invalid") != NULL);
    epode_upload_free(up);
    scripted_free(&s);
}

TEST(upload_canceled_while_resolving)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    /* a DNS server that never answers: a UDP socket nobody reads */
    int quiet = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in qa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t qlen = sizeof qa;
    CHECK_INT(bind(quiet, (struct sockaddr *)&qa, sizeof qa), 0);
    CHECK_INT(getsockname(quiet, (struct sockaddr *)&qa, &qlen), 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%u", ntohs(qa.sin_port));
    CHECK_INT(epode_ctx_set_dns_servers(s.ctx, servers), 0);
    CHECK_INT(epode_upload_set_service(up, "upload.example.com", 0), 0);
    outcome o = {0};
    unsigned id;
    epode_upload_file_t f = {.filename = "x", .data = "x", .len = 1};
    CHECK_INT(epode_upload_start(up, &f, on_done, NULL, &o, &id), 0);
    scripted_pump(&s);
    epode_stanza_t *req = scripted_next(&s);
    CHECK(req != NULL);
    answer_slot(&s, req, "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://up.example.invalid/p'/>"
                         "<get url='https://up.example.invalid/g'/></slot>");
    uint64_t t0 = epode__now_ms();
    CHECK_INT(epode_upload_cancel(up, id), 0); /* never waits for a resolver */
    CHECK(epode__now_ms() - t0 < 100);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_ECANCELED);
    for (int i = 0; i < 5; i++)
        epode_ctx_run_once(s.ctx, 10);
    CHECK_INT(o.calls, 1);
    epode_upload_free(up);
    scripted_free(&s);
    close(quiet);
}

/* A FIFO nobody writes to: refused at once as not a regular file
 * (EPODE_EINVAL), without waiting for a writer in open() — the alarm
 * turns such a wait into a failure. */
TEST(upload_of_a_fifo_is_refused_without_blocking)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/epode-upload-fifo-%ld", (long)getpid());
    unlink(path);
    CHECK_INT(mkfifo(path, 0600), 0);
    outcome o = {0};
    epode_upload_file_t f = {.path = path};
    alarm(5);
    int rc = epode_upload_start(up, &f, on_done, NULL, &o, NULL);
    alarm(0);
    unlink(path);
    CHECK_INT(rc, EPODE_EINVAL);
    CHECK_INT(o.calls, 0);
    epode_upload_free(up);
    scripted_free(&s);
}

/* A server that reads the request headers only, answers 200 with an
 * endless body and never reads the PUT's body: the answer overflows the
 * response bound before the file went out — not a success. */
typedef struct lying {
    int lfd;
    unsigned port;
    pthread_t t;
    volatile int stop;
} lying;

static void *lying_main(void *arg)
{
    lying *l = arg;
    int fd = accept(l->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[8192];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t k = recv(fd, buf + n, 1, 0);
        if (k <= 0)
            break;
        buf[++n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    const char *ans = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
    send(fd, ans, strlen(ans), MSG_NOSIGNAL);
    static char zeros[16384];
    while (!l->stop && send(fd, zeros, sizeof zeros, MSG_NOSIGNAL) > 0)
        ;
    close(fd);
    return NULL;
}

TEST(upload_a_2xx_before_the_whole_file_went_is_not_a_success)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    lying l = {0};
    l.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_INT(bind(l.lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(l.lfd, (struct sockaddr *)&a, &al);
    l.port = ntohs(a.sin_port);
    listen(l.lfd, 4);
    pthread_create(&l.t, NULL, lying_main, &l);
    size_t len = 16u << 20; /* far more than the socket buffers hold */
    char *data = malloc(len);
    CHECK(data != NULL);
    memset(data, 'A', len);
    outcome o = {0};
    CHECK_INT(epode_upload_set_service(up, "upload.example.com", 0), 0);
    epode_upload_file_t f = {.filename = "x.bin", .data = data, .len = len};
    CHECK_INT(epode_upload_start(up, &f, on_done, NULL, &o, NULL), 0);
    scripted_pump(&s);
    epode_stanza_t *req = scripted_next(&s);
    CHECK(req != NULL);
    char inner[512];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/p'/>"
             "<get url='https://a.example/g'/></slot>", l.port);
    answer_slot(&s, req, inner);
    run_until_done(&s, &o);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_EPROTOCOL);
    CHECK_INT(o.status, 200);
    CHECK_STR(o.url, "");
    epode_upload_free(up);
    l.stop = 1;
    shutdown(l.lfd, SHUT_RDWR);
    pthread_join(l.t, NULL);
    close(l.lfd);
    free(data);
    scripted_free(&s);
}

/* A server answering with a body of 4 bytes a second: under
 * EPODE_UPLOAD_MIN_SPEED for the stall time, the PUT ends with
 * EPODE_ETIMEDOUT (a trickle above one byte a second held it open for
 * the server's whole 48 s answer before). */
TEST(upload_a_put_that_trickles_times_out)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    CHECK_INT(epode_upload_set_timeouts(up, 0, 1000), 0);
    srv *h = srv_start(SRV_TRICKLE, "HTTP/1.1 200 OK\r\nContent-Length: 192\r\n\r\n"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    outcome o = {0};
    epode_stanza_t *req = start_with_service(&s, up, &o);
    CHECK(req != NULL);
    char inner[512];
    snprintf(inner, sizeof inner,
             "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:%u/p'/>"
             "<get url='https://a.example/g'/></slot>", h->port);
    uint64_t t0 = epode__now_ms();
    answer_slot(&s, req, inner);
    run_until_done(&s, &o);
    uint64_t took = epode__now_ms() - t0;
    printf("# the trickling PUT ended after %llu ms\n", (unsigned long long)took);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.err, EPODE_ETIMEDOUT);
    CHECK(took < 8000);
    epode_upload_free(up);
    srv_stop(h);
    scripted_free(&s);
}

/* A done callback that retries after discovery went unanswered: the
 * retry waits for a fresh discovery (one done per timeout), instead of
 * being failed at once with the stale error, again and again. */
static int retry_calls, retry_err;

static void retry_on_done(epode_upload_t *up, unsigned id, const epode_upload_result_t *r,
                          void *user)
{
    (void)id, (void)user;
    retry_calls++;
    retry_err = r->err;
    if (r->err == EPODE_ETIMEDOUT && retry_calls < 1000) {
        epode_upload_file_t f = {.filename = "x.bin", .data = "xyz", .len = 3};
        epode_upload_start(up, &f, retry_on_done, NULL, NULL, NULL);
    }
}

TEST(upload_retried_from_done_after_a_discovery_timeout_waits_for_a_new_one)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    CHECK_INT(epode_upload_set_timeouts(up, 50, 0), 0);
    retry_calls = 0;
    epode_upload_file_t f = {.filename = "x.bin", .data = "xyz", .len = 3};
    CHECK_INT(epode_upload_start(up, &f, retry_on_done, NULL, NULL, NULL), 0);
    uint64_t until = epode__now_ms() + 3000;
    while (!retry_calls && epode__now_ms() < until)
        epode_ctx_run_once(s.ctx, 20);
    CHECK_INT(retry_calls, 1);
    CHECK_INT(retry_err, EPODE_ETIMEDOUT);
    /* the retry asked discovery again */
    scripted_pump(&s);
    int items = 0;
    epode_stanza_t *st;
    while ((st = scripted_next(&s)))
        if (epode_stanza_find_child(st, "query", "http://jabber.org/protocol/disco#items"))
            items++;
    CHECK(items >= 2);
    epode_upload_free(up); /* the retry: canceled, not retried */
    CHECK_INT(retry_calls, 2);
    CHECK_INT(retry_err, EPODE_ECANCELED);
    scripted_free(&s);
}

/* A done callback run by epode_upload_free() that starts another upload:
 * refused with EPODE_ESTATE, one callback only. */
static int during_free_calls, during_free_rc;

static void start_again_on_done(epode_upload_t *up, unsigned id, const epode_upload_result_t *r,
                                void *user)
{
    (void)id, (void)user, (void)r;
    during_free_calls++;
    if (during_free_calls < 1000) {
        epode_upload_file_t f = {.filename = "x.bin", .data = "xyz", .len = 3};
        during_free_rc = epode_upload_start(up, &f, start_again_on_done, NULL, NULL, NULL);
    }
}

TEST(upload_started_from_a_done_callback_during_free_is_refused)
{
    scripted s;
    epode_upload_t *up;
    CHECK_INT(setup(&s, &up), 0);
    during_free_calls = 0;
    epode_upload_file_t f = {.filename = "x.bin", .data = "xyz", .len = 3};
    CHECK_INT(epode_upload_start(up, &f, start_again_on_done, NULL, NULL, NULL), 0);
    epode_upload_free(up);
    CHECK_INT(during_free_calls, 1);
    CHECK_INT(during_free_rc, EPODE_ESTATE);
    scripted_free(&s);
}
