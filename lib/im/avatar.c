/* lib/im/avatar.c — User Avatar (XEP-0084) on the pubsub helper, and the
 * vCard-based avatar hash in presence (XEP-0153): publish (data, then
 * metadata), disable, fetch (metadata, then the data item it names,
 * checked against its SHA-1), metadata notifications, hashes read from
 * presence and added to ours by an outgoing filter.
 *
 * Invariant: bytes reach the application only when their SHA-1 is the
 * id the metadata named; a fetch never holds more than max_bytes of
 * decoded image. Freed before its connection, the helper lets go of it
 * on EPODE_CONN_FREED. */
#include <epode.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "im_alloc.h"

typedef struct av_op {
    struct av_op *next;
    epode_avatar_t *av;
    unsigned id;
    int stage; /* publish: 0 data, 1 metadata; fetch: 0 metadata, 1 data */
    int fetch, disable;
    char hash[41];
    char *jid, *type;   /* fetch: whose; the metadata's type */
    epode_stanza_t *metadata; /* publish: the metadata payload for stage 1 */
    epode_avatar_result_cb cb;
    epode_avatar_fetch_cb fcb;
    void *user;
} av_op;

struct epode_avatar {
    epode_pubsub_t *ps;
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned ev_id, pres_id, filter_id, conn_ev_id;
    int notify;
    epode_avatar_event_cb cb;
    void *user;
    size_t max_bytes;
    char *vcard_hash; /* NULL: add nothing */
    epode_stanza_t *last; /* our last broadcast available presence, before our <x/> */
    av_op *ops;
    int freeing; /* in epode_avatar_free(): nothing new starts */
};

const char *epode_avatar_source_name(epode_avatar_source_t source)
{
    return source == EPODE_AVATAR_PEP ? "pep" : source == EPODE_AVATAR_VCARD ? "vcard" : NULL;
}

/* ---- bytes --------------------------------------------------------------------------- */

int epode_avatar_hash(const unsigned char *data, size_t len, char *out, size_t size)
{
    if ((!data && len) || !out)
        return EPODE_EINVAL;
    if (size < 41)
        return EPODE_ERANGE;
    unsigned char d[20];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, data ? (const void *)data : "", len, d) < 0)
        return EPODE_EINVAL;
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return 0;
}

static char *b64_encode(const epode_mem_t *mem, const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = im_alloc(mem, (n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 (whitespace skipped, padding optional at the end) into
 * *out (caller frees). EPODE_EPROTOCOL for bad input, EPODE_ELIMIT past
 * `max` bytes, EPODE_ENOMEM. */
static int b64_decode(const epode_mem_t *mem, const char *in, size_t max, unsigned char **out,
                      size_t *len)
{
    size_t n = strlen(in);
    if (n / 4 * 3 > max + 3)
        return EPODE_ELIMIT;
    unsigned char *o = im_alloc(mem, n / 4 * 3 + 3);
    if (!o)
        return EPODE_ENOMEM;
    size_t k = 0, pad = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_val(c);
        if (v < 0 || pad) { /* nothing but padding after padding */
            im_free(mem, o);
            return EPODE_EPROTOCOL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    size_t chars = (k * 8 + bits) / 6 + pad; /* what was read, padding included */
    if (pad > 2 || bits >= 6 || (pad && chars % 4) || k > max) {
        im_free(mem, o);
        return k > max ? EPODE_ELIMIT : EPODE_EPROTOCOL;
    }
    *out = o;
    *len = k;
    return 0;
}

static int is_hash(const char *s)
{
    if (strlen(s) != 40)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return 0;
    return 1;
}

/* ---- XEP-0153 ----------------------------------------------------------------------- */

const char *epode_avatar_presence_hash(const epode_stanza_t *presence)
{
    epode_stanza_t *x = presence ? epode_stanza_find_child(presence, "x", EPODE_NS_VCARD_UPDATE) : NULL;
    epode_stanza_t *photo = x ? epode_stanza_find_child(x, "photo", EPODE_NS_VCARD_UPDATE) : NULL;
    if (!photo)
        return NULL;
    const char *t = epode_stanza_get_text(photo);
    return t ? t : "";
}

static int on_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_avatar_t *av = user;
    const char *type = epode_stanza_get_type(st);
    if (type && strcmp(type, "unavailable") != 0)
        return EPODE_PASS; /* subscriptions, errors, probes */
    if (!av->cb || !epode_stanza_find_child(st, "x", EPODE_NS_VCARD_UPDATE))
        return EPODE_PASS;
    const char *from = epode_stanza_get_from(st);
    const char *hash = epode_avatar_presence_hash(st);
    if (from && (!hash || !*hash || is_hash(hash)))
        av->cb(av, from, hash, NULL, EPODE_AVATAR_VCARD, av->user);
    return EPODE_PASS;
}

/* The outgoing filter: our hash on available presence; remembers the
 * last broadcast one (as the application wrote it) so a new hash can be
 * announced at once. */
static int on_outgoing(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_avatar_t *av = user;
    const char *type = epode_stanza_get_type(st);
    if (!epode_stanza_get_to(st) && (!type || strcmp(type, "unavailable") == 0)) {
        epode_stanza_t *copy = NULL;
        if (!type && epode_stanza_copy(st, &copy) < 0)
            copy = NULL; /* no memory: nothing to send again */
        epode_stanza_unref(av->last);
        av->last = copy;
    }
    if (!av->vcard_hash || type || epode_stanza_find_child(st, "x", EPODE_NS_VCARD_UPDATE))
        return EPODE_PASS;
    epode_stanza_t *x, *photo;
    if (epode_stanza_add_child_new(st, "x", EPODE_NS_VCARD_UPDATE, &x) == 0 &&
        epode_stanza_add_child_new(x, "photo", EPODE_NS_VCARD_UPDATE, &photo) == 0 &&
        *av->vcard_hash)
        epode_stanza_set_text(photo, av->vcard_hash);
    return EPODE_PASS;
}

int epode_avatar_set_vcard_hash(epode_avatar_t *av, const char *hash)
{
    if (!av || (hash && *hash && !is_hash(hash)))
        return EPODE_EINVAL;
    char *h = NULL;
    if (hash && !(h = im_strdup(av->mem, hash)))
        return EPODE_ENOMEM;
    for (char *p = h; p && *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    im_free(av->mem, av->vcard_hash);
    av->vcard_hash = h;
    return 0;
}

const char *epode_avatar_vcard_hash(const epode_avatar_t *av)
{
    return av ? av->vcard_hash : NULL;
}

/* ---- PEP notifications --------------------------------------------------------------- */

/* The first <info/> with an id (borrowed), or NULL. */
static epode_stanza_t *first_info(const epode_stanza_t *metadata)
{
    for (epode_stanza_t *i = metadata ? epode_stanza_find_child(metadata, "info", EPODE_NS_AVATAR_METADATA) : NULL;
         i; i = epode_stanza_find_next(i, "info", EPODE_NS_AVATAR_METADATA))
        if (epode_stanza_get_attr(i, "id") && is_hash(epode_stanza_get_attr(i, "id")))
            return i;
    return NULL;
}

static void on_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                     const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                     void *user)
{
    (void)ps, (void)node, (void)msg;
    epode_avatar_t *av = user;
    if (!av->cb || type != EPODE_PUBSUB_PUBLISHED)
        return;
    epode_stanza_t *md = epode_pubsub_item_payload(item);
    if (!md || strcmp(epode_stanza_get_name(md), "metadata") != 0 || !epode_stanza_get_ns(md) ||
        strcmp(epode_stanza_get_ns(md), EPODE_NS_AVATAR_METADATA) != 0)
        return;
    char own[1024];
    if (!from) { /* our own account */
        const char *me = epode_conn_bound_jid(av->conn);
        size_t n = me ? strcspn(me, "/") : 0;
        if (!me || n >= sizeof own)
            return;
        memcpy(own, me, n);
        own[n] = '\0';
        from = own;
    }
    epode_stanza_t *info = first_info(md);
    if (info)
        av->cb(av, from, epode_stanza_get_attr(info, "id"), epode_stanza_get_attr(info, "type"),
               EPODE_AVATAR_PEP, av->user);
    else if (!epode_stanza_first_child(md))
        av->cb(av, from, "", NULL, EPODE_AVATAR_PEP, av->user); /* disabled */
}

/* ---- requests -------------------------------------------------------------------------- */

static void unlink_op(epode_avatar_t *av, av_op *op)
{
    for (av_op **p = &av->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void op_free(epode_avatar_t *av, av_op *op)
{
    im_free(av->mem, op->jid);
    im_free(av->mem, op->type);
    epode_stanza_unref(op->metadata);
    im_free(av->mem, op);
}

static void finish(epode_avatar_t *av, av_op *op, int status, epode_stanza_cond_t cond,
                   epode_pubsub_error_t perr, const unsigned char *data, size_t len)
{
    unlink_op(av, op);
    if (op->fetch) {
        if (op->fcb)
            op->fcb(av, status, cond, op->jid, data, len, data ? op->hash : NULL,
                    data ? op->type : NULL, op->user);
    } else {
        const char *before = av->vcard_hash;
        int changed = status == 0 && cond == EPODE_COND_NONE &&
                      (!before || strcmp(before, op->disable ? "" : op->hash) != 0);
        if (status == 0 && cond == EPODE_COND_NONE &&
            epode_avatar_set_vcard_hash(av, op->disable ? "" : op->hash) == 0 && changed &&
            av->last && av->conn && epode_conn_is_ready(av->conn)) {
            /* XEP-0153: contacts learn the new hash from our presence now */
            epode_stanza_t *p = epode_stanza_ref(av->last); /* the filter replaces av->last */
            epode_conn_send(av->conn, p);
            epode_stanza_unref(p);
        }
        if (op->cb)
            op->cb(av, status, cond, perr, op->disable ? "" : op->hash, op->user);
    }
    op_free(av, op);
}

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user);

static int next_stage(epode_avatar_t *av, av_op *op)
{
    op->stage++;
    if (op->fetch)
        return epode_pubsub_fetch(av->ps, op->jid, EPODE_NS_AVATAR_DATA, op->hash, 0, on_reply, op,
                                  &op->id);
    return epode_pubsub_publish(av->ps, NULL, EPODE_NS_AVATAR_METADATA, op->hash, op->metadata,
                                NULL, on_reply, op, &op->id);
}

/* The fetched data item: decoded, checked, handed out. */
static void got_data(epode_avatar_t *av, av_op *op, const epode_pubsub_reply_t *r)
{
    const epode_pubsub_item_t *it = NULL;
    for (size_t i = 0; i < epode_pubsub_reply_item_count(r); i++) {
        const epode_pubsub_item_t *c = epode_pubsub_reply_item_at(r, i);
        if (epode_pubsub_item_id(c) && strcasecmp(epode_pubsub_item_id(c), op->hash) == 0)
            it = c;
    }
    epode_stanza_t *d = it ? epode_pubsub_item_payload(it) : NULL;
    if (!it) {
        finish(av, op, 0, EPODE_COND_ITEM_NOT_FOUND, EPODE_PUBSUB_ERR_NONE, NULL, 0);
        return;
    }
    if (!d || strcmp(epode_stanza_get_name(d), "data") != 0 || !epode_stanza_get_ns(d) ||
        strcmp(epode_stanza_get_ns(d), EPODE_NS_AVATAR_DATA) != 0) {
        finish(av, op, EPODE_EPROTOCOL, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, 0);
        return;
    }
    const char *text = epode_stanza_get_text(d);
    unsigned char *bytes = NULL;
    size_t len = 0;
    int rc = text ? b64_decode(av->mem, text, av->max_bytes, &bytes, &len) : EPODE_ENOMEM;
    char sum[41];
    if (rc == 0 && (epode_avatar_hash(bytes, len, sum, sizeof sum) < 0 ||
                    strcasecmp(sum, op->hash) != 0))
        rc = EPODE_EPROTOCOL;
    if (rc == 0 && len == 0)
        rc = EPODE_EPROTOCOL;
    finish(av, op, rc, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, rc == 0 ? bytes : NULL, rc == 0 ? len : 0);
    im_free(av->mem, bytes);
}

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    av_op *op = user;
    epode_avatar_t *av = op->av;
    int status = epode_pubsub_reply_status(r);
    epode_stanza_cond_t cond = epode_pubsub_reply_cond(r);
    op->id = 0;
    if (!epode_pubsub_reply_ok(r)) {
        if (op->fetch && op->stage == 0 && status == 0 && cond == EPODE_COND_ITEM_NOT_FOUND)
            cond = EPODE_COND_NONE; /* no metadata node: no avatar */
        finish(av, op, status, cond, epode_pubsub_reply_pubsub_error(r), NULL, 0);
        return;
    }
    if (op->fetch && op->stage == 1) {
        got_data(av, op, r);
        return;
    }
    if (op->fetch) { /* the metadata: the newest item's first info */
        size_t n = epode_pubsub_reply_item_count(r);
        const epode_pubsub_item_t *it = n ? epode_pubsub_reply_item_at(r, n - 1) : NULL;
        epode_stanza_t *info = first_info(it ? epode_pubsub_item_payload(it) : NULL);
        if (!info) {
            finish(av, op, 0, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, 0);
            return;
        }
        snprintf(op->hash, sizeof op->hash, "%s", epode_stanza_get_attr(info, "id"));
        const char *type = epode_stanza_get_attr(info, "type");
        if (type && !(op->type = im_strdup(av->mem, type))) {
            finish(av, op, EPODE_ENOMEM, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, 0);
            return;
        }
        const char *bytes = epode_stanza_get_attr(info, "bytes");
        if (bytes && strtoull(bytes, NULL, 10) > av->max_bytes) {
            finish(av, op, EPODE_ELIMIT, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, 0);
            return;
        }
    } else if (op->stage == 1 || op->disable) {
        finish(av, op, 0, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, 0);
        return;
    }
    int rc = next_stage(av, op);
    if (rc < 0)
        finish(av, op, rc, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, 0);
}

static av_op *op_new(epode_avatar_t *av)
{
    av_op *op = im_zalloc(av->mem, sizeof *op);
    if (op)
        op->av = av;
    return op;
}

static void op_link(epode_avatar_t *av, av_op *op)
{
    op->next = av->ops;
    av->ops = op;
}

int epode_avatar_publish(epode_avatar_t *av, const unsigned char *data, size_t len,
                         const char *type, unsigned width, unsigned height,
                         epode_avatar_result_cb cb, void *user)
{
    if (!av || !data || !len || (type && !*type))
        return EPODE_EINVAL;
    if (av->freeing || !av->conn || !epode_conn_is_ready(av->conn))
        return EPODE_ESTATE;
    av_op *op = op_new(av);
    if (!op)
        return EPODE_ENOMEM;
    op->cb = cb;
    op->user = user;
    int rc = epode_avatar_hash(data, len, op->hash, sizeof op->hash);
    char *b64 = rc == 0 ? b64_encode(av->mem, data, len) : NULL;
    epode_stanza_t *d = NULL, *info;
    if (rc == 0 && !b64)
        rc = EPODE_ENOMEM;
    if (rc == 0 && (rc = epode_stanza_new(av->mem, "data", EPODE_NS_AVATAR_DATA, &d)) == 0)
        rc = epode_stanza_set_text(d, b64);
    im_free(av->mem, b64);
    if (rc == 0)
        rc = epode_stanza_new(av->mem, "metadata", EPODE_NS_AVATAR_METADATA, &op->metadata);
    if (rc == 0)
        rc = epode_stanza_add_child_new(op->metadata, "info", EPODE_NS_AVATAR_METADATA, &info);
    char num[32];
    snprintf(num, sizeof num, "%zu", len);
    if (rc == 0)
        rc = epode_stanza_set_attr(info, "bytes", num);
    if (rc == 0)
        rc = epode_stanza_set_attr(info, "id", op->hash);
    if (rc == 0)
        rc = epode_stanza_set_attr(info, "type", type ? type : "image/png");
    if (rc == 0 && width) {
        snprintf(num, sizeof num, "%u", width);
        rc = epode_stanza_set_attr(info, "width", num);
    }
    if (rc == 0 && height) {
        snprintf(num, sizeof num, "%u", height);
        rc = epode_stanza_set_attr(info, "height", num);
    }
    if (rc == 0)
        rc = epode_pubsub_publish(av->ps, NULL, EPODE_NS_AVATAR_DATA, op->hash, d, NULL, on_reply,
                                  op, &op->id);
    epode_stanza_unref(d);
    if (rc < 0) {
        op_free(av, op);
        return rc;
    }
    op_link(av, op);
    return 0;
}

int epode_avatar_disable(epode_avatar_t *av, epode_avatar_result_cb cb, void *user)
{
    if (!av)
        return EPODE_EINVAL;
    if (av->freeing || !av->conn || !epode_conn_is_ready(av->conn))
        return EPODE_ESTATE;
    av_op *op = op_new(av);
    if (!op)
        return EPODE_ENOMEM;
    op->cb = cb;
    op->user = user;
    op->disable = 1;
    epode_stanza_t *md = NULL;
    int rc = epode_stanza_new(av->mem, "metadata", EPODE_NS_AVATAR_METADATA, &md);
    if (rc == 0)
        rc = epode_pubsub_publish(av->ps, NULL, EPODE_NS_AVATAR_METADATA, "current", md, NULL,
                                  on_reply, op, &op->id);
    epode_stanza_unref(md);
    if (rc < 0) {
        op_free(av, op);
        return rc;
    }
    op_link(av, op);
    return 0;
}

int epode_avatar_fetch(epode_avatar_t *av, const char *jid, epode_avatar_fetch_cb cb, void *user)
{
    if (!av)
        return EPODE_EINVAL;
    if (jid && epode_jid_validate(jid) < 0)
        return EPODE_EJID;
    if (av->freeing || !av->conn || !epode_conn_is_ready(av->conn))
        return EPODE_ESTATE;
    av_op *op = op_new(av);
    if (!op)
        return EPODE_ENOMEM;
    op->fetch = 1;
    op->fcb = cb;
    op->user = user;
    int rc = jid && !(op->jid = im_strdup(av->mem, jid)) ? EPODE_ENOMEM : 0;
    if (rc == 0)
        rc = epode_pubsub_fetch(av->ps, jid, EPODE_NS_AVATAR_METADATA, NULL, 1, on_reply, op,
                                &op->id);
    if (rc < 0) {
        op_free(av, op);
        return rc;
    }
    op_link(av, op);
    return 0;
}

int epode_avatar_set_max_bytes(epode_avatar_t *av, size_t max)
{
    if (!av)
        return EPODE_EINVAL;
    av->max_bytes = max ? max : EPODE_AVATAR_MAX_BYTES;
    return 0;
}

/* ---- the helper ------------------------------------------------------------------------ */

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_avatar_t *av = user;
    if (ev == EPODE_CONN_FREED) {
        av->conn = NULL;
        av->pres_id = av->filter_id = av->conn_ev_id = 0;
    }
    if (ev == EPODE_CONN_FREED || ev == EPODE_CONN_DISCONNECTED) {
        epode_stanza_unref(av->last); /* a new session starts with the application's */
        av->last = NULL;
    }
}

int epode_avatar_new(epode_pubsub_t *ps, epode_avatar_event_cb cb, void *user,
                     epode_avatar_t **out)
{
    if (!ps || !out)
        return EPODE_EINVAL;
    epode_conn_t *conn = epode_pubsub_conn(ps);
    if (!conn)
        return EPODE_ESTATE;
    const epode_mem_t *mem = im_mem(conn);
    epode_avatar_t *av = im_zalloc(mem, sizeof *av);
    if (!av)
        return EPODE_ENOMEM;
    av->ps = ps;
    av->conn = conn;
    av->mem = mem;
    av->cb = cb;
    av->user = user;
    av->max_bytes = EPODE_AVATAR_MAX_BYTES;
    int rc = epode_pubsub_add_event_cb(ps, EPODE_NS_AVATAR_METADATA, on_event, av, &av->ev_id);
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "presence", NULL, NULL, on_presence, av, &av->pres_id);
    if (rc == 0)
        rc = epode_conn_add_filter(conn, "presence", NULL, NULL, on_outgoing, av, &av->filter_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, av, &av->conn_ev_id);
    if (rc == 0) {
        rc = epode_pubsub_add_notify(ps, EPODE_NS_AVATAR_METADATA);
        av->notify = rc == 0;
        if (rc == EPODE_ESTATE)
            rc = 0;
    }
    if (rc < 0) {
        epode_avatar_free(av);
        return rc;
    }
    *out = av;
    return 0;
}

void epode_avatar_free(epode_avatar_t *av)
{
    if (!av || av->freeing)
        return;
    av->freeing = 1; /* a canceled callback that tries again is refused */
    if (av->ev_id)
        epode_pubsub_remove_event_cb(av->ps, av->ev_id);
    if (av->notify)
        epode_pubsub_remove_notify(av->ps, EPODE_NS_AVATAR_METADATA);
    if (av->conn) {
        if (av->pres_id)
            epode_conn_remove(av->conn, av->pres_id);
        if (av->filter_id)
            epode_conn_remove(av->conn, av->filter_id);
        if (av->conn_ev_id)
            epode_conn_remove(av->conn, av->conn_ev_id);
    }
    while (av->ops) {
        av_op *op = av->ops;
        av->ops = op->next;
        if (op->id)
            epode_pubsub_cancel(av->ps, op->id);
        if (op->fetch && op->fcb)
            op->fcb(av, EPODE_ECANCELED, EPODE_COND_NONE, op->jid, NULL, 0, NULL, NULL, op->user);
        else if (!op->fetch && op->cb)
            op->cb(av, EPODE_ECANCELED, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, NULL, op->user);
        op_free(av, op);
    }
    im_free(av->mem, av->vcard_hash);
    epode_stanza_unref(av->last);
    im_free(av->mem, av);
}
