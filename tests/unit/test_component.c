/* tests/unit/test_component.c — component connections (XEP-0114) against
 * a scripted server over the memory transport: the handshake, stanzas
 * both ways in the component's domain, and a server that misbehaves
 * (wrong answer, an answer before our handshake, a missing or absurd
 * stream id, stanzas before the handshake). */
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "scripted.h"

#define COMP_HDR_START "<stream:stream xmlns='jabber:component:accept' " \
    "xmlns:stream='http://etherx.jabber.org/streams' from='comp.example.com' "
#define COMP_HDR COMP_HDR_START "id='3BF96D32'>"

/* hex(SHA-1(id + secret)), as XEP-0114 §3 computes it. */
static void handshake_hex(const char *id, const char *secret, char out[41])
{
    char joined[512];
    unsigned char d[20];
    snprintf(joined, sizeof joined, "%s%s", id, secret);
    gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, strlen(joined), d);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* What our stream header said (the last one). */
static char hdr_to[128];
static int hdr_has_version;

static void comp_on_client(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    if (ev == EPODE_PARSER_STREAM_OPEN) {
        const char *to = epode_stanza_get_attr(el, "to");
        snprintf(hdr_to, sizeof hdr_to, "%s", to ? to : "");
        hdr_has_version = epode_stanza_get_attr(el, "version") != NULL;
    }
    scripted__on_client(user, ev, el);
}

/* A component connection over a memory pair, its header sent; nothing
 * from the server yet. */
static int comp_start_mem(scripted *s, const epode_mem_t *mem, const char *domain,
                          const char *secret)
{
    memset(s, 0, sizeof *s);
    epode__transport *client;
    if (epode_global_init() < 0 || epode_ctx_new(mem, &s->ctx) < 0 ||
        epode_conn_new(s->ctx, &s->conn) < 0 ||
        epode_conn_set_component(s->conn, domain, secret) < 0 ||
        epode_conn_add_event_cb(s->conn, scripted__on_event, s, NULL) < 0 ||
        epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode_parser_new(NULL, comp_on_client, s, &s->parser) < 0)
        return -1;
    if (epode__conn_start_over(s->conn, client) < 0) {
        epode__transport_free(client);
        return -1;
    }
    scripted_pump(s);
    return 0;
}

static int comp_start(scripted *s, const char *domain, const char *secret)
{
    return comp_start_mem(s, NULL, domain, secret);
}

/* ... and through the handshake to READY. */
static int comp_login(scripted *s)
{
    if (comp_start(s, "comp.example.com", "s3cr3t") < 0)
        return -1;
    scripted_send(s, COMP_HDR);
    epode_stanza_t *hs = scripted_next(s);
    char want[41];
    handshake_hex("3BF96D32", "s3cr3t", want);
    if (!hs || strcmp(epode_stanza_get_name(hs), "handshake") != 0 ||
        strcmp(epode_stanza_get_text(hs), want) != 0)
        return -1;
    scripted_send(s, "<handshake/>");
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

static int has_event(const scripted *s, int ev)
{
    for (int i = 0; i < s->nevents; i++)
        if (s->events[i] == ev)
            return 1;
    return 0;
}

TEST(component_handshake_reaches_ready)
{
    scripted s;
    CHECK_INT(comp_start(&s, "comp.example.com", "s3cr3t"), 0);
    CHECK_INT(s.opens, 1);
    /* our header: the component namespace, to our domain, no version */
    CHECK_STR(hdr_to, "comp.example.com");
    CHECK(!hdr_has_version);
    CHECK_INT(s.nsent, 0); /* nothing before the server's id */
    scripted_send(&s, COMP_HDR);
    epode_stanza_t *hs = scripted_next(&s);
    CHECK(hs != NULL);
    CHECK_STR(epode_stanza_get_name(hs), "handshake");
    CHECK_STR(epode_stanza_get_ns(hs), "jabber:component:accept");
    char want[41];
    handshake_hex("3BF96D32", "s3cr3t", want);
    CHECK_STR(epode_stanza_get_text(hs), want);
    CHECK(!epode_conn_is_ready(s.conn));
    scripted_send(&s, "<handshake/>");
    CHECK(epode_conn_is_ready(s.conn));
    CHECK(has_event(&s, EPODE_CONN_READY));
    CHECK(!has_event(&s, EPODE_CONN_AUTHENTICATED));
    CHECK_STR(epode_conn_bound_jid(s.conn), "comp.example.com");
    CHECK(!epode_conn_sm_enabled(s.conn));
    scripted_free(&s);
}

static int on_msg(epode_conn_t *c, epode_stanza_t *st, void *user)
{
    (void)c;
    char *got = user;
    const char *body = epode_stanza_child_text(st, "body", EPODE_NS_CLIENT);
    snprintf(got, 256, "%s|%s|%s", epode_stanza_get_ns(st), epode_stanza_get_to(st),
             body ? body : "(no body)");
    return 1;
}

TEST(component_stanzas_flow_as_jabber_client)
{
    scripted s;
    CHECK_INT(comp_login(&s), 0);
    char got[256] = "";
    CHECK_INT(epode_conn_add_handler(s.conn, "message", NULL, NULL, on_msg, got, NULL), 0);
    scripted_send(&s, "<message from='juliet@example.com/balcony' to='romeo@comp.example.com' "
                      "type='chat'><body>hi</body></message>");
    CHECK_STR(got, "jabber:client|romeo@comp.example.com|hi");

    /* sent back from a JID of our domain: written in the stream's own
     * (component) namespace */
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "juliet@example.com/balcony", "hello", &m), 0);
    CHECK_INT(epode_stanza_set_from(m, "romeo@comp.example.com"), 0);
    CHECK_INT(epode_conn_send(s.conn, m), 0);
    scripted_pump(&s);
    epode_stanza_t *out = scripted_next(&s);
    CHECK(out != NULL);
    CHECK_STR(epode_stanza_get_ns(out), "jabber:component:accept");
    CHECK_STR(epode_stanza_get_from(out), "romeo@comp.example.com");
    CHECK_STR(epode_stanza_child_text(out, "body", "jabber:component:accept"), "hello");

    /* the domain itself is fine; no from, or another domain, is refused */
    CHECK_INT(epode_stanza_set_from(m, "comp.example.com"), 0);
    CHECK_INT(epode_conn_send(s.conn, m), 0);
    CHECK_INT(epode_stanza_set_from(m, NULL), 0);
    CHECK_INT(epode_conn_send(s.conn, m), EPODE_EJID);
    CHECK_INT(epode_stanza_set_from(m, "romeo@example.com"), 0);
    CHECK_INT(epode_conn_send(s.conn, m), EPODE_EJID);
    CHECK_INT(epode_stanza_set_from(m, "x@notcomp.example.com"), 0);
    CHECK_INT(epode_conn_send(s.conn, m), EPODE_EJID);
    epode_stanza_unref(m);
    scripted_free(&s);
}

TEST(component_unhandled_iq_answered_from_the_address_asked)
{
    scripted s;
    CHECK_INT(comp_login(&s), 0);
    scripted_send(&s, "<iq type='get' id='q1' from='juliet@example.com/b' "
                      "to='bot@comp.example.com'><query xmlns='urn:example:nothing'/></iq>");
    epode_stanza_t *err = scripted_next(&s);
    CHECK(err != NULL);
    CHECK_STR(epode_stanza_get_type(err), "error");
    CHECK_STR(epode_stanza_get_from(err), "bot@comp.example.com");
    CHECK_STR(epode_stanza_get_to(err), "juliet@example.com/b");
    scripted_free(&s);
}

TEST(component_wrong_secret_is_the_servers_stream_error)
{
    scripted s;
    CHECK_INT(comp_start(&s, "comp.example.com", "wrong"), 0);
    scripted_send(&s, COMP_HDR);
    CHECK(scripted_next(&s) != NULL);
    scripted_send(&s, "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error></stream:stream>");
    CHECK(has_event(&s, EPODE_CONN_DISCONNECTED));
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_STREAM_ERROR);
    CHECK_STR(epode_conn_condition(s.conn), "not-authorized");
    CHECK(strstr(epode_conn_error_text(s.conn), "refused the component handshake") != NULL);
    scripted_free(&s);
}

/* The server's header and its <handshake/> in one read: it answered
 * before our digest could have reached it. */
TEST(component_handshake_answer_before_ours_is_refused)
{
    scripted s;
    CHECK_INT(comp_start(&s, "comp.example.com", "s3cr3t"), 0);
    scripted_send(&s, COMP_HDR "<handshake/>");
    CHECK(!has_event(&s, EPODE_CONN_READY));
    CHECK(has_event(&s, EPODE_CONN_DISCONNECTED));
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_PROTOCOL);
    CHECK_STR(epode_conn_condition(s.conn), "not-authorized");
    scripted_free(&s);
}

TEST(component_header_without_id_then_a_stream_error_is_that_error)
{
    /* Prosody, asked for a domain it does not serve: a header with id=''
     * and its host-unknown. The server's error is the outcome (reason
     * STREAM_ERROR, not retried), not an invalid-xml of ours; no digest
     * went out. */
    scripted s;
    CHECK_INT(comp_start(&s, "other.example.com", "s3cr3t"), 0);
    scripted_send(&s, COMP_HDR_START "id=''><stream:error><host-unknown xmlns='urn:ietf:params:"
                      "xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
                      "does not match any component</text></stream:error></stream:stream>");
    CHECK(has_event(&s, EPODE_CONN_DISCONNECTED));
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_STREAM_ERROR);
    CHECK_STR(epode_conn_condition(s.conn), "host-unknown");
    CHECK(strstr(epode_conn_error_text(s.conn), "a domain it does not serve") != NULL);
    for (epode_stanza_t *st; (st = scripted_next(&s));)
        CHECK(strcmp(epode_stanza_get_name(st), "handshake") != 0);
    scripted_free(&s);
}

TEST(component_header_without_id_is_refused)
{
    scripted s;
    CHECK_INT(comp_start(&s, "comp.example.com", "s3cr3t"), 0);
    scripted_send(&s, COMP_HDR_START ">");
    CHECK(!has_event(&s, EPODE_CONN_DISCONNECTED)); /* its stream error may follow */
    scripted_send(&s, "<handshake/>");
    CHECK(has_event(&s, EPODE_CONN_DISCONNECTED));
    CHECK(strstr(epode_conn_error_text(s.conn), "without an id") != NULL);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_PROTOCOL);
    /* no digest went out: the stream error is all the client wrote */
    epode_stanza_t *st = scripted_next(&s);
    CHECK(st != NULL);
    CHECK_STR(epode_stanza_get_name(st), "error");
    CHECK(scripted_next(&s) == NULL);
    scripted_free(&s);
}

TEST(component_absurdly_long_stream_id_is_refused)
{
    scripted s;
    CHECK_INT(comp_start(&s, "comp.example.com", "s3cr3t"), 0);
    static char hdr[8192];
    int n = snprintf(hdr, sizeof hdr, "%sid='", COMP_HDR_START);
    memset(hdr + n, 'a', 4000);
    snprintf(hdr + n + 4000, sizeof hdr - (size_t)n - 4000, "'>");
    scripted_send(&s, hdr);
    CHECK(has_event(&s, EPODE_CONN_DISCONNECTED));
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_PROTOCOL);
    CHECK(strstr(epode_conn_error_text(s.conn), "stream id") != NULL);
    epode_stanza_t *st = scripted_next(&s);
    CHECK(st != NULL);
    CHECK_STR(epode_stanza_get_name(st), "error");
    scripted_free(&s);
}

TEST(component_stanza_before_the_handshake_is_refused)
{
    scripted s;
    CHECK_INT(comp_start(&s, "comp.example.com", "s3cr3t"), 0);
    char got[256] = "";
    CHECK_INT(epode_conn_add_handler(s.conn, "message", NULL, NULL, on_msg, got, NULL), 0);
    scripted_send(&s, COMP_HDR);
    CHECK(scripted_next(&s) != NULL); /* our handshake */
    scripted_send(&s, "<message from='a@example.com' to='b@comp.example.com'><body>x</body>"
                      "</message>");
    CHECK_STR(got, ""); /* never dispatched */
    CHECK(!has_event(&s, EPODE_CONN_READY));
    CHECK(has_event(&s, EPODE_CONN_DISCONNECTED));
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_PROTOCOL);
    scripted_free(&s);
}

TEST(component_options_are_checked)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &c), 0);
    CHECK_INT(epode_conn_set_component(NULL, "comp.example.com", "s"), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_component(c, "comp.example.com", NULL), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_component(c, "comp.example.com", ""), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_component(c, "user@comp.example.com", "s"), EPODE_EJID);
    CHECK_INT(epode_conn_set_component(c, "comp.example.com/r", "s"), EPODE_EJID);
    CHECK_INT(epode_conn_set_component(c, "comp.example.com", "s"), 0);
    /* no server named: a component has no SRV records */
    CHECK_INT(epode_conn_connect(c), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_component(c, NULL, NULL), 0);
    CHECK_INT(epode_conn_connect(c), EPODE_EINVAL); /* no domain at all now */
    epode_conn_free(c);
    epode_ctx_free(ctx);
}

static void on_ev_stop(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    (void)c;
    if (ev == EPODE_CONN_DISCONNECTED)
        *(int *)user = 1;
}

/* A cleartext component stream to an address that is not loopback is
 * refused unless TLS was loosened explicitly. 192.0.2.1 (TEST-NET-1)
 * cannot be reached here, so the check is made on a loopback connect
 * where the test asks the opposite: loopback goes through. */
TEST(component_cleartext_to_loopback_is_allowed)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &c), 0);
    /* a listening socket of ours on 127.0.0.1 */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t alen = sizeof a;
    CHECK_INT(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(listen(lfd, 1), 0);
    CHECK_INT(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    CHECK_INT(epode_conn_set_component(c, "comp.example.com", "s3cr3t"), 0);
    CHECK_INT(epode_conn_set_server(c, "127.0.0.1", ntohs(a.sin_port)), 0);
    int done = 0;
    CHECK_INT(epode_conn_add_event_cb(c, on_ev_stop, &done, NULL), 0);
    CHECK_INT(epode_conn_connect(c), 0);
    int sfd = -1;
    char buf[1024];
    long got = 0;
    for (int i = 0; i < 200 && got <= 0; i++) {
        epode_ctx_run_once(ctx, 10);
        if (sfd < 0)
            sfd = accept(lfd, NULL, NULL);
        if (sfd >= 0)
            got = recv(sfd, buf, sizeof buf - 1, MSG_DONTWAIT);
    }
    CHECK(got > 0); /* our header came: not refused for lack of TLS */
    buf[got] = '\0';
    CHECK(strstr(buf, "jabber:component:accept") != NULL);
    CHECK(!done);
    epode_conn_free(c);
    close(sfd);
    close(lfd);
    epode_ctx_free(ctx);
}

/* The same to one of this machine's own non-loopback addresses: refused
 * before a byte is written, unless TLS is loosened (then it goes). */
static int first_non_loopback(struct in_addr *out)
{
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) < 0)
        return 0;
    int found = 0;
    for (i = ifs; i && !found; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
            struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
            if ((ntohl(a.s_addr) >> 24) != 127) {
                *out = a;
                found = 1;
            }
        }
    freeifaddrs(ifs);
    return found;
}

static int try_cleartext_to(struct in_addr addr, int loosen, char *got, size_t got_size,
                            epode_disconnect_reason_t *reason, int *err)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &ctx) < 0 || epode_conn_new(ctx, &c) < 0)
        return -1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = addr};
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    char host[64];
    inet_ntop(AF_INET, &addr, host, sizeof host);
    epode_conn_set_component(c, "comp.example.com", "s3cr3t");
    epode_conn_set_server(c, host, ntohs(a.sin_port));
    if (loosen)
        epode_conn_set_tls(c, EPODE_TLS_DISABLED);
    int done = 0;
    epode_conn_add_event_cb(c, on_ev_stop, &done, NULL);
    if (epode_conn_connect(c) < 0)
        return -1;
    int sfd = -1;
    long n = 0;
    for (int i = 0; i < 100 && n <= 0 && !done; i++) {
        epode_ctx_run_once(ctx, 10);
        if (sfd < 0)
            sfd = accept(lfd, NULL, NULL);
        if (sfd >= 0)
            n = recv(sfd, got, got_size - 1, MSG_DONTWAIT);
    }
    got[n > 0 ? n : 0] = '\0';
    *reason = epode_conn_reason(c);
    *err = epode_conn_error(c);
    epode_conn_free(c);
    if (sfd >= 0)
        close(sfd);
    close(lfd);
    epode_ctx_free(ctx);
    return 0;
}

TEST(component_cleartext_elsewhere_needs_an_explicit_loosening)
{
    struct in_addr addr;
    if (!first_non_loopback(&addr)) {
        printf("# no non-loopback IPv4 address here: nothing to check\n");
        return;
    }
    char got[1024];
    epode_disconnect_reason_t reason;
    int err;
    CHECK_INT(try_cleartext_to(addr, 0, got, sizeof got, &reason, &err), 0);
    CHECK_STR(got, ""); /* not even our header */
    CHECK_INT(reason, EPODE_REASON_TLS);
    CHECK_INT(err, EPODE_ENOTLS);
    CHECK_INT(try_cleartext_to(addr, 1, got, sizeof got, &reason, &err), 0);
    CHECK(strstr(got, "jabber:component:accept") != NULL);
}

/* Every allocation of the component's set-up, handshake and first
 * stanzas fails in turn: a clean error or a clean end each time, and
 * nothing left allocated. */
TEST(component_every_failed_allocation_is_clean)
{
    int clean = 0;
    long n;
    for (n = 0; n < 10000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        m.fail_at = n;
        scripted s;
        char got[256] = "";
        int ready = 0;
        if (comp_start_mem(&s, &m.mem, "comp.example.com", "s3cr3t") == 0 &&
            epode_conn_add_handler(s.conn, "message", NULL, NULL, on_msg, got, NULL) == 0) {
            scripted_send(&s, COMP_HDR);
            scripted_send(&s, "<handshake/>");
            scripted_send(&s, "<message from='a@example.com' to='b@comp.example.com'>"
                              "<body>x</body></message>");
            ready = epode_conn_is_ready(s.conn);
        }
        clean = m.calls <= m.fail_at && ready;
        scripted_free(&s);
        if (m.live != 0)
            printf("# with allocation %ld failing\n", n);
        CHECK_INT(m.live, 0);
        if (clean)
            CHECK_STR(got, "jabber:client|b@comp.example.com|x");
    }
    CHECK(clean);
    printf("# component: %ld allocation points swept\n", n - 1);
}

TEST_MAIN
