/* tests/unit/test_http.c — lib/http (libcurl on epode's loop) against a
 * tiny HTTP server of the test's own: a thread on a loopback port that
 * reads one request and answers from a script, including hostile ones
 * (closing mid-body, never answering, an endless body, a redirect to
 * http://). The client side runs on epode's loop, built-in or external. */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http/dns.h"
#include "http/http.h"
#include "loop/loop.h"

TEST_MAIN

/* ---- the client side ------------------------------------------------------------- */

typedef struct result {
    int calls;
    int err;
    long status;
    char body[256];
    size_t body_len;
    char headers[1024];
    char text[256];
    int progress_calls;
    uint64_t up_now, up_total;
    uint64_t body_sent;
    int abort_at_progress;
} result;

static void on_done(void *user, int err, const epode__http_resp *resp, const char *text)
{
    result *r = user;
    r->calls++;
    r->err = err;
    r->status = resp->status;
    r->body_len = resp->body_len;
    r->body_sent = resp->body_sent;
    snprintf(r->body, sizeof r->body, "%s", resp->body);
    snprintf(r->headers, sizeof r->headers, "%s", resp->headers);
    snprintf(r->text, sizeof r->text, "%s", text);
}

static int on_progress(void *user, uint64_t up_now, uint64_t up_total, uint64_t down_now,
                       uint64_t down_total)
{
    (void)down_now;
    (void)down_total;
    result *r = user;
    r->progress_calls++;
    r->up_now = up_now;
    r->up_total = up_total;
    return r->abort_at_progress && up_now > 0;
}

/* Runs the built-in loop until the request is done (10 s at most). */
static int run_until_done(epode__loop *l, result *r)
{
    uint64_t until = epode__now_ms() + 10000;
    while (!r->calls && epode__now_ms() < until)
        if (epode__loop_run_once(l, 100) < 0)
            return -1;
    return r->calls;
}

static char url_buf[128];
static const char *url(const srv *s, const char *path)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%u%s", s->port, path);
    return url_buf;
}

typedef struct fixture {
    epode__loop *l;
    epode__http *h;
} fixture;

static int fx_open(fixture *f)
{
    signal(SIGPIPE, SIG_IGN);
    if (epode__loop_new(NULL, &f->l) < 0)
        return -1;
    return epode__http_new(NULL, f->l, &f->h);
}

static void fx_close(fixture *f)
{
    epode__http_free(f->h);
    epode__loop_free(f->l);
}

TEST(http_get_gives_status_headers_and_body)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n"
                                   "Connection: close\r\n\r\nhello");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/a"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(r.calls, 0); /* never inside start() */
    CHECK_INT(epode__http_active(f.h), 1);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "hello");
    CHECK(strstr(r.headers, "X-Test: yes"));
    CHECK(strncmp(s->request, "GET /a HTTP/1.1\r\n", 17) == 0);
    CHECK_INT(epode__http_active(f.h), 0);
    fx_close(&f);
    srv_stop(s);
}

static long read_pattern(void *user, char *buf, size_t len)
{
    size_t *left = user;
    size_t n = len < *left ? len : *left;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + (*left - i) % 26);
    *left -= n;
    return (long)n;
}

TEST(http_put_streams_the_body_with_headers_and_progress)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    size_t left = 300000;
    const char *hdrs[] = {"Authorization: Basic eA==", "Content-Type: text/plain"};
    epode__http_opts o = {.method = "PUT", .url = url(s, "/up"), .allow_http = 1,
                          .headers = hdrs, .nheaders = 2, .read = read_pattern,
                          .read_user = &left, .body_size = 300000, .progress = on_progress,
                          .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, 0);
    CHECK_INT(r.status, 201);
    CHECK(r.progress_calls > 0);
    CHECK_INT(r.up_now, 300000);
    CHECK_INT(r.body_sent, 300000);
    CHECK(strncmp(s->request, "PUT /up HTTP/1.1\r\n", 18) == 0);
    CHECK(strstr(s->request, "\r\nAuthorization: Basic eA==\r\n"));
    CHECK(strstr(s->request, "\r\nContent-Length: 300000\r\n"));
    CHECK(!strcasestr(s->request, "\r\nExpect:"));
    char *body = strstr(s->request, "\r\n\r\n") + 4;
    CHECK_INT(s->request_len - (size_t)(body - s->request), 300000);
    CHECK_INT(body[0], 'a' + 300000 % 26);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_post_from_memory_copies_the_body)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    char body[] = "<body/>";
    epode__http_opts o = {.method = "POST", .url = url(s, "/bosh"), .allow_http = 1,
                          .body = body, .body_len = 7, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    memset(body, 'x', 7); /* copied at start */
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.status, 200);
    CHECK(strstr(s->request, "\r\n\r\n<body/>"));
    fx_close(&f);
    srv_stop(s);
}

TEST(http_server_error_is_a_response)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nfail");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, 0);
    CHECK_INT(r.status, 500);
    CHECK_STR(r.body, "fail");
    fx_close(&f);
    srv_stop(s);
}

TEST(http_server_closing_mid_body_is_eof)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_EEOF);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_slow_server_times_out)
{
    srv *s = srv_start(SRV_SILENT, NULL);
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .timeout_ms = 300,
                          .done = on_done, .user = &r};
    uint64_t t0 = epode__now_ms();
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_ETIMEDOUT);
    CHECK(epode__now_ms() - t0 < 3000);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_huge_response_is_bounded)
{
    srv *s = srv_start(SRV_ENDLESS, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .max_body = 65536,
                          .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_ELIMIT);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_huge_headers_are_bounded)
{
    static char answer[40000];
    strcpy(answer, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 1000; i++)
        strcat(answer, "X-Pad: 0123456789012345678901\r\n");
    strcat(answer, "Content-Length: 0\r\n\r\n");
    srv *s = srv_start(SRV_ANSWER, answer);
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_ELIMIT);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_redirect_to_http_is_refused)
{
    static char answer[256];
    srv *s = srv_start(SRV_ANSWER, answer);
    snprintf(answer, sizeof answer,
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%u/other\r\n"
             "Content-Length: 0\r\n\r\n", s->port);
    s->answer_len = strlen(answer);
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .max_redirects = 3,
                          .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_EPROTOCOL);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_redirect_not_followed_by_default)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 302 Found\r\nLocation: https://example.test/\r\n"
                                   "Content-Length: 0\r\n\r\n");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, 0);
    CHECK_INT(r.status, 302);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_refuses_cleartext_and_header_injection_at_start)
{
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = "http://127.0.0.1:1/", .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), EPODE_EPROTOCOL);
    o.url = "ftp://127.0.0.1/x";
    o.allow_http = 1;
    CHECK_INT(epode__http_start(f.h, &o, NULL), EPODE_EPROTOCOL);
    o.url = "https://127.0.0.1:1/";
    const char *bad[] = {"X-A: b\r\nX-Injected: 1"};
    o.headers = bad;
    o.nheaders = 1;
    CHECK_INT(epode__http_start(f.h, &o, NULL), EPODE_EINVAL);
    const char *bad2[] = {"X-A: b\nc"};
    o.headers = bad2;
    CHECK_INT(epode__http_start(f.h, &o, NULL), EPODE_EINVAL);
    o.headers = NULL;
    o.nheaders = 0;
    o.url = "https://127.0.0.1:1/\r\nX: y";
    CHECK_INT(epode__http_start(f.h, &o, NULL), EPODE_EINVAL);
    o.url = NULL;
    CHECK_INT(epode__http_start(f.h, &o, NULL), EPODE_EINVAL);
    CHECK_INT(epode__http_active(f.h), 0);
    CHECK_INT(r.calls, 0);
    fx_close(&f);
}

TEST(http_https_to_a_cleartext_server_fails_with_tls_error)
{
    srv *s = srv_start(SRV_AT_ONCE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    char u[96];
    snprintf(u, sizeof u, "https://127.0.0.1:%u/", s->port);
    epode__http_opts o = {.url = u, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK(r.err == EPODE_ETLS || r.err == EPODE_ENET || r.err == EPODE_EEOF);
    CHECK(r.err != 0);
    fx_close(&f);
    srv_stop(s);
}

TEST(http_cancel_before_and_during_transfer)
{
    srv *s = srv_start(SRV_SILENT, NULL);
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_req *req = NULL;
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, &req), 0);
    for (int i = 0; i < 5; i++)
        epode__loop_run_once(f.l, 20);
    epode__http_cancel(req);
    CHECK_INT(epode__http_active(f.h), 0);
    for (int i = 0; i < 5; i++)
        epode__loop_run_once(f.l, 20);
    CHECK_INT(r.calls, 0);
    /* and one freed with the client while in flight */
    CHECK_INT(epode__http_start(f.h, &o, &req), 0);
    fx_close(&f);
    CHECK_INT(r.calls, 0);
    srv_stop(s);
}

TEST(http_progress_callback_can_abort)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {.abort_at_progress = 1};
    size_t left = 2000000;
    epode__http_opts o = {.method = "PUT", .url = url(s, "/up"), .allow_http = 1,
                          .read = read_pattern, .read_user = &left, .body_size = 2000000,
                          .progress = on_progress, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_ECANCELED);
    fx_close(&f);
    srv_stop(s);
}

/* The application's loop: poll(2) over what the watch callback said. */
typedef struct app_loop {
    struct { int fd; unsigned ev; } fds[16];
    int nfds;
    long timeout;
    int watch_calls;
} app_loop;

static void app_watch(void *user, int fd, unsigned events, void *fd_user)
{
    (void)fd_user;
    app_loop *a = user;
    a->watch_calls++;
    for (int i = 0; i < a->nfds; i++)
        if (a->fds[i].fd == fd) {
            if (events)
                a->fds[i].ev = events;
            else
                a->fds[i] = a->fds[--a->nfds];
            return;
        }
    if (events && a->nfds < 16) {
        a->fds[a->nfds].fd = fd;
        a->fds[a->nfds++].ev = events;
    }
}

static void app_timer(void *user, long ms)
{
    ((app_loop *)user)->timeout = ms;
}

TEST(http_runs_on_an_external_loop)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\next");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    app_loop a = {.timeout = -1};
    CHECK_INT(epode__loop_set_external(f.l, app_watch, app_timer, &a), 0);
    int base = a.nfds; /* the wakeup fd */
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = on_done, .user = &r};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(a.timeout, 0); /* curl wants to act at once: via our timer */
    uint64_t until = epode__now_ms() + 10000;
    int saw_curl_fd = 0;
    while (!r.calls && epode__now_ms() < until) {
        struct pollfd p[16];
        for (int i = 0; i < a.nfds; i++)
            p[i] = (struct pollfd){.fd = a.fds[i].fd,
                                   .events = (short)(((a.fds[i].ev & EPODE__READ) ? POLLIN : 0) |
                                                     ((a.fds[i].ev & EPODE__WRITE) ? POLLOUT : 0))};
        saw_curl_fd |= a.nfds > base;
        int n = poll(p, (nfds_t)a.nfds, a.timeout < 0 ? 100 : (int)a.timeout);
        if (n == 0) {
            epode__loop_process(f.l, -1, 0);
            continue;
        }
        for (int i = 0; i < a.nfds && n > 0; i++)
            if (p[i].revents) {
                unsigned ev = ((p[i].revents & POLLIN) ? EPODE__READ : 0) |
                              ((p[i].revents & POLLOUT) ? EPODE__WRITE : 0);
                if (p[i].revents & (POLLERR | POLLHUP))
                    ev = EPODE__READ | EPODE__WRITE;
                epode__loop_process(f.l, p[i].fd, ev);
                break; /* the set may have changed */
            }
    }
    CHECK_INT(r.calls, 1);
    CHECK(saw_curl_fd);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "ext");
    fx_close(&f);
    CHECK_INT(a.nfds, 0); /* everything announced removed, the wakeup fd too */
    srv_stop(s);
}

/* A done callback that frees the client (as an application freeing its
 * upload helper from its own callback would). */
typedef struct free_in_done {
    result r;
    epode__http **h;
} free_in_done;

static void done_and_free(void *user, int err, const epode__http_resp *resp, const char *text)
{
    free_in_done *x = user;
    on_done(&x->r, err, resp, text);
    epode__http_free(*x->h);
    *x->h = NULL;
}

TEST(http_client_freed_from_a_done_callback)
{
    srv *s = srv_start(SRV_ANSWER, "HTTP/1.1 204 No Content\r\n\r\n");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    free_in_done x = {.h = &f.h};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .done = done_and_free, .user = &x};
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &x.r), 1);
    CHECK_INT(x.r.status, 204);
    CHECK(f.h == NULL);
    epode__loop_free(f.l);
    srv_stop(s);
}

/* ---- address lookups (lib/http/dns.c) ----------------------------------------- */

typedef struct looked {
    int calls, status;
    char addrs[256];
    epode__http_dns **free_me;
} looked;

static void on_looked(void *user, int status, const char *addrs)
{
    looked *k = user;
    k->calls++;
    k->status = status;
    snprintf(k->addrs, sizeof k->addrs, "%s", addrs ? addrs : "");
    if (k->free_me) {
        epode__http_dns_free(*k->free_me);
        *k->free_me = NULL;
    }
}

static int run_until_looked(epode__loop *l, looked *k)
{
    uint64_t until = epode__now_ms() + 10000;
    while (!k->calls && epode__now_ms() < until)
        epode__loop_run_once(l, 100);
    return k->calls;
}

TEST(http_dns_finds_localhost_on_the_loop)
{
    epode__loop *l;
    CHECK_INT(epode__loop_new(NULL, &l), 0);
    epode__http_dns *d;
    CHECK_INT(epode__http_dns_new(NULL, l, NULL, &d), 0);
    looked k = {0};
    CHECK_INT(epode__http_dns_lookup(d, "localhost", on_looked, &k, NULL), 0);
    CHECK_INT(k.calls, 0); /* /etc/hosts answers at once, but never inside lookup() */
    CHECK_INT(run_until_looked(l, &k), 1);
    CHECK_INT(k.status, 0);
    CHECK(strstr(k.addrs, "127.0.0.1") != NULL);
    looked n = {0};
    CHECK_INT(epode__http_dns_lookup(d, "127.0.0.1", on_looked, &n, NULL), 0);
    CHECK_INT(run_until_looked(l, &n), 1);
    CHECK_STR(n.addrs, "127.0.0.1");
    CHECK_INT(epode__http_dns_lookup(d, "", on_looked, &n, NULL), EPODE_EINVAL);
    epode__http_dns_free(d);
    epode__loop_free(l);
}

TEST(http_dns_reports_an_unreachable_server_and_cancels)
{
    epode__loop *l;
    CHECK_INT(epode__loop_new(NULL, &l), 0);
    epode__http_dns *d;
    /* a DNS "server" on a loopback port where nothing listens */
    CHECK_INT(epode__http_dns_new(NULL, l, "127.0.0.1:9", &d), 0);
    looked k = {0}, c = {0};
    epode__http_lookup *q;
    CHECK_INT(epode__http_dns_lookup(d, "upload.example.invalid", on_looked, &k, NULL), 0);
    CHECK_INT(epode__http_dns_lookup(d, "other.example.invalid", on_looked, &c, &q), 0);
    epode__http_dns_cancel(q);
    CHECK_INT(run_until_looked(l, &k), 1);
    CHECK(k.status == EPODE_EDNS || k.status == EPODE_ETIMEDOUT);
    for (int i = 0; i < 5; i++)
        epode__loop_run_once(l, 10);
    CHECK_INT(c.calls, 0);
    /* freed with a lookup pending: no callback, nothing left on the loop */
    CHECK_INT(epode__http_dns_lookup(d, "third.example.invalid", on_looked, &c, NULL), 0);
    epode__http_dns_free(d);
    CHECK_INT(c.calls, 0);
    CHECK_INT(epode__http_dns_new(NULL, l, "", &d), EPODE_EINVAL);
    epode__loop_free(l);
}

TEST(http_dns_freed_from_its_callback)
{
    epode__loop *l;
    CHECK_INT(epode__loop_new(NULL, &l), 0);
    epode__http_dns *d;
    CHECK_INT(epode__http_dns_new(NULL, l, NULL, &d), 0);
    looked a = {.free_me = &d}, b = {0};
    CHECK_INT(epode__http_dns_lookup(d, "localhost", on_looked, &a, NULL), 0);
    CHECK_INT(epode__http_dns_lookup(d, "127.0.0.1", on_looked, &b, NULL), 0);
    uint64_t until = epode__now_ms() + 5000;
    while (!a.calls && !b.calls && epode__now_ms() < until)
        epode__loop_run_once(l, 50);
    for (int i = 0; i < 5; i++)
        epode__loop_run_once(l, 10);
    CHECK(d == NULL || b.calls == 1);
    if (d)
        epode__http_dns_free(d); /* b answered first */
    CHECK(a.calls + b.calls >= 1);
    epode__loop_free(l);
}

/* A body trickling at 4 bytes a second, under min_speed for stall_ms:
 * EPODE_ETIMEDOUT, in about stall_ms (not after the whole 10 s body). */
TEST(http_min_speed_ends_a_trickle)
{
    srv *s = srv_start(SRV_TRICKLE, "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    fixture f;
    CHECK_INT(fx_open(&f), 0);
    result r = {0};
    epode__http_opts o = {.url = url(s, "/"), .allow_http = 1, .stall_ms = 1000,
                          .min_speed = 100, .done = on_done, .user = &r};
    uint64_t t0 = epode__now_ms();
    CHECK_INT(epode__http_start(f.h, &o, NULL), 0);
    CHECK_INT(run_until_done(f.l, &r), 1);
    CHECK_INT(r.err, EPODE_ETIMEDOUT);
    CHECK(epode__now_ms() - t0 < 5000);
    fx_close(&f);
    srv_stop(s);
}
