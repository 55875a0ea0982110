/* tests/unit/test_proxy.c — the transport stack and the proxies (SOCKS5,
 * HTTP CONNECT) against scripted proxies on a memory pair: the exact
 * bytes sent, the tunnel passing bytes through (also the server's bytes
 * that came with the proxy's reply), and hostile proxies — a wrong
 * version byte, refused credentials, a truncated reply, oversized HTTP
 * headers, 407 and 403 — each a clear error, nothing leaked. */
#include "test.h"

#include <stddef.h>

#include "epode/transport.h"
#include "transport/transport.h"
#include <epode.h>

TEST_MAIN

static long live, fail_at = -1, n_allocs;

static void *t_malloc(size_t size, void *user)
{
    (void)user;
    if (fail_at >= 0 && n_allocs++ == fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        live++;
    return p;
}

static void *t_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    if (fail_at >= 0 && n_allocs++ == fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        live++;
    return p;
}

static void t_free(void *ptr, void *user)
{
    (void)user;
    if (ptr)
        live--;
    free(ptr);
}

static const epode_mem_t mem = {t_malloc, t_realloc, t_free, NULL};

/* The proxy under test over one end of a memory pair; *peer is the
 * scripted proxy's end. */
static epode__transport *make(const char *url, const char *host, unsigned port,
                              epode__transport **peer)
{
    epode__proxy *p;
    char why[200];
    epode__transport *a, *t;
    if (epode__proxy_parse(&mem, url, &p, why, sizeof why) < 0)
        return NULL;
    if (epode__memory_pair(&mem, &a, peer) < 0)
        return NULL;
    epode__stack_config cfg = {.proxy = p, .host = host, .port = port};
    if (epode__stack_new(&mem, &cfg, a, &t) < 0)
        return NULL;
    epode__proxy_free(&mem, p); /* copied by the layer */
    return t;
}

/* Reads what the client sent to the scripted proxy so far. */
static size_t got(epode__transport *peer, unsigned char *buf, size_t len)
{
    long n = epode__transport_read(peer, buf, len);
    return n > 0 ? (size_t)n : 0;
}

static void say(epode__transport *peer, const void *data, size_t len)
{
    epode__transport_write(peer, data, len);
}

static int open_(epode__transport *t, char *why, size_t len)
{
    return epode__stack_open(t, why, len);
}

/* ---- URLs ----------------------------------------------------------------- */

TEST(proxy_urls_parse)
{
    epode__proxy *p;
    char why[200];
    CHECK_INT(epode__proxy_parse(&mem, "socks5://127.0.0.1:9050", &p, why, sizeof why), 0);
    CHECK_INT(p->kind, EPODE__PROXY_SOCKS5);
    CHECK_STR(p->host, "127.0.0.1");
    CHECK_INT(p->port, 9050);
    CHECK(!p->user && !p->pass);
    epode__proxy_free(&mem, p);
    CHECK_INT(epode__proxy_parse(&mem, "SOCKS5h://u%40x:p%3Aw@[::1]", &p, why, sizeof why), 0);
    CHECK_STR(p->host, "::1");
    CHECK_INT(p->port, 1080);
    CHECK_STR(p->user, "u@x");
    CHECK_STR(p->pass, "p:w");
    epode__proxy_free(&mem, p);
    CHECK_INT(epode__proxy_parse(&mem, "http://user:pw@proxy.example:3128/", &p, why, sizeof why), 0);
    CHECK_INT(p->kind, EPODE__PROXY_HTTP);
    CHECK_STR(p->host, "proxy.example");
    CHECK_INT(p->port, 3128);
    CHECK_STR(p->user, "user");
    CHECK_STR(p->pass, "pw");
    epode__proxy_free(&mem, p);
    CHECK_INT(epode__proxy_parse(&mem, "http://proxy", &p, why, sizeof why), 0);
    CHECK_INT(p->port, 8080);
    epode__proxy_free(&mem, p);
    CHECK_INT(live, 0);
}

TEST(proxy_bad_urls_say_why)
{
    static const char *const bad[] = {
        "socks4://h:1", "h:1080", "socks5://", "socks5://:1080", "socks5://h:0",
        "socks5://h:65536", "socks5://h:12x", "http://h:80/path", "http://h?x", "socks5://::1:80",
        "socks5://u:p%4@h", "socks5://u:p%00@h", "socks5://:p@h", "socks5://[::1", "socks5://h:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        epode__proxy *p = (epode__proxy *)1;
        char why[200] = "";
        int rc = epode__proxy_parse(&mem, bad[i], &p, why, sizeof why);
        if (rc != EPODE_EINVAL)
            printf("# %s\n", bad[i]);
        CHECK_INT(rc, EPODE_EINVAL);
        CHECK(p == NULL);
        CHECK(why[0] != '\0');
    }
    /* a user name past SOCKS5's 255 bytes */
    char url[400] = "socks5://";
    memset(url + 9, 'u', 300);
    strcpy(url + 309, ":p@h");
    epode__proxy *p;
    char why[200] = "";
    CHECK_INT(epode__proxy_parse(&mem, url, &p, why, sizeof why), EPODE_EINVAL);
    CHECK(strstr(why, "255") != NULL);
    /* the password never appears in the reason */
    CHECK_INT(epode__proxy_parse(&mem, "socks5://u:sekrit@h:99999", &p, why, sizeof why),
              EPODE_EINVAL);
    CHECK(strstr(why, "sekrit") == NULL);
    CHECK_INT(live, 0);
}

TEST(hostport_parse)
{
    char h[64];
    unsigned port;
    CHECK_INT(epode__parse_hostport("a.example", 9, h, sizeof h, &port), 0);
    CHECK_STR(h, "a.example");
    CHECK_INT(port, 0);
    CHECK_INT(epode__parse_hostport("[2001:db8::1]:5223", 18, h, sizeof h, &port), 0);
    CHECK_STR(h, "2001:db8::1");
    CHECK_INT(port, 5223);
    CHECK_INT(epode__parse_hostport("2001:db8::1", 11, h, sizeof h, &port), -1);
    CHECK_INT(epode__parse_hostport("h:65536", 7, h, sizeof h, &port), -1);
    CHECK_INT(epode__parse_hostport("[]:1", 4, h, sizeof h, &port), -1);
    CHECK_INT(epode__parse_hostport("[::1]x", 6, h, sizeof h, &port), -1);
    CHECK_INT(epode__parse_hostport("h", 1, h, 1, &port), -1); /* does not fit */
}

/* ---- SOCKS5 --------------------------------------------------------------- */

TEST(socks5_no_auth_passes_the_name_and_tunnels)
{
    epode__transport *peer, *t = make("socks5://127.0.0.1:1080", "xmpp.example", 5222, &peer);
    CHECK(t);
    char why[200];
    unsigned char buf[600];
    CHECK_INT(open_(t, why, sizeof why), EPODE_EAGAIN);
    CHECK(epode__transport_wants(t) & EPODE__READ);
    CHECK_INT(got(peer, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "\x05\x01\x00", 3) == 0);
    say(peer, "\x05\x00", 2);
    CHECK_INT(open_(t, why, sizeof why), EPODE_EAGAIN);
    size_t n = got(peer, buf, sizeof buf);
    /* CONNECT by name (ATYP 3): no DNS here */
    CHECK_INT(n, 5 + 12 + 2);
    CHECK(memcmp(buf, "\x05\x01\x00\x03\x0c" "xmpp.example" "\x14\x66", n) == 0);
    /* the reply, split, then the server's first bytes */
    say(peer, "\x05\x00\x00\x01\x7f", 5);
    CHECK_INT(open_(t, why, sizeof why), EPODE_EAGAIN);
    say(peer, "\x00\x00\x01\x04\x38<stream", 12);
    CHECK_INT(open_(t, why, sizeof why), 0);
    CHECK_INT(epode__transport_pending(t), 7); /* the server's bytes, still below */
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 7);
    CHECK(memcmp(buf, "<stream", 7) == 0);
    CHECK_INT(epode__transport_write(t, "<hello/>", 8), 8);
    CHECK_INT(got(peer, buf, sizeof buf), 8);
    CHECK(memcmp(buf, "<hello/>", 8) == 0);
    epode_transport_facts_t f = {.size = sizeof f};
    epode__stack_facts(t, &f);
    CHECK_INT(f.proxied, 1);
    CHECK_INT(f.tls_version, 0);
    CHECK(epode__stack_tls(t) == NULL);
    epode__transport_free(t);
    CHECK_INT(epode__transport_read(peer, buf, sizeof buf), 0); /* closed */
    epode__transport_free(peer);
    CHECK_INT(live, 0);
}

TEST(socks5_ip_literals_go_as_addresses)
{
    epode__transport *peer, *t = make("socks5://127.0.0.1", "192.0.2.7", 5223, &peer);
    CHECK(t);
    char why[200];
    unsigned char buf[64];
    open_(t, why, sizeof why);
    got(peer, buf, sizeof buf);
    say(peer, "\x05\x00", 2);
    open_(t, why, sizeof why);
    CHECK_INT(got(peer, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "\x05\x01\x00\x01\xc0\x00\x02\x07\x14\x67", 10) == 0);
    epode__transport_free(t);
    epode__transport_free(peer);

    t = make("socks5://127.0.0.1", "2001:db8::1", 5222, &peer);
    open_(t, why, sizeof why);
    got(peer, buf, sizeof buf);
    say(peer, "\x05\x00", 2);
    open_(t, why, sizeof why);
    CHECK_INT(got(peer, buf, sizeof buf), 22);
    CHECK_INT(buf[3], 4);
    /* a reply with a domain-name address: read exactly to its end */
    say(peer, "\x05\x00\x00\x03\x03" "abc" "\x00\x01" "X", 11);
    CHECK_INT(open_(t, why, sizeof why), 0);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 1);
    CHECK_INT(buf[0], 'X');
    epode__transport_free(t);
    epode__transport_free(peer);
    CHECK_INT(live, 0);
}

TEST(socks5_user_password)
{
    epode__transport *peer, *t = make("socks5://alice:s3cret@127.0.0.1", "x.example", 5222, &peer);
    CHECK(t);
    char why[200];
    unsigned char buf[600];
    open_(t, why, sizeof why);
    CHECK_INT(got(peer, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "\x05\x02\x00\x02", 4) == 0);
    say(peer, "\x05\x02", 2);
    CHECK_INT(open_(t, why, sizeof why), EPODE_EAGAIN);
    CHECK_INT(got(peer, buf, sizeof buf), 3 + 5 + 6);
    CHECK(memcmp(buf, "\x01\x05" "alice" "\x06" "s3cret", 14) == 0);
    say(peer, "\x01\x00", 2);
    CHECK_INT(open_(t, why, sizeof why), EPODE_EAGAIN);
    CHECK_INT(got(peer, buf, sizeof buf), 5 + 9 + 2);
    say(peer, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    CHECK_INT(open_(t, why, sizeof why), 0);
    epode__transport_free(t);
    epode__transport_free(peer);
    CHECK_INT(live, 0);
}

/* One hostile exchange: the client's greeting answered with `reply`
 * (after a no-auth method choice when `after_method`), then EOF when
 * `eof`. Returns the open's code; words in why. */
static int socks_hostile(const char *url, const char *reply, size_t len, int after_method,
                         int eof, char *why, size_t why_len)
{
    epode__transport *peer, *t = make(url, "x.example", 5222, &peer);
    unsigned char buf[600];
    open_(t, why, why_len);
    got(peer, buf, sizeof buf);
    if (after_method) {
        say(peer, "\x05\x00", 2);
        open_(t, why, why_len);
        got(peer, buf, sizeof buf);
    }
    say(peer, reply, len);
    if (eof)
        epode__transport_shutdown(peer);
    int rc = open_(t, why, why_len);
    /* sticky: the same again, and reads and writes say so too */
    if (rc != EPODE_EAGAIN && open_(t, why, why_len) != rc)
        rc = 12345;
    if (rc != EPODE_EAGAIN && epode__transport_read(t, buf, sizeof buf) != rc)
        rc = 12346;
    epode__transport_free(t);
    epode__transport_free(peer);
    return rc;
}

TEST(socks5_hostile_proxies)
{
    char why[300];
    /* an HTTP server where a SOCKS5 proxy was expected */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "HTTP/1.1 400", 12, 0, 0, why, sizeof why),
              EPODE_ENET);
    CHECK(strstr(why, "SOCKS5 proxy 127.0.0.1:1080: not a SOCKS5 proxy") != NULL);
    /* no acceptable method: credentials wanted */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05\xff", 2, 0, 0, why, sizeof why),
              EPODE_EAUTH);
    CHECK(strstr(why, "requires authentication") != NULL);
    /* user/password refused */
    {
        epode__transport *peer, *t = make("socks5://u:bad@127.0.0.1", "x.example", 5222, &peer);
        unsigned char buf[600];
        open_(t, why, sizeof why);
        got(peer, buf, sizeof buf);
        say(peer, "\x05\x02", 2);
        open_(t, why, sizeof why);
        got(peer, buf, sizeof buf);
        say(peer, "\x01\x01", 2);
        CHECK_INT(open_(t, why, sizeof why), EPODE_EAUTH);
        CHECK(strstr(why, "refused our user name and password") != NULL);
        epode__transport_free(t);
        epode__transport_free(peer);
    }
    /* a method we did not offer */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05\x02", 2, 0, 0, why, sizeof why),
              EPODE_ENET);
    /* reply codes named */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05\x04\x00\x01\0\0\0\0\0\0", 10, 1, 0, why,
                            sizeof why),
              EPODE_ENET);
    CHECK(strstr(why, "could not connect to x.example:5222: host unreachable (reply 4)") != NULL);
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05\x63\x00\x01\x00", 5, 1, 0, why, sizeof why),
              EPODE_ENET);
    CHECK(strstr(why, "unknown reply code (reply 99)") != NULL);
    /* wrong version in the CONNECT reply */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x04\x00\x00\x01\0", 5, 1, 0, why, sizeof why),
              EPODE_ENET);
    /* an unknown address type */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05\x00\x00\x07\0", 5, 1, 0, why, sizeof why),
              EPODE_ENET);
    CHECK(strstr(why, "unknown address type") != NULL);
    /* truncated: the reply stops half-way and the proxy hangs up */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05\x00\x00\x01\x7f\x00", 6, 1, 1, why,
                            sizeof why),
              EPODE_ENET);
    CHECK(strstr(why, "closed the connection during its handshake") != NULL);
    /* truncated without EOF: still waiting, nothing read past */
    CHECK_INT(socks_hostile("socks5://127.0.0.1", "\x05", 1, 0, 0, why, sizeof why), EPODE_EAGAIN);
    CHECK_INT(live, 0);
}

/* ---- HTTP CONNECT ----------------------------------------------------------- */

static int http_exchange(const char *url, const char *reply, size_t len, char *sent,
                         size_t sent_len, char *why, size_t why_len, char *after, size_t after_len)
{
    epode__transport *peer, *t = make(url, "xmpp.example", 5222, &peer);
    open_(t, why, why_len);
    size_t n = got(peer, (unsigned char *)sent, sent_len - 1);
    sent[n] = '\0';
    /* the reply a byte at a time for the first 20, then the rest */
    size_t i = 0;
    int rc = EPODE_EAGAIN;
    for (; i < len && i < 20 && rc == EPODE_EAGAIN; i++) {
        say(peer, reply + i, 1);
        rc = open_(t, why, why_len);
    }
    if (rc == EPODE_EAGAIN && i < len) {
        /* large replies in pieces the memory pair takes */
        for (size_t off = i; off < len; off += 4096) {
            say(peer, reply + off, len - off < 4096 ? len - off : 4096);
            rc = open_(t, why, why_len);
            if (rc != EPODE_EAGAIN)
                break;
        }
    }
    if (after) {
        after[0] = '\0';
        if (rc == 0) {
            long r = epode__transport_read(t, after, after_len - 1);
            after[r > 0 ? r : 0] = '\0';
        }
    }
    epode__transport_free(t);
    epode__transport_free(peer);
    return rc;
}

TEST(http_connect_tunnels_and_keeps_the_bytes_after_the_headers)
{
    char sent[700], why[300], after[64];
    static const char reply[] = "HTTP/1.1 200 Connection established\r\n"
                                "Proxy-Agent: test\r\n\r\n<?xml";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", reply, sizeof reply - 1, sent, sizeof sent,
                            why, sizeof why, after, sizeof after),
              0);
    CHECK_STR(sent, "CONNECT xmpp.example:5222 HTTP/1.1\r\nHost: xmpp.example:5222\r\n\r\n");
    CHECK_STR(after, "<?xml");
    /* HTTP/1.0 and Basic credentials */
    static const char reply10[] = "HTTP/1.0 200 OK\r\n\r\n";
    CHECK_INT(http_exchange("http://Aladdin:open%20sesame@127.0.0.1:3128", reply10,
                            sizeof reply10 - 1, sent, sizeof sent, why, sizeof why, after,
                            sizeof after),
              0);
    CHECK(strstr(sent, "\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"));
    CHECK_STR(after, "");
    CHECK_INT(live, 0);
}

TEST(http_connect_refusals)
{
    char sent[700], why[300];
    static const char r407[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
                               "Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", r407, sizeof r407 - 1, sent, sizeof sent,
                            why, sizeof why, NULL, 0),
              EPODE_EAUTH);
    CHECK(strstr(why, "HTTP proxy 127.0.0.1:3128: requires authentication") != NULL);
    CHECK(strstr(why, "407 Proxy Authentication Required") != NULL);
    CHECK_INT(http_exchange("http://u:p@127.0.0.1:3128", r407, sizeof r407 - 1, sent, sizeof sent,
                            why, sizeof why, NULL, 0),
              EPODE_EAUTH);
    CHECK(strstr(why, "refused our user name and password") != NULL);
    static const char r403[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", r403, sizeof r403 - 1, sent, sizeof sent,
                            why, sizeof why, NULL, 0),
              EPODE_ENET);
    CHECK(strstr(why, "refused to connect to xmpp.example:5222 (403 Forbidden)") != NULL);
    /* control characters in the reason are not passed on */
    static const char rbell[] = "HTTP/1.1 502 Bad\aGateway\r\n\r\n";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", rbell, sizeof rbell - 1, sent, sizeof sent,
                            why, sizeof why, NULL, 0),
              EPODE_ENET);
    CHECK(strstr(why, "(502 Bad?Gateway)") != NULL);
    /* not HTTP at all */
    static const char junk[] = "\x05\x00\x00\x01garbage\r\n\r\n";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", junk, sizeof junk - 1, sent, sizeof sent,
                            why, sizeof why, NULL, 0),
              EPODE_ENET);
    CHECK(strstr(why, "not an HTTP proxy") != NULL);
    /* a reply shorter than a status line: its words never go past it */
    static const char tiny[] = "Z\r\n\r\n";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", tiny, sizeof tiny - 1, sent, sizeof sent,
                            why, sizeof why, NULL, 0),
              EPODE_ENET);
    CHECK(strstr(why, "not an HTTP proxy (its reply starts \"Z??\?\?\")") != NULL);
    static const char bad_status[] = "HTTP/1.1 2x0 OK\r\n\r\n";
    CHECK_INT(http_exchange("http://127.0.0.1:3128", bad_status, sizeof bad_status - 1, sent,
                            sizeof sent, why, sizeof why, NULL, 0),
              EPODE_ENET);
    /* the proxy hangs up before the headers end */
    {
        epode__transport *peer, *t = make("http://127.0.0.1", "x.example", 5222, &peer);
        unsigned char buf[600];
        open_(t, why, sizeof why);
        got(peer, buf, sizeof buf);
        say(peer, "HTTP/1.1 200 OK\r\n", 17);
        epode__transport_shutdown(peer);
        CHECK_INT(open_(t, why, sizeof why), EPODE_ENET);
        CHECK(strstr(why, "closed the connection before answering CONNECT") != NULL);
        epode__transport_free(t);
        epode__transport_free(peer);
    }
    CHECK_INT(live, 0);
}

TEST(http_connect_with_the_longest_credentials_set_proxy_takes)
{
    /* 255 bytes of user and 255 of password are accepted by the URL
     * parser: the CONNECT request must have room for them (it had not,
     * and every attempt failed with EINVAL). */
    char url[700], user[256], pass[256], sent[1600], why[300];
    memset(user, 'u', 255);
    user[255] = '\0';
    memset(pass, 'p', 255);
    pass[255] = '\0';
    snprintf(url, sizeof url, "http://%s:%s@127.0.0.1:3128", user, pass);
    static const char ok[] = "HTTP/1.1 200 OK\r\n\r\n";
    CHECK_INT(http_exchange(url, ok, sizeof ok - 1, sent, sizeof sent, why, sizeof why, NULL, 0),
              0);
    CHECK(strstr(sent, "\r\nProxy-Authorization: Basic dXV1") != NULL);
    CHECK(strlen(sent) > 700);
    CHECK_INT(live, 0);
}

TEST(http_connect_oversized_headers_are_refused)
{
    char sent[700], why[300];
    size_t len = EPODE__PROXY_HTTP_MAX + 100;
    char *reply = malloc(len);
    CHECK(reply);
    memcpy(reply, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(reply + 20, 'a', len - 20); /* a header that never ends */
    int rc = http_exchange("http://127.0.0.1:3128", reply, len, sent, sizeof sent, why,
                           sizeof why, NULL, 0);
    free(reply);
    CHECK_INT(rc, EPODE_ENET);
    CHECK(strstr(why, "exceed 8192 bytes") != NULL);
    CHECK_INT(live, 0);
}

/* ---- the stack ---------------------------------------------------------------- */

TEST(stack_without_layers_is_its_bottom)
{
    epode__transport *a, *b, *t;
    CHECK_INT(epode__memory_pair(&mem, &a, &b), 0);
    epode__stack_config cfg = {.host = "x", .port = 1};
    CHECK_INT(epode__stack_new(&mem, &cfg, a, &t), 0);
    CHECK(t == a);
    char why[100];
    CHECK_INT(epode__stack_open(t, why, sizeof why), 0);
    epode_transport_facts_t f = {.size = sizeof f, .tls_verified = 1};
    epode__stack_facts(t, &f);
    CHECK_INT(f.proxied, 0);
    CHECK_INT(f.tls_verified, 0); /* no TLS: nothing verified */
    CHECK_INT(f.framing, EPODE_FRAMING_STREAM);
    CHECK_STR(epode_transport_framing_name(EPODE_FRAMING_MESSAGE), "message");
    CHECK(epode_transport_framing_name((epode_transport_framing_t)7) == NULL);
    epode__transport_free(t);
    epode__transport_free(b);
    CHECK_INT(live, 0);
}

TEST(stack_proxy_for_a_host_too_long_is_refused_and_the_bottom_kept)
{
    epode__transport *a, *b, *t = NULL;
    epode__proxy *p;
    char why[100], host[300];
    memset(host, 'h', 299);
    host[299] = '\0';
    CHECK_INT(epode__proxy_parse(&mem, "socks5://127.0.0.1", &p, why, sizeof why), 0);
    CHECK_INT(epode__memory_pair(&mem, &a, &b), 0);
    epode__stack_config cfg = {.proxy = p, .host = host, .port = 5222};
    CHECK_INT(epode__stack_new(&mem, &cfg, a, &t), EPODE_EINVAL);
    CHECK(t == NULL);
    epode__transport_free(a); /* still the caller's */
    epode__transport_free(b);
    epode__proxy_free(&mem, p);
    CHECK_INT(live, 0);
}

/* ---- an application's transport through the public API ------------------------ */

typedef struct pipe_app {
    epode__transport *end, *peer; /* the application's pipe: a memory pair */
    int opens, closes, fail_open;
    char host[64];
    unsigned port;
} pipe_app;

static int pa_open(void *user, const char *host, unsigned port)
{
    pipe_app *p = user;
    p->opens++;
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    if (p->fail_open)
        return EPODE_ENET;
    return epode__memory_pair(NULL, &p->end, &p->peer);
}

static long pa_read(void *user, void *buf, size_t len)
{
    return epode__transport_read(((pipe_app *)user)->end, buf, len);
}

static long pa_write(void *user, const void *buf, size_t len)
{
    return epode__transport_write(((pipe_app *)user)->end, buf, len);
}

static void pa_close(void *user)
{
    pipe_app *p = user;
    p->closes++;
    epode__transport_free(p->end);
    p->end = NULL;
}

static int pa_events[16], pa_nevents;

static void pa_on_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    (void)c, (void)user;
    if (pa_nevents < 16)
        pa_events[pa_nevents++] = (int)ev;
}

static void pa_run(epode_ctx_t *ctx)
{
    for (int i = 0; i < 20; i++)
        epode_ctx_run_once(ctx, 0);
}

TEST(app_transport_carries_the_stream_and_is_closed)
{
    /* a table from an "older" application: it stops after `close` */
    epode_transport_ops_t ops = {sizeof ops, "test-pipe", EPODE_FRAMING_STREAM, pa_open, pa_read,
                                 pa_write, NULL, NULL, NULL, NULL, pa_close};
    pipe_app p = {0};
    epode_ctx_t *ctx;
    epode_conn_t *c;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &c), 0);
    CHECK_INT(epode_conn_set_jid(c, "a@example.com"), 0);
    CHECK_INT(epode_conn_set_password(c, "pw"), 0);
    CHECK_INT(epode_conn_set_tls(c, EPODE_TLS_DISABLED), 0);
    CHECK_INT(epode_conn_add_event_cb(c, pa_on_event, NULL, NULL), 0);
    /* argument checks */
    epode_transport_ops_t bad = ops;
    bad.framing = EPODE_FRAMING_MESSAGE;
    CHECK_INT(epode_conn_set_transport(c, &bad, &p), EPODE_EINVAL);
    bad = ops;
    bad.read = NULL;
    CHECK_INT(epode_conn_set_transport(c, &bad, &p), EPODE_EINVAL);
    bad = ops;
    bad.size = offsetof(epode_transport_ops_t, write); /* too old to have write */
    CHECK_INT(epode_conn_set_transport(c, &bad, &p), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_transport(NULL, &ops, &p), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_transport(c, &ops, &p), 0);
    /* a proxy is not used over the application's pipe, and bad URLs are refused at once */
    CHECK_INT(epode_conn_set_proxy(c, "ftp://x"), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_proxy(c, "socks5://127.0.0.1:9"), 0);
    epode_transport_facts_t f = {.size = sizeof f};
    CHECK_INT(epode_conn_transport_facts(c, &f), EPODE_ESTATE);

    pa_nevents = 0;
    CHECK_INT(epode_conn_connect(c), 0);
    CHECK_INT(epode_conn_set_transport(c, NULL, NULL), EPODE_ESTATE);
    pa_run(ctx);
    CHECK_INT(p.opens, 1);
    CHECK_STR(p.host, "example.com"); /* no DNS: the domain and 5222 */
    CHECK_INT(p.port, 5222);
    char buf[512];
    long n = epode__transport_read(p.peer, buf, sizeof buf - 1);
    CHECK(n > 0);
    buf[n] = '\0';
    CHECK(strstr(buf, "<stream:stream") && strstr(buf, "to='example.com'"));
    CHECK_INT(epode_conn_transport_facts(c, &f), 0);
    CHECK_INT(f.proxied, 0);
    CHECK_INT(f.tls_version, 0);
    /* the server hangs up: read 0 once epode is told to look */
    epode__transport_free(p.peer);
    p.peer = NULL;
    epode_conn_transport_ready(c);
    pa_run(ctx);
    CHECK_INT(epode_conn_reason(c), EPODE_REASON_NETWORK);
    CHECK_INT(p.closes, 1);
    CHECK(p.end == NULL);
    CHECK_INT(pa_events[0], EPODE_CONN_CONNECTING);
    CHECK_INT(pa_events[pa_nevents - 1], EPODE_CONN_DISCONNECTED);

    /* an open that fails ends the attempt with the transport named */
    p.fail_open = 1;
    CHECK_INT(epode_conn_connect(c), 0);
    pa_run(ctx);
    CHECK_INT(p.opens, 2);
    CHECK_INT(p.closes, 1); /* nothing was opened */
    CHECK_INT(epode_conn_reason(c), EPODE_REASON_NETWORK);
    CHECK(strstr(epode_conn_error_text(c), "\"test-pipe\" could not open") != NULL);
    epode_conn_free(c);
    epode_ctx_free(ctx);
}

/* Every allocation of a proxy's set-up failing in turn: parse, layer,
 * handshake to the open tunnel: ENOMEM or success, nothing leaked, the
 * bottom still the caller's on failure. */
static long liar_read(void *user, void *buf, size_t len)
{
    (void)user, (void)buf;
    return (long)len + 10; /* says it read more than it was given room for */
}

TEST(app_transport_reading_more_than_asked_is_refused)
{
    epode_transport_ops_t ops = {.size = sizeof ops, .name = "liar", .read = liar_read,
                                 .write = pa_write};
    pipe_app p = {0};
    char why[200];
    epode__transport *t;
    CHECK_INT(epode__app_new(&mem, &ops, &p, "example.com", 5222, why, sizeof why, &t), 0);
    char buf[64];
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), EPODE_EINVAL);
    CHECK(strstr(epode__transport_error(t), "read 74 bytes into a buffer of 64") != NULL);
    epode__transport_free(t);
    CHECK_INT(live, 0);
}

TEST(proxy_setup_survives_each_failing_allocation)
{
    static const char *const urls[] = {"socks5://user:pw@127.0.0.1:1080", "http://u:p@[::1]:3128"};
    for (size_t k = 0; k < 2; k++) {
        int succeeded = 0;
        for (long at = 0; at < 40 && !succeeded; at++) {
            epode__proxy *p = NULL;
            char why[200];
            n_allocs = 0;
            fail_at = at;
            int rc = epode__proxy_parse(&mem, urls[k], &p, why, sizeof why);
            if (rc < 0) {
                CHECK_INT(rc, EPODE_ENOMEM);
                fail_at = -1;
                CHECK_INT(live, 0);
                continue;
            }
            epode__transport *a, *b, *t = NULL;
            rc = epode__memory_pair(&mem, &a, &b);
            if (rc == 0) {
                epode__stack_config cfg = {.proxy = p, .host = "x.example", .port = 5222};
                rc = epode__stack_new(&mem, &cfg, a, &t);
                if (rc < 0) {
                    CHECK_INT(rc, EPODE_ENOMEM);
                    epode__transport_free(a);
                } else {
                    /* drive it to open: the proxy's answers come in order */
                    unsigned char buf[700];
                    epode__stack_open(t, why, sizeof why);
                    epode__transport_read(b, buf, sizeof buf);
                    if (k == 0) {
                        say(b, "\x05\x02", 2);
                        epode__stack_open(t, why, sizeof why);
                        epode__transport_read(b, buf, sizeof buf);
                        say(b, "\x01\x00", 2);
                        epode__stack_open(t, why, sizeof why);
                        epode__transport_read(b, buf, sizeof buf);
                        say(b, "\x05\x00\x00\x01\0\0\0\0\0\0", 10);
                    } else {
                        say(b, "HTTP/1.1 200 OK\r\n\r\nX", 20);
                    }
                    rc = epode__stack_open(t, why, sizeof why);
                    if (rc == 0)
                        succeeded = 1;
                    epode__transport_free(t);
                }
                epode__transport_free(b);
            }
            epode__proxy_free(&mem, p);
            fail_at = -1;
            CHECK_INT(live, 0);
        }
        CHECK(succeeded);
    }
}
