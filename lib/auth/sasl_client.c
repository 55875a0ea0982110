/* lib/auth/sasl_client.c — the SASL client over cyrus-sasl. It owns the
 * choice of mechanism (epode's order and rules, one mechanism handed to
 * cyrus at a time), the GS2 channel-binding flag, and the checks cyrus
 * leaves to its caller: <success/> must carry and verify SCRAM's server
 * signature, iteration counts have a floor. Everything cyrus keeps by
 * pointer (callbacks, password secret, channel-binding struct) lives in
 * the epode__sasl it belongs to. Never does I/O, never logs to syslog,
 * never prints, never calls sasl_done. See sasl.h for cyrus' habits. */
#include "sasl.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <sasl/sasl.h>

#include "util/alloc.h"
#include "util/base64.h"
#include "util/secret.h"

#define MECH_MAX 20      /* RFC 4422 section 3.1: 1 to 20 characters */
#define ALLOWED_MAX 32
#define CB_MAX 512

enum state {
    ST_NEW,      /* start not called yet */
    ST_RUNNING,  /* the mechanism expects a challenge (or the final data) */
    ST_COMPLETE, /* the client side is done: only <success/> may follow */
    ST_DONE,     /* finished successfully */
    ST_FAILED
};

enum kind { K_OTHER, K_SCRAM, K_PLAIN, K_EXTERNAL, K_ANONYMOUS };

struct epode__sasl {
    const epode_mem_t *mem;
    char *authcid, *authzid, *service, *host, *cb_name, *server_cb_types;
    char *ssdp_list; /* XEP-0474's string of what the server offered (start) */
    unsigned char *cb_data;
    size_t cb_len;
    sasl_secret_t *secret; /* the password (util/secret.h: wiped, not dumped) */
    size_t secret_size;
    /* Cyrus' last response while it may hold a credential (see
     * wipe_output); its memory, borrowed. */
    unsigned char *out;
    size_t out_len;
    int tls_active, client_cert, can_bind;
    unsigned tls_key_bits, min_iterations;
    epode__sasl_log_fn log;
    void *log_user;

    char allowed[ALLOWED_MAX][MECH_MAX + 1];
    size_t n_allowed;

    /* Kept by pointer by the sasl_conn_t: they must outlive it. */
    sasl_callback_t callbacks[5];
    sasl_channel_binding_t cb;
    sasl_conn_t *conn;

    enum state state;
    enum kind kind;
    unsigned challenges;
    char mech[MECH_MAX + 1]; /* chosen, as the server spelled it */
    char err[640];
};

/* ---- process-wide -------------------------------------------------------- */

static int global_ready;

/* Cyrus logs to syslog unless told otherwise, even while loading plugins
 * in sasl_client_init (a connection's own log callback takes over later). */
static int log_swallow(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
    return SASL_OK;
}

/* cyrus' callback table stores every function as int (*)(void); casting
 * through void (*)(void) says "any function type" to -Wcast-function-type. */
#define SASL_FN(f) ((int (*)(void))(void (*)(void))(f))

static const sasl_callback_t global_callbacks[] = {
    {SASL_CB_LOG, SASL_FN(log_swallow), NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

int epode__sasl_global_init(void)
{
    if (global_ready)
        return 0;
    int r = sasl_client_init(global_callbacks);
    if (r == SASL_NOMEM)
        return EPODE_ENOMEM;
    if (r != SASL_OK)
        return EPODE_EAUTH;
    global_ready = 1;
    return 0;
}

/* ---- small helpers ------------------------------------------------------- */

__attribute__((format(printf, 2, 3)))
static void set_err(epode__sasl *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

/* Appends to a bounded text buffer; truncates silently. */
__attribute__((format(printf, 3, 4)))
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static int is_mech_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* A mechanism name by RFC 4422's rules (lower case tolerated). */
static int mech_name_ok(const char *m, size_t n)
{
    if (n == 0 || n > MECH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_mech_char((unsigned char)m[i]))
            return 0;
    return 1;
}

static int is_plus(const char *m)
{
    size_t n = strlen(m);
    return n > 5 && strcasecmp(m + n - 5, "-PLUS") == 0;
}

static enum kind kind_of(const char *m)
{
    if (strncasecmp(m, "SCRAM-", 6) == 0)
        return K_SCRAM;
    if (strcasecmp(m, "PLAIN") == 0)
        return K_PLAIN;
    if (strcasecmp(m, "EXTERNAL") == 0)
        return K_EXTERNAL;
    if (strcasecmp(m, "ANONYMOUS") == 0)
        return K_ANONYMOUS;
    return K_OTHER;
}

static int is_sep(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r';
}

/* The next word of a separated list: skips separators, sets *len (0 at
 * the end) and returns where the word starts; *p moves past it. */
static const char *next_word(const char **p, size_t *len)
{
    while (**p && is_sep(**p))
        (*p)++;
    const char *start = *p;
    while (**p && !is_sep(**p))
        (*p)++;
    *len = (size_t)(*p - start);
    return start;
}

/* 1 if `word` is one of the separated words of `list` (case-insensitive). */
static int word_in_list(const char *list, const char *word)
{
    size_t wn = strlen(word), n;
    const char *p = list, *w;
    while ((w = next_word(&p, &n)), n > 0)
        if (n == wn && strncasecmp(w, word, wn) == 0)
            return 1;
    return 0;
}

static int parse_allowed(epode__sasl *s, const char *list)
{
    const char *p = list, *start;
    size_t n;
    s->n_allowed = 0;
    while ((start = next_word(&p, &n)), n > 0) {
        if (!mech_name_ok(start, n) || s->n_allowed == ALLOWED_MAX)
            return EPODE_EINVAL;
        char *dst = s->allowed[s->n_allowed++];
        for (size_t i = 0; i < n; i++) {
            char c = start[i];
            dst[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
        dst[n] = '\0';
    }
    return s->n_allowed ? 0 : EPODE_EINVAL;
}

/* ---- callbacks cyrus calls ----------------------------------------------- */

static int cb_log(void *ctx, int level, const char *msg)
{
    epode__sasl *s = ctx;
    /* SASL_LOG_PASS traces may contain the password. */
    if (!s->log || !msg || level <= SASL_LOG_NONE || level >= SASL_LOG_PASS)
        return SASL_OK;
    int l = level <= SASL_LOG_FAIL ? EPODE__SASL_LOG_ERROR
          : level == SASL_LOG_WARN ? EPODE__SASL_LOG_WARN
                                   : EPODE__SASL_LOG_DEBUG;
    s->log(s->log_user, l, msg);
    return SASL_OK;
}

static int cb_simple(void *ctx, int id, const char **result, unsigned *len)
{
    epode__sasl *s = ctx;
    const char *v;
    if (id == SASL_CB_AUTHNAME)
        v = s->authcid ? s->authcid : "";
    else if (id == SASL_CB_USER)
        v = s->authzid ? s->authzid : "";
    else
        return SASL_FAIL;
    *result = v;
    if (len)
        *len = (unsigned)strlen(v);
    return SASL_OK;
}

static int cb_secret(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **out)
{
    epode__sasl *s = ctx;
    (void)conn;
    if (id != SASL_CB_PASS || !s->secret)
        return SASL_FAIL;
    *out = s->secret;
    return SASL_OK;
}

/* ---- life cycle ---------------------------------------------------------- */

/* Cyrus' PLAIN and SCRAM plugins build each response (PLAIN: the
 * password in clear; SCRAM's client-final: the proof) in a buffer of
 * their own, which the next step overwrites only in part or moves with
 * realloc, and sasl_dispose frees without erasing. Once the engine has
 * encoded a response it is dead: we wipe it before cyrus' next call on
 * the connection. Only these two plugins: others may hand out pointers
 * into state they still use (LOGIN's user name). */
static void keep_output(epode__sasl *s, const char *o, unsigned olen)
{
    s->out = NULL;
    s->out_len = 0;
    if (o && olen && (s->kind == K_PLAIN || s->kind == K_SCRAM)) {
        s->out = (unsigned char *)o; /* cyrus' heap buffer, const only by its API */
        s->out_len = olen;
    }
}

static void wipe_output(epode__sasl *s)
{
    if (s->out)
        explicit_bzero(s->out, s->out_len);
    s->out = NULL;
    s->out_len = 0;
}

static void conn_close(epode__sasl *s)
{
    wipe_output(s);
    if (s->conn)
        sasl_dispose(&s->conn);
    s->conn = NULL;
}

static void wipe_secret(epode__sasl *s)
{
    epode__secret_free(s->mem, s->secret);
    s->secret = NULL;
    s->secret_size = 0;
}

/* A failed exchange is final: nothing needs the password any more. */
static int fail(epode__sasl *s, int code)
{
    s->state = ST_FAILED;
    conn_close(s);
    wipe_secret(s);
    return code;
}

void epode__sasl_free(epode__sasl *s)
{
    if (!s)
        return;
    conn_close(s);
    wipe_secret(s);
    const epode_mem_t *mem = s->mem;
    epode__dealloc(mem, s->authcid);
    epode__dealloc(mem, s->authzid);
    epode__dealloc(mem, s->service);
    epode__dealloc(mem, s->host);
    epode__dealloc(mem, s->cb_name);
    epode__dealloc(mem, s->server_cb_types);
    epode__dealloc(mem, s->ssdp_list);
    epode__dealloc(mem, s->cb_data);
    epode__dealloc(mem, s);
}

/* Copies an optional string: 0, or -1 when the copy failed. */
static int dup_opt(const epode_mem_t *mem, const char *src, char **dst)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = epode__strdup(mem, src);
    return *dst ? 0 : -1;
}

int epode__sasl_new(const epode_mem_t *mem, const epode__sasl_params *p, epode__sasl **out)
{
    if (!p || !out)
        return EPODE_EINVAL;
    if (p->cb_len > 0 && (!p->cb_data || !p->cb_name || !*p->cb_name || p->cb_len > CB_MAX))
        return EPODE_EINVAL;
    if (!global_ready)
        return EPODE_ESTATE;

    epode__sasl *s = epode__zalloc(mem, sizeof *s);
    if (!s)
        return EPODE_ENOMEM;
    s->mem = mem;
    s->tls_active = p->tls_active != 0;
    s->tls_key_bits = p->tls_key_bits;
    s->client_cert = p->client_cert != 0;
    s->can_bind = p->can_bind || p->cb_len > 0;
    s->min_iterations = p->min_iterations ? p->min_iterations : EPODE__SASL_MIN_ITERATIONS;
    s->log = p->log;
    s->log_user = p->log_user;

    int rc;
    if (p->allowed) {
        rc = parse_allowed(s, p->allowed);
    } else {
        char def[160] = "";
        if (s->client_cert)
            append(def, sizeof def, "EXTERNAL ");
        append(def, sizeof def, "SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS "
                                "SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN");
        rc = parse_allowed(s, def);
    }
    if (rc != 0) {
        epode__sasl_free(s);
        return rc;
    }

    if (dup_opt(mem, p->authcid, &s->authcid) || dup_opt(mem, p->authzid, &s->authzid) ||
        dup_opt(mem, p->service ? p->service : "xmpp", &s->service) ||
        dup_opt(mem, p->host, &s->host) || dup_opt(mem, p->server_cb_types, &s->server_cb_types))
        goto nomem;
    if (p->cb_len > 0) {
        if (dup_opt(mem, p->cb_name, &s->cb_name))
            goto nomem;
        s->cb_data = epode__alloc(mem, p->cb_len);
        if (!s->cb_data)
            goto nomem;
        memcpy(s->cb_data, p->cb_data, p->cb_len);
        s->cb_len = p->cb_len;
    }
    if (p->password) {
        size_t n = strlen(p->password);
        if (n > UINT_MAX - sizeof(sasl_secret_t)) {
            epode__sasl_free(s);
            return EPODE_EINVAL;
        }
        /* sizeof includes data[1]: room for a NUL after the password. */
        s->secret_size = sizeof(sasl_secret_t) + n;
        s->secret = epode__secret_alloc(mem, s->secret_size);
        if (!s->secret)
            goto nomem;
        s->secret->len = n;
        memcpy(s->secret->data, p->password, n);
    }

    s->callbacks[0] = (sasl_callback_t){SASL_CB_LOG, SASL_FN(cb_log), s};
    s->callbacks[1] = (sasl_callback_t){SASL_CB_AUTHNAME, SASL_FN(cb_simple), s};
    s->callbacks[2] = (sasl_callback_t){SASL_CB_USER, SASL_FN(cb_simple), s};
    s->callbacks[3] = (sasl_callback_t){SASL_CB_PASS, SASL_FN(cb_secret), s};
    s->callbacks[4] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
    s->state = ST_NEW;
    *out = s;
    return 0;

nomem:
    epode__sasl_free(s);
    return EPODE_ENOMEM;
}

const char *epode__sasl_error(const epode__sasl *s)
{
    return s ? s->err : "";
}

/* ---- choosing ------------------------------------------------------------ */

/* Why epode refuses an offered, allowed mechanism here; NULL: it may be
 * tried. (Being in the allowed list is what "explicitly allowed" means
 * for ANONYMOUS and EXTERNAL: the default list has ANONYMOUS never and
 * EXTERNAL only with a client certificate.) */
static const char *refusal(const epode__sasl *s, const char *m)
{
    if (is_plus(m)) {
        if (s->cb_len == 0)
            return "no channel-binding data on this connection";
        if (s->server_cb_types) {
            if (!word_in_list(s->server_cb_types, s->cb_name))
                return "the server's channel-binding types (XEP-0440) exclude ours";
        } else if (strcasecmp(s->cb_name, "tls-unique") != 0 &&
                   strcasecmp(s->cb_name, "tls-exporter") != 0) {
            return "our channel-binding type is not one the server is known to accept";
        }
    }
    enum kind k = kind_of(m);
    int cleartext = k == K_PLAIN || strcasecmp(m, "LOGIN") == 0;
    if (cleartext && !s->tls_active)
        return "it sends the password in clear: TLS required";
    if ((k == K_SCRAM || cleartext) && (!s->authcid || !*s->authcid || !s->secret))
        return "no account name or password";
    return NULL;
}

/* One attempt with one mechanism. 0 on success (outputs set), 1 when
 * cyrus says SASL_NOMECH for it (try the next), else an EPODE_E… code
 * with the message set. */
static int attempt(epode__sasl *s, const char *mech, int server_plus,
                   const unsigned char **out, size_t *out_len)
{
    enum kind k = kind_of(mech);
    conn_close(s);

    if (k == K_ANONYMOUS) {
        /* Ours, not cyrus': its plugin would send "anonymous@<hostname>". */
        s->kind = k;
        s->state = ST_COMPLETE;
        *out = (const unsigned char *)"";
        *out_len = 0;
        return 0;
    }

    unsigned flags = SASL_SUCCESS_DATA;
    if (s->authzid && *s->authzid)
        flags |= SASL_NEED_PROXY; /* never let a mechanism drop the authzid */
    int r = sasl_client_new(s->service, s->host, NULL, NULL, s->callbacks, flags, &s->conn);
    if (r != SASL_OK) {
        s->conn = NULL;
        set_err(s, "cyrus-sasl could not create a client: %s", sasl_errstring(r, NULL, NULL));
        return r == SASL_NOMEM ? EPODE_ENOMEM : EPODE_EAUTH;
    }

    sasl_security_properties_t props;
    memset(&props, 0, sizeof props);
    props.min_ssf = 0;
    props.max_ssf = 0;     /* no SASL security layer: TLS does that */
    props.maxbufsize = 0;
    /* ANONYMOUS is never cyrus' (see above). PLAIN-like mechanisms only
     * inside TLS; cyrus lifts NOPLAINTEXT by itself when SSF_EXTERNAL > 1,
     * we state it for a TLS session with a tiny key size too. */
    props.security_flags = SASL_SEC_NOANONYMOUS | (s->tls_active ? 0 : SASL_SEC_NOPLAINTEXT);
    sasl_ssf_t ssf = s->tls_active ? s->tls_key_bits : 0;
    r = sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
    if (r == SASL_OK)
        r = sasl_setprop(s->conn, SASL_SSF_EXTERNAL, &ssf);
    if (r == SASL_OK && k == K_EXTERNAL) {
        const char *id = s->authcid && *s->authcid ? s->authcid
                       : s->host && *s->host       ? s->host
                                                   : "external";
        r = sasl_setprop(s->conn, SASL_AUTH_EXTERNAL, id);
    }

    /* The GS2 flag follows SASL_CHANNEL_BINDING and the mechanism list:
     * - a -PLUS name alone, binding set: "p=<type>";
     * - binding set (not critical) and more than one name in the list:
     *   cyrus thinks it negotiates and sends "y" for a non-PLUS SCRAM. We
     *   hand it our one choice twice so the choice stays ours. With "y"
     *   cyrus only checks that a binding is set, never reads it: when we
     *   could bind but with no type the server takes (can_bind without
     *   cb data), an empty one does;
     * - binding unset: "n". */
    char list[2 * (MECH_MAX + 1)];
    const sasl_channel_binding_t *cb = NULL;
    if (is_plus(mech)) {
        s->cb = (sasl_channel_binding_t){s->cb_name, 1, s->cb_len, s->cb_data};
        cb = &s->cb;
        snprintf(list, sizeof list, "%s", mech);
    } else if (k == K_SCRAM && !server_plus && s->can_bind) {
        s->cb = (sasl_channel_binding_t){s->cb_name ? s->cb_name : "", 0, s->cb_len, s->cb_data};
        cb = &s->cb;
        snprintf(list, sizeof list, "%s %s", mech, mech);
    } else {
        snprintf(list, sizeof list, "%s", mech);
    }
    if (r == SASL_OK)
        r = sasl_setprop(s->conn, SASL_CHANNEL_BINDING, cb);
    if (r != SASL_OK) {
        set_err(s, "cyrus-sasl refused a setting: %s", sasl_errdetail(s->conn));
        conn_close(s);
        return r == SASL_NOMEM ? EPODE_ENOMEM : EPODE_EAUTH;
    }

    sasl_interact_t *prompts = NULL;
    const char *o = NULL, *cyrus_mech = NULL;
    unsigned olen = 0;
    r = sasl_client_start(s->conn, list, &prompts, &o, &olen, &cyrus_mech);
    if (r == SASL_NOMECH) {
        conn_close(s);
        return 1;
    }
    if (r != SASL_OK && r != SASL_CONTINUE) {
        if (r == SASL_INTERACT)
            set_err(s, "SASL %s needs information epode cannot give it", mech);
        else
            set_err(s, "SASL %s failed to start: %s", mech, sasl_errdetail(s->conn));
        conn_close(s);
        return r == SASL_NOMEM ? EPODE_ENOMEM : EPODE_EAUTH;
    }
    s->kind = k;
    s->state = r == SASL_OK ? ST_COMPLETE : ST_RUNNING;
    keep_output(s, o, olen);
    *out = (const unsigned char *)o;
    *out_len = o ? olen : 0;
    return 0;
}

/* Whether cyrus has a mechanism at all (its global list names the
 * plugins it loaded; -PLUS variants are the base plugin's). */
static int cyrus_knows(const char *mech)
{
    const char **all = sasl_global_listmech();
    size_t n = strlen(mech);
    if (is_plus(mech))
        n -= 5;
    for (; all && *all; all++)
        if (strlen(*all) == n && strncasecmp(*all, mech, n) == 0)
            return 1;
    return 0;
}

/* ---- XEP-0474 (SSDP) ------------------------------------------------------ */

static int cmp_octets(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the sorted words of `words` (n of them) joined by 0x1E. */
static void join_sorted(char *dst, size_t size, const char **words, size_t n)
{
    qsort(words, n, sizeof *words, cmp_octets);
    for (size_t i = 0; i < n; i++)
        append(dst, size, "%s%s", i ? "\x1e" : "", words[i]);
}

/* What the server offered, as XEP-0474 hashes it: the mechanisms sorted
 * (i;octet) and joined by 0x1E, then — if it listed channel-binding
 * types (XEP-0440) — 0x1F and those sorted and joined the same way. */
static int ssdp_build(epode__sasl *s, const char *const *offered, size_t n)
{
    char buf[2048] = "";
    const char *words[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        if (offered[i])
            words[k++] = offered[i];
    join_sorted(buf, sizeof buf, words, k);
    if (s->server_cb_types) {
        char types[512];
        snprintf(types, sizeof types, "%s", s->server_cb_types);
        k = 0;
        for (char *save = NULL, *t = strtok_r(types, " \t,", &save); t && k < 64;
             t = strtok_r(NULL, " \t,", &save))
            words[k++] = t;
        append(buf, sizeof buf, "\x1f");
        join_sorted(buf, sizeof buf, words, k);
    }
    epode__dealloc(s->mem, s->ssdp_list);
    s->ssdp_list = epode__strdup(s->mem, buf);
    return s->ssdp_list ? 0 : -1;
}

/* The SCRAM hash of a mechanism, for XEP-0474; 0 if none known. */
static gnutls_digest_algorithm_t scram_digest(const char *mech)
{
    if (strncasecmp(mech, "SCRAM-SHA-1", 11) == 0 && (!mech[11] || mech[11] == '-'))
        return GNUTLS_DIG_SHA1;
    if (strncasecmp(mech, "SCRAM-SHA-256", 13) == 0 && (!mech[13] || mech[13] == '-'))
        return GNUTLS_DIG_SHA256;
    if (strncasecmp(mech, "SCRAM-SHA-512", 13) == 0 && (!mech[13] || mech[13] == '-'))
        return GNUTLS_DIG_SHA512;
    return GNUTLS_DIG_UNKNOWN;
}

/* XEP-0474: a server-first-message with an "h" attribute carries the
 * hash of the mechanisms and channel-binding types the server offered;
 * ours must be the same, or someone changed the list on the way (a man
 * in the middle stripping SASL2, -PLUS or a binding type). The server's
 * signature later covers the attribute: a forged one fails there. No
 * "h": a server without SSDP (Prosody 0.12, ejabberd 23.01). */
static int scram_check_ssdp(epode__sasl *s, const unsigned char *in, size_t len)
{
    const unsigned char *end = in + len, *p = in, *h = NULL;
    for (int k = 0; p < end; k++) {
        const unsigned char *comma = memchr(p, ',', (size_t)(end - p));
        const unsigned char *stop = comma ? comma : end;
        if (k >= 3 && stop - p >= 2 && p[0] == 'h' && p[1] == '=') {
            if (h) {
                set_err(s, "SASL %s: two downgrade-protection hashes (XEP-0474) from the server",
                        s->mech);
                return EPODE_EAUTH;
            }
            h = p + 2;
            len = (size_t)(stop - h);
        }
        p = comma ? comma + 1 : end;
    }
    if (!h)
        return 0;
    gnutls_digest_algorithm_t alg = scram_digest(s->mech);
    if (alg == GNUTLS_DIG_UNKNOWN || !s->ssdp_list)
        return 0; /* not a SCRAM hash we know: nothing to compare with */
    unsigned char digest[64];
    char want[100];
    if (gnutls_hash_fast(alg, s->ssdp_list, strlen(s->ssdp_list), digest) < 0) {
        set_err(s, "SASL %s: could not compute the downgrade-protection hash", s->mech);
        return EPODE_EAUTH;
    }
    size_t dl = gnutls_hash_get_len(alg);
    epode__base64_encode(want, digest, dl);
    size_t wl = epode__base64_encoded_len(dl);
    if (len != wl || memcmp(h, want, wl) != 0) {
        set_err(s, "SASL %s: the server's downgrade-protection hash (XEP-0474) does not match "
                   "the mechanisms and channel-binding types it offered here: the offer was "
                   "changed on the way (a man in the middle?)", s->mech);
        return EPODE_EAUTH;
    }
    return 0;
}

int epode__sasl_start(epode__sasl *s, const char *const *offered, size_t n_offered,
                      const char **mech, const unsigned char **out, size_t *out_len)
{
    if (!s || (!offered && n_offered) || !mech || !out || !out_len)
        return EPODE_EINVAL;
    if (s->state != ST_NEW)
        return EPODE_ESTATE;
    s->err[0] = '\0';

    if (ssdp_build(s, offered, n_offered) < 0)
        return fail(s, EPODE_ENOMEM);
    int server_plus = 0;
    for (size_t i = 0; i < n_offered; i++)
        if (offered[i] && mech_name_ok(offered[i], strlen(offered[i])) && is_plus(offered[i]))
            server_plus = 1;

    char notes[400] = "";
    for (size_t a = 0; a < s->n_allowed; a++) {
        const char *m = NULL;
        for (size_t i = 0; i < n_offered && !m; i++)
            if (offered[i] && mech_name_ok(offered[i], strlen(offered[i])) &&
                strcasecmp(offered[i], s->allowed[a]) == 0)
                m = offered[i];
        if (!m)
            continue;
        const char *why = refusal(s, m);
        if (!why) {
            const unsigned char *o;
            size_t olen;
            int rc = attempt(s, m, server_plus, &o, &olen);
            if (rc == 0) {
                snprintf(s->mech, sizeof s->mech, "%s", m);
                s->err[0] = '\0';
                *mech = s->mech;
                *out = o;
                *out_len = olen;
                return 0;
            }
            if (rc < 0)
                return fail(s, rc);
            why = cyrus_knows(m) ? "cyrus-sasl refused it (security properties)"
                                 : "cyrus-sasl lacks it (is libsasl2-modules installed?)";
        }
        append(notes, sizeof notes, "%s%s: %s", notes[0] ? "; " : "", m, why);
    }

    fail(s, EPODE_ENOMECH);
    char offer[300] = "";
    for (size_t i = 0; i < n_offered; i++) {
        const char *m = offered[i];
        int ok = m && mech_name_ok(m, strlen(m));
        append(offer, sizeof offer, "%s%s", offer[0] ? " " : "", ok ? m : "(invalid name)");
    }
    if (!offer[0])
        set_err(s, "the server offered no SASL mechanism");
    else
        set_err(s, "no acceptable SASL mechanism: the server offered %s%s%s", offer,
                notes[0] ? "; refused: " : "", notes);
    return EPODE_ENOMECH;
}

/* ---- the exchange -------------------------------------------------------- */

/* Whether the attribute at a (before end) is "<name>=…". */
static int attr_is(const unsigned char *a, const unsigned char *end, char name)
{
    return end - a >= 2 && a[0] == (unsigned char)name && a[1] == '=';
}

/* The iteration count of SCRAM's server-first-message, checked before
 * cyrus sees it. The message is nonce "," salt "," iteration-count
 * ["," extensions] (RFC 5802 section 7), and cyrus takes the count from
 * the third attribute with strtoul into an unsigned int: it skips white
 * space, accepts a sign and wraps at 2^32, so "+1", " 1" and
 * "4294967297" are all one iteration to it, and its own minimum check is
 * empty. We find the count where cyrus does and accept only what the RFC
 * writes — digits, no leading zero, at most UINT_MAX — and not below the
 * floor. 0, or EPODE_EAUTH with the message set. */
static int scram_check_iterations(epode__sasl *s, const unsigned char *in, size_t len)
{
    if (len >= 2 && in[0] == 'e' && in[1] == '=')
        return 0; /* a server-error: cyrus refuses it, set_step_err says why */
    /* The first three attributes, split as cyrus splits them. */
    const unsigned char *end = in + len, *p = in, *attr[3] = {in, in, in};
    int found = 1;
    for (int k = 0; k < 3 && found; k++) {
        attr[k] = p;
        const unsigned char *comma = memchr(p, ',', (size_t)(end - p));
        if (comma)
            p = comma + 1;
        else if (k < 2)
            found = 0;
    }
    if (!found || !attr_is(attr[0], end, 'r') || !attr_is(attr[1], end, 's') ||
        !attr_is(attr[2], end, 'i')) {
        set_err(s, "SASL %s: the server's first message is malformed (it needs r=, s= and i=, "
                   "in that order)", s->mech);
        return EPODE_EAUTH;
    }
    const unsigned char *digits = attr[2] + 2, *stop = memchr(digits, ',', (size_t)(end - digits));
    size_t n = (size_t)((stop ? stop : end) - digits);
    /* What the server sent, printable and short, for the message. */
    char shown[24];
    size_t sn = 0;
    for (size_t i = 0; i < n && sn + 1 < sizeof shown; i++)
        shown[sn++] = (digits[i] >= 0x20 && digits[i] < 0x7f) ? (char)digits[i] : '?';
    shown[sn] = '\0';

    int plain = n > 0 && !(n > 1 && digits[0] == '0');
    unsigned long long v = 0;
    for (size_t i = 0; i < n && plain; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            plain = 0;
        else if (v <= UINT_MAX)
            v = v * 10 + (unsigned)(digits[i] - '0');
    }
    if (!plain) {
        set_err(s, "SASL %s: the server's iteration count \"%s%s\" is not a plain decimal "
                   "number", s->mech, shown, n > sn ? "..." : "");
        return EPODE_EAUTH;
    }
    if (v > UINT_MAX) {
        set_err(s, "SASL %s: the server's iteration count %s%s is out of range", s->mech, shown,
                n > sn ? "..." : "");
        return EPODE_EAUTH;
    }
    if (v < s->min_iterations) {
        set_err(s, "SASL %s: the server asks for %llu iterations, fewer than the %u "
                   "required (a weakly stored password)", s->mech, v, s->min_iterations);
        return EPODE_EAUTH;
    }
    return 0;
}

/* Runs one cyrus step on a NUL-terminated copy of the server's data
 * (cyrus requires the terminator, uncounted). */
static int cyrus_step(epode__sasl *s, const unsigned char *in, size_t in_len,
                      const char **o, unsigned *olen, int *result)
{
    if (in_len > UINT_MAX - 1) {
        set_err(s, "the server's SASL data is too long");
        return EPODE_EAUTH;
    }
    char *copy = epode__alloc(s->mem, in_len + 1);
    if (!copy) {
        set_err(s, "out of memory");
        return EPODE_ENOMEM;
    }
    if (in_len)
        memcpy(copy, in, in_len);
    copy[in_len] = '\0';
    sasl_interact_t *prompts = NULL;
    *o = NULL;
    *olen = 0;
    wipe_output(s);
    *result = sasl_client_step(s->conn, copy, (unsigned)in_len, &prompts, o, olen);
    epode__dealloc(s->mem, copy);
    return 0;
}

/* SCRAM's server-final-message is verifier ["," extensions]. Cyrus
 * 2.1.28 miscounts the verifier's length when extensions follow (it
 * drops one character and fails the base64): hand it the verifier only.
 * Extensions there are informational; the signature covers none of it. */
static size_t scram_final_len(const epode__sasl *s, const unsigned char *in, size_t len)
{
    if (s->kind != K_SCRAM || s->challenges != 1 || len < 2 || in[0] != 'v' || in[1] != '=')
        return len;
    const unsigned char *comma = memchr(in, ',', len);
    return comma ? (size_t)(comma - in) : len;
}

/* A SCRAM server-error ("e=…") in words, or 0 if the data is not one. */
static int scram_server_error(epode__sasl *s, const unsigned char *in, size_t len)
{
    if (s->kind != K_SCRAM || len < 2 || in[0] != 'e' || in[1] != '=')
        return 0;
    char what[64];
    size_t n = 0;
    for (size_t i = 2; i < len && in[i] != ',' && n + 1 < sizeof what; i++)
        what[n++] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
    what[n] = '\0';
    set_err(s, "SASL %s: the server reports an error: %s", s->mech, what);
    return 1;
}

static void set_step_err(epode__sasl *s, int r, const unsigned char *in, size_t in_len)
{
    if (scram_server_error(s, in, in_len))
        return;
    if (r == SASL_BADAUTH && s->kind == K_SCRAM)
        set_err(s, "SASL %s: the server's signature is wrong: it does not know the "
                   "password, or the exchange was tampered with", s->mech);
    else
        set_err(s, "SASL %s: bad data from the server: %s", s->mech, sasl_errdetail(s->conn));
}

int epode__sasl_step(epode__sasl *s, const unsigned char *in, size_t in_len,
                     const unsigned char **out, size_t *out_len)
{
    if (!s || (!in && in_len) || !out || !out_len)
        return EPODE_EINVAL;
    if (s->state != ST_RUNNING) {
        set_err(s, "SASL challenge not expected now");
        return EPODE_ESTATE;
    }

    if (s->kind == K_SCRAM && s->challenges == 0) {
        int rc = scram_check_iterations(s, in ? in : (const unsigned char *)"", in_len);
        if (rc == 0)
            rc = scram_check_ssdp(s, in ? in : (const unsigned char *)"", in_len);
        if (rc != 0)
            return fail(s, rc);
    }
    if (!in)
        in = (const unsigned char *)"";
    size_t use = scram_final_len(s, in, in_len);
    s->challenges++;

    const char *o;
    unsigned olen;
    int r;
    int rc = cyrus_step(s, in, use, &o, &olen, &r);
    if (rc != 0)
        return fail(s, rc);
    if (r == SASL_CONTINUE || r == SASL_OK) {
        /* With SASL_OK the mechanism is done on our side (a server that
         * sent its final data as a challenge): the engine answers with
         * an empty response and an empty <success/> must follow. */
        s->state = r == SASL_OK ? ST_COMPLETE : ST_RUNNING;
        keep_output(s, o, olen);
        *out = (const unsigned char *)(o ? o : "");
        *out_len = o ? olen : 0;
        return 0;
    }
    set_step_err(s, r, in, in_len);
    return fail(s, r == SASL_NOMEM ? EPODE_ENOMEM : EPODE_EAUTH);
}

int epode__sasl_finish(epode__sasl *s, const unsigned char *in, size_t in_len)
{
    if (!s || (!in && in_len))
        return EPODE_EINVAL;
    if (s->state == ST_COMPLETE) {
        if (in_len != 0) {
            set_err(s, "SASL %s: unexpected data with <success/> after a complete exchange",
                    s->mech);
            return fail(s, EPODE_EAUTH);
        }
    } else if (s->state == ST_RUNNING) {
        if (in_len == 0) {
            set_err(s, "SASL %s: <success/> came without the mechanism's final data%s: "
                       "the server has not proved itself", s->mech,
                    s->kind == K_SCRAM ? " (the SCRAM server signature)" : "");
            return fail(s, EPODE_EAUTH);
        }
        const char *o;
        unsigned olen;
        int r;
        size_t use = scram_final_len(s, in, in_len);
        s->challenges++;
        int rc = cyrus_step(s, in, use, &o, &olen, &r);
        if (rc != 0)
            return fail(s, rc);
        if (r == SASL_CONTINUE || (r == SASL_OK && o && olen > 0)) {
            set_err(s, "SASL %s: <success/> came before the exchange was complete", s->mech);
            return fail(s, EPODE_EAUTH);
        }
        if (r != SASL_OK) {
            set_step_err(s, r, in, in_len);
            return fail(s, r == SASL_NOMEM ? EPODE_ENOMEM : EPODE_EAUTH);
        }
    } else {
        set_err(s, "SASL success not expected now");
        return EPODE_ESTATE;
    }
    s->state = ST_DONE;
    s->err[0] = '\0';
    /* Authenticated: the cyrus connection and the password have served. */
    conn_close(s);
    wipe_secret(s);
    return 0;
}
