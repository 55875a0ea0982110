/* lib/im/pubsub.c — Publish-Subscribe (XEP-0060) and PEP (XEP-0163) on the
 * public API: requests (publish, retract, fetch, subscribe, unsubscribe,
 * delete) and their answers read into a reply view, event notifications
 * handed out per item to callbacks registered per node, and the
 * `NODE+notify` features kept on a disco helper, counted per node.
 *
 * Invariants: a reply view and its items point into the answer's tree and
 * live only for the callback; a notification is read whole before any
 * callback runs and at most EPODE_PUBSUB_MAX_ITEMS of its items are
 * delivered. Event callbacks removed during a dispatch are only marked
 * and swept when the outermost dispatch ends. Freed before its
 * connection, the helper lets go of it on EPODE_CONN_FREED. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "im_alloc.h"

typedef enum req_kind { REQ_PUBLISH, REQ_RETRACT, REQ_FETCH, REQ_SUBSCRIBE,
                        REQ_UNSUBSCRIBE, REQ_DELETE, REQ_CONFIGURE } req_kind;

typedef struct pubsub_req {
    struct pubsub_req *next;
    epode_pubsub_t *ps;
    req_kind kind;
    unsigned id; /* the IQ's wait: also the id the application sees */
    char *node, *item_id;
    epode_pubsub_result_cb cb;
    void *user;
} pubsub_req;

typedef struct event_cb {
    struct event_cb *next;
    unsigned id;
    char *node; /* NULL: every node */
    epode_pubsub_event_cb cb; /* NULL: removed, swept later */
    void *user;
} event_cb;

typedef struct notify_node {
    struct notify_node *next;
    char *feature; /* "NODE+notify" */
    unsigned count;
} notify_node;

struct epode_pubsub_item {
    const char *id, *publisher;
    epode_stanza_t *payload;
};

struct epode_pubsub_reply {
    int status;
    epode_stanza_cond_t cond;
    epode_pubsub_error_t perr;
    const char *unsupported, *text, *node, *item_id, *subscription, *subid;
    epode_stanza_t *stanza;
    epode_pubsub_item_t *items;
    size_t n;
};

struct epode_pubsub {
    epode_conn_t *conn;
    epode_disco_t *disco;
    const epode_mem_t *mem;
    unsigned msg_id, ev_id;
    unsigned next_cb_id;
    unsigned rejected;
    int dispatching, swept_needed;
    pubsub_req *reqs;
    event_cb *cbs;
    notify_node *notify;
};

/* ---- names ----------------------------------------------------------------------- */

static const char *const perr_names[] = {
    "closed-node", "configuration-required", "invalid-jid", "invalid-options",
    "invalid-payload", "invalid-subid", "item-forbidden", "item-required", "jid-required",
    "max-items-exceeded", "max-nodes-exceeded", "nodeid-required", "not-in-roster-group",
    "not-subscribed", "payload-too-big", "payload-required", "pending-subscription",
    "precondition-not-met", "presence-subscription-required", "subid-required",
    "too-many-subscriptions", "unsupported", "unsupported-access-model"};
#define NPERR (sizeof perr_names / sizeof *perr_names)

const char *epode_pubsub_error_name(epode_pubsub_error_t err)
{
    static const char *const snake[] = {
        "none", "closed_node", "configuration_required", "invalid_jid", "invalid_options",
        "invalid_payload", "invalid_subid", "item_forbidden", "item_required", "jid_required",
        "max_items_exceeded", "max_nodes_exceeded", "nodeid_required", "not_in_roster_group",
        "not_subscribed", "payload_too_big", "payload_required", "pending_subscription",
        "precondition_not_met", "presence_subscription_required", "subid_required",
        "too_many_subscriptions", "unsupported", "unsupported_access_model", "other"};
    return (int)err >= 0 && (size_t)err < sizeof snake / sizeof *snake ? snake[err] : NULL;
}

epode_pubsub_error_t epode_pubsub_error_from_name(const char *name)
{
    if (!name)
        return EPODE_PUBSUB_ERR_NONE;
    for (size_t i = 0; i < NPERR; i++)
        if (strcmp(perr_names[i], name) == 0)
            return (epode_pubsub_error_t)(i + 1);
    return EPODE_PUBSUB_ERR_OTHER;
}

const char *epode_pubsub_event_type_name(epode_pubsub_event_type_t type)
{
    static const char *const names[] = {"published", "retracted", "purged", "deleted"};
    return (int)type >= EPODE_PUBSUB_PUBLISHED && (int)type <= EPODE_PUBSUB_DELETED
               ? names[type - EPODE_PUBSUB_PUBLISHED]
               : NULL;
}

/* ---- views ----------------------------------------------------------------------- */

const char *epode_pubsub_item_id(const epode_pubsub_item_t *item)
{
    return item ? item->id : NULL;
}

const char *epode_pubsub_item_publisher(const epode_pubsub_item_t *item)
{
    return item ? item->publisher : NULL;
}

epode_stanza_t *epode_pubsub_item_payload(const epode_pubsub_item_t *item)
{
    return item ? item->payload : NULL;
}

int epode_pubsub_reply_status(const epode_pubsub_reply_t *r)
{
    return r ? r->status : EPODE_EINVAL;
}

epode_stanza_cond_t epode_pubsub_reply_cond(const epode_pubsub_reply_t *r)
{
    return r ? r->cond : EPODE_COND_NONE;
}

epode_pubsub_error_t epode_pubsub_reply_pubsub_error(const epode_pubsub_reply_t *r)
{
    return r ? r->perr : EPODE_PUBSUB_ERR_NONE;
}

const char *epode_pubsub_reply_unsupported(const epode_pubsub_reply_t *r)
{
    return r ? r->unsupported : NULL;
}

const char *epode_pubsub_reply_text(const epode_pubsub_reply_t *r)
{
    return r ? r->text : NULL;
}

int epode_pubsub_reply_ok(const epode_pubsub_reply_t *r)
{
    return r && r->status == 0 && r->cond == EPODE_COND_NONE;
}

epode_stanza_t *epode_pubsub_reply_stanza(const epode_pubsub_reply_t *r)
{
    return r ? r->stanza : NULL;
}

const char *epode_pubsub_reply_node(const epode_pubsub_reply_t *r)
{
    return r ? r->node : NULL;
}

const char *epode_pubsub_reply_item_id(const epode_pubsub_reply_t *r)
{
    return r ? r->item_id : NULL;
}

size_t epode_pubsub_reply_item_count(const epode_pubsub_reply_t *r)
{
    return r ? r->n : 0;
}

const epode_pubsub_item_t *epode_pubsub_reply_item_at(const epode_pubsub_reply_t *r, size_t i)
{
    return r && i < r->n ? &r->items[i] : NULL;
}

const char *epode_pubsub_reply_subscription(const epode_pubsub_reply_t *r)
{
    return r ? r->subscription : NULL;
}

const char *epode_pubsub_reply_subid(const epode_pubsub_reply_t *r)
{
    return r ? r->subid : NULL;
}

/* The first child element of `el`, or NULL (text is not a child). */
static epode_stanza_t *first_element(const epode_stanza_t *el)
{
    return epode_stanza_first_child(el);
}

static void read_item(const epode_stanza_t *it, epode_pubsub_item_t *out)
{
    out->id = epode_stanza_get_attr(it, "id");
    out->publisher = epode_stanza_get_attr(it, "publisher");
    out->payload = first_element(it);
}

/* ---- requests ---------------------------------------------------------------------- */

static void unlink_req(epode_pubsub_t *ps, pubsub_req *r)
{
    for (pubsub_req **p = &ps->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void req_free(epode_pubsub_t *ps, pubsub_req *r)
{
    im_free(ps->mem, r->node);
    im_free(ps->mem, r->item_id);
    im_free(ps->mem, r);
}

/* Reads the pubsub#errors condition (and unsupported's feature). */
static void read_error(const epode_stanza_t *st, epode_pubsub_reply_t *rep)
{
    if (epode_stanza_get_error(st, &rep->cond, NULL, &rep->text) < 0 ||
        rep->cond == EPODE_COND_NONE)
        rep->cond = EPODE_COND_UNDEFINED_CONDITION;
    epode_stanza_t *err = epode_stanza_find_child(st, "error", NULL);
    for (epode_stanza_t *c = err ? epode_stanza_first_child(err) : NULL; c;
         c = epode_stanza_next(c)) {
        const char *ns = epode_stanza_get_ns(c);
        if (ns && strcmp(ns, EPODE_NS_PUBSUB_ERRORS) == 0) {
            rep->perr = epode_pubsub_error_from_name(epode_stanza_get_name(c));
            if (rep->perr == EPODE_PUBSUB_ERR_UNSUPPORTED)
                rep->unsupported = epode_stanza_get_attr(c, "feature");
            break;
        }
    }
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn;
    pubsub_req *r = user;
    epode_pubsub_t *ps = r->ps;
    if (!ps->conn)
        return; /* the connection is being freed: epode_pubsub_free() reports it */
    unlink_req(ps, r);
    epode_pubsub_reply_t rep = {0};
    rep.status = status;
    rep.stanza = res;
    rep.node = r->node;
    const char *type = res ? epode_stanza_get_type(res) : NULL;
    if (status == 0 && (!type || strcmp(type, "result") != 0))
        read_error(res, &rep);
    epode_stanza_t *pubsub = res ? epode_stanza_find_child(res, "pubsub", EPODE_NS_PUBSUB) : NULL;
    if (epode_pubsub_reply_ok(&rep)) {
        if (r->kind == REQ_PUBLISH) {
            rep.item_id = r->item_id;
            epode_stanza_t *pub = pubsub ? epode_stanza_find_child(pubsub, "publish", NULL) : NULL;
            epode_stanza_t *it = pub ? epode_stanza_find_child(pub, "item", NULL) : NULL;
            if (it && epode_stanza_get_attr(it, "id"))
                rep.item_id = epode_stanza_get_attr(it, "id");
        } else if (r->kind == REQ_FETCH && pubsub) {
            epode_stanza_t *items = epode_stanza_find_child(pubsub, "items", EPODE_NS_PUBSUB);
            size_t n = 0;
            for (epode_stanza_t *it = items ? epode_stanza_find_child(items, "item", EPODE_NS_PUBSUB) : NULL;
                 it && n < EPODE_PUBSUB_MAX_ITEMS; it = epode_stanza_find_next(it, "item", EPODE_NS_PUBSUB))
                n++;
            if (n && !(rep.items = im_alloc(ps->mem, n * sizeof *rep.items))) {
                rep.status = EPODE_ENOMEM;
            } else {
                for (epode_stanza_t *it = items ? epode_stanza_find_child(items, "item", EPODE_NS_PUBSUB) : NULL;
                     it && rep.n < n; it = epode_stanza_find_next(it, "item", EPODE_NS_PUBSUB))
                    read_item(it, &rep.items[rep.n++]);
            }
        } else if (r->kind == REQ_SUBSCRIBE && pubsub) {
            epode_stanza_t *sub = epode_stanza_find_child(pubsub, "subscription", EPODE_NS_PUBSUB);
            if (sub) {
                rep.subscription = epode_stanza_get_attr(sub, "subscription");
                rep.subid = epode_stanza_get_attr(sub, "subid");
            }
        }
    }
    if (r->cb)
        r->cb(ps, &rep, r->user);
    im_free(ps->mem, rep.items);
    req_free(ps, r);
}

static int check_args(epode_pubsub_t *ps, const char *jid, const char *node)
{
    if (!ps || !node || !*node)
        return EPODE_EINVAL;
    if (jid && epode_jid_validate(jid) < 0)
        return EPODE_EJID;
    if (!ps->conn || !epode_conn_is_ready(ps->conn))
        return EPODE_ESTATE;
    return 0;
}

/* Makes the IQ with its <pubsub/> (or owner) child: *iq and *ps_el. */
static int start_iq(epode_pubsub_t *ps, const char *type, const char *jid, const char *ns,
                    epode_stanza_t **iq, epode_stanza_t **ps_el)
{
    *iq = NULL;
    int rc = epode_stanza_new_iq(ps->mem, type, NULL, iq);
    /* our own account is asked without 'to': servers answer such IQs
     * without 'from' (Prosody does), which is then the only answer
     * epode_conn_send_iq() takes for it */
    if (rc == 0 && jid && !epode_pubsub_from_own_account(ps, jid))
        rc = epode_stanza_set_to(*iq, jid);
    if (rc == 0)
        rc = epode_stanza_add_child_new(*iq, "pubsub", ns, ps_el);
    if (rc < 0 && *iq) {
        epode_stanza_unref(*iq);
        *iq = NULL;
    }
    return rc;
}

/* Sends `iq` (taking our reference) for a request; on failure nothing
 * stays registered. */
static int send_req(epode_pubsub_t *ps, epode_stanza_t *iq, req_kind kind, const char *node,
                    const char *item_id, epode_pubsub_result_cb cb, void *user, unsigned *id)
{
    pubsub_req *r = im_zalloc(ps->mem, sizeof *r);
    int rc = r ? 0 : EPODE_ENOMEM;
    if (rc == 0) {
        r->ps = ps;
        r->kind = kind;
        r->cb = cb;
        r->user = user;
        if (!(r->node = im_strdup(ps->mem, node)) ||
            (item_id && !(r->item_id = im_strdup(ps->mem, item_id))))
            rc = EPODE_ENOMEM;
    }
    if (rc == 0)
        rc = epode_conn_send_iq(ps->conn, iq, 0, on_answer, r, &r->id);
    epode_stanza_unref(iq);
    if (rc < 0) {
        if (r)
            req_free(ps, r);
        return rc;
    }
    r->next = ps->reqs;
    ps->reqs = r;
    if (id)
        *id = r->id;
    return 0;
}

int epode_pubsub_options_new(const epode_mem_t *mem, epode_form_t **out)
{
    if (!out)
        return EPODE_EINVAL;
    epode_form_t *f;
    int rc = epode_form_new(mem, EPODE_FORM_SUBMIT, &f);
    if (rc < 0)
        return rc;
    if ((rc = epode_form_set_form_type(f, EPODE_NS_PUBSUB_PUBLISH_OPTIONS)) < 0) {
        epode_form_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int epode_pubsub_publish(epode_pubsub_t *ps, const char *jid, const char *node,
                         const char *item_id, const epode_stanza_t *payload,
                         const epode_form_t *options, epode_pubsub_result_cb cb, void *user,
                         unsigned *id)
{
    int rc = check_args(ps, jid, node);
    if (rc < 0)
        return rc;
    if (item_id && !*item_id)
        return EPODE_EINVAL;
    epode_stanza_t *iq, *el, *pub, *it;
    epode_form_t *sub = NULL;
    if ((rc = start_iq(ps, "set", jid, EPODE_NS_PUBSUB, &iq, &el)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(el, "publish", EPODE_NS_PUBSUB, &pub)) == 0)
        rc = epode_stanza_set_attr(pub, "node", node);
    if (rc == 0)
        rc = epode_stanza_add_child_new(pub, "item", EPODE_NS_PUBSUB, &it);
    if (rc == 0 && item_id)
        rc = epode_stanza_set_attr(it, "id", item_id);
    if (rc == 0 && payload)
        rc = epode_stanza_add_child(it, payload, NULL);
    if (rc == 0 && options) {
        epode_stanza_t *po;
        rc = epode_form_submit(options, &sub);
        if (rc == 0)
            rc = epode_form_set_form_type(sub, EPODE_NS_PUBSUB_PUBLISH_OPTIONS);
        if (rc == 0)
            rc = epode_stanza_add_child_new(el, "publish-options", EPODE_NS_PUBSUB, &po);
        if (rc == 0)
            rc = epode_form_add_to(sub, po, NULL);
        epode_form_free(sub);
    }
    if (rc < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_req(ps, iq, REQ_PUBLISH, node, item_id, cb, user, id);
}

int epode_pubsub_retract(epode_pubsub_t *ps, const char *jid, const char *node,
                         const char *item_id, int notify, epode_pubsub_result_cb cb, void *user,
                         unsigned *id)
{
    int rc = check_args(ps, jid, node);
    if (rc < 0)
        return rc;
    if (!item_id || !*item_id)
        return EPODE_EINVAL;
    epode_stanza_t *iq, *el, *ret, *it;
    if ((rc = start_iq(ps, "set", jid, EPODE_NS_PUBSUB, &iq, &el)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(el, "retract", EPODE_NS_PUBSUB, &ret)) == 0)
        rc = epode_stanza_set_attr(ret, "node", node);
    if (rc == 0 && notify)
        rc = epode_stanza_set_attr(ret, "notify", "true");
    if (rc == 0)
        rc = epode_stanza_add_child_new(ret, "item", EPODE_NS_PUBSUB, &it);
    if (rc == 0)
        rc = epode_stanza_set_attr(it, "id", item_id);
    if (rc < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_req(ps, iq, REQ_RETRACT, node, item_id, cb, user, id);
}

int epode_pubsub_fetch(epode_pubsub_t *ps, const char *jid, const char *node,
                       const char *item_id, unsigned max, epode_pubsub_result_cb cb, void *user,
                       unsigned *id)
{
    int rc = check_args(ps, jid, node);
    if (rc < 0)
        return rc;
    if (item_id && !*item_id)
        return EPODE_EINVAL;
    epode_stanza_t *iq, *el, *items, *it;
    if ((rc = start_iq(ps, "get", jid, EPODE_NS_PUBSUB, &iq, &el)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(el, "items", EPODE_NS_PUBSUB, &items)) == 0)
        rc = epode_stanza_set_attr(items, "node", node);
    if (rc == 0 && item_id) {
        rc = epode_stanza_add_child_new(items, "item", EPODE_NS_PUBSUB, &it);
        if (rc == 0)
            rc = epode_stanza_set_attr(it, "id", item_id);
    } else if (rc == 0 && max) {
        char num[16];
        snprintf(num, sizeof num, "%u", max);
        rc = epode_stanza_set_attr(items, "max_items", num);
    }
    if (rc < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_req(ps, iq, REQ_FETCH, node, item_id, cb, user, id);
}

/* Our bare JID into buf, or EPODE_ESTATE. */
static int own_bare(epode_pubsub_t *ps, char *buf, size_t size)
{
    const char *bound = epode_conn_bound_jid(ps->conn);
    if (!bound)
        return EPODE_ESTATE;
    size_t n = strcspn(bound, "/");
    if (n >= size)
        return EPODE_ELIMIT;
    memcpy(buf, bound, n);
    buf[n] = '\0';
    return 0;
}

static int sub_req(epode_pubsub_t *ps, const char *jid, const char *node, const char *subid,
                   int subscribe, epode_pubsub_result_cb cb, void *user, unsigned *id)
{
    if (!jid)
        return EPODE_EINVAL;
    int rc = check_args(ps, jid, node);
    char me[1024];
    if (rc == 0)
        rc = own_bare(ps, me, sizeof me);
    if (rc < 0)
        return rc;
    epode_stanza_t *iq, *el, *s;
    if ((rc = start_iq(ps, "set", jid, EPODE_NS_PUBSUB, &iq, &el)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(el, subscribe ? "subscribe" : "unsubscribe",
                                         EPODE_NS_PUBSUB, &s)) == 0)
        rc = epode_stanza_set_attr(s, "node", node);
    if (rc == 0)
        rc = epode_stanza_set_attr(s, "jid", me);
    if (rc == 0 && subid)
        rc = epode_stanza_set_attr(s, "subid", subid);
    if (rc < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_req(ps, iq, subscribe ? REQ_SUBSCRIBE : REQ_UNSUBSCRIBE, node, NULL, cb, user,
                    id);
}

int epode_pubsub_subscribe(epode_pubsub_t *ps, const char *jid, const char *node,
                           epode_pubsub_result_cb cb, void *user, unsigned *id)
{
    return sub_req(ps, jid, node, NULL, 1, cb, user, id);
}

int epode_pubsub_unsubscribe(epode_pubsub_t *ps, const char *jid, const char *node,
                             const char *subid, epode_pubsub_result_cb cb, void *user,
                             unsigned *id)
{
    return sub_req(ps, jid, node, subid, 0, cb, user, id);
}

int epode_pubsub_delete_node(epode_pubsub_t *ps, const char *jid, const char *node,
                             epode_pubsub_result_cb cb, void *user, unsigned *id)
{
    int rc = check_args(ps, jid, node);
    if (rc < 0)
        return rc;
    epode_stanza_t *iq, *el, *del;
    if ((rc = start_iq(ps, "set", jid, EPODE_NS_PUBSUB_OWNER, &iq, &el)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(el, "delete", EPODE_NS_PUBSUB_OWNER, &del)) == 0)
        rc = epode_stanza_set_attr(del, "node", node);
    if (rc < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_req(ps, iq, REQ_DELETE, node, NULL, cb, user, id);
}

int epode_pubsub_configure(epode_pubsub_t *ps, const char *jid, const char *node,
                           const epode_form_t *config, epode_pubsub_result_cb cb, void *user,
                           unsigned *id)
{
    int rc = check_args(ps, jid, node);
    if (rc < 0)
        return rc;
    if (!config)
        return EPODE_EINVAL;
    epode_stanza_t *iq, *el, *conf;
    epode_form_t *sub = NULL;
    if ((rc = start_iq(ps, "set", jid, EPODE_NS_PUBSUB_OWNER, &iq, &el)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(el, "configure", EPODE_NS_PUBSUB_OWNER, &conf)) == 0)
        rc = epode_stanza_set_attr(conf, "node", node);
    if (rc == 0)
        rc = epode_form_submit(config, &sub);
    if (rc == 0)
        rc = epode_form_set_form_type(sub, EPODE_NS_PUBSUB_NODE_CONFIG);
    if (rc == 0)
        rc = epode_form_add_to(sub, conf, NULL);
    epode_form_free(sub);
    if (rc < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_req(ps, iq, REQ_CONFIGURE, node, NULL, cb, user, id);
}

int epode_pubsub_cancel(epode_pubsub_t *ps, unsigned id)
{
    if (!ps || !id)
        return EPODE_EINVAL;
    for (pubsub_req *r = ps->reqs; r; r = r->next)
        if (r->id == id) {
            unlink_req(ps, r);
            if (ps->conn)
                epode_conn_remove(ps->conn, r->id);
            req_free(ps, r);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

/* ---- notifications ----------------------------------------------------------------- */

static void sweep(epode_pubsub_t *ps)
{
    for (event_cb **p = &ps->cbs; *p;) {
        event_cb *c = *p;
        if (!c->cb) {
            *p = c->next;
            im_free(ps->mem, c->node);
            im_free(ps->mem, c);
        } else {
            p = &c->next;
        }
    }
    ps->swept_needed = 0;
}

static void deliver(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                    const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg)
{
    /* callbacks added meanwhile are appended after `last`: they hear the next item */
    event_cb *last = ps->cbs;
    while (last && last->next)
        last = last->next;
    for (event_cb *c = ps->cbs; c && ps->conn; c = c == last ? NULL : c->next)
        if (c->cb && (!c->node || strcmp(c->node, node) == 0))
            c->cb(ps, type, from, node, item, msg, c->user);
}

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_pubsub_t *ps = user;
    epode_stanza_t *ev = epode_stanza_find_child(st, "event", EPODE_NS_PUBSUB_EVENT);
    if (!ev || !ps->conn)
        return EPODE_PASS;
    const char *type = epode_stanza_get_type(st);
    if (type && strcmp(type, "error") == 0)
        return EPODE_PASS;
    const char *from = epode_stanza_get_from(st);
    ps->dispatching++;
    size_t delivered = 0;
    for (epode_stanza_t *c = epode_stanza_first_child(ev); c && ps->conn; c = epode_stanza_next(c)) {
        const char *ns = epode_stanza_get_ns(c);
        const char *name = epode_stanza_get_name(c);
        const char *node = epode_stanza_get_attr(c, "node");
        if (!ns || strcmp(ns, EPODE_NS_PUBSUB_EVENT) != 0)
            continue;
        if (!node || !*node) {
            ps->rejected++;
            continue;
        }
        if (strcmp(name, "items") == 0) {
            for (epode_stanza_t *it = epode_stanza_first_child(c); it && ps->conn;
                 it = epode_stanza_next(it)) {
                const char *iname = epode_stanza_get_name(it);
                const char *ins = epode_stanza_get_ns(it);
                if (!ins || strcmp(ins, EPODE_NS_PUBSUB_EVENT) != 0)
                    continue;
                int pub = strcmp(iname, "item") == 0, ret = strcmp(iname, "retract") == 0;
                if (!pub && !ret)
                    continue;
                epode_pubsub_item_t item;
                read_item(it, &item);
                if (delivered == EPODE_PUBSUB_MAX_ITEMS || (ret && (!item.id || !*item.id))) {
                    ps->rejected++;
                    continue;
                }
                if (ret)
                    item.payload = NULL;
                delivered++;
                deliver(ps, pub ? EPODE_PUBSUB_PUBLISHED : EPODE_PUBSUB_RETRACTED, from, node,
                        &item, st);
            }
        } else if (strcmp(name, "purge") == 0) {
            deliver(ps, EPODE_PUBSUB_PURGED, from, node, NULL, st);
        } else if (strcmp(name, "delete") == 0) {
            deliver(ps, EPODE_PUBSUB_DELETED, from, node, NULL, st);
        }
    }
    if (--ps->dispatching == 0 && ps->swept_needed)
        sweep(ps);
    return EPODE_PASS; /* others (a message log, carbons) may look too */
}

int epode_pubsub_add_event_cb(epode_pubsub_t *ps, const char *node, epode_pubsub_event_cb cb,
                              void *user, unsigned *id)
{
    if (!ps || !cb || (node && !*node))
        return EPODE_EINVAL;
    event_cb *c = im_zalloc(ps->mem, sizeof *c);
    if (!c || (node && !(c->node = im_strdup(ps->mem, node)))) {
        im_free(ps->mem, c);
        return EPODE_ENOMEM;
    }
    c->cb = cb;
    c->user = user;
    c->id = ++ps->next_cb_id ? ps->next_cb_id : ++ps->next_cb_id;
    /* appended, so callbacks run in the order they were added */
    event_cb **p = &ps->cbs;
    while (*p)
        p = &(*p)->next;
    *p = c;
    if (id)
        *id = c->id;
    return 0;
}

int epode_pubsub_remove_event_cb(epode_pubsub_t *ps, unsigned id)
{
    if (!ps || !id)
        return EPODE_EINVAL;
    for (event_cb *c = ps->cbs; c; c = c->next)
        if (c->id == id && c->cb) {
            c->cb = NULL;
            ps->swept_needed = 1;
            if (!ps->dispatching)
                sweep(ps);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

static char *notify_feature(const epode_mem_t *mem, const char *node)
{
    size_t n = strlen(node);
    char *f = im_alloc(mem, n + sizeof "+notify");
    if (f) {
        memcpy(f, node, n);
        memcpy(f + n, "+notify", sizeof "+notify");
    }
    return f;
}

int epode_pubsub_add_notify(epode_pubsub_t *ps, const char *node)
{
    if (!ps || !node || !*node)
        return EPODE_EINVAL;
    if (!ps->disco)
        return EPODE_ESTATE;
    char *f = notify_feature(ps->mem, node);
    if (!f)
        return EPODE_ENOMEM;
    for (notify_node *nn = ps->notify; nn; nn = nn->next)
        if (strcmp(nn->feature, f) == 0) {
            nn->count++;
            im_free(ps->mem, f);
            return 0;
        }
    notify_node *nn = im_zalloc(ps->mem, sizeof *nn);
    int rc = nn ? epode_disco_add_feature(ps->disco, NULL, f) : EPODE_ENOMEM;
    if (rc < 0) {
        im_free(ps->mem, nn);
        im_free(ps->mem, f);
        return rc;
    }
    nn->feature = f;
    nn->count = 1;
    nn->next = ps->notify;
    ps->notify = nn;
    return 0;
}

int epode_pubsub_remove_notify(epode_pubsub_t *ps, const char *node)
{
    if (!ps || !node)
        return EPODE_EINVAL;
    char *f = notify_feature(ps->mem, node);
    if (!f)
        return EPODE_ENOMEM;
    int rc = EPODE_ENOTFOUND;
    for (notify_node **p = &ps->notify; *p; p = &(*p)->next)
        if (strcmp((*p)->feature, f) == 0) {
            notify_node *nn = *p;
            rc = 0;
            if (--nn->count == 0) {
                *p = nn->next;
                if (ps->disco)
                    epode_disco_remove_feature(ps->disco, NULL, nn->feature);
                im_free(ps->mem, nn->feature);
                im_free(ps->mem, nn);
            }
            break;
        }
    im_free(ps->mem, f);
    return rc;
}

int epode_pubsub_from_own_account(const epode_pubsub_t *ps, const char *from)
{
    if (!ps || !ps->conn)
        return 0;
    if (!from)
        return 1;
    const char *bound = epode_conn_bound_jid(ps->conn);
    return bound && !strchr(from, '/') && epode_jid_str_equal(from, bound, 1) == 1;
}

unsigned epode_pubsub_rejected(const epode_pubsub_t *ps)
{
    return ps ? ps->rejected : 0;
}

/* ---- life cycle --------------------------------------------------------------------- */

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_pubsub_t *ps = user;
    if (ev == EPODE_CONN_FREED) {
        ps->conn = NULL;
        ps->msg_id = ps->ev_id = 0;
        for (pubsub_req *r = ps->reqs; r; r = r->next)
            r->id = 0;
    }
}

int epode_pubsub_new(epode_conn_t *conn, epode_disco_t *disco, epode_pubsub_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_pubsub_t *ps = im_zalloc(mem, sizeof *ps);
    if (!ps)
        return EPODE_ENOMEM;
    ps->conn = conn;
    ps->disco = disco;
    ps->mem = mem;
    int rc = epode_conn_add_handler(conn, "message", NULL, NULL, on_message, ps, &ps->msg_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, ps, &ps->ev_id);
    if (rc < 0) {
        epode_pubsub_free(ps);
        return rc;
    }
    *out = ps;
    return 0;
}

epode_conn_t *epode_pubsub_conn(const epode_pubsub_t *ps)
{
    return ps ? ps->conn : NULL;
}

void epode_pubsub_free(epode_pubsub_t *ps)
{
    if (!ps)
        return;
    if (ps->conn) {
        if (ps->msg_id)
            epode_conn_remove(ps->conn, ps->msg_id);
        if (ps->ev_id)
            epode_conn_remove(ps->conn, ps->ev_id);
    }
    while (ps->reqs) {
        pubsub_req *r = ps->reqs;
        ps->reqs = r->next;
        if (ps->conn && r->id)
            epode_conn_remove(ps->conn, r->id);
        if (r->cb) {
            epode_pubsub_reply_t rep = {0};
            rep.status = EPODE_ECANCELED;
            rep.node = r->node;
            r->cb(ps, &rep, r->user);
        }
        req_free(ps, r);
    }
    while (ps->notify) {
        notify_node *nn = ps->notify;
        ps->notify = nn->next;
        if (ps->disco)
            epode_disco_remove_feature(ps->disco, NULL, nn->feature);
        im_free(ps->mem, nn->feature);
        im_free(ps->mem, nn);
    }
    while (ps->cbs) {
        event_cb *c = ps->cbs;
        ps->cbs = c->next;
        im_free(ps->mem, c->node);
        im_free(ps->mem, c);
    }
    im_free(ps->mem, ps);
}
