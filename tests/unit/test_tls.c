/* tests/unit/test_tls.c — the TLS transport against a real gnutls server
 * session living in the test, on the other end of a memory pair (or of
 * a socketpair for STARTTLS), both sides pumped in a loop. Certificates
 * come from tests/data/tls (see its README). */
#include "test.h"

#include <errno.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "epode.h"
#include "transport/transport.h"

#define DATA "../data/tls/"

/* ---- an allocator that fails on request and counts what is live ------------ */

static long fail_at = -1, n_allocs, live;

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

static const epode_mem_t test_mem = {t_malloc, t_realloc, t_free, NULL};

/* ---- the server side: plain gnutls over an epode transport ---------------- */

typedef struct server {
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t ticket_key; /* for NewSessionTickets, when asked */
    gnutls_session_t s;
    epode__transport *end; /* owned */
    int hs_done;
    int hs_err;       /* fatal handshake error, 0 if none */
    int send_pending; /* the (NULL, 0) rule, on this side too */
} server;

typedef struct server_opts {
    const char *cert, *key; /* default: server.pem */
    /* Or PEM in memory (the chain, then the key), e.g. made by the test. */
    const gnutls_datum_t *cert_pem, *key_pem;
    const char *priority;   /* default: NORMAL */
    int request_client_cert;
    const char *alpn; /* protocol the server supports, or NULL */
    int tickets;      /* can send TLS 1.3 NewSessionTickets */
} server_opts;

static ssize_t srv_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    server *sv = p;
    long n = epode__transport_read(sv->end, buf, len);
    if (n >= 0)
        return n;
    gnutls_transport_set_errno(sv->s, n == EPODE_EAGAIN ? EAGAIN : EIO);
    return -1;
}

static ssize_t srv_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    server *sv = p;
    long n = epode__transport_write(sv->end, buf, len);
    if (n >= 0)
        return n;
    gnutls_transport_set_errno(sv->s, n == EPODE_EAGAIN ? EAGAIN : EPIPE);
    return -1;
}

static int srv_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
    (void)p;
    (void)ms;
    return 1;
}

static int server_start(server *sv, epode__transport *end, const server_opts *o)
{
    static const server_opts none;
    if (!o)
        o = &none;
    memset(sv, 0, sizeof *sv);
    sv->end = end;
    if (gnutls_certificate_allocate_credentials(&sv->cred) < 0)
        return -1;
    if (o->cert_pem) {
        if (gnutls_certificate_set_x509_key_mem(sv->cred, o->cert_pem, o->key_pem,
                                                GNUTLS_X509_FMT_PEM) < 0)
            return -1;
    } else if (gnutls_certificate_set_x509_key_file(sv->cred,
                                                    o->cert ? o->cert : DATA "server.pem",
                                                    o->key ? o->key : DATA "server-key.pem",
                                                    GNUTLS_X509_FMT_PEM) < 0) {
        return -1;
    }
    if (o->request_client_cert &&
        gnutls_certificate_set_x509_trust_file(sv->cred, DATA "ca.pem", GNUTLS_X509_FMT_PEM) <= 0)
        return -1;
    if (gnutls_init(&sv->s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0)
        return -1;
    if (gnutls_priority_set_direct(sv->s, o->priority ? o->priority : "NORMAL", NULL) < 0 ||
        gnutls_credentials_set(sv->s, GNUTLS_CRD_CERTIFICATE, sv->cred) < 0)
        return -1;
    if (o->request_client_cert)
        gnutls_certificate_server_set_request(sv->s, GNUTLS_CERT_REQUEST);
    if (o->tickets && (gnutls_session_ticket_key_generate(&sv->ticket_key) < 0 ||
                       gnutls_session_ticket_enable_server(sv->s, &sv->ticket_key) < 0))
        return -1;
    if (o->alpn) {
        gnutls_datum_t p = {(unsigned char *)o->alpn, (unsigned)strlen(o->alpn)};
        if (gnutls_alpn_set_protocols(sv->s, &p, 1, 0) < 0)
            return -1;
    }
    gnutls_transport_set_ptr(sv->s, sv);
    gnutls_transport_set_pull_function(sv->s, srv_pull);
    gnutls_transport_set_pull_timeout_function(sv->s, srv_pull_timeout);
    gnutls_transport_set_push_function(sv->s, srv_push);
    return 0;
}

static void server_stop(server *sv)
{
    if (sv->s)
        gnutls_deinit(sv->s);
    if (sv->cred)
        gnutls_certificate_free_credentials(sv->cred);
    gnutls_free(sv->ticket_key.data);
    epode__transport_free(sv->end);
    memset(sv, 0, sizeof *sv);
}

static void server_step(server *sv)
{
    if (sv->hs_done || sv->hs_err)
        return;
    int r = gnutls_handshake(sv->s);
    if (r == 0) {
        sv->hs_done = 1;
    } else if (gnutls_error_is_fatal(r)) {
        /* As a real server does: say why, then hang up. */
        sv->hs_err = r;
        gnutls_alert_send_appropriate(sv->s, r);
        epode__transport_shutdown(sv->end);
    }
}

/* Runs both handshakes to the end: 0, or the client's error. */
static int pump_handshake(epode__transport *c, server *sv)
{
    for (int i = 0; i < 1000; i++) {
        int cr = epode__tls_handshake(c);
        server_step(sv);
        if (cr == 0 && sv->hs_done)
            return 0;
        if (cr != 0 && cr != EPODE_EAGAIN)
            return cr;
    }
    return EPODE_ETIMEDOUT;
}

static long server_send(server *sv, const void *buf, size_t len)
{
    ssize_t n = sv->send_pending ? gnutls_record_send(sv->s, NULL, 0)
                                 : gnutls_record_send(sv->s, buf, len);
    if (n == GNUTLS_E_AGAIN) {
        sv->send_pending = 1;
        return 0;
    }
    sv->send_pending = 0;
    return n;
}

/* ---- certificates made by the test --------------------------------------- */

/* Made at test time, valid from yesterday to tomorrow: nothing to expire
 * in the tree, and each test shows the names and constraints it relies
 * on. The test CA (DATA "ca.pem") signs the intermediates, so the usual
 * client trusts them. */
typedef struct made {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
} made;

typedef struct cert_spec {
    const char *cn;
    int ca;                   /* may sign certificates */
    int rsa;                  /* an RSA 2048 key (else EC P-256) */
    const char *dns[3];       /* subjectAltName DNS names */
    const char *xmppaddr;     /* subjectAltName id-on-xmppAddr, or NULL */
    const char *permitted[3]; /* name constraints: permitted DNS subtrees */
    const char *excluded[3];  /* ... and excluded ones */
} cert_spec;

static void made_free(made *m)
{
    if (m->crt)
        gnutls_x509_crt_deinit(m->crt);
    if (m->key)
        gnutls_x509_privkey_deinit(m->key);
    memset(m, 0, sizeof *m);
}

static int made_load(made *m, const char *cert_file, const char *key_file)
{
    gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
    memset(m, 0, sizeof *m);
    int ok = gnutls_load_file(cert_file, &c) >= 0 && gnutls_load_file(key_file, &k) >= 0 &&
             gnutls_x509_crt_init(&m->crt) >= 0 &&
             gnutls_x509_crt_import(m->crt, &c, GNUTLS_X509_FMT_PEM) >= 0 &&
             gnutls_x509_privkey_init(&m->key) >= 0 &&
             gnutls_x509_privkey_import(m->key, &k, GNUTLS_X509_FMT_PEM) >= 0;
    gnutls_free(c.data);
    gnutls_free(k.data);
    if (!ok)
        made_free(m);
    return ok ? 0 : -1;
}

/* Makes the certificate `spec` describes, signed by `issuer` (NULL:
 * self-signed). 0 or -1. */
static int made_new(made *m, const cert_spec *spec, const made *issuer)
{
    static unsigned serial;
    memset(m, 0, sizeof *m);
    if (gnutls_x509_privkey_init(&m->key) < 0 || gnutls_x509_crt_init(&m->crt) < 0)
        goto fail;
    if (gnutls_x509_privkey_generate(m->key, spec->rsa ? GNUTLS_PK_RSA : GNUTLS_PK_ECDSA,
                                     spec->rsa ? 2048
                                               : GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                     0) < 0)
        goto fail;
    serial++;
    unsigned char sn[8] = {0x42, 0, 0, 0, 0, 0, (unsigned char)(serial >> 8),
                           (unsigned char)serial};
    unsigned char id[64];
    size_t id_len = sizeof id;
    time_t now = time(NULL);
    if (gnutls_x509_crt_set_version(m->crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(m->crt, sn, sizeof sn) < 0 ||
        gnutls_x509_crt_set_activation_time(m->crt, now - 86400) < 0 ||
        gnutls_x509_crt_set_expiration_time(m->crt, now + 86400) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(m->crt, GNUTLS_OID_X520_COMMON_NAME, 0, spec->cn,
                                      (unsigned)strlen(spec->cn)) < 0 ||
        gnutls_x509_crt_set_key(m->crt, m->key) < 0 ||
        gnutls_x509_privkey_get_key_id(m->key, 0, id, &id_len) < 0 ||
        gnutls_x509_crt_set_subject_key_id(m->crt, id, id_len) < 0 ||
        gnutls_x509_crt_set_basic_constraints(m->crt, spec->ca, -1) < 0)
        goto fail;
    unsigned usage = spec->ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                              : GNUTLS_KEY_DIGITAL_SIGNATURE |
                                    (spec->rsa ? GNUTLS_KEY_KEY_ENCIPHERMENT : 0);
    if (gnutls_x509_crt_set_key_usage(m->crt, usage) < 0)
        goto fail;
    if (!spec->ca && gnutls_x509_crt_set_key_purpose_oid(m->crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0)
        goto fail;
    for (int i = 0; i < 3 && spec->dns[i]; i++)
        if (gnutls_x509_crt_set_subject_alt_name(m->crt, GNUTLS_SAN_DNSNAME, spec->dns[i],
                                                 (unsigned)strlen(spec->dns[i]),
                                                 GNUTLS_FSAN_APPEND) < 0)
            goto fail;
    if (spec->xmppaddr &&
        gnutls_x509_crt_set_subject_alt_othername(
            m->crt, "1.3.6.1.5.5.7.8.5", spec->xmppaddr, (unsigned)strlen(spec->xmppaddr),
            GNUTLS_FSAN_APPEND | GNUTLS_FSAN_ENCODE_UTF8_STRING) < 0)
        goto fail;
    if (spec->permitted[0] || spec->excluded[0]) {
        gnutls_x509_name_constraints_t nc;
        if (gnutls_x509_name_constraints_init(&nc) < 0)
            goto fail;
        int r = 0;
        for (int i = 0; i < 3 && r >= 0 && spec->permitted[i]; i++) {
            gnutls_datum_t d = {(unsigned char *)spec->permitted[i],
                                (unsigned)strlen(spec->permitted[i])};
            r = gnutls_x509_name_constraints_add_permitted(nc, GNUTLS_SAN_DNSNAME, &d);
        }
        for (int i = 0; i < 3 && r >= 0 && spec->excluded[i]; i++) {
            gnutls_datum_t d = {(unsigned char *)spec->excluded[i],
                                (unsigned)strlen(spec->excluded[i])};
            r = gnutls_x509_name_constraints_add_excluded(nc, GNUTLS_SAN_DNSNAME, &d);
        }
        if (r >= 0)
            r = gnutls_x509_crt_set_name_constraints(m->crt, nc, 1);
        gnutls_x509_name_constraints_deinit(nc);
        if (r < 0)
            goto fail;
    }
    if (gnutls_x509_crt_sign2(m->crt, issuer ? issuer->crt : m->crt,
                              issuer ? issuer->key : m->key, GNUTLS_DIG_SHA256, 0) < 0)
        goto fail;
    return 0;
fail:
    made_free(m);
    return -1;
}

/* PEM of `leaf` followed by `chain` (may be NULL), and of leaf's key, for
 * server_opts.cert_pem/key_pem. Free both with pem_free. 0 or -1. */
static int made_pem(const made *leaf, const made *chain, gnutls_datum_t *cert,
                    gnutls_datum_t *key)
{
    gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
    cert->data = key->data = NULL;
    int ok = gnutls_x509_crt_export2(leaf->crt, GNUTLS_X509_FMT_PEM, &a) >= 0 &&
             (!chain || gnutls_x509_crt_export2(chain->crt, GNUTLS_X509_FMT_PEM, &b) >= 0) &&
             gnutls_x509_privkey_export2(leaf->key, GNUTLS_X509_FMT_PEM, key) >= 0 &&
             (cert->data = gnutls_malloc(a.size + b.size + 1)) != NULL;
    if (ok) {
        memcpy(cert->data, a.data, a.size);
        if (b.size)
            memcpy(cert->data + a.size, b.data, b.size);
        cert->size = a.size + b.size;
        cert->data[cert->size] = '\0';
    }
    gnutls_free(a.data);
    gnutls_free(b.data);
    return ok ? 0 : -1;
}

static void pem_free(gnutls_datum_t *cert, gnutls_datum_t *key)
{
    gnutls_free(cert->data);
    gnutls_free(key->data);
    cert->data = key->data = NULL;
}

/* ---- fixtures ------------------------------------------------------------- */

typedef struct fixture {
    epode__tls_creds *creds;
    epode__transport *client;
    server sv;
} fixture;

/* Bounds both memory queues of the next fixture (0: unbounded). */
static size_t queue_limit;

/* A client with the test CA, a memory pair, a server: not yet shaken. */
static int fixture_start(fixture *f, const epode__tls_options *co, const server_opts *so)
{
    memset(f, 0, sizeof *f);
    epode__transport *a, *b;
    if (epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &f->creds) < 0)
        return -1;
    if (epode__memory_pair(NULL, &a, &b) < 0)
        return -1;
    epode__memory_set_limit(a, queue_limit);
    epode__memory_set_limit(b, queue_limit);
    if (server_start(&f->sv, b, so) < 0) {
        epode__transport_free(a);
        return -1;
    }
    static const epode__tls_options localhost = {.server_name = "localhost"};
    if (epode__tls_new(NULL, f->creds, a, co ? co : &localhost, &f->client) < 0) {
        epode__transport_free(a);
        return -1;
    }
    return 0;
}

static void fixture_stop(fixture *f)
{
    epode__transport_free(f->client);
    server_stop(&f->sv);
    epode__tls_creds_free(f->creds);
}

/* Set up and shake hands; 0 or the client's error. */
static int connect_to(fixture *f, const epode__tls_options *co, const server_opts *so)
{
    if (fixture_start(f, co, so) < 0)
        return -100;
    return pump_handshake(f->client, &f->sv);
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131u + (i >> 9) * 7u + seed) & 0xff);
}

/* Moves c2s bytes client→server and s2c bytes server→client at the same
 * time, writing in `piece`-byte writes; checks every byte. 0 on success,
 * the client's error code, or below -1000 for the server's or the data. */
static int transfer(fixture *f, size_t c2s, size_t s2c, size_t piece)
{
    size_t c_sent = 0, c_got = 0, s_sent = 0, s_got = 0;
    unsigned char out[16384], in[4096];
    for (long spins = 0; c_got < s2c || s_got < c2s; spins++) {
        if (spins > 10000000)
            return -1001;
        /* client writes */
        if (c_sent < c2s) {
            size_t n = c2s - c_sent < piece ? c2s - c_sent : piece;
            for (size_t i = 0; i < n; i++)
                out[i] = pattern(c_sent + i, 1);
            long w = epode__transport_write(f->client, out, n);
            if (w > 0)
                c_sent += (size_t)w;
            else if (w != EPODE_EAGAIN)
                return (int)w;
        }
        /* server writes (resumes with the same bytes after E_AGAIN) */
        if (s_sent < s2c) {
            size_t n = s2c - s_sent < piece ? s2c - s_sent : piece;
            for (size_t i = 0; i < n; i++)
                out[i] = pattern(s_sent + i, 2);
            long w = server_send(&f->sv, out, n);
            if (w > 0)
                s_sent += (size_t)w;
            else if (w < 0)
                return -1003;
        }
        /* server reads */
        for (;;) {
            ssize_t r = gnutls_record_recv(f->sv.s, in, sizeof in);
            if (r == GNUTLS_E_AGAIN)
                break;
            if (r <= 0)
                return -1004;
            for (ssize_t i = 0; i < r; i++)
                if (in[i] != pattern(s_got + (size_t)i, 1))
                    return -1005;
            s_got += (size_t)r;
        }
        /* client reads */
        for (;;) {
            long r = epode__transport_read(f->client, in, sizeof in);
            if (r == EPODE_EAGAIN)
                break;
            if (r <= 0)
                return r < 0 ? (int)r : -1006;
            for (long i = 0; i < r; i++)
                if (in[i] != pattern(c_got + (size_t)i, 2))
                    return -1007;
            c_got += (size_t)r;
        }
    }
    return 0;
}

/* ---- handshake and data --------------------------------------------------- */

TEST(tls_handshake_and_data_both_ways)
{
    fixture f;
    char buf[64];
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 0);
    CHECK_INT(epode__transport_fd(f.client), -1); /* the memory pair's */
    /* Reading before the handshake drives it. */
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_EAGAIN);
    CHECK_INT(pump_handshake(f.client, &f.sv), 0);
    CHECK_INT(epode__tls_version(f.client), 13);
    CHECK(epode__tls_key_bits(f.client) >= 128);
    CHECK_INT(epode__transport_write(f.client, "<stream:stream>", 15), 15);
    CHECK_INT(gnutls_record_recv(f.sv.s, buf, sizeof buf), 15);
    CHECK(memcmp(buf, "<stream:stream>", 15) == 0);
    CHECK_INT(server_send(&f.sv, "<features/>", 11), 11);
    long r;
    do
        r = epode__transport_read(f.client, buf, sizeof buf);
    while (r == EPODE_EAGAIN && epode__transport_pending(f.client));
    CHECK_INT(r, 11);
    CHECK(memcmp(buf, "<features/>", 11) == 0);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_EAGAIN);
    CHECK(epode__transport_wants(f.client) & EPODE__READ);
    fixture_stop(&f);
}

TEST(tls_large_data_both_ways_through_small_queues)
{
    fixture f;
    /* Tiny queues: most writes on both sides meet back-pressure, even in
     * the handshake (the server's flight is larger than 1000 bytes). */
    queue_limit = 1000;
    int r = connect_to(&f, NULL, NULL);
    queue_limit = 0;
    CHECK_INT(r, 0);
    CHECK_INT(transfer(&f, 1 << 20, 1 << 20, 16384), 0);
    fixture_stop(&f);
}

TEST(tls_large_data_on_tls12)
{
    fixture f;
    epode__tls_options o = {.server_name = "localhost", .max_version = 12};
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 12);
    CHECK_INT(transfer(&f, 300000, 300000, 5000), 0);
    fixture_stop(&f);
}

TEST(tls_one_byte_writes)
{
    fixture f;
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    CHECK_INT(transfer(&f, 2000, 2000, 1), 0);
    fixture_stop(&f);
}

/* Writes and reads 64 KB so the session is past its small first records
 * (tls.c's dynamic record sizing); 1 when all went through. */
static int past_small_records(fixture *f, char *chunk, size_t len)
{
    char buf[4096];
    size_t sent = 0, got = 0;
    for (int i = 0; i < 10000 && got < 64 * 1024; i++) {
        if (sent < 64 * 1024) {
            long w = epode__transport_write(f->client, chunk, len);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t n = gnutls_record_recv(f->sv.s, buf, sizeof buf);
        if (n > 0)
            got += (size_t)n;
    }
    size_t left = sent - got;
    for (int i = 0; i < 10000 && left > 0; i++) {
        ssize_t n = gnutls_record_recv(f->sv.s, buf, sizeof buf);
        if (n > 0)
            left -= (size_t)n;
        epode__transport_write(f->client, NULL, 0);
    }
    return got >= 64 * 1024 && left == 0;
}

/* A new session writes small records first: a link that drops every few
 * kilobytes (a reconnection resending a long queue) still delivers
 * whole records; then full-size ones. */
TEST(tls_first_records_are_small)
{
    fixture f;
    char buf[4096];
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_EAGAIN);
    static char big[10000];
    long w = epode__transport_write(f.client, big, sizeof big);
    CHECK(w > 0 && w <= 1400);
    ssize_t n = 0;
    for (int i = 0; i < 100 && n <= 0; i++)
        n = gnutls_record_recv(f.sv.s, buf, sizeof buf);
    CHECK_INT(n, w); /* one record, whole */
    CHECK(past_small_records(&f, big, sizeof big));
    CHECK_INT(epode__transport_write(f.client, big, sizeof big), (long)sizeof big);
    fixture_stop(&f);
}

TEST(tls_held_records_want_write_and_flush_on_an_empty_write)
{
    fixture f;
    char buf[4096];
    queue_limit = 2000;
    int r = connect_to(&f, NULL, NULL);
    queue_limit = 0;
    CHECK_INT(r, 0);
    /* Drain whatever the handshake left (the server's session ticket). */
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_EAGAIN);
    CHECK(!(epode__transport_wants(f.client) & EPODE__WRITE));
    static char big[10000];
    CHECK(past_small_records(&f, big, sizeof big));
    /* One record, taken whole though the queue holds only 2000 bytes. */
    CHECK_INT(epode__transport_write(f.client, big, sizeof big), (long)sizeof big);
    CHECK(epode__transport_wants(f.client) & EPODE__WRITE);
    CHECK_INT(epode__transport_write(f.client, big, 10), EPODE_EAGAIN);
    CHECK_INT(epode__transport_write(f.client, NULL, 0), EPODE_EAGAIN);
    size_t got = 0;
    for (int i = 0; i < 100 && got < sizeof big; i++) {
        ssize_t n = gnutls_record_recv(f.sv.s, buf, sizeof buf);
        if (n > 0)
            got += (size_t)n;
        epode__transport_write(f.client, NULL, 0);
    }
    CHECK_INT(got, sizeof big);
    CHECK_INT(epode__transport_write(f.client, NULL, 0), 0);
    CHECK(!(epode__transport_wants(f.client) & EPODE__WRITE));
    fixture_stop(&f);
}

TEST(tls_gives_its_write_backlog_back_once_written)
{
    /* An idle session holds no buffer in the TLS layer: what the lower
     * transport did not take is kept only until it is written. */
    epode__tls_creds *creds;
    epode__transport *a, *b, *c;
    server sv;
    char buf[4096];
    static char big[10000];
    CHECK_INT(epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &creds), 0);
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    epode__memory_set_limit(a, 2000);
    CHECK_INT(server_start(&sv, b, NULL), 0);
    live = 0;
    epode__tls_options o = {.server_name = "localhost"};
    CHECK_INT(epode__tls_new(&test_mem, creds, a, &o, &c), 0);
    CHECK_INT(pump_handshake(c, &sv), 0);
    long idle = live; /* the transport and its copy of the name */
    CHECK_INT(idle, 2);
    size_t sent = 0;
    for (int i = 0; i < 10 && !(epode__transport_wants(c) & EPODE__WRITE); i++) {
        long w = epode__transport_write(c, big, sizeof big);
        CHECK(w > 0);
        sent += (size_t)w;
    }
    CHECK(epode__transport_wants(c) & EPODE__WRITE);
    CHECK_INT(live, idle + 1); /* the backlog */
    size_t got = 0;
    for (int i = 0; i < 100 && got < sent; i++) {
        ssize_t n = gnutls_record_recv(sv.s, buf, sizeof buf);
        if (n > 0)
            got += (size_t)n;
        epode__transport_write(c, NULL, 0);
    }
    CHECK_INT(got, sent);
    CHECK_INT(epode__transport_write(c, NULL, 0), 0);
    CHECK_INT(live, idle);
    epode__transport_free(c);
    server_stop(&sv);
    epode__tls_creds_free(creds);
    CHECK_INT(live, 0);
}

TEST(tls_wants_read_while_waiting_for_the_server)
{
    fixture f;
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    CHECK(epode__transport_wants(f.client) & EPODE__WRITE); /* ClientHello first */
    CHECK_INT(epode__tls_handshake(f.client), EPODE_EAGAIN);
    CHECK_INT(epode__transport_wants(f.client), EPODE__READ);
    fixture_stop(&f);
}

TEST(tls_buffered_records_show_as_pending)
{
    fixture f;
    char buf[8];
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    CHECK_INT(server_send(&f.sv, "0123456789abcdef", 16), 16);
    long r;
    while ((r = epode__transport_read(f.client, buf, 4)) == EPODE_EAGAIN)
        ;
    CHECK_INT(r, 4);
    /* The rest of the record is decrypted inside gnutls, not on the fd. */
    CHECK_INT(epode__transport_pending(f.client), 12);
    CHECK_INT(epode__transport_read(f.client, buf, 8), 8);
    CHECK(memcmp(buf, "456789ab", 8) == 0);
    fixture_stop(&f);
}

/* One turn of lib/conn's read loop: read until "nothing now". No new
 * bytes arrive from the network meanwhile. The bytes read (appended to
 * buf), or the first error. */
static long read_until_eagain(epode__transport *c, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        long r = epode__transport_read(c, buf + got, len - got);
        if (r == EPODE_EAGAIN)
            break;
        if (r <= 0)
            return r < 0 ? r : -1000;
        got += (size_t)r;
    }
    return (long)got;
}

/* The server sends `tickets` TLS 1.3 NewSessionTickets, then a stanza,
 * in one burst. */
static int send_tickets_then_data(server *sv, int tickets)
{
    for (int i = 0; i < tickets; i++)
        if (gnutls_session_ticket_send(sv->s, 1, 0) < 0)
            return -1;
    return server_send(sv, "<message/>", 10) == 10 ? 0 : -1;
}

TEST(tls_records_without_data_do_not_hold_back_the_data_behind_them)
{
    /* Issue 12: 40 session tickets, then data. Each ticket made
     * gnutls_record_recv return E_AGAIN, and the read gave up there: the
     * data took one more loop turn per record. */
    fixture f;
    char buf[64];
    server_opts so = {.tickets = 1};
    CHECK_INT(connect_to(&f, NULL, &so), 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 0); /* the handshake's ticket */
    CHECK_INT(send_tickets_then_data(&f.sv, 40), 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "<message/>", 10) == 0);
    CHECK_INT(epode__transport_pending(f.client), 0);
    CHECK_INT(epode__transport_wants(f.client), EPODE__READ);
    fixture_stop(&f);
}

/* connect_to over a socketpair (tcp transports: pending() is 0 there,
 * only the fd tells); *fd is the client's end. */
static int connect_over_a_socket(fixture *f, const server_opts *so, int *fd)
{
    int fds[2];
    epode__transport *tcp, *srv_tcp;
    memset(f, 0, sizeof *f);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return -100;
    if (epode__tcp_new(NULL, fds[0], &tcp) < 0 || epode__tcp_new(NULL, fds[1], &srv_tcp) < 0 ||
        epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &f->creds) < 0 ||
        server_start(&f->sv, srv_tcp, so) < 0)
        return -100;
    epode__tls_options o = {.server_name = "localhost"};
    if (epode__tls_new(NULL, f->creds, tcp, &o, &f->client) < 0)
        return -100;
    *fd = fds[0];
    return pump_handshake(f->client, &f->sv);
}

/* The same as send_tickets_then_data, but all in one write to the
 * socket below the server (the records are made over a memory pair). */
static int send_tickets_then_data_at_once(server *sv, int tickets)
{
    epode__transport *sock = sv->end, *a, *b;
    static char burst[200000];
    long n = -1;
    if (epode__memory_pair(NULL, &a, &b) < 0)
        return -1;
    sv->end = a;
    if (send_tickets_then_data(sv, tickets) == 0)
        n = epode__transport_read(b, burst, sizeof burst);
    sv->end = sock;
    epode__transport_free(a);
    epode__transport_free(b);
    if (n <= 0 || n == (long)sizeof burst)
        return -1;
    return epode__transport_write(sock, burst, (size_t)n) == n ? 0 : -1;
}

TEST(tls_records_without_data_over_a_socket_leave_nothing_behind)
{
    /* Over a socket, when the read says "nothing now" and pending() is
     * 0, nothing may be left to read: the loop would wait on the fd. */
    fixture f;
    int fd;
    char buf[64];
    server_opts so = {.tickets = 1};
    CHECK_INT(connect_over_a_socket(&f, &so, &fd), 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 0);
    CHECK_INT(send_tickets_then_data_at_once(&f.sv, 30), 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "<message/>", 10) == 0);
    CHECK_INT(epode__transport_pending(f.client), 0);
    CHECK_INT(recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT), -1);

    /* Past the read's budget: "nothing now", but pending() says come
     * back, though the socket's pending() knows nothing. */
    CHECK_INT(send_tickets_then_data_at_once(&f.sv, 300), 0);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_EAGAIN);
    CHECK(epode__transport_pending(f.client) > 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "<message/>", 10) == 0);
    CHECK_INT(epode__transport_pending(f.client), 0);
    fixture_stop(&f);
}

TEST(tls_warnings_do_not_hold_back_the_data_behind_them)
{
    /* TLS 1.2: warning alerts, which a client may ignore, then data. */
    fixture f;
    char buf[64];
    epode__tls_options o = {.server_name = "localhost", .max_version = 12};
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    for (int i = 0; i < 40; i++)
        CHECK_INT(gnutls_alert_send(f.sv.s, GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED), 0);
    CHECK_INT(server_send(&f.sv, "<message/>", 10), 10);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "<message/>", 10) == 0);
    fixture_stop(&f);
}

TEST(tls_a_flood_of_records_without_data_yields_but_says_come_back)
{
    /* Past the read's budget the loop gets a turn, and pending() says
     * there is more to read, so the caller comes back at once. */
    fixture f;
    char buf[64];
    server_opts so = {.tickets = 1};
    CHECK_INT(connect_to(&f, NULL, &so), 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 0);
    CHECK_INT(send_tickets_then_data_at_once(&f.sv, 300), 0);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_EAGAIN);
    CHECK(epode__transport_pending(f.client) > 0);
    CHECK_INT(read_until_eagain(f.client, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "<message/>", 10) == 0);
    CHECK_INT(epode__transport_pending(f.client), 0);
    fixture_stop(&f);
}

/* ---- certificate verification --------------------------------------------- */

static int verify_with(const char *cert, const char *key, const char *domain, char *why,
                       size_t why_len)
{
    fixture f;
    server_opts so = {.cert = cert, .key = key};
    int r = connect_to(&f, NULL, &so);
    if (r == 0)
        r = epode__tls_verify(f.client, domain, why, why_len);
    fixture_stop(&f);
    return r;
}

TEST(tls_verify_accepts_names_in_the_certificate)
{
    char why[160];
    CHECK_INT(verify_with(NULL, NULL, "localhost", why, sizeof why), 0);
    CHECK_INT(verify_with(NULL, NULL, "example.test", why, sizeof why), 0);
    CHECK_INT(verify_with(NULL, NULL, "Example.TEST", why, sizeof why), 0);
    CHECK_INT(verify_with(NULL, NULL, "127.0.0.1", why, sizeof why), 0);
}

TEST(tls_verify_defaults_to_the_server_name)
{
    fixture f;
    char why[160];
    epode__tls_options o = {.server_name = "example.test"};
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(epode__tls_verify(f.client, NULL, why, sizeof why), 0);
    fixture_stop(&f);
}

TEST(tls_verify_rejects_a_name_not_in_the_certificate)
{
    char why[160];
    CHECK_INT(verify_with(NULL, NULL, "other.test", why, sizeof why), EPODE_ECERT);
    CHECK(strstr(why, "issued for another name") != NULL);
    CHECK(strstr(why, "other.test") != NULL);
    CHECK(strstr(why, "unknown authority") == NULL);
}

TEST(tls_verify_rejects_the_wrongname_certificate)
{
    char why[160];
    CHECK_INT(verify_with(DATA "wrongname.pem", DATA "wrongname-key.pem", "localhost", why,
                          sizeof why),
              EPODE_ECERT);
    CHECK(strstr(why, "another name") != NULL);
}

TEST(tls_verify_rejects_an_unknown_authority)
{
    char why[160];
    CHECK_INT(verify_with(DATA "untrusted.pem", DATA "untrusted-key.pem", "localhost", why,
                          sizeof why),
              EPODE_ECERT);
    CHECK_STR(why, "signed by an unknown authority");
}

TEST(tls_verify_rejects_expired_and_not_yet_valid)
{
    char why[160];
    CHECK_INT(verify_with(DATA "expired.pem", DATA "expired-key.pem", "localhost", why,
                          sizeof why),
              EPODE_ECERT);
    CHECK_STR(why, "expired");
    CHECK_INT(verify_with(DATA "notyet.pem", DATA "notyet-key.pem", "localhost", why, sizeof why),
              EPODE_ECERT);
    CHECK_STR(why, "not yet valid");
}

TEST(tls_verify_accepts_an_xmppaddr_only_certificate)
{
    char why[160];
    CHECK_INT(verify_with(DATA "xmppaddr.pem", DATA "xmppaddr-key.pem", "example.test", why,
                          sizeof why),
              0);
    CHECK_INT(verify_with(DATA "xmppaddr.pem", DATA "xmppaddr-key.pem", "EXAMPLE.test", why,
                          sizeof why),
              0);
    CHECK_INT(verify_with(DATA "xmppaddr.pem", DATA "xmppaddr-key.pem", "localhost", why,
                          sizeof why),
              EPODE_ECERT);
    CHECK(strstr(why, "another name") != NULL);
    /* A prefix or suffix of the XmppAddr is not a match. */
    CHECK_INT(verify_with(DATA "xmppaddr.pem", DATA "xmppaddr-key.pem", "example.tes", why,
                          sizeof why),
              EPODE_ECERT);
    CHECK_INT(verify_with(DATA "xmppaddr.pem", DATA "xmppaddr-key.pem", "example.test.", why,
                          sizeof why),
              EPODE_ECERT);
}

TEST(tls_verify_xmppaddr_does_not_excuse_an_unknown_authority)
{
    /* The XmppAddr cert re-signed by nobody we trust: the client trusts
     * only the untrusted CA, so the chain fails whatever the name. */
    epode__tls_creds *creds;
    epode__transport *a, *b, *c;
    server sv;
    char why[160];
    CHECK_INT(epode__tls_creds_new(NULL, DATA "untrusted-ca.pem", NULL, NULL, &creds), 0);
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    server_opts so = {.cert = DATA "xmppaddr.pem", .key = DATA "xmppaddr-key.pem"};
    CHECK_INT(server_start(&sv, b, &so), 0);
    CHECK_INT(epode__tls_new(NULL, creds, a, NULL, &c), 0);
    CHECK_INT(pump_handshake(c, &sv), 0);
    CHECK_INT(epode__tls_verify(c, "example.test", why, sizeof why), EPODE_ECERT);
    CHECK_STR(why, "signed by an unknown authority");
    /* No server name given and none passed: nothing to check against. */
    CHECK_INT(epode__tls_verify(c, NULL, why, sizeof why), EPODE_EINVAL);
    epode__transport_free(c);
    server_stop(&sv);
    epode__tls_creds_free(creds);
}

/* "bücher.example.test" in UTF-8; its A-label is xn--bcher-kva. */
#define BUECHER "b\xc3\xbc" "cher.example.test"

/* Verifies a certificate made for the test: `leaf` signed by `inter`
 * (made, and signed by the test CA), or by the test CA itself when inter
 * is NULL. The result of epode__tls_verify, or -100 if set-up failed. */
static int verify_made(const cert_spec *inter, const cert_spec *leaf, const char *domain,
                       char *why, size_t why_len)
{
    made ca, im = {NULL, NULL}, lf;
    gnutls_datum_t cert, key;
    int r = -100;
    if (made_load(&ca, DATA "ca.pem", DATA "ca-key.pem") < 0)
        return r;
    if ((!inter || made_new(&im, inter, &ca) == 0) &&
        made_new(&lf, leaf, inter ? &im : &ca) == 0) {
        if (made_pem(&lf, inter ? &im : NULL, &cert, &key) == 0) {
            fixture f;
            server_opts so = {.cert_pem = &cert, .key_pem = &key};
            r = connect_to(&f, NULL, &so);
            r = r == 0 ? epode__tls_verify(f.client, domain, why, why_len) : -100;
            fixture_stop(&f);
            pem_free(&cert, &key);
        }
        made_free(&lf);
    }
    made_free(&im);
    made_free(&ca);
    return r;
}

TEST(tls_verify_xmppaddr_outside_the_issuers_name_constraints_is_refused)
{
    /* Issue 12: a CA restricted to evil.test issues a certificate that
     * also claims the XmppAddr example.test. gnutls applies name
     * constraints to DNS names only; the XmppAddr must not slip past. */
    char why[160];
    cert_spec inter = {.cn = "evil.test CA", .ca = 1, .permitted = {"evil.test"}};
    cert_spec leaf = {.cn = "xmpp.evil.test", .dns = {"xmpp.evil.test"},
                      .xmppaddr = "example.test"};
    /* The chain is good for what the constraints allow... */
    CHECK_INT(verify_made(&inter, &leaf, "xmpp.evil.test", why, sizeof why), 0);
    /* ...and not for the XmppAddr outside them. */
    CHECK_INT(verify_made(&inter, &leaf, "example.test", why, sizeof why), EPODE_ECERT);
    CHECK_STR(why, "outside its issuer's name constraints");
    /* Not even in another case. */
    leaf.xmppaddr = "Example.TEST";
    CHECK_INT(verify_made(&inter, &leaf, "example.test", why, sizeof why), EPODE_ECERT);

    /* An excluded subtree, likewise. */
    cert_spec inter2 = {.cn = "anything but example.test CA", .ca = 1,
                        .excluded = {"example.test"}};
    cert_spec leaf2 = {.cn = "other.test", .dns = {"other.test"}, .xmppaddr = "example.test"};
    CHECK_INT(verify_made(&inter2, &leaf2, "other.test", why, sizeof why), 0);
    CHECK_INT(verify_made(&inter2, &leaf2, "example.test", why, sizeof why), EPODE_ECERT);
    CHECK_STR(why, "outside its issuer's name constraints");
    leaf2.xmppaddr = "EXAMPLE.test";
    CHECK_INT(verify_made(&inter2, &leaf2, "example.test", why, sizeof why), EPODE_ECERT);
    /* An internationalized domain meets constraints in its A-label form. */
    cert_spec inter3 = {.cn = "no books CA", .ca = 1, .excluded = {"xn--bcher-kva.example.test"}};
    leaf2.xmppaddr = BUECHER;
    CHECK_INT(verify_made(&inter3, &leaf2, BUECHER, why, sizeof why),
              EPODE_ECERT);
    CHECK_STR(why, "outside its issuer's name constraints");
}

TEST(tls_verify_xmppaddr_under_an_unconstrained_intermediate_is_accepted)
{
    char why[160];
    cert_spec inter = {.cn = "epode test intermediate", .ca = 1};
    cert_spec leaf = {.cn = "XmppAddr only", .xmppaddr = "example.test"};
    CHECK_INT(verify_made(&inter, &leaf, "example.test", why, sizeof why), 0);
    CHECK_INT(verify_made(&inter, &leaf, "localhost", why, sizeof why), EPODE_ECERT);
    CHECK(strstr(why, "another name") != NULL);
}

TEST(tls_verify_xmppaddr_permitted_by_the_name_constraints_is_accepted)
{
    char why[160];
    /* With no DNS name, gnutls checks the CN against DNS constraints: the
     * leaf has one inside them, and it is not the domain asked for. */
    cert_spec leaf = {.cn = "xmpp.example.test", .dns = {"xmpp.example.test"},
                      .xmppaddr = "example.test"};
    cert_spec exact = {.cn = "example.test CA", .ca = 1, .permitted = {"example.test"}};
    CHECK_INT(verify_made(&exact, &leaf, "example.test", why, sizeof why), 0);
    cert_spec parent = {.cn = "test CA", .ca = 1, .permitted = {"other.test", "test"}};
    CHECK_INT(verify_made(&parent, &leaf, "example.test", why, sizeof why), 0);
    cert_spec elsewhere = {.cn = "elsewhere CA", .ca = 1, .excluded = {"evil.test"}};
    CHECK_INT(verify_made(&elsewhere, &leaf, "example.test", why, sizeof why), 0);
    cert_spec books = {.cn = "xmpp.example.test", .dns = {"xmpp.example.test"},
                       .xmppaddr = BUECHER};
    CHECK_INT(verify_made(&exact, &books, BUECHER, why, sizeof why), 0);
    /* A match in the DNS name needs no XmppAddr check at all. */
    cert_spec both = {.cn = "example.test", .dns = {"example.test"}, .xmppaddr = "example.test"};
    CHECK_INT(verify_made(&exact, &both, "example.test", why, sizeof why), 0);
}

/* A server sending only `cert`, verified for `domain` by a client that
 * trusts the CA file `ca_path`: epode__tls_verify's result, or -100 if
 * set-up failed. */
static int verify_with_ca_file(const char *ca_path, gnutls_datum_t *cert, gnutls_datum_t *key,
                               const char *domain, char *why, size_t why_len)
{
    epode__tls_creds *creds;
    epode__transport *a, *b, *c;
    server sv;
    server_opts so = {.cert_pem = cert, .key_pem = key};
    if (epode__tls_creds_new(NULL, ca_path, NULL, NULL, &creds) < 0)
        return -100;
    int r = -100;
    if (epode__memory_pair(NULL, &a, &b) == 0) {
        if (server_start(&sv, b, &so) == 0) {
            if (epode__tls_new(NULL, creds, a, NULL, &c) == 0) {
                if (pump_handshake(c, &sv) == 0)
                    r = epode__tls_verify(c, domain, why, why_len);
                epode__transport_free(c);
            } else {
                epode__transport_free(a);
            }
            server_stop(&sv);
        } else {
            epode__transport_free(a);
            epode__transport_free(b);
        }
    }
    epode__tls_creds_free(creds);
    return r;
}

TEST(tls_verify_xmppaddr_respects_a_constrained_trust_anchor)
{
    /* The constrained CA is itself the trusted root, and the server sends
     * only its own certificate: the constraints come from the trust store. */
    char why[160], path[] = "/tmp/epode-test-ca-XXXXXX";
    made root, lf;
    gnutls_datum_t root_pem = {NULL, 0}, cert, key;
    cert_spec rs = {.cn = "evil.test root", .ca = 1, .permitted = {"evil.test"}};
    cert_spec ls = {.cn = "xmpp.evil.test", .dns = {"xmpp.evil.test"},
                    .xmppaddr = "example.test"};
    CHECK_INT(made_new(&root, &rs, NULL), 0);
    CHECK_INT(made_new(&lf, &ls, &root), 0);
    CHECK_INT(gnutls_x509_crt_export2(root.crt, GNUTLS_X509_FMT_PEM, &root_pem), 0);
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, root_pem.data, root_pem.size), (long)root_pem.size);
    close(fd);
    gnutls_free(root_pem.data);
    CHECK_INT(made_pem(&lf, NULL, &cert, &key), 0);
    CHECK_INT(verify_with_ca_file(path, &cert, &key, "xmpp.evil.test", why, sizeof why), 0);
    CHECK_INT(verify_with_ca_file(path, &cert, &key, "example.test", why, sizeof why), EPODE_ECERT);
    unlink(path);
    pem_free(&cert, &key);
    made_free(&lf);
    made_free(&root);
}

TEST(tls_verify_xmppaddr_respects_a_constrained_root_above_a_trusted_intermediate)
{
    /* A private CA file holding a constrained root and an unconstrained
     * intermediate under it; the server sends only its own certificate.
     * The root's constraints bind the XmppAddr too, two levels up. */
    char why[160], path[] = "/tmp/epode-test-ca-XXXXXX";
    made root, im, lf;
    gnutls_datum_t pem = {NULL, 0}, cert, key;
    cert_spec rs = {.cn = "evil.test root", .ca = 1, .permitted = {"evil.test"}};
    cert_spec is = {.cn = "plain intermediate", .ca = 1};
    cert_spec ls = {.cn = "xmpp.evil.test", .dns = {"xmpp.evil.test"},
                    .xmppaddr = "example.test"};
    CHECK_INT(made_new(&root, &rs, NULL), 0);
    CHECK_INT(made_new(&im, &is, &root), 0);
    CHECK_INT(made_new(&lf, &ls, &im), 0);
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    made *both[] = {&root, &im};
    for (int i = 0; i < 2; i++) {
        CHECK_INT(gnutls_x509_crt_export2(both[i]->crt, GNUTLS_X509_FMT_PEM, &pem), 0);
        CHECK_INT(write(fd, pem.data, pem.size), (long)pem.size);
        gnutls_free(pem.data);
    }
    close(fd);
    CHECK_INT(made_pem(&lf, NULL, &cert, &key), 0);
    CHECK_INT(verify_with_ca_file(path, &cert, &key, "xmpp.evil.test", why, sizeof why), 0);
    CHECK_INT(verify_with_ca_file(path, &cert, &key, "example.test", why, sizeof why), EPODE_ECERT);
    unlink(path);
    pem_free(&cert, &key);
    made_free(&lf);
    made_free(&im);
    made_free(&root);
}

TEST(tls_verify_before_the_handshake_is_a_state_error)
{
    fixture f;
    char why[160];
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    CHECK_INT(epode__tls_verify(f.client, "localhost", why, sizeof why), EPODE_ESTATE);
    CHECK(why[0] != '\0');
    const unsigned char *der = (const unsigned char *)"x";
    size_t len = 1;
    CHECK_INT(epode__tls_peer_cert(f.client, &der, &len), EPODE_ENOTFOUND);
    CHECK(der == NULL && len == 0);
    fixture_stop(&f);
    /* Not a TLS transport at all. */
    epode__transport *a, *b;
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    CHECK_INT(epode__tls_verify(a, "localhost", why, sizeof why), EPODE_EINVAL);
    CHECK_INT(epode__tls_version(a), 0);
    epode__transport_free(a);
    epode__transport_free(b);
}

TEST(tls_peer_cert_is_the_servers_der)
{
    fixture f;
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    const unsigned char *der;
    size_t len;
    CHECK_INT(epode__tls_peer_cert(f.client, &der, &len), 0);
    CHECK(der != NULL && len > 100);
    gnutls_x509_crt_t crt;
    CHECK_INT(gnutls_x509_crt_init(&crt), 0);
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    CHECK_INT(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER), 0);
    char cn[64];
    size_t cnlen = sizeof cn;
    CHECK_INT(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cnlen), 0);
    CHECK_STR(cn, "localhost");
    gnutls_x509_crt_deinit(crt);
    fixture_stop(&f);
}

/* ---- channel binding, versions, ALPN, SNI ---------------------------------- */

static int server_binding(server *sv, gnutls_channel_binding_t type, unsigned char *buf,
                          size_t *len)
{
    gnutls_datum_t d;
    if (gnutls_session_channel_binding(sv->s, type, &d) < 0)
        return -1;
    memcpy(buf, d.data, d.size);
    *len = d.size;
    gnutls_free(d.data);
    return 0;
}

TEST(tls_unique_on_tls12_matches_the_server)
{
    fixture f;
    epode__tls_options o = {.server_name = "localhost", .max_version = 12};
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 12);
    unsigned char mine[64], theirs[64];
    size_t mlen = sizeof mine, tlen;
    CHECK_INT(epode__tls_channel_binding(f.client, EPODE__CB_TLS_UNIQUE, mine, &mlen), 0);
    CHECK_INT(mlen, 12);
    CHECK_INT(server_binding(&f.sv, GNUTLS_CB_TLS_UNIQUE, theirs, &tlen), 0);
    CHECK_INT(tlen, mlen);
    CHECK(memcmp(mine, theirs, mlen) == 0);
    /* tls-exporter works on 1.2 too (gnutls uses extended master secret). */
    mlen = sizeof mine;
    CHECK_INT(epode__tls_channel_binding(f.client, EPODE__CB_TLS_EXPORTER, mine, &mlen), 0);
    CHECK_INT(mlen, 32);
    CHECK_INT(server_binding(&f.sv, GNUTLS_CB_TLS_EXPORTER, theirs, &tlen), 0);
    CHECK(tlen == mlen && memcmp(mine, theirs, mlen) == 0);
    fixture_stop(&f);
}

TEST(tls_unique_is_not_found_on_tls13)
{
    fixture f;
    epode__tls_options o = {.server_name = "localhost", .max_version = 13};
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 13);
    unsigned char buf[64];
    size_t len = sizeof buf;
    CHECK_INT(epode__tls_channel_binding(f.client, EPODE__CB_TLS_UNIQUE, buf, &len),
              EPODE_ENOTFOUND);
    fixture_stop(&f);
}

TEST(tls_exporter_on_tls13_matches_the_server)
{
    fixture f;
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 13);
    unsigned char mine[64], theirs[64];
    size_t mlen = sizeof mine, tlen;
    CHECK_INT(epode__tls_channel_binding(f.client, EPODE__CB_TLS_EXPORTER, mine, &mlen), 0);
    CHECK_INT(mlen, 32);
    CHECK_INT(server_binding(&f.sv, GNUTLS_CB_TLS_EXPORTER, theirs, &tlen), 0);
    CHECK_INT(tlen, 32);
    CHECK(memcmp(mine, theirs, 32) == 0);
    /* Too small a buffer: never truncated, the length needed comes back. */
    size_t small = 16;
    CHECK_INT(epode__tls_channel_binding(f.client, EPODE__CB_TLS_EXPORTER, mine, &small),
              EPODE_ERANGE);
    CHECK_INT(small, 32);
    CHECK_INT(epode__tls_channel_binding(f.client, 99, mine, &small), EPODE_EINVAL);
    fixture_stop(&f);
}

TEST(tls_channel_binding_before_the_handshake_is_a_state_error)
{
    fixture f;
    unsigned char buf[64];
    size_t len = sizeof buf;
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    CHECK_INT(epode__tls_channel_binding(f.client, EPODE__CB_TLS_EXPORTER, buf, &len),
              EPODE_ESTATE);
    CHECK_INT(epode__tls_key_bits(f.client), 0);
    fixture_stop(&f);
}

TEST(tls_alpn_offered_when_asked)
{
    fixture f;
    gnutls_datum_t p;
    server_opts so = {.alpn = "xmpp-client"};
    epode__tls_options o = {.server_name = "localhost", .alpn_xmpp_client = 1};
    CHECK_INT(connect_to(&f, &o, &so), 0);
    CHECK_INT(gnutls_alpn_get_selected_protocol(f.sv.s, &p), 0);
    CHECK_INT(p.size, 11);
    CHECK(memcmp(p.data, "xmpp-client", 11) == 0);
    fixture_stop(&f);

    /* Not asked: not offered. */
    CHECK_INT(connect_to(&f, NULL, &so), 0);
    CHECK(gnutls_alpn_get_selected_protocol(f.sv.s, &p) < 0);
    fixture_stop(&f);
}

TEST(tls_alpn_is_never_required)
{
    fixture f;
    server_opts so = {.alpn = "h2"}; /* a server that does not speak it */
    epode__tls_options o = {.server_name = "localhost", .alpn_xmpp_client = 1};
    CHECK_INT(connect_to(&f, &o, &so), 0);
    fixture_stop(&f);
    so.alpn = NULL;
    CHECK_INT(connect_to(&f, &o, &so), 0);
    fixture_stop(&f);
}

/* The extensions of the ClientHello the server saw (ids below 64). */
static unsigned char hello_ext[64];

static int note_hello_ext(void *ctx, unsigned id, const unsigned char *data, unsigned len)
{
    (void)ctx, (void)data, (void)len;
    if (id < sizeof hello_ext)
        hello_ext[id] = 1;
    return 0;
}

static int on_client_hello(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
                           const gnutls_datum_t *msg)
{
    (void)s, (void)htype, (void)when, (void)incoming;
    return gnutls_ext_raw_parse(NULL, note_hello_ext, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
}

TEST(tls_asks_for_no_session_tickets)
{
    /* epode never resumes: a ticket would only be held by every idle
     * session. No session_ticket (35) for TLS 1.2 servers, no
     * psk_key_exchange_modes (45) for TLS 1.3 ones. */
    for (int max = 12; max <= 13; max++) {
        fixture f;
        epode__tls_options o = {.server_name = "localhost", .max_version = max};
        memset(hello_ext, 0, sizeof hello_ext);
        CHECK_INT(fixture_start(&f, &o, NULL), 0);
        gnutls_handshake_set_hook_function(f.sv.s, GNUTLS_HANDSHAKE_CLIENT_HELLO,
                                           GNUTLS_HOOK_PRE, on_client_hello);
        CHECK_INT(pump_handshake(f.client, &f.sv), 0);
        CHECK_INT(epode__tls_version(f.client), max);
        CHECK(hello_ext[0]);  /* server_name: the parse saw the extensions */
        CHECK(hello_ext[10]); /* supported_groups */
        CHECK(!hello_ext[35]);
        CHECK(!hello_ext[45]);
        fixture_stop(&f);
    }
}

TEST(tls_a_tls12_server_sends_no_ticket)
{
    fixture f;
    epode__tls_options o = {.server_name = "localhost", .max_version = 12};
    server_opts so = {.tickets = 1};
    CHECK_INT(connect_to(&f, &o, &so), 0);
    CHECK(!(gnutls_session_get_flags(epode__tls_session(f.client)) &
            GNUTLS_SFLAGS_SESSION_TICKET));
    fixture_stop(&f);
}

TEST(tls_sni_is_the_server_name_but_never_an_address)
{
    fixture f;
    char name[256];
    size_t len = sizeof name;
    unsigned type;
    epode__tls_options o = {.server_name = "example.test"};
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(gnutls_server_name_get(f.sv.s, name, &len, &type, 0), 0);
    CHECK_STR(name, "example.test");
    fixture_stop(&f);

    epode__tls_options ip = {.server_name = "127.0.0.1"};
    CHECK_INT(connect_to(&f, &ip, NULL), 0);
    len = sizeof name;
    CHECK(gnutls_server_name_get(f.sv.s, name, &len, &type, 0) < 0);
    char why[160];
    CHECK_INT(epode__tls_verify(f.client, NULL, why, sizeof why), 0);
    fixture_stop(&f);
}

TEST(tls_max_version_12_against_a_tls13_only_server_fails_with_words)
{
    fixture f;
    epode__tls_options o = {.server_name = "localhost", .max_version = 12};
    server_opts so = {.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3"};
    int r = connect_to(&f, &o, &so);
    CHECK_INT(r, EPODE_ETLS);
    CHECK(strstr(epode__transport_error(f.client), "TLS handshake failed: the peer sent a fatal alert: ") != NULL);
    /* sticky */
    char buf[4];
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), EPODE_ETLS);
    CHECK_INT(epode__transport_write(f.client, "x", 1), EPODE_ETLS);
    fixture_stop(&f);
}

TEST(tls_refuses_tls10_and_tls11_by_default)
{
    /* Issue 12: gnutls' default still offers TLS 1.0 and 1.1. */
    static const char *old[] = {"NORMAL:-VERS-ALL:+VERS-TLS1.0", "NORMAL:-VERS-ALL:+VERS-TLS1.1"};
    for (int i = 0; i < 2; i++) {
        fixture f;
        server_opts so = {.priority = old[i]};
        int r = connect_to(&f, NULL, &so);
        fixture_stop(&f);
        CHECK_INT(r, EPODE_ETLS);
        /* TLS 1.2 only does not bring them back. */
        epode__tls_options o = {.server_name = "localhost", .max_version = 12};
        r = connect_to(&f, &o, &so);
        fixture_stop(&f);
        CHECK_INT(r, EPODE_ETLS);
    }
}

TEST(tls_min_version_loosens_to_tls10_and_reports_it)
{
    fixture f;
    char why[160];
    server_opts tls10 = {.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.0"};
    epode__tls_options o = {.server_name = "localhost", .min_version = 10};
    CHECK_INT(connect_to(&f, &o, &tls10), 0);
    CHECK_INT(epode__tls_version(f.client), 10);
    CHECK_INT(epode__tls_verify(f.client, NULL, why, sizeof why), 0);
    CHECK_INT(transfer(&f, 3000, 3000, 1000), 0);
    fixture_stop(&f);

    server_opts tls11 = {.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.1"};
    o.max_version = 12;
    CHECK_INT(connect_to(&f, &o, &tls11), 0);
    CHECK_INT(epode__tls_version(f.client), 11);
    fixture_stop(&f);
    o.min_version = 11;
    CHECK_INT(connect_to(&f, &o, &tls11), 0);
    CHECK_INT(epode__tls_version(f.client), 11);
    fixture_stop(&f);
    CHECK_INT(connect_to(&f, &o, &tls10), EPODE_ETLS);
    fixture_stop(&f);

    /* Loosened, a server that can do better still gets the best. */
    o.min_version = 10;
    o.max_version = 0;
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 13);
    fixture_stop(&f);
}

TEST(tls_min_version_13_refuses_tls12)
{
    fixture f;
    server_opts tls12 = {.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    epode__tls_options o = {.server_name = "localhost", .min_version = 13};
    CHECK_INT(connect_to(&f, &o, &tls12), EPODE_ETLS);
    fixture_stop(&f);
    CHECK_INT(connect_to(&f, &o, NULL), 0);
    CHECK_INT(epode__tls_version(f.client), 13);
    fixture_stop(&f);
}

TEST(tls_refuses_rsa_key_exchange_even_when_loosened)
{
    /* RSA key transport has no forward secrecy: whoever later gets the
     * server's key decrypts every recorded session. */
    made ca, lf;
    gnutls_datum_t cert, key;
    cert_spec ls = {.cn = "localhost", .rsa = 1, .dns = {"localhost"}};
    CHECK_INT(made_load(&ca, DATA "ca.pem", DATA "ca-key.pem"), 0);
    CHECK_INT(made_new(&lf, &ls, &ca), 0);
    CHECK_INT(made_pem(&lf, NULL, &cert, &key), 0);
    made_free(&lf);
    made_free(&ca);
    server_opts rsa_kx = {.cert_pem = &cert, .key_pem = &key,
                          .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA"};
    server_opts ecdhe = {.cert_pem = &cert, .key_pem = &key,
                         .priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA"};
    epode__tls_options dflt = {.server_name = "localhost"};
    epode__tls_options tls12 = {.server_name = "localhost", .max_version = 12};
    epode__tls_options loose = {.server_name = "localhost", .min_version = 10};
    const epode__tls_options *opts[] = {&dflt, &tls12, &loose};
    for (int i = 0; i < 3; i++) {
        fixture f;
        int r = connect_to(&f, opts[i], &ecdhe); /* the certificate is fine */
        fixture_stop(&f);
        CHECK_INT(r, 0);
        r = connect_to(&f, opts[i], &rsa_kx);
        fixture_stop(&f);
        CHECK_INT(r, EPODE_ETLS);
    }
    /* The same for a TLS 1.0 server, when TLS 1.0 is allowed. */
    rsa_kx.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.0:-KX-ALL:+RSA";
    fixture f;
    int r = connect_to(&f, &loose, &rsa_kx);
    fixture_stop(&f);
    pem_free(&cert, &key);
    CHECK_INT(r, EPODE_ETLS);
}

TEST(tls_new_checks_the_version_range)
{
    epode__tls_creds *creds;
    epode__transport *a, *b, *c = NULL;
    CHECK_INT(epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &creds), 0);
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    static const int bad[][2] = {{9, 0}, {14, 0}, {1, 0}, {-1, 0}, {13, 12}, {10, 11}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        epode__tls_options o = {.server_name = "localhost", .min_version = bad[i][0],
                                .max_version = bad[i][1]};
        CHECK_INT(epode__tls_new(NULL, creds, a, &o, &c), EPODE_EINVAL);
        CHECK(c == NULL);
    }
    epode__transport_free(a);
    epode__transport_free(b);
    for (int min = 10; min <= 13; min++) {
        epode__tls_options o = {.server_name = "localhost", .min_version = min};
        CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
        CHECK_INT(epode__tls_new(NULL, creds, a, &o, &c), 0);
        epode__transport_free(c); /* and a with it */
        epode__transport_free(b);
    }
    epode__tls_creds_free(creds);
}

TEST(conn_tls_min_version_takes_10_to_13)
{
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &conn), 0);
    for (int v = 10; v <= 13; v++)
        CHECK_INT(epode_conn_set_tls_min_version(conn, v), 0);
    CHECK_INT(epode_conn_set_tls_min_version(conn, 9), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_tls_min_version(conn, 14), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_tls_min_version(conn, 0), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_tls_min_version(NULL, 12), EPODE_EINVAL);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
}

TEST(tls_client_certificate_is_presented_when_asked)
{
    epode__tls_creds *creds;
    epode__transport *a, *b, *c;
    server sv;
    CHECK_INT(epode__tls_creds_new(NULL, DATA "ca.pem", DATA "client.pem", DATA "client-key.pem",
                                   &creds),
              0);
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    server_opts so = {.request_client_cert = 1};
    CHECK_INT(server_start(&sv, b, &so), 0);
    epode__tls_options o = {.server_name = "localhost"};
    CHECK_INT(epode__tls_new(NULL, creds, a, &o, &c), 0);
    CHECK_INT(pump_handshake(c, &sv), 0);
    /* TLS 1.3 sends the client's certificate in its last flight. */
    unsigned status = 0;
    CHECK_INT(gnutls_certificate_verify_peers2(sv.s, &status), 0);
    CHECK_INT(status, 0);
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(sv.s, &n);
    CHECK(certs != NULL && n >= 1);
    gnutls_x509_crt_t crt;
    CHECK_INT(gnutls_x509_crt_init(&crt), 0);
    CHECK_INT(gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER), 0);
    char cn[64];
    size_t cnlen = sizeof cn;
    CHECK_INT(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cnlen), 0);
    CHECK_STR(cn, "alice@localhost");
    gnutls_x509_crt_deinit(crt);
    epode__transport_free(c);
    server_stop(&sv);
    epode__tls_creds_free(creds);
}

/* ---- STARTTLS, shutdown, bad peers ---------------------------------------- */

TEST(starttls_over_a_tcp_transport_that_carried_cleartext)
{
    int fds[2];
    char buf[64];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    epode__transport *tcp, *srv_tcp, *c;
    CHECK_INT(epode__tcp_new(NULL, fds[0], &tcp), 0);
    CHECK_INT(epode__tcp_new(NULL, fds[1], &srv_tcp), 0);
    /* Cleartext first, as in RFC 6120's STARTTLS exchange. */
    static const char req[] = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    static const char proceed[] = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    CHECK_INT(epode__transport_write(tcp, req, sizeof req - 1), (long)sizeof req - 1);
    CHECK_INT(epode__transport_read(srv_tcp, buf, sizeof buf), (long)sizeof req - 1);
    CHECK_INT(epode__transport_write(srv_tcp, proceed, sizeof proceed - 1),
              (long)sizeof proceed - 1);
    CHECK_INT(epode__transport_read(tcp, buf, sizeof buf), (long)sizeof proceed - 1);

    /* Now TLS on both live streams. */
    epode__tls_creds *creds;
    server sv;
    CHECK_INT(epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &creds), 0);
    CHECK_INT(server_start(&sv, srv_tcp, NULL), 0);
    epode__tls_options o = {.server_name = "example.test"};
    CHECK_INT(epode__tls_new(NULL, creds, tcp, &o, &c), 0);
    CHECK_INT(epode__transport_fd(c), fds[0]);
    CHECK_INT(pump_handshake(c, &sv), 0);
    char why[160];
    CHECK_INT(epode__tls_verify(c, NULL, why, sizeof why), 0);
    CHECK_INT(epode__transport_write(c, "<stream:stream>", 15), 15);
    ssize_t r;
    while ((r = gnutls_record_recv(sv.s, buf, sizeof buf)) == GNUTLS_E_AGAIN)
        ;
    CHECK_INT(r, 15);
    CHECK_INT(server_send(&sv, "<features/>", 11), 11);
    long n;
    while ((n = epode__transport_read(c, buf, sizeof buf)) == EPODE_EAGAIN)
        ;
    CHECK_INT(n, 11);
    epode__transport_free(c); /* frees the tcp below and closes fds[0] */
    server_stop(&sv);
    epode__tls_creds_free(creds);
}

TEST(tls_shutdown_sends_close_notify)
{
    fixture f;
    char buf[64];
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    CHECK_INT(server_send(&f.sv, "late data", 9), 9);
    int r;
    for (int i = 0; i < 100 && (r = epode__transport_shutdown(f.client)) == EPODE_EAGAIN; i++)
        ;
    CHECK_INT(r, 0);
    CHECK_INT(epode__transport_shutdown(f.client), 0); /* idempotent */
    CHECK_INT(epode__transport_write(f.client, "x", 1), EPODE_ESTATE);
    /* The server sees close_notify: an orderly 0, not an error. */
    ssize_t s;
    while ((s = gnutls_record_recv(f.sv.s, buf, sizeof buf)) == GNUTLS_E_AGAIN)
        ;
    CHECK_INT(s, 0);
    /* ...and then the end of the byte stream below. */
    CHECK_INT(epode__transport_read(f.sv.end, buf, sizeof buf), 0);
    /* Our reading side is still open. */
    long n;
    while ((n = epode__transport_read(f.client, buf, sizeof buf)) == EPODE_EAGAIN)
        ;
    CHECK_INT(n, 9);
    CHECK(memcmp(buf, "late data", 9) == 0);
    /* The server answers with its own close_notify. */
    CHECK_INT(gnutls_bye(f.sv.s, GNUTLS_SHUT_WR), 0);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), 0);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), 0);
    fixture_stop(&f);
}

TEST(tls_peer_close_without_close_notify_is_an_end_in_words)
{
    fixture f;
    char buf[64];
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    CHECK_INT(server_send(&f.sv, "</stream:stream>", 16), 16);
    server_stop(&f.sv); /* frees the memory end: EOF, no close_notify */
    long n;
    while ((n = epode__transport_read(f.client, buf, sizeof buf)) == EPODE_EAGAIN)
        ;
    CHECK_INT(n, 16);
    CHECK_INT(epode__transport_read(f.client, buf, sizeof buf), 0);
    CHECK(strstr(epode__transport_error(f.client), "close_notify") != NULL);
    /* Saying goodbye to a peer that is gone is not an error. */
    CHECK_INT(epode__transport_shutdown(f.client), 0);
    epode__transport_free(f.client);
    epode__tls_creds_free(f.creds);
}

TEST(tls_write_to_a_vanished_peer_is_enet_with_the_lower_words)
{
    fixture f;
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    server_stop(&f.sv);
    long w = epode__transport_write(f.client, "hello", 5);
    CHECK_INT(w, EPODE_ENET);
    CHECK(strstr(epode__transport_error(f.client), "closed") != NULL);
    epode__transport_free(f.client);
    epode__tls_creds_free(f.creds);
}

TEST(tls_garbage_from_the_server_is_a_tls_error)
{
    fixture f;
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    CHECK_INT(epode__transport_write(f.sv.end, junk, sizeof junk - 1), (long)sizeof junk - 1);
    int r = EPODE_EAGAIN;
    for (int i = 0; i < 100 && r == EPODE_EAGAIN; i++)
        r = epode__tls_handshake(f.client);
    CHECK_INT(r, EPODE_ETLS);
    CHECK_STR(epode__transport_error(f.client),
              "TLS handshake failed: the peer does not speak TLS (it sent \"HTTP/1.1 400...\")");
    fixture_stop(&f);

    /* The classic: direct TLS dialled at a STARTTLS port. */
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    static const char xml[] = "<?xml version='1.0'?><stream:stream xmlns='jabber:client'>";
    CHECK_INT(epode__transport_write(f.sv.end, xml, sizeof xml - 1), (long)sizeof xml - 1);
    r = EPODE_EAGAIN;
    for (int i = 0; i < 100 && r == EPODE_EAGAIN; i++)
        r = epode__tls_handshake(f.client);
    CHECK_INT(r, EPODE_ETLS);
    CHECK(strstr(epode__transport_error(f.client), "does not speak TLS (it sent \"<?xml versio...\")") != NULL);
    fixture_stop(&f);
}

TEST(tls_garbage_after_the_handshake_is_a_tls_error)
{
    fixture f;
    char buf[64];
    CHECK_INT(connect_to(&f, NULL, NULL), 0);
    static const char junk[] = "\x17\x03\x03\x00\x20not an encrypted record at all!!";
    CHECK_INT(epode__transport_write(f.sv.end, junk, sizeof junk - 1), (long)sizeof junk - 1);
    long r;
    while ((r = epode__transport_read(f.client, buf, sizeof buf)) == EPODE_EAGAIN)
        ;
    CHECK_INT(r, EPODE_ETLS);
    CHECK(strstr(epode__transport_error(f.client), "TLS receive failed: ") == epode__transport_error(f.client));
    fixture_stop(&f);
}

TEST(tls_peer_closing_mid_handshake_is_an_error_not_a_hang)
{
    fixture f;
    CHECK_INT(fixture_start(&f, NULL, NULL), 0);
    CHECK_INT(epode__tls_handshake(f.client), EPODE_EAGAIN); /* ClientHello out */
    server_step(&f.sv);                                       /* ServerHello... back */
    server_stop(&f.sv);                                       /* and gone */
    int r = EPODE_EAGAIN;
    for (int i = 0; i < 100 && r == EPODE_EAGAIN; i++)
        r = epode__tls_handshake(f.client);
    CHECK(r != EPODE_EAGAIN && r < 0);
    CHECK(epode__transport_error(f.client)[0] != '\0');
    epode__transport_free(f.client);
    epode__tls_creds_free(f.creds);

    /* The same over a socket whose peer closes before answering. */
    int fds[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    epode__transport *tcp, *c;
    epode__tls_creds *creds;
    CHECK_INT(epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &creds), 0);
    CHECK_INT(epode__tcp_new(NULL, fds[0], &tcp), 0);
    CHECK_INT(epode__tls_new(NULL, creds, tcp, NULL, &c), 0);
    CHECK_INT(epode__tls_handshake(c), EPODE_EAGAIN);
    close(fds[1]);
    r = epode__tls_handshake(c);
    /* Closing with our ClientHello unread is a reset on Linux. */
    CHECK(r == EPODE_ETLS || r == EPODE_ENET);
    CHECK(epode__transport_error(c)[0] != '\0');
    CHECK_INT(epode__tls_handshake(c), r); /* and it stays failed */
    epode__transport_free(c);
    epode__tls_creds_free(creds);
}

/* ---- credentials and arguments -------------------------------------------- */

TEST(tls_creds_report_what_failed)
{
    epode__tls_creds *c = NULL;
    char why[200] = "";
    CHECK_INT(epode__tls_creds_new_why(NULL, DATA "no-such-file.pem", NULL, NULL, why, sizeof why,
                                       &c),
              EPODE_ETLS);
    CHECK(c == NULL);
    CHECK(strstr(why, "no-such-file.pem") != NULL);
    CHECK_INT(epode__tls_creds_new_why(NULL, DATA "README", NULL, NULL, why, sizeof why, &c),
              EPODE_ETLS);
    CHECK(strstr(why, "README") != NULL);
    CHECK_INT(epode__tls_creds_new_why(NULL, DATA "ca.pem", DATA "client.pem", NULL, why,
                                       sizeof why, &c),
              EPODE_EINVAL);
    CHECK_INT(epode__tls_creds_new_why(NULL, DATA "ca.pem", DATA "client.pem",
                                       DATA "server-key.pem", why, sizeof why, &c),
              EPODE_ETLS);
    CHECK(strstr(why, "client.pem") != NULL);
    /* The system store loads (whatever it holds). */
    CHECK_INT(epode__tls_creds_new(NULL, NULL, NULL, NULL, &c), 0);
    epode__tls_creds_free(c);
    epode__tls_creds_free(NULL);
}

TEST(tls_new_rejects_bad_arguments_and_leaves_the_lower)
{
    epode__tls_creds *creds;
    epode__transport *a, *b, *c = NULL;
    CHECK_INT(epode__tls_creds_new(NULL, DATA "ca.pem", NULL, NULL, &creds), 0);
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    epode__tls_options o = {.server_name = "localhost", .max_version = 11};
    CHECK_INT(epode__tls_new(NULL, creds, a, &o, &c), EPODE_EINVAL);
    CHECK_INT(epode__tls_new(NULL, NULL, a, NULL, &c), EPODE_EINVAL);
    CHECK(c == NULL);
    CHECK_INT(epode__tls_handshake(a), EPODE_EINVAL);
    /* a is still ours and still works */
    CHECK_INT(epode__transport_write(a, "x", 1), 1);
    epode__transport_free(a);
    epode__transport_free(b);
    epode__tls_creds_free(creds);
}

TEST(tls_survives_failing_allocations)
{
    /* Every epode allocation on the way (gnutls' own are not ours to fail). */
    for (long at = 0; at < 1000; at++) {
        epode__tls_creds *creds = NULL;
        epode__transport *a = NULL, *b = NULL, *c = NULL;
        server sv;
        memset(&sv, 0, sizeof sv);
        live = 0;
        fail_at = at;
        n_allocs = 0;
        int r = epode__tls_creds_new(&test_mem, DATA "ca.pem", NULL, NULL, &creds);
        if (r == 0) /* the pair's own sweep is in test_transport.c */
            r = epode__memory_pair(NULL, &a, &b);
        if (r == 0) {
            epode__memory_set_limit(a, 300); /* force the out buffer */
            epode__memory_set_limit(b, 300);
            r = server_start(&sv, b, NULL) < 0 ? -100 : 0;
            b = NULL;
        }
        if (r == 0) {
            epode__tls_options o = {.server_name = "localhost"};
            r = epode__tls_new(&test_mem, creds, a, &o, &c);
            if (r == 0)
                a = NULL;
        }
        if (r == 0)
            r = pump_handshake(c, &sv);
        if (r == 0)
            r = transfer(&(fixture){creds, c, sv}, 5000, 5000, 1000);
        int done = r == 0 && n_allocs <= at;
        if (r != 0)
            CHECK_INT(r, EPODE_ENOMEM);
        epode__transport_free(c);
        epode__transport_free(a);
        epode__transport_free(b);
        server_stop(&sv);
        epode__tls_creds_free(creds);
        CHECK_INT(live, 0);
        if (done)
            break;
    }
    fail_at = -1;
}

TEST_MAIN
