/* tests/unit/test_im_disco.c — the disco helper (XEP-0030, XEP-0128) on a
 * scripted server: what the responder answers, how the client parses
 * answers (garbage included) and reports errors and timeouts. */
#include "test.h"
#include "scripted.h"

#define ME "me@example.com/res"

static int has(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

TEST(disco_answers_info_with_defaults_and_registrations)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_disco_add_identity(d, NULL, "client", "bot", "Robo", NULL), 0);
    CHECK_INT(epode_disco_add_feature(d, NULL, "urn:xmpp:ping"), 0);
    CHECK_INT(epode_disco_add_feature(d, NULL, "urn:xmpp:ping"), 0); /* twice: once */
    scripted_send(&s, "<iq type='get' id='q1' from='peer@example.com/x' to='" ME "'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const char *t = scripted_next_text(&s);
    CHECK(has(t, "type=\"result\""));
    CHECK(has(t, "id=\"q1\""));
    CHECK(has(t, "to=\"peer@example.com/x\""));
    CHECK(has(t, "<identity category=\"client\" type=\"bot\" name=\"Robo\"/>"));
    CHECK(has(t, "var=\"http://jabber.org/protocol/disco#info\""));
    CHECK(has(t, "var=\"http://jabber.org/protocol/disco#items\""));
    CHECK(has(t, "var=\"urn:xmpp:ping\""));
    CHECK(strstr(strstr(t, "urn:xmpp:ping") + 1, "urn:xmpp:ping") == NULL);
    CHECK_INT(epode_disco_remove_feature(d, NULL, "urn:xmpp:ping"), 0);
    CHECK_INT(epode_disco_remove_feature(d, NULL, "urn:xmpp:ping"), EPODE_ENOTFOUND);
    scripted_send(&s, "<iq type='get' id='q2' from='peer@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    t = scripted_next_text(&s);
    CHECK(!has(t, "urn:xmpp:ping"));
    epode_disco_free(d);
    scripted_free(&s);
}

TEST(disco_answers_nodes_items_forms_and_unknown_node)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_disco_add_item(d, NULL, "room@conf.example.com", NULL, "A room"), 0);
    CHECK_INT(epode_disco_add_item(d, "cmds", ME, "cmd1", "Say hi"), 0);
    CHECK_INT(epode_disco_add_item(d, NULL, "not a jid@@", NULL, NULL), EPODE_EJID);
    CHECK_INT(epode_disco_add_feature(d, "cmds", "http://jabber.org/protocol/commands"), 0);
    epode_stanza_t *form;
    CHECK_INT(epode_stanza_from_text(NULL,
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
        "<value>urn:xmpp:dataforms:softwareinfo</value></field><field var='os'><value>Linux</value>"
        "</field></x>", (size_t)-1, &form, NULL), 0);
    CHECK_INT(epode_disco_add_form(d, NULL, form), 0);
    epode_stanza_unref(form);
    CHECK_INT(epode_stanza_from_text(NULL, "<x xmlns='jabber:x:data' type='result'>"
        "<field var='os'><value>Linux</value></field></x>", (size_t)-1, &form, NULL), 0);
    CHECK_INT(epode_disco_add_form(d, NULL, form), EPODE_EINVAL); /* no FORM_TYPE */
    epode_stanza_unref(form);

    scripted_send(&s, "<iq type='get' id='i1' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    const char *t = scripted_next_text(&s);
    CHECK(has(t, "<item jid=\"room@conf.example.com\" name=\"A room\"/>"));
    scripted_send(&s, "<iq type='get' id='i2' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#items' node='cmds'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "node=\"cmds\""));
    CHECK(has(t, "<item jid=\"" ME "\" node=\"cmd1\" name=\"Say hi\"/>"));
    scripted_send(&s, "<iq type='get' id='i3' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info' node='cmds'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "type=\"result\""));
    CHECK(has(t, "http://jabber.org/protocol/commands"));
    CHECK(!has(t, "disco#items\"/>")); /* the root's features are not the node's */
    scripted_send(&s, "<iq type='get' id='i4' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "urn:xmpp:dataforms:softwareinfo"));
    CHECK(has(t, "<value>Linux</value>"));
    scripted_send(&s, "<iq type='get' id='i5' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "type=\"error\""));
    CHECK(has(t, "<item-not-found"));
    scripted_send(&s, "<iq type='get' id='i6' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#items' node='nope'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "<item-not-found"));
    /* an alias answers as its target, naming itself */
    CHECK_INT(epode_disco_set_alias(d, "app#v1", NULL), 0);
    scripted_send(&s, "<iq type='get' id='i7' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info' node='app#v1'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "node=\"app#v1\""));
    CHECK(has(t, "urn:xmpp:dataforms:softwareinfo"));
    /* removing the last thing of a node removes the node */
    CHECK_INT(epode_disco_remove_item(d, "cmds", ME, "cmd1"), 0);
    CHECK_INT(epode_disco_remove_feature(d, "cmds", "http://jabber.org/protocol/commands"), 0);
    scripted_send(&s, "<iq type='get' id='i8' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info' node='cmds'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "<item-not-found"));
    epode_disco_free(d);
    /* freed: nobody answers, so the IQ gets the default service-unavailable */
    scripted_send(&s, "<iq type='get' id='i9' from='p@example.com/x'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    t = scripted_next_text(&s);
    CHECK(has(t, "service-unavailable"));
    scripted_free(&s);
}

typedef struct got {
    int calls, status;
    epode_stanza_cond_t cond;
    char text[4096];
} got;

static void on_info(epode_disco_t *d, const char *jid, const char *node,
                    const epode_disco_info_t *info, int status, epode_stanza_cond_t cond,
                    void *user)
{
    (void)d, (void)jid, (void)node;
    got *g = user;
    g->calls++;
    g->status = status;
    g->cond = cond;
    g->text[0] = '\0';
    if (!info)
        return;
    size_t o = 0;
    for (size_t i = 0; i < info->nidentities; i++)
        o += (size_t)snprintf(g->text + o, sizeof g->text - o, "id:%s/%s/%s/%s;",
                              info->identities[i].category, info->identities[i].type,
                              info->identities[i].name ? info->identities[i].name : "-",
                              info->identities[i].lang ? info->identities[i].lang : "-");
    for (size_t i = 0; i < info->nfeatures; i++)
        o += (size_t)snprintf(g->text + o, sizeof g->text - o, "f:%s;", info->features[i]);
    for (size_t i = 0; i < info->nforms; i++) {
        const epode_disco_form_t *f = &info->forms[i];
        o += (size_t)snprintf(g->text + o, sizeof g->text - o, "form:%s", f->form_type ? f->form_type : "-");
        for (size_t k = 0; k < f->nfields; k++) {
            o += (size_t)snprintf(g->text + o, sizeof g->text - o, ",%s=", f->fields[k].var ? f->fields[k].var : "-");
            for (size_t v = 0; v < f->fields[k].nvalues; v++)
                o += (size_t)snprintf(g->text + o, sizeof g->text - o, "%s|", f->fields[k].values[v]);
        }
        o += (size_t)snprintf(g->text + o, sizeof g->text - o, ";");
    }
}

static void on_items(epode_disco_t *d, const char *jid, const char *node,
                     const epode_disco_items_t *items, int status, epode_stanza_cond_t cond,
                     void *user)
{
    (void)d, (void)jid, (void)node;
    got *g = user;
    g->calls++;
    g->status = status;
    g->cond = cond;
    g->text[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; items && i < items->nitems; i++)
        o += (size_t)snprintf(g->text + o, sizeof g->text - o, "%s|%s|%s;", items->items[i].jid,
                              items->items[i].node ? items->items[i].node : "-",
                              items->items[i].name ? items->items[i].name : "-");
}

static const char *asked_id(scripted *s, const char *expect)
{
    static char id[128];
    scripted_pump(s);
    epode_stanza_t *q = scripted_next(s);
    if (!q)
        return "";
    char *t;
    if (epode_stanza_to_text(q, EPODE_TEXT_IN_STREAM, &t, NULL) != 0)
        return "";
    int ok = strstr(t, expect) != NULL;
    epode_free(t);
    snprintf(id, sizeof id, "%s", ok ? epode_stanza_get_id(q) : "");
    return id;
}

TEST(disco_client_parses_info_and_skips_garbage)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    got g = {0};
    CHECK_INT(epode_disco_get_info(d, "example.com", NULL, 0, on_info, &g, NULL), 0);
    const char *id = asked_id(&s, "<query xmlns=\"http://jabber.org/protocol/disco#info\"/>");
    CHECK(*id);
    char xml[4096];
    snprintf(xml, sizeof xml,
             "<iq type='result' id='%s' from='example.com'>"
             "<query xmlns='http://jabber.org/protocol/disco#info'>"
             "<identity category='server' type='im' name='Srv' xml:lang='en'/>"
             "<identity category='server'/>"          /* no type: skipped */
             "<identity type='im'/>"                  /* no category: skipped */
             "<feature var='urn:xmpp:ping'/><feature/><feature var=''/>"
             "<bogus xmlns='urn:x'><feature var='hidden'/></bogus>"
             "<feature xmlns='urn:other' var='wrong-ns'/>"
             "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
             "<value>urn:x:form</value></field><field var='a'><value>1</value><value>2</value>"
             "</field><field/></x>"
             "</query></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(g.calls, 1);
    CHECK_INT(g.status, 0);
    CHECK_STR(g.text, "id:server/im/Srv/en;f:urn:xmpp:ping;form:urn:x:form,FORM_TYPE=urn:x:form|,a=1|2|,-=;");
    epode_disco_free(d);
    scripted_free(&s);
}

TEST(disco_client_reports_errors_garbage_and_wrong_sender)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    got g = {0};
    char xml[1024];
    /* an error answer: condition reported */
    CHECK_INT(epode_disco_get_info(d, "peer@example.com/r", "n1", 0, on_info, &g, NULL), 0);
    const char *id = asked_id(&s, "node=\"n1\"");
    CHECK(*id);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='peer@example.com/r'><error type='cancel'>"
             "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(g.calls, 1);
    CHECK_INT(g.status, EPODE_EPROTOCOL);
    CHECK_INT(g.cond, EPODE_COND_ITEM_NOT_FOUND);
    /* a result with no query at all */
    CHECK_INT(epode_disco_get_info(d, "peer@example.com/r", NULL, 0, on_info, &g, NULL), 0);
    id = asked_id(&s, "disco#info");
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.com/r'>"
             "<query xmlns='urn:wrong'/></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(g.calls, 2);
    CHECK_INT(g.status, EPODE_EPROTOCOL);
    CHECK_INT(g.cond, EPODE_COND_NONE);
    /* an answer from someone else is not taken; the real one is */
    CHECK_INT(epode_disco_get_items(d, "peer@example.com/r", NULL, 0, on_items, &g, NULL), 0);
    id = asked_id(&s, "disco#items");
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='evil@example.com/r'>"
             "<query xmlns='http://jabber.org/protocol/disco#items'><item jid='evil.example.com'/>"
             "</query></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(g.calls, 2);
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.com/r'>"
             "<query xmlns='http://jabber.org/protocol/disco#items'>"
             "<item jid='a.example.com' node='n' name='A'/><item/><item jid='bad@@jid'/>"
             "<item jid='b@example.com'/></query></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(g.calls, 3);
    CHECK_INT(g.status, 0);
    CHECK_STR(g.text, "a.example.com|n|A;b@example.com|-|-;");
    /* bad arguments never call back */
    CHECK_INT(epode_disco_get_info(d, "@@", NULL, 0, on_info, &g, NULL), EPODE_EJID);
    CHECK_INT(epode_disco_get_info(d, NULL, NULL, 0, NULL, &g, NULL), EPODE_EINVAL);
    /* a canceled query is never reported */
    unsigned qid;
    CHECK_INT(epode_disco_get_info(d, "peer@example.com/r", NULL, 0, on_info, &g, &qid), 0);
    id = asked_id(&s, "disco#info");
    CHECK_INT(epode_disco_cancel(d, qid), 0);
    CHECK_INT(epode_disco_cancel(d, qid), EPODE_ENOTFOUND);
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.com/r'>"
             "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(g.calls, 3);
    /* pending when freed: no callback, no leak */
    CHECK_INT(epode_disco_get_info(d, "peer@example.com/r", NULL, 0, on_info, &g, NULL), 0);
    epode_disco_free(d);
    scripted_free(&s);
    CHECK_INT(g.calls, 3);
}

TEST(disco_client_canceled_when_connection_ends)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    got g = {0};
    CHECK_INT(epode_disco_get_info(d, "example.com", NULL, 0, on_info, &g, NULL), 0);
    scripted_send(&s, "</stream:stream>");
    scripted_pump(&s);
    CHECK_INT(g.calls, 1);
    CHECK_INT(g.status, EPODE_ECANCELED);
    CHECK_INT(epode_disco_get_info(d, "example.com", NULL, 0, on_info, &g, NULL), EPODE_ESTATE);
    epode_disco_free(d);
    scripted_free(&s);
}

TEST(disco_info_parse_standalone)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_from_text(NULL, "<iq xmlns='jabber:client' type='result'><query "
              "xmlns='http://jabber.org/protocol/disco#info' node='n'><feature var='f1'/>"
              "</query></iq>", (size_t)-1, &st, NULL), 0);
    epode_disco_info_t *info;
    CHECK_INT(epode_disco_info_parse(st, &info), 0);
    epode_stanza_unref(st); /* the info keeps the tree */
    CHECK_STR(info->node, "n");
    CHECK_INT(info->nfeatures, 1);
    CHECK_INT(epode_disco_info_has_feature(info, "f1"), 1);
    CHECK_INT(epode_disco_info_has_feature(info, "f2"), 0);
    epode_disco_info_free(info);
    CHECK_INT(epode_stanza_from_text(NULL, "<iq xmlns='jabber:client'/>", (size_t)-1, &st, NULL), 0);
    CHECK_INT(epode_disco_info_parse(st, &info), EPODE_ENOTFOUND);
    epode_disco_items_t *items;
    CHECK_INT(epode_disco_items_parse(st, &items), EPODE_ENOTFOUND);
    epode_stanza_unref(st);
}

/* ---- allocation: through the context's allocator, every failure clean ------------------- */

/* What a workload's calls returned: in a sweep only 0 and EPODE_ENOMEM are clean. */
typedef struct sweep {
    int bad, nomem;
} sweep;

static int swept(sweep *w, int rc, const char *what, int line)
{
    if (rc == EPODE_ENOMEM)
        w->nomem = 1;
    else if (rc != 0) {
        printf("# %s:%d: %s == %s\n", __FILE__, line, what, epode_err_name(rc));
        w->bad = 1;
    }
    return rc;
}
#define SWEPT(w, expr) swept((w), (expr), #expr, __LINE__)

typedef struct disco_work {
    sweep w;
    epode_disco_t *d;
    long helper_blocks; /* live blocks the helper's creation added */
    int info_answered, items_answered;
    got g;
} disco_work;

/* Every stanza the client sent since the last call, as text, joined. */
static void drain(scripted *s, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    epode_stanza_t *st;
    while ((st = scripted_next(s))) {
        char *t;
        if (epode_stanza_to_text(st, EPODE_TEXT_IN_STREAM, &t, NULL) != 0)
            continue;
        o += (size_t)snprintf(buf + o, size - o, "%s", t);
        if (o >= size)
            o = size - 1;
        epode_free(t);
    }
}

/* The helper; an identity, features, a form and an item on node "n1";
 * disco#info and disco#items on it answered; a peer's info asked and its
 * answer parsed. */
static void disco_workload(scripted *s, scripted_mem *m, disco_work *dw)
{
    static char buf[16384];
    long before = m->live;
    if (SWEPT(&dw->w, epode_disco_new(s->conn, &dw->d)) < 0) {
        dw->d = NULL;
        return;
    }
    dw->helper_blocks = m->live - before;
    epode_disco_t *d = dw->d;
    SWEPT(&dw->w, epode_disco_add_identity(d, "n1", "automation", "command-list", "Cmds", "en"));
    SWEPT(&dw->w, epode_disco_add_feature(d, "n1", "urn:x:one"));
    SWEPT(&dw->w, epode_disco_add_feature(d, "n1", "urn:x:two"));
    epode_stanza_t *form;
    if (epode_stanza_from_text(NULL, "<x xmlns='jabber:x:data' type='result'>"
            "<field var='FORM_TYPE' type='hidden'><value>urn:x:form</value></field>"
            "<field var='os'><value>Linux</value></field></x>", (size_t)-1, &form, NULL) == 0) {
        SWEPT(&dw->w, epode_disco_add_form(d, "n1", form));
        epode_stanza_unref(form);
    }
    SWEPT(&dw->w, epode_disco_add_item(d, "n1", "peer@example.com/x", "sub", "Sub"));
    SWEPT(&dw->w, epode_disco_set_alias(d, "n1-alias", "n1"));

    scripted_send(s, "<iq type='get' id='w1' from='p@example.com/x'>"
                     "<query xmlns='http://jabber.org/protocol/disco#info' node='n1'/></iq>");
    drain(s, buf, sizeof buf);
    dw->info_answered = has(buf, "id=\"w1\"") && has(buf, "type=\"result\"") &&
                        has(buf, "category=\"automation\"") && has(buf, "var=\"urn:x:one\"") &&
                        has(buf, "var=\"urn:x:two\"") && has(buf, "<value>urn:x:form</value>");
    scripted_send(s, "<iq type='get' id='w2' from='p@example.com/x'>"
                     "<query xmlns='http://jabber.org/protocol/disco#items' node='n1-alias'/></iq>");
    drain(s, buf, sizeof buf);
    dw->items_answered = has(buf, "id=\"w2\"") &&
                         has(buf, "<item jid=\"peer@example.com/x\" node=\"sub\" name=\"Sub\"/>");
    if (!epode_conn_is_ready(s->conn)) /* a failed allocation may end the stream */
        return;
    if (SWEPT(&dw->w, epode_disco_get_info(d, "peer@example.com/r", "n2", 5000, on_info, &dw->g,
                                           NULL)) < 0)
        return;
    scripted_pump(s);
    epode_stanza_t *iq;
    while ((iq = scripted_next(s))) {
        if (!epode_stanza_find_child(iq, "query", "http://jabber.org/protocol/disco#info"))
            continue;
        char xml[1024];
        snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.com/r'>"
                 "<query xmlns='http://jabber.org/protocol/disco#info' node='n2'>"
                 "<identity category='client' type='pc' name='Peer'/><feature var='urn:p:1'/>"
                 "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
                 "<value>urn:p:form</value></field><field var='a'><value>1</value></field></x>"
                 "</query></iq>", epode_stanza_get_id(iq));
        scripted_send(s, xml);
    }
}

TEST(disco_allocates_through_the_context_allocator)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
    disco_work dw = {0};
    disco_workload(&s, &m, &dw);
    CHECK(!dw.w.bad && !dw.w.nomem);
    CHECK(dw.d != NULL);
    CHECK(dw.helper_blocks >= 1);
    CHECK(dw.info_answered);
    CHECK(dw.items_answered);
    CHECK_INT(dw.g.calls, 1);
    CHECK_INT(dw.g.status, 0);
    CHECK_STR(dw.g.text, "id:client/pc/Peer/-;f:urn:p:1;form:urn:p:form,FORM_TYPE=urn:p:form|,a=1|;");
    /* our own info is built with the same allocator */
    long live = m.live;
    epode_stanza_t *q;
    CHECK_INT(epode_disco_build_info(dw.d, "n1", &q), 0);
    CHECK(m.live > live);
    epode_stanza_unref(q);
    CHECK_INT(m.live, live);
    epode_disco_free(dw.d);
    CHECK(m.live < live); /* the helper went back through the same allocator */
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

TEST(disco_every_failed_allocation_is_clean)
{
    int clean = 0;
    long n;
    for (n = 0; n < 20000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
        m.fail_at = m.calls + n;
        disco_work dw = {0};
        disco_workload(&s, &m, &dw);
        clean = m.calls <= m.fail_at; /* nothing failed this time */
        epode_disco_free(dw.d);
        scripted_free(&s);
        if (dw.w.bad)
            printf("# with allocation %ld failing\n", n);
        CHECK(!dw.w.bad);
        CHECK_INT(m.live, 0);
        if (clean) {
            CHECK(!dw.w.nomem);
            CHECK(dw.info_answered);
            CHECK(dw.items_answered);
            CHECK_INT(dw.g.calls, 1);
            CHECK_INT(dw.g.status, 0);
        }
    }
    CHECK(clean);
    printf("# disco: %ld allocation points swept\n", n - 1);
}

TEST_MAIN
