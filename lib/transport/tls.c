/* lib/transport/tls.c — TLS (gnutls) layered over any lower transport:
 * direct TLS over tcp, STARTTLS pushed onto a live tcp, or a memory pair
 * in tests. gnutls reads and writes through our pull/push functions and
 * never sees an fd. Owns the session and the lower transport; never
 * verifies the certificate during the handshake (verify.c does that
 * afterwards, so the application can decide about a failure).
 *
 * Writes: the push function never makes gnutls wait. What the lower
 * transport does not take at once is kept here (`out`, at most about one
 * record: nothing new is encrypted while it holds anything) and flushed
 * by the next read, write or handshake call. So gnutls_record_send never
 * returns GNUTLS_E_AGAIN for a full socket, and a write's return value is
 * simply the bytes taken — no "call again with the same data" rule leaks
 * up to the stream layer, and a TLS 1.3 KeyUpdate sent from inside
 * gnutls_record_recv cannot flush a half-sent record behind our back. */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "util/alloc.h"

struct epode__tls_creds {
    const epode_mem_t *mem;
    gnutls_certificate_credentials_t x509;
    /* Shared by every session: a priority cache parsed per session costs
     * memory and time for each connection. One per (lowest, highest)
     * version: [min - 10][max - 12]. TLS 1.2-1.3 and 1.2 only are made
     * with the creds; the others (an application's loosening) on first
     * use. */
    gnutls_priority_t prio[4][2];
};

typedef struct tls {
    epode__transport base;
    epode__transport *lower;
    gnutls_session_t s;
    char *server_name;

    int hs_done;
    int fatal;        /* sticky error code once the session is unusable */
    unsigned hs_want; /* what the handshake waits for (after E_AGAIN) */
    unsigned recv_want;
    int peer_closed;  /* close_notify received, or the lower ended */
    int send_pending; /* gnutls holds a record after E_AGAIN: retry (NULL, 0) */
    int bye;          /* 0, 1 close_notify queued, 2 flushed, 3 lower shut */

    int lower_err;    /* code of the lower transport's error in pull/push */
    int lower_eof;
    int pull_blocked; /* the lower transport said EAGAIN in this gnutls call */
    size_t pulled;    /* bytes pulled from the lower transport */
    int more;         /* a read stopped at its budget with records left */
    /* The peer's first bytes, to name a peer that does not speak TLS. */
    unsigned char first[12];
    size_t first_len;

    /* Application bytes sent on this session (record sizing). */
    size_t sent;

    /* Bytes gnutls pushed that the lower transport has not taken yet. */
    unsigned char *out;
    size_t out_head, out_len, out_cap;
} tls;

static const epode__transport_ops tls_ops;

/* Dynamic record sizing: the first SMALL_RECORDS_FOR bytes of a session
 * go out in records of at most SMALL_RECORD bytes (one TCP segment with
 * the record overhead), then full 16 KB records. A new link is the one
 * most likely to drop (a reconnection after a cut, resending a long
 * stream-management queue at once): a record cut in half is lost whole,
 * so with 16 KB records a link that drops every few kilobytes would
 * never deliver a stanza. Small records also let the server start on
 * the first stanzas before the rest has arrived. */
#define SMALL_RECORD 1360
#define SMALL_RECORDS_FOR (64 * 1024)

static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* ---- credentials ---------------------------------------------------------- */

/* The priorities for TLS versions min..max (10..13 and 12..13), appended
 * to the library's (or the system's configured) default, which still
 * offers TLS 1.0 and 1.1 and RSA key exchange in gnutls 3.7. Key
 * exchange is always forward secret ((EC)DHE: no RSA key transport,
 * whose recorded sessions a later theft of the server's key decrypts);
 * TLS 1.0 and 1.1 come back only when the application asks (min 10 or
 * 11). 0, or gnutls' error; *out (optional) borrows the cache. */
static int prio_get(epode__tls_creds *c, int min, int max, gnutls_priority_t *out)
{
    gnutls_priority_t *p = &c->prio[min - 10][max - 12];
    if (!*p) {
        char s[128];
        snprintf(s, sizeof s, "-VERS-SSL3.0:%cVERS-TLS1.0:%cVERS-TLS1.1:%s-RSA%s",
                 min <= 10 ? '+' : '-', min <= 11 ? '+' : '-',
                 min > 12 ? "-VERS-TLS1.2:" : "", max < 13 ? ":-VERS-TLS1.3" : "");
        int r = gnutls_priority_init2(p, s, NULL, GNUTLS_PRIORITY_INIT_DEF_APPEND);
        if (r < 0) {
            *p = NULL;
            return r;
        }
    }
    if (out)
        *out = *p;
    return 0;
}

int epode__tls_creds_new(const epode_mem_t *mem, const char *ca_file, const char *cert_file,
                         const char *key_file, epode__tls_creds **out)
{
    return epode__tls_creds_new_why(mem, ca_file, cert_file, key_file, NULL, 0, out);
}

int epode__tls_creds_new_why(const epode_mem_t *mem, const char *ca_file, const char *cert_file,
                             const char *key_file, char *why, size_t why_len,
                             epode__tls_creds **out)
{
    if (!out || !cert_file != !key_file) {
        set_why(why, why_len, "a client certificate needs both a certificate and a key file");
        return EPODE_EINVAL;
    }
    epode__tls_creds *c = epode__zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->mem = mem;
    int err = EPODE_ETLS;
    int r = gnutls_certificate_allocate_credentials(&c->x509);
    if (r < 0) {
        c->x509 = NULL;
        err = EPODE_ENOMEM;
        goto fail;
    }
    if (ca_file) {
        r = gnutls_certificate_set_x509_trust_file(c->x509, ca_file, GNUTLS_X509_FMT_PEM);
        if (r <= 0) {
            set_why(why, why_len, "%s: %s", ca_file,
                    r == 0 ? "no certificates in the file" : gnutls_strerror(r));
            goto fail;
        }
    } else {
        r = gnutls_certificate_set_x509_system_trust(c->x509);
        if (r < 0) {
            set_why(why, why_len, "the system trust store: %s", gnutls_strerror(r));
            goto fail;
        }
    }
    if (cert_file) {
        r = gnutls_certificate_set_x509_key_file(c->x509, cert_file, key_file,
                                                 GNUTLS_X509_FMT_PEM);
        if (r < 0) {
            set_why(why, why_len, "%s / %s: %s", cert_file, key_file, gnutls_strerror(r));
            goto fail;
        }
    }
    /* The two every connection uses unless loosened: made now, so a
     * system configuration gnutls cannot parse shows up here. */
    r = prio_get(c, 12, 13, NULL);
    if (r >= 0)
        r = prio_get(c, 12, 12, NULL);
    if (r < 0) {
        set_why(why, why_len, "TLS priorities: %s", gnutls_strerror(r));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    if (r == GNUTLS_E_MEMORY_ERROR)
        err = EPODE_ENOMEM;
    epode__tls_creds_free(c);
    return err;
}

void epode__tls_creds_free(epode__tls_creds *c)
{
    if (!c)
        return;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            if (c->prio[i][j])
                gnutls_priority_deinit(c->prio[i][j]);
    if (c->x509)
        gnutls_certificate_free_credentials(c->x509);
    epode__dealloc(c->mem, c);
}

/* 0 if `path` opens for reading as a file; else `why` gets the system's
 * words ("No such file or directory"), which gnutls would not give. */
static int readable(const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    int ok = f != NULL;
    if (ok) {
        (void)getc(f); /* a directory opens, and fails here (EISDIR) */
        ok = !ferror(f);
    }
    int e = errno;
    if (f)
        fclose(f);
    if (!ok)
        set_why(why, why_len, "%s: %s", path, strerror(e));
    return ok ? 0 : -1;
}

int epode__tls_check_files(const char *ca_file, const char *cert_file, const char *key_file,
                           char *why, size_t why_len)
{
    if (!cert_file != !key_file) {
        set_why(why, why_len, "a client certificate needs both a certificate and a key file");
        return EPODE_EINVAL;
    }
    if (!ca_file && !cert_file)
        return 0;
    if ((ca_file && readable(ca_file, why, why_len) < 0) ||
        (cert_file && (readable(cert_file, why, why_len) < 0 ||
                       readable(key_file, why, why_len) < 0)))
        return EPODE_ETLS;
    gnutls_certificate_credentials_t x;
    if (gnutls_certificate_allocate_credentials(&x) < 0)
        return EPODE_ENOMEM;
    /* the same calls, and the same words, as epode__tls_creds_new_why() */
    int r = 0;
    if (ca_file) {
        r = gnutls_certificate_set_x509_trust_file(x, ca_file, GNUTLS_X509_FMT_PEM);
        if (r <= 0)
            set_why(why, why_len, "%s: %s", ca_file,
                    r == 0 ? "no certificates in the file" : gnutls_strerror(r));
        r = r <= 0 ? (r == 0 ? GNUTLS_E_FILE_ERROR : r) : 0;
    }
    if (r == 0 && cert_file) {
        r = gnutls_certificate_set_x509_key_file(x, cert_file, key_file, GNUTLS_X509_FMT_PEM);
        if (r < 0)
            set_why(why, why_len, "%s / %s: %s", cert_file, key_file, gnutls_strerror(r));
    }
    gnutls_certificate_free_credentials(x);
    return r == 0 ? 0 : r == GNUTLS_E_MEMORY_ERROR ? EPODE_ENOMEM : EPODE_ETLS;
}

/* ---- errors --------------------------------------------------------------- */

/* Records why the session is dead and makes every later call say so. */
static int fail(tls *x, int gerr, const char *what)
{
    int code = EPODE_ETLS;
    if (x->lower_err == EPODE_ENOMEM) {
        code = EPODE_ENOMEM;
        epode__transport_set_error(&x->base, "%s: out of memory", what);
    } else if (x->lower_err) {
        /* The lower transport's own error: its code and its words. */
        code = x->lower_err;
        epode__transport_copy_error(&x->base, x->lower);
    } else if (gerr == GNUTLS_E_MEMORY_ERROR) {
        code = EPODE_ENOMEM;
        epode__transport_set_error(&x->base, "%s: out of memory", what);
    } else if (gerr == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        epode__transport_set_error(&x->base, "%s: the peer sent a fatal alert: %s", what,
                  gnutls_alert_get_name(gnutls_alert_get(x->s)));
    } else if (!x->hs_done && x->first_len && (x->first[0] < 20 || x->first[0] > 23)) {
        /* Not even a TLS record type: a plain-text service (a STARTTLS
         * port dialled for direct TLS answers with XML). gnutls read only
         * a record header; the session is dead, so peek at a little more
         * for the message. */
        if (x->first_len < sizeof x->first) {
            long n = epode__transport_read(x->lower, x->first + x->first_len,
                                           sizeof x->first - x->first_len);
            if (n > 0)
                x->first_len += (size_t)n;
        }
        char shown[sizeof x->first + 1];
        for (size_t i = 0; i < x->first_len; i++)
            shown[i] = x->first[i] >= 0x20 && x->first[i] < 0x7f ? (char)x->first[i] : '.';
        shown[x->first_len] = '\0';
        epode__transport_set_error(&x->base, "%s: the peer does not speak TLS (it sent \"%s...\")",
                                   what, shown);
    } else if (x->lower_eof && (gerr == GNUTLS_E_PREMATURE_TERMINATION ||
                                gerr == GNUTLS_E_UNEXPECTED_PACKET_LENGTH)) {
        epode__transport_set_error(&x->base, "%s: the peer closed the connection", what);
    } else {
        epode__transport_set_error(&x->base, "%s: %s", what, gnutls_strerror(gerr));
    }
    x->fatal = code;
    return code;
}

/* ---- gnutls' view of the lower transport ---------------------------------- */

static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    tls *x = p;
    long n = epode__transport_read(x->lower, buf, len);
    if (n >= 0) {
        if (n == 0)
            x->lower_eof = 1;
        x->pulled += (size_t)n;
        if (!x->hs_done && x->first_len < sizeof x->first) {
            size_t k = sizeof x->first - x->first_len;
            if (k > (size_t)n)
                k = (size_t)n;
            memcpy(x->first + x->first_len, buf, k);
            x->first_len += k;
        }
        return n;
    }
    if (n == EPODE_EAGAIN) {
        x->pull_blocked = 1;
        gnutls_transport_set_errno(x->s, EAGAIN);
        return -1;
    }
    x->lower_err = (int)n;
    gnutls_transport_set_errno(x->s, EIO);
    return -1;
}

/* Unused in non-blocking TLS, but gnutls wants one with a custom pull:
 * "maybe", and the pull itself says EAGAIN. */
static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    (void)p;
    (void)ms;
    return 1;
}

static int out_append(tls *x, const unsigned char *data, size_t len)
{
    if (x->out_cap - x->out_head - x->out_len < len) {
        if (x->out_head) {
            memmove(x->out, x->out + x->out_head, x->out_len);
            x->out_head = 0;
        }
        if (x->out_cap - x->out_len < len) {
            size_t cap = x->out_len + len;
            if (cap < 4096)
                cap = 4096;
            unsigned char *n = epode__realloc(x->base.mem, x->out, cap);
            if (!n)
                return -1;
            x->out = n;
            x->out_cap = cap;
        }
    }
    memcpy(x->out + x->out_head + x->out_len, data, len);
    x->out_len += len;
    return 0;
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    tls *x = p;
    size_t done = 0;
    if (x->out_len == 0) {
        long n = epode__transport_write(x->lower, buf, len);
        if (n < 0 && n != EPODE_EAGAIN) {
            x->lower_err = (int)n;
            gnutls_transport_set_errno(x->s, EIO);
            return -1;
        }
        if (n > 0)
            done = (size_t)n;
    }
    if (done < len && out_append(x, (const unsigned char *)buf + done, len - done) < 0) {
        x->lower_err = EPODE_ENOMEM;
        gnutls_transport_set_errno(x->s, ENOMEM);
        return -1;
    }
    return (ssize_t)len;
}

/* Hands what gnutls pushed to the lower transport: 0 when all is out,
 * EPODE_EAGAIN, or the lower's error. */
static int flush_out(tls *x)
{
    while (x->out_len) {
        long n = epode__transport_write(x->lower, x->out + x->out_head, x->out_len);
        if (n == EPODE_EAGAIN)
            return EPODE_EAGAIN;
        if (n <= 0)
            return n < 0 ? (int)n : EPODE_ENET;
        x->out_head += (size_t)n;
        x->out_len -= (size_t)n;
    }
    /* Only needed under back-pressure: give the memory back. */
    epode__dealloc(x->base.mem, x->out);
    x->out = NULL;
    x->out_head = x->out_cap = 0;
    return 0;
}

static unsigned direction(tls *x)
{
    return gnutls_record_get_direction(x->s) ? EPODE__WRITE : EPODE__READ;
}

/* ---- handshake ------------------------------------------------------------ */

static int flush_or_fail(tls *x)
{
    int r = flush_out(x);
    if (r < 0 && r != EPODE_EAGAIN) {
        epode__transport_copy_error(&x->base, x->lower);
        x->fatal = r;
    }
    return r;
}

static int handshake_step(tls *x)
{
    if (x->fatal)
        return x->fatal;
    if (x->hs_done)
        return 0;
    int r = flush_or_fail(x);
    if (r < 0 && r != EPODE_EAGAIN)
        return r;
    /* Warnings (an unrecognized_name alert, say) are not fatal: go on. */
    for (int i = 0; i < 16; i++) {
        x->lower_err = 0;
        r = gnutls_handshake(x->s);
        if (r == GNUTLS_E_SUCCESS) {
            x->hs_done = 1;
            x->recv_want = EPODE__READ;
            return 0;
        }
        if (r == GNUTLS_E_AGAIN) {
            x->hs_want = direction(x);
            return EPODE_EAGAIN;
        }
        if (r != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(r))
            return fail(x, r, "TLS handshake failed");
    }
    epode__transport_set_error(&x->base, "TLS handshake failed: too many warnings from the peer");
    x->fatal = EPODE_ETLS;
    return x->fatal;
}

int epode__tls_handshake(epode__transport *t)
{
    if (!t || t->ops != &tls_ops)
        return EPODE_EINVAL;
    tls *x = (tls *)t;
    int r = handshake_step(x);
    if (r < 0)
        return r;
    /* Done when our last flight (the Finished message) is out too. */
    r = flush_or_fail(x);
    return r < 0 ? r : 0;
}

/* ---- transport ops -------------------------------------------------------- */

static long tls_read(epode__transport *t, void *buf, size_t len)
{
    tls *x = (tls *)t;
    if (len == 0)
        return EPODE_EINVAL;
    int r = handshake_step(x);
    if (r < 0)
        return r;
    r = flush_or_fail(x);
    if (r < 0 && r != EPODE_EAGAIN)
        return r;
    if (x->peer_closed)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    /* Records without application data (TLS 1.3 session tickets and key
     * updates, warnings) are handled here, as many as have arrived: each
     * makes gnutls_record_recv return without data, GNUTLS_E_AGAIN for
     * a post-handshake message, though more may be waiting. That E_AGAIN
     * means "nothing now" only if our pull function heard EAGAIN from
     * the lower transport; otherwise go on, so that the data behind a
     * burst of such records comes out in this call and not one record
     * per loop turn. A budget keeps a peer that streams them from
     * holding the loop: past it we return EAGAIN with `more` set, and
     * pending() tells the caller to come back at once, if gnutls was
     * making progress (pulling bytes) — never a spin on a session that
     * is not. (gnutls pulls one record at a time: what it holds
     * undecrypted is never a whole record, the rest waits below, where
     * pending() or the fd shows it.) */
    x->more = 0;
    x->pulled = 0;
    for (int i = 0; i < 256; i++) {
        x->lower_err = 0;
        x->pull_blocked = 0;
        ssize_t n = gnutls_record_recv(x->s, buf, len);
        if (n > 0) {
            x->recv_want = EPODE__READ;
            return (long)n;
        }
        if (n == 0) {
            x->peer_closed = 1;
            return 0;
        }
        if (n == GNUTLS_E_AGAIN) {
            if (!x->pull_blocked)
                continue; /* a post-handshake message, handled */
            x->recv_want = direction(x);
            return EPODE_EAGAIN;
        }
        if (n == GNUTLS_E_PREMATURE_TERMINATION && !x->lower_err) {
            /* A plain close without close_notify: usual for XMPP servers
             * after </stream:stream>, whose framing shows truncation. */
            x->peer_closed = 1;
            epode__transport_set_error(t,
                                       "the peer closed the connection without a TLS close_notify");
            return 0;
        }
        /* Warnings and a TLS 1.2 renegotiation request (which a client
         * may ignore) are not fatal. */
        if (n != GNUTLS_E_INTERRUPTED && n != GNUTLS_E_REHANDSHAKE &&
            gnutls_error_is_fatal((int)n))
            return fail(x, (int)n, "TLS receive failed");
    }
    x->more = x->pulled > 0;
    x->recv_want = EPODE__READ;
    return EPODE_EAGAIN;
}

static long tls_write(epode__transport *t, const void *buf, size_t len)
{
    tls *x = (tls *)t;
    int r = handshake_step(x);
    if (r < 0)
        return r;
    if (x->bye) {
        epode__transport_set_error(t, "write after shutdown");
        return EPODE_ESTATE;
    }
    /* Nothing new is encrypted while the last record is still waiting. */
    r = flush_or_fail(x);
    if (r < 0)
        return r;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    for (;;) {
        x->lower_err = 0;
        ssize_t n;
        if (x->send_pending) {
            /* gnutls' rule after E_AGAIN: resume, do not resend. */
            n = gnutls_record_send(x->s, NULL, 0);
        } else {
            if (len == 0)
                return 0;
            /* Small records first (see SMALL_RECORDS_FOR): on a link that
             * drops, every record that arrives whole is stanzas the
             * server can use, a half 16 KB record is none. */
            size_t chunk = len;
            if (x->sent < SMALL_RECORDS_FOR && chunk > SMALL_RECORD)
                chunk = SMALL_RECORD;
            n = gnutls_record_send(x->s, buf, chunk);
        }
        if (n >= 0) {
            x->send_pending = 0;
            x->sent += (size_t)n;
            return (long)n;
        }
        if (n == GNUTLS_E_AGAIN) {
            x->send_pending = 1;
            return EPODE_EAGAIN;
        }
        if (n == GNUTLS_E_INTERRUPTED) {
            x->send_pending = 1;
            continue;
        }
        return fail(x, (int)n, "TLS send failed");
    }
}

static unsigned tls_wants(epode__transport *t)
{
    tls *x = (tls *)t;
    unsigned w = epode__transport_wants(x->lower);
    if (x->fatal)
        return w;
    if (x->out_len || x->send_pending)
        w |= EPODE__WRITE;
    w |= x->hs_done ? x->recv_want : x->hs_want;
    return w;
}

static int tls_fd(epode__transport *t)
{
    return epode__transport_fd(((tls *)t)->lower);
}

static size_t tls_pending(epode__transport *t)
{
    tls *x = (tls *)t;
    /* `more`: records not yet looked at, of unknown content (a read ran
     * out of budget): 1 byte says "come back", which is all it means. */
    return gnutls_record_check_pending(x->s) + epode__transport_pending(x->lower) +
           (size_t)(x->more && !x->fatal && !x->peer_closed);
}

static int tls_shutdown(epode__transport *t)
{
    tls *x = (tls *)t;
    int r;
    if (x->bye == 0) {
        if (!x->hs_done || x->fatal) {
            /* No session to close politely: just end the stream. */
            x->bye = 2;
        } else {
            x->lower_err = 0;
            r = gnutls_bye(x->s, GNUTLS_SHUT_WR);
            if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
                return EPODE_EAGAIN;
            if (r == GNUTLS_E_PUSH_ERROR && x->lower_err && x->lower_err != EPODE_ENOMEM) {
                /* The peer is gone (EPIPE): the close is as done as it
                 * will ever be. */
                x->bye = 3;
                return 0;
            }
            if (r < 0)
                return fail(x, r, "TLS shutdown failed");
            x->bye = 1;
        }
    }
    if (x->bye == 1) {
        r = flush_out(x);
        if (r == EPODE_EAGAIN)
            return r;
        if (r < 0) {
            x->bye = 3; /* peer gone while we said goodbye: fine */
            return 0;
        }
        x->bye = 2;
    }
    if (x->bye == 2) {
        r = epode__transport_shutdown(x->lower);
        if (r == EPODE_EAGAIN)
            return r;
        x->bye = 3;
        if (r < 0) {
            epode__transport_copy_error(t, x->lower);
            return r;
        }
    }
    return 0;
}

static void tls_free(epode__transport *t)
{
    tls *x = (tls *)t;
    gnutls_deinit(x->s);
    epode__transport_free(x->lower);
    epode__dealloc(t->mem, x->out);
    epode__dealloc(t->mem, x->server_name);
    epode__transport_clear_error(t);
    epode__dealloc(t->mem, x);
}

static const epode__transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .wants = tls_wants,
    .fd = tls_fd,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .free = tls_free,
    .handshake = epode__tls_handshake,
};

/* ---- set-up --------------------------------------------------------------- */

static int is_ip_literal(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

int epode__tls_new(const epode_mem_t *mem, epode__tls_creds *creds, epode__transport *lower,
                   const epode__tls_options *opts, epode__transport **out)
{
    static const epode__tls_options no_opts;
    if (!opts)
        opts = &no_opts;
    int max = opts->max_version ? opts->max_version : 13;
    int min = opts->min_version ? opts->min_version : 12;
    if (!creds || !lower || !out || max < 12 || max > 13 || min < 10 || min > max)
        return EPODE_EINVAL;
    gnutls_priority_t prio;
    int r = prio_get(creds, min, max, &prio);
    if (r < 0)
        return r == GNUTLS_E_MEMORY_ERROR ? EPODE_ENOMEM : EPODE_ETLS;

    tls *x = epode__zalloc(mem, sizeof *x);
    if (!x)
        return EPODE_ENOMEM;
    x->base.ops = &tls_ops;
    x->base.mem = mem;
    x->lower = lower;
    x->base.lower = lower;
    x->hs_want = EPODE__WRITE; /* the ClientHello goes first */
    if (opts->server_name) {
        x->server_name = epode__strdup(mem, opts->server_name);
        if (!x->server_name) {
            epode__dealloc(mem, x);
            return EPODE_ENOMEM;
        }
    }

    /* No session tickets: epode never resumes a session (a reconnection
     * makes a full handshake and verifies the certificate again), so a
     * ticket would only be bytes held for the life of every idle session
     * (gnutls keeps the last one it received; there is no call to drop
     * it). Without the session_ticket and psk_key_exchange_modes
     * extensions, TLS 1.2 servers send none, and TLS 1.3 servers that
     * follow RFC 8446 4.2.9 neither (gnutls and OpenSSL servers still do:
     * then they cost what they cost). */
    r = gnutls_init(&x->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);
    if (r < 0) {
        epode__dealloc(mem, x->server_name);
        epode__dealloc(mem, x);
        return r == GNUTLS_E_MEMORY_ERROR ? EPODE_ENOMEM : EPODE_ETLS;
    }
    r = gnutls_priority_set(x->s, prio);
    if (r >= 0)
        r = gnutls_credentials_set(x->s, GNUTLS_CRD_CERTIFICATE, creds->x509);
    /* RFC 6066: no SNI for an address literal. */
    if (r >= 0 && x->server_name && *x->server_name && !is_ip_literal(x->server_name))
        r = gnutls_server_name_set(x->s, GNUTLS_NAME_DNS, x->server_name,
                                   strlen(x->server_name));
    if (r >= 0 && opts->alpn_xmpp_client) {
        /* Offered, never required: most servers do not select it. */
        static const char proto[] = "xmpp-client";
        gnutls_datum_t alpn = {(unsigned char *)proto, sizeof proto - 1};
        r = gnutls_alpn_set_protocols(x->s, &alpn, 1, 0);
    }
    if (r < 0) {
        gnutls_deinit(x->s);
        epode__dealloc(mem, x->server_name);
        epode__dealloc(mem, x);
        return r == GNUTLS_E_MEMORY_ERROR ? EPODE_ENOMEM : EPODE_ETLS;
    }
    gnutls_transport_set_ptr(x->s, x);
    gnutls_transport_set_pull_function(x->s, tls_pull);
    gnutls_transport_set_pull_timeout_function(x->s, tls_pull_timeout);
    gnutls_transport_set_push_function(x->s, tls_push);
    *out = &x->base;
    return 0;
}

/* ---- facts after the handshake -------------------------------------------- */

static tls *as_tls(epode__transport *t)
{
    return t && t->ops == &tls_ops ? (tls *)t : NULL;
}

struct gnutls_session_int *epode__tls_session(epode__transport *t)
{
    tls *x = as_tls(t);
    return x ? x->s : NULL;
}

const char *epode__tls_server_name(epode__transport *t)
{
    tls *x = as_tls(t);
    return x ? x->server_name : NULL;
}

int epode__tls_peer_cert(epode__transport *t, const unsigned char **der, size_t *len)
{
    tls *x = as_tls(t);
    if (der)
        *der = NULL;
    if (len)
        *len = 0;
    if (!x || !der || !len)
        return EPODE_EINVAL;
    unsigned n = 0;
    const gnutls_datum_t *certs = x->hs_done ? gnutls_certificate_get_peers(x->s, &n) : NULL;
    if (!certs || n == 0)
        return EPODE_ENOTFOUND;
    *der = certs[0].data;
    *len = certs[0].size;
    return 0;
}

int epode__tls_version(epode__transport *t)
{
    tls *x = as_tls(t);
    if (!x || !x->hs_done)
        return 0;
    switch (gnutls_protocol_get_version(x->s)) {
    case GNUTLS_TLS1_0: return 10;
    case GNUTLS_TLS1_1: return 11;
    case GNUTLS_TLS1_2: return 12;
    case GNUTLS_TLS1_3: return 13;
    default: return 0;
    }
}

unsigned epode__tls_key_bits(epode__transport *t)
{
    tls *x = as_tls(t);
    if (!x || !x->hs_done)
        return 0;
    return (unsigned)gnutls_cipher_get_key_size(gnutls_cipher_get(x->s)) * 8;
}

int epode__tls_channel_binding(epode__transport *t, int type, unsigned char *buf, size_t *len)
{
    tls *x = as_tls(t);
    if (!x || !len || (type != EPODE__CB_TLS_UNIQUE && type != EPODE__CB_TLS_EXPORTER))
        return EPODE_EINVAL;
    if (!x->hs_done)
        return EPODE_ESTATE;
    gnutls_datum_t cb = {NULL, 0};
    int r = gnutls_session_channel_binding(
        x->s, type == EPODE__CB_TLS_UNIQUE ? GNUTLS_CB_TLS_UNIQUE : GNUTLS_CB_TLS_EXPORTER, &cb);
    if (r == GNUTLS_E_MEMORY_ERROR)
        return EPODE_ENOMEM;
    if (r < 0) /* not available: TLS 1.3 for tls-unique, no EMS for tls-exporter */
        return EPODE_ENOTFOUND;
    int ret = 0;
    if (*len < cb.size || !buf) {
        ret = EPODE_ERANGE;
    } else {
        memcpy(buf, cb.data, cb.size);
    }
    *len = cb.size;
    gnutls_free(cb.data);
    return ret;
}
