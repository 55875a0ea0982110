/* tests/unit/test_im_register.c — XEP-0004 data forms (parse, build,
 * submit, validate, hostile forms) and XEP-0077 registration against a
 * scripted server: the registration stream mode of the connection, the
 * account flow with legacy fields and with data forms (CAPTCHA handed to
 * the application), the server's refusals and garbage, password change
 * and account removal. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "test.h"
#include "scripted.h"

#define NS_DATA "jabber:x:data"

static epode_stanza_t *from_text(const char *xml)
{
    epode_stanza_t *st = NULL;
    if (epode_stanza_from_text(NULL, xml, (size_t)-1, &st, NULL) < 0)
        return NULL;
    return st;
}

static const char *const full_form =
    "<x xmlns='jabber:x:data' type='form'>"
    "<title>Sign up</title><instructions>Fill in</instructions><instructions>all of it</instructions>"
    "<field type='hidden' var='FORM_TYPE'><value>jabber:iq:register</value></field>"
    "<field type='fixed'><value>Section</value></field>"
    "<field type='text-single' var='username' label='User'><required/><desc>your name</desc></field>"
    "<field type='text-private' var='password'><required/></field>"
    "<field type='boolean' var='tos'><value>false</value></field>"
    "<field type='jid-single' var='buddy'/>"
    "<field type='jid-multi' var='friends'><value>a@b.c</value><value>d@e.f/g</value></field>"
    "<field type='list-single' var='color'><option label='Red'><value>red</value></option>"
    "<option><value>blue</value></option><value>blue</value></field>"
    "<field type='list-multi' var='langs'><option><value>en</value></option>"
    "<option><value>fr</value></option></field>"
    "<field type='text-multi' var='bio'><value>line 1</value><value>line 2</value></field>"
    "<field var='notype'><value>x</value></field>"
    "<field type='text-single' var='ocr' label='Enter the text'><media xmlns='urn:xmpp:media-element' "
    "height='80' width='290'><uri type='image/png'>cid:sha1+abc@bob.xmpp.org</uri></media></field>"
    "</x>";

TEST(forms_parse_reads_every_part)
{
    epode_stanza_t *x = from_text(full_form);
    CHECK(x != NULL);
    epode_form_t *f;
    CHECK_INT(epode_form_parse(NULL, x, &f), 0);
    CHECK_INT(epode_form_get_type(f), EPODE_FORM_FORM);
    CHECK_STR(epode_form_get_title(f), "Sign up");
    CHECK_INT(epode_form_instructions_count(f), 2);
    CHECK_STR(epode_form_instructions_at(f, 1), "all of it");
    CHECK_STR(epode_form_get_form_type(f), "jabber:iq:register");
    CHECK_INT(epode_form_field_count(f), 12);
    epode_form_field_t *fx = epode_form_field_at(f, 1);
    CHECK_INT(epode_form_field_type(fx), EPODE_FIELD_FIXED);
    CHECK(epode_form_field_var(fx) == NULL);
    epode_form_field_t *u = epode_form_get_field(f, "username");
    CHECK(u != NULL);
    CHECK_INT(epode_form_field_required(u), 1);
    CHECK_STR(epode_form_field_label(u), "User");
    CHECK_STR(epode_form_field_desc(u), "your name");
    CHECK_INT(epode_form_field_value_count(u), 0);
    int b = -1;
    CHECK_INT(epode_form_field_bool(epode_form_get_field(f, "tos"), &b), 0);
    CHECK_INT(b, 0);
    epode_form_field_t *fr = epode_form_get_field(f, "friends");
    CHECK_INT(epode_form_field_value_count(fr), 2);
    CHECK_STR(epode_form_field_value_at(fr, 1), "d@e.f/g");
    epode_form_field_t *c = epode_form_get_field(f, "color");
    CHECK_INT(epode_form_field_option_count(c), 2);
    const char *label = "x";
    CHECK_STR(epode_form_field_option_at(c, 0, &label), "red");
    CHECK_STR(label, "Red");
    CHECK_STR(epode_form_field_option_at(c, 1, &label), "blue");
    CHECK(label == NULL);
    CHECK_INT(epode_form_field_type(epode_form_get_field(f, "notype")), EPODE_FIELD_TEXT_SINGLE);
    const epode_stanza_t *media = epode_form_field_media(epode_form_get_field(f, "ocr"));
    CHECK(media != NULL);
    CHECK_STR(epode_stanza_get_attr(media, "width"), "290");
    CHECK_STR(epode_stanza_child_text(media, "uri", NULL), "cid:sha1+abc@bob.xmpp.org");
    CHECK_INT(epode_form_validate(f, NULL, NULL), EPODE_EINVAL); /* username is required */
    CHECK_INT(epode_form_set_value(f, "username", "juliet"), 0);
    CHECK_INT(epode_form_set_value(f, "password", "s3cret"), 0);
    const char *bad = "?", *why = NULL;
    CHECK_INT(epode_form_validate(f, &bad, &why), 0);
    /* written and read again: the same element */
    epode_stanza_t *out, *orig = x;
    CHECK_INT(epode_form_to_stanza(f, &out), 0);
    epode_form_t *again;
    CHECK_INT(epode_form_parse(NULL, out, &again), 0);
    epode_stanza_t *out2;
    CHECK_INT(epode_form_to_stanza(again, &out2), 0);
    CHECK(epode_stanza_equal(out, out2));
    CHECK_STR(epode_form_get_value(again, "username"), "juliet");
    CHECK(epode_form_field_media(epode_form_get_field(again, "ocr")) != NULL);
    epode_stanza_unref(out);
    epode_stanza_unref(out2);
    epode_form_free(again);
    epode_form_free(f);
    epode_stanza_unref(orig);
}

TEST(forms_submit_keeps_only_values)
{
    epode_stanza_t *x = from_text(full_form);
    epode_form_t *f, *s;
    CHECK_INT(epode_form_parse(NULL, x, &f), 0);
    CHECK_INT(epode_form_set_value(f, "username", "romeo"), 0);
    CHECK_INT(epode_form_submit(f, &s), 0);
    CHECK_INT(epode_form_get_type(s), EPODE_FORM_SUBMIT);
    CHECK_INT(epode_form_field_count(s), 11); /* the fixed field is not submitted */
    epode_stanza_t *el;
    CHECK_INT(epode_form_to_stanza(s, &el), 0);
    char *t;
    CHECK_INT(epode_stanza_to_text(el, 0, &t, NULL), 0);
    CHECK(strstr(t, "type=\"submit\"") != NULL);
    CHECK(strstr(t, "<field var=\"FORM_TYPE\" type=\"hidden\"><value>jabber:iq:register</value>"));
    CHECK(strstr(t, "<field var=\"username\"><value>romeo</value></field>") != NULL);
    CHECK(strstr(t, "label") == NULL);
    CHECK(strstr(t, "option") == NULL);
    CHECK(strstr(t, "required") == NULL);
    CHECK(strstr(t, "Section") == NULL);
    epode_free(t);
    epode_stanza_unref(el);
    epode_form_free(s);
    epode_form_free(f);
    epode_stanza_unref(x);
}

TEST(forms_built_by_hand)
{
    epode_form_t *f;
    CHECK_INT(epode_form_new(NULL, EPODE_FORM_FORM, &f), 0);
    epode_form_field_t *a;
    CHECK_INT(epode_form_add_field(f, "a", EPODE_FIELD_LIST_SINGLE, "A", &a), 0);
    CHECK_INT(epode_form_field_add_option(a, NULL, "1"), 0);
    CHECK_INT(epode_form_add_field(f, "a", EPODE_FIELD_TEXT_SINGLE, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_form_add_field(f, NULL, EPODE_FIELD_TEXT_SINGLE, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_form_add_field(f, "u", EPODE_FIELD_UNKNOWN, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_form_add_field(f, NULL, EPODE_FIELD_FIXED, NULL, NULL), 0);
    CHECK_INT(epode_form_set_form_type(f, "urn:example"), 0);
    CHECK_STR(epode_form_field_var(epode_form_field_at(f, 0)), "FORM_TYPE");
    CHECK_STR(epode_form_get_form_type(f), "urn:example");
    CHECK_INT(epode_form_set_value(f, "missing", "x"), EPODE_ENOTFOUND); /* a form asks */
    CHECK_INT(epode_form_field_set_value(a, "bad\x01"), EPODE_EINVAL);
    CHECK_INT(epode_form_field_set_value(a, "\xff"), EPODE_EINVAL);
    CHECK_INT(epode_form_set_title(f, "T"), 0);
    CHECK_INT(epode_form_remove_field(f, "a"), 0);
    CHECK_INT(epode_form_remove_field(f, "a"), EPODE_ENOTFOUND);
    CHECK_INT(epode_form_field_count(f), 2);
    epode_form_free(f);
    epode_form_t *s;
    CHECK_INT(epode_form_new(NULL, EPODE_FORM_SUBMIT, &s), 0);
    CHECK_INT(epode_form_set_value(s, "added", "v"), 0); /* a submission grows */
    CHECK_STR(epode_form_get_value(s, "added"), "v");
    epode_form_free(s);
    CHECK_INT(epode_form_new(NULL, 9, &s), EPODE_EINVAL);
    epode_form_free(NULL);
}

static int validate_one(const char *type, const char *values, const char *options, int required)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<x xmlns='jabber:x:data' type='submit'><field var='f' type='%s'>%s%s%s"
             "</field></x>", type, required ? "<required/>" : "", options, values);
    epode_stanza_t *x = from_text(xml);
    epode_form_t *f;
    if (!x || epode_form_parse(NULL, x, &f) < 0) {
        epode_stanza_unref(x);
        return -100;
    }
    const char *bad = NULL, *why = NULL;
    int rc = epode_form_validate(f, &bad, &why);
    if (rc < 0 && (!bad || strcmp(bad, "f") != 0 || !why))
        rc = -200;
    epode_form_free(f);
    epode_stanza_unref(x);
    return rc;
}

TEST(forms_validate_checks_each_type)
{
    CHECK_INT(validate_one("boolean", "<value>1</value>", "", 0), 0);
    CHECK_INT(validate_one("boolean", "<value>true</value>", "", 0), 0);
    CHECK_INT(validate_one("boolean", "<value>yes</value>", "", 0), EPODE_EINVAL);
    CHECK_INT(validate_one("boolean", "<value>1</value><value>0</value>", "", 0), EPODE_EINVAL);
    CHECK_INT(validate_one("jid-single", "<value>juliet@capulet.lit</value>", "", 0), 0);
    CHECK_INT(validate_one("jid-single", "<value>@bad@</value>", "", 0), EPODE_EINVAL);
    CHECK_INT(validate_one("jid-single", "<value>a@b</value><value>c@d</value>", "", 0), EPODE_EINVAL);
    CHECK_INT(validate_one("jid-multi", "<value>a@b</value><value>c@d/e</value>", "", 0), 0);
    CHECK_INT(validate_one("jid-multi", "<value>a@b</value><value>@</value>", "", 0), EPODE_EINVAL);
    const char *opts = "<option><value>x</value></option><option><value>y</value></option>";
    CHECK_INT(validate_one("list-single", "<value>x</value>", opts, 0), 0);
    CHECK_INT(validate_one("list-single", "<value>z</value>", opts, 0), EPODE_EINVAL);
    CHECK_INT(validate_one("list-multi", "<value>x</value><value>y</value>", opts, 0), 0);
    CHECK_INT(validate_one("list-multi", "<value>x</value><value>q</value>", opts, 0), EPODE_EINVAL);
    CHECK_INT(validate_one("text-single", "<value>a\nb</value>", "", 0), EPODE_EINVAL);
    CHECK_INT(validate_one("text-private", "<value>p</value>", "", 1), 0);
    CHECK_INT(validate_one("text-private", "", "", 1), EPODE_EINVAL);
    CHECK_INT(validate_one("text-single", "<value></value>", "", 1), EPODE_EINVAL);
    CHECK_INT(validate_one("text-multi", "<value>a</value><value>b</value>", "", 1), 0);
    CHECK_INT(validate_one("hidden", "<value>h</value>", "", 0), 0);
    CHECK_INT(validate_one("fixed", "", "", 1), 0);
}

TEST(forms_hostile_input)
{
    /* 10,000 fields: refused at the limit, nothing kept */
    size_t cap = 10000 * 40 + 200;
    char *xml = malloc(cap);
    CHECK(xml != NULL);
    size_t n = (size_t)snprintf(xml, cap, "<x xmlns='jabber:x:data' type='form'>");
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(xml + n, cap - n, "<field var='f%d'/>", i);
    snprintf(xml + n, cap - n, "</x>");
    epode_stanza_t *x = NULL;
    CHECK_INT(epode_stanza_from_text(NULL, xml, (size_t)-1, &x, NULL), 0);
    free(xml);
    epode_form_t *f = (epode_form_t *)1;
    CHECK_INT(epode_form_parse(NULL, x, &f), EPODE_ELIMIT);
    CHECK(f == (epode_form_t *)1);
    epode_stanza_unref(x);

    struct { const char *xml; int rc; } cases[] = {
        {"<x xmlns='jabber:x:data' type='form'><field type='text-single'/></x>", EPODE_EPROTOCOL},
        {"<x xmlns='jabber:x:data' type='form'><field var='a'/><field var='a'/></x>", EPODE_EPROTOCOL},
        {"<x xmlns='jabber:x:data' type='bogus'/>", EPODE_EPROTOCOL},
        {"<x xmlns='jabber:x:data'/>", EPODE_EPROTOCOL},
        {"<x xmlns='jabber:x:other' type='form'/>", EPODE_EINVAL},
        {"<x xmlns='jabber:x:data' type='result'><reported><field/></reported></x>", EPODE_EPROTOCOL},
        {"<x xmlns='jabber:x:data' type='result'><item><field var='a'/><field var='a'/></item></x>",
         EPODE_EPROTOCOL},
        {"<x xmlns='jabber:x:data' type='form'><field type='fixed'/><field var='a' type='boolean'>"
         "<option/><value>nonsense</value><unknown/></field></x>", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        epode_stanza_t *el = from_text(cases[i].xml);
        CHECK(el != NULL);
        epode_form_t *ff = NULL;
        int rc = epode_form_parse(NULL, el, &ff);
        if (rc != cases[i].rc)
            printf("# case %zu\n", i);
        CHECK_INT(rc, cases[i].rc);
        epode_form_free(ff);
        epode_stanza_unref(el);
    }
    /* an unknown type is kept, with its name, and written back */
    epode_stanza_t *el = from_text("<x xmlns='jabber:x:data' type='form'><field var='w' "
                                   "type='x-weird'><value>1</value></field></x>");
    CHECK(el != NULL);
    CHECK_INT(epode_form_parse(NULL, el, &f), 0);
    epode_form_field_t *w = epode_form_get_field(f, "w");
    CHECK_INT(epode_form_field_type(w), EPODE_FIELD_UNKNOWN);
    CHECK_STR(epode_form_field_type_name(w), "x-weird");
    CHECK_INT(epode_form_validate(f, NULL, NULL), 0);
    epode_stanza_t *back;
    CHECK_INT(epode_form_to_stanza(f, &back), 0);
    CHECK(epode_stanza_equal(el, back));
    epode_stanza_unref(back);
    epode_form_free(f);
    epode_stanza_unref(el);
}

TEST(forms_items_and_reported)
{
    epode_stanza_t *x = from_text(
        "<x xmlns='jabber:x:data' type='result'><reported><field var='jid' type='jid-single'/>"
        "<field var='name'/></reported><item><field var='jid'><value>a@b</value></field>"
        "<field var='name'><value>A</value></field></item><item><field var='jid'><value>c@d"
        "</value></field></item></x>");
    CHECK(x != NULL);
    epode_form_t *f;
    CHECK_INT(epode_form_parse(NULL, x, &f), 0);
    CHECK_INT(epode_form_reported_count(f), 2);
    CHECK_INT(epode_form_field_type(epode_form_reported_at(f, 0)), EPODE_FIELD_JID_SINGLE);
    CHECK_INT(epode_form_item_count(f), 2);
    CHECK_INT(epode_form_item_field_count(f, 0), 2);
    CHECK_STR(epode_form_field_value(epode_form_item_get_field(f, 1, "jid")), "c@d");
    CHECK(epode_form_item_field_at(f, 2, 0) == NULL);
    epode_stanza_t *back;
    CHECK_INT(epode_form_to_stanza(f, &back), 0);
    CHECK(epode_stanza_equal(x, back));
    epode_stanza_unref(back);
    epode_form_free(f);
    epode_stanza_unref(x);
}

TEST(forms_find_by_form_type)
{
    epode_stanza_t *q = from_text("<query xmlns='q'><x xmlns='jabber:x:data' type='result'><field "
                                  "var='FORM_TYPE' type='hidden'><value>a</value></field></x>"
                                  "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' "
                                  "type='hidden'><value>b</value></field></x></query>");
    CHECK(q != NULL);
    epode_stanza_t *b = epode_form_find(q, "b");
    CHECK(b != NULL);
    CHECK(b == epode_stanza_next(epode_stanza_first_child(q)));
    CHECK(epode_form_find(q, NULL) == epode_stanza_first_child(q));
    CHECK(epode_form_find(q, "c") == NULL);
    epode_stanza_unref(q);
}

TEST(forms_out_of_memory_everywhere)
{
    epode_stanza_t *x = from_text(full_form);
    CHECK(x != NULL);
    for (long fail = 0;; fail++) {
        scripted_mem m;
        scripted_mem_init(&m);
        m.fail_at = fail;
        epode_form_t *f = NULL, *s = NULL;
        epode_stanza_t *out = NULL;
        int rc = epode_form_parse(&m.mem, x, &f);
        if (rc == 0)
            rc = epode_form_submit(f, &s);
        if (rc == 0)
            rc = epode_form_to_stanza(s, &out);
        epode_stanza_unref(out);
        epode_form_free(s);
        epode_form_free(f);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        CHECK_INT(m.live, 0);
        if (rc == 0)
            break;
    }
    epode_stanza_unref(x);
}

/* ---- registration -------------------------------------------------------------- */

/* A connection in registration mode over a scripted server, READY after
 * the pre-auth features (no TLS: cleartext explicitly allowed). */
static int reg_login_features(scripted *s, int allow_cleartext, int *ready, const char *features);
/* When set, reg_login_mem() logs the connection's XML through it. */
static epode_log_cb reg_log;
static int reg_login_mem(scripted *s, const epode_mem_t *mem, int allow_cleartext, int *ready,
                         const char *features);

static int reg_login(scripted *s, int allow_cleartext, int *ready)
{
    return reg_login_features(s, allow_cleartext, ready,
                              "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
                              "PLAIN</mechanism></mechanisms><register xmlns='http://jabber.org/"
                              "features/iq-register'/>");
}

static int reg_login_features(scripted *s, int allow_cleartext, int *ready, const char *features)
{
    return reg_login_mem(s, NULL, allow_cleartext, ready, features);
}

static int reg_login_mem(scripted *s, const epode_mem_t *mem, int allow_cleartext, int *ready,
                         const char *features)
{
    memset(s, 0, sizeof *s);
    epode__transport *client = NULL;
    *ready = 0;
    if (epode_global_init() < 0 || epode_ctx_new(mem, &s->ctx) < 0 ||
        epode_conn_new(s->ctx, &s->conn) < 0 ||
        epode_conn_set_jid(s->conn, "newbie@example.com") < 0 ||
        epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_register(s->conn, 1, allow_cleartext) < 0 ||
        epode_conn_add_event_cb(s->conn, scripted__on_event, s, NULL) < 0 ||
        epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode_parser_new(NULL, scripted__on_client, s, &s->parser) < 0)
        return -1;
    if (reg_log)
        epode_ctx_set_log(s->ctx, EPODE_LOG_XML, reg_log, NULL);
    if (epode__conn_start_over(s->conn, client) < 0) {
        epode__transport_free(client);
        return -1;
    }
    scripted_pump(s);
    char xml[1024];
    snprintf(xml, sizeof xml, SCRIPTED_HDR "<stream:features>%s</stream:features>", features);
    scripted_send(s, xml);
    *ready = epode_conn_is_ready(s->conn);
    return 0;
}

static epode_stanza_t *next_iq(scripted *s)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0)
            return st;
    return NULL;
}

typedef struct outcome {
    int calls, status;
    epode_stanza_cond_t cond;
    char text[256];
    int fills;
    const char *fill_value;
    int fill_rc;
    int media_seen;
} outcome;

static void on_done(epode_register_t *reg, int status, epode_stanza_cond_t cond, const char *text,
                    void *user)
{
    (void)reg;
    outcome *o = user;
    o->calls++;
    o->status = status;
    o->cond = cond;
    snprintf(o->text, sizeof o->text, "%s", text ? text : "");
}

static int on_fill(epode_register_t *reg, epode_form_t *form, void *user)
{
    outcome *o = user;
    o->fills++;
    (void)reg;
    for (size_t i = 0; i < epode_form_field_count(form); i++) {
        epode_form_field_t *f = epode_form_field_at(form, i);
        if (epode_form_field_media(f))
            o->media_seen = 1;
        if (epode_form_field_required(f) && !epode_form_field_value(f))
            epode_form_field_set_value(f, o->fill_value);
    }
    return o->fill_rc;
}

/* The server writes XML of any size (the pipe takes it in pieces). */
static void send_all(scripted *s, const char *xml)
{
    size_t len = strlen(xml), off = 0;
    for (int i = 0; off < len && i < 100000; i++) {
        long n = epode__transport_write(s->server, xml + off, len - off);
        if (n > 0)
            off += (size_t)n;
        scripted_pump(s);
    }
}

/* Answers the IQ `req` with `body` inserted in an <iq type=… id=…>. */
static void answer(scripted *s, epode_stanza_t *req, const char *type, const char *body)
{
    size_t cap = strlen(body) + 200;
    char *xml = malloc(cap);
    if (!xml)
        return;
    snprintf(xml, cap, "<iq type='%s' id='%s'>%s</iq>", type, req ? epode_stanza_get_id(req) : "?",
             body);
    send_all(s, xml);
    free(xml);
}

TEST(register_mode_stops_before_sasl)
{
    scripted s;
    int ready = 0;
    CHECK_INT(reg_login(&s, 1, &ready), 0);
    CHECK_INT(ready, 1);
    CHECK(epode_conn_bound_jid(s.conn) == NULL);
    const epode_stanza_t *feat = epode_conn_stream_features(s.conn);
    CHECK(feat && epode_stanza_find_child(feat, "register", EPODE_NS_REGISTER_FEATURE));
    CHECK(scripted_next(&s) == NULL); /* no <auth/> */
    scripted_free(&s);
}

TEST(register_refused_before_tls)
{
    scripted s;
    int ready = 1;
    CHECK_INT(reg_login(&s, 0, &ready), 0);
    CHECK_INT(ready, 0);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_TLS);
    CHECK_INT(epode_conn_error(s.conn), EPODE_ENOTLS);
    CHECK(strstr(epode_conn_error_text(s.conn), "registration") != NULL);
    epode_stanza_t *st;
    while ((st = scripted_next(&s)))
        CHECK(strcmp(epode_stanza_get_name(st), "iq") != 0 &&
              strcmp(epode_stanza_get_name(st), "auth") != 0);
    /* and the helper refuses to start on it */
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    CHECK_INT(epode_register_account(reg, "newbie", "pw", NULL, on_done, &o), EPODE_ESTATE);
    epode_register_free(reg);
    scripted_free(&s);
}

TEST(register_not_offered_sends_nothing)
{
    scripted s;
    int ready = 0;
    CHECK_INT(reg_login_features(&s, 1, &ready, "<mechanisms xmlns='urn:ietf:params:xml:ns:"
                                 "xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"), 0);
    CHECK_INT(ready, 1);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    CHECK_INT(epode_register_account(reg, "newbie", "pw", NULL, on_done, &o), 0);
    CHECK_INT(o.calls, 0); /* never from inside the call */
    CHECK_INT(epode_register_fetch(reg, 0, on_done, &o), EPODE_ESTATE);
    for (int i = 0; i < 50 && !o.calls; i++) {
        epode_ctx_run_once(s.ctx, 5);
        scripted_pump(&s);
    }
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.cond, EPODE_COND_SERVICE_UNAVAILABLE);
    CHECK(strstr(o.text, "does not offer") != NULL);
    CHECK(next_iq(&s) == NULL);
    /* freed while the outcome waits: nothing called */
    memset(&o, 0, sizeof o);
    CHECK_INT(epode_register_fetch(reg, 0, on_done, &o), 0);
    epode_register_free(reg);
    for (int i = 0; i < 5; i++)
        epode_ctx_run_once(s.ctx, 5);
    CHECK_INT(o.calls, 0);
    scripted_free(&s);
}

TEST(register_account_with_legacy_fields)
{
    scripted s;
    int ready = 0;
    CHECK_INT(reg_login(&s, 1, &ready), 0);
    CHECK_INT(ready, 1);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {.fill_value = "n@example.org"};
    CHECK_INT(epode_register_account(reg, "newbie", "pässword", on_fill, on_done, &o), 0);
    CHECK_INT(epode_register_account(reg, "x", "y", NULL, on_done, &o), EPODE_ESTATE);
    scripted_pump(&s);
    epode_stanza_t *get = next_iq(&s);
    CHECK(get != NULL);
    CHECK_STR(epode_stanza_get_type(get), "get");
    CHECK(epode_stanza_find_child(get, "query", EPODE_NS_REGISTER) != NULL);
    answer(&s, get, "result", "<query xmlns='jabber:iq:register'><instructions>Choose</instructions>"
                              "<username/><password/><email/><key>k1</key><unknown/></query>");
    CHECK_INT(o.fills, 1); /* email asked of the application */
    CHECK_STR(epode_register_instructions(reg), "Choose");
    CHECK_INT(epode_register_is_data_form(reg), 0);
    epode_stanza_t *set = next_iq(&s);
    CHECK(set != NULL);
    CHECK_STR(epode_stanza_get_type(set), "set");
    epode_stanza_t *q = epode_stanza_find_child(set, "query", EPODE_NS_REGISTER);
    CHECK(q != NULL);
    CHECK_STR(epode_stanza_child_text(q, "username", EPODE_NS_REGISTER), "newbie");
    CHECK_STR(epode_stanza_child_text(q, "password", EPODE_NS_REGISTER), "pässword");
    CHECK_STR(epode_stanza_child_text(q, "email", EPODE_NS_REGISTER), "n@example.org");
    CHECK_STR(epode_stanza_child_text(q, "key", EPODE_NS_REGISTER), "k1");
    CHECK(epode_stanza_find_child(q, "unknown", NULL) == NULL);
    CHECK_INT(o.calls, 0);
    answer(&s, set, "result", "");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.cond, EPODE_COND_NONE);
    epode_register_free(reg);
    scripted_free(&s);
}

TEST(register_account_with_a_captcha_form)
{
    scripted s;
    int ready = 0;
    CHECK_INT(reg_login(&s, 1, &ready), 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {.fill_value = "7xk2p"};
    CHECK_INT(epode_register_account(reg, "newbie", "pw", on_fill, on_done, &o), 0);
    scripted_pump(&s);
    epode_stanza_t *get = next_iq(&s);
    CHECK(get != NULL);
    answer(&s, get, "result",
           "<query xmlns='jabber:iq:register'><username/><password/>"
           "<x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'>"
           "<value>urn:xmpp:captcha</value></field>"
           "<field type='hidden' var='challenge'><value>F3A6292C</value></field>"
           "<field var='username' type='text-single'><required/></field>"
           "<field var='password' type='text-private'><required/></field>"
           "<field var='ocr' label='Enter the text'><required/><media xmlns='urn:xmpp:media-element'>"
           "<uri type='image/png'>cid:sha1+f24030b8@bob.xmpp.org</uri></media></field></x></query>"
           "<data xmlns='urn:xmpp:bob' cid='sha1+f24030b8@bob.xmpp.org' type='image/png'>iVBOR</data>");
    CHECK_INT(o.fills, 1);
    CHECK_INT(o.media_seen, 1);
    CHECK_INT(epode_register_is_data_form(reg), 1);
    CHECK(epode_stanza_find_child(epode_register_answer(reg), "data", "urn:xmpp:bob") != NULL);
    epode_stanza_t *set = next_iq(&s);
    CHECK(set != NULL);
    epode_stanza_t *x = epode_form_find(epode_stanza_find_child(set, "query", EPODE_NS_REGISTER),
                                        "urn:xmpp:captcha");
    CHECK(x != NULL);
    epode_form_t *sub;
    CHECK_INT(epode_form_parse(NULL, x, &sub), 0);
    CHECK_INT(epode_form_get_type(sub), EPODE_FORM_SUBMIT);
    CHECK_STR(epode_form_get_value(sub, "username"), "newbie");
    CHECK_STR(epode_form_get_value(sub, "password"), "pw");
    CHECK_STR(epode_form_get_value(sub, "ocr"), "7xk2p");
    CHECK_STR(epode_form_get_value(sub, "challenge"), "F3A6292C");
    epode_form_free(sub);
    answer(&s, set, "result", "");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    epode_register_free(reg);
    scripted_free(&s);
}

/* One registration attempt answered by `fetch` (the form) and `reply`
 * (the answer to the submission); NULL reply: nothing submitted. */
static int try_register(outcome *o, const char *fetch_type, const char *fetch, const char *reply_type,
                        const char *reply, epode_register_fill_cb fill)
{
    scripted s;
    int ready = 0;
    if (reg_login(&s, 1, &ready) < 0 || !ready)
        return -1;
    epode_register_t *reg;
    if (epode_register_new(s.conn, &reg) < 0)
        return -1;
    int rc = epode_register_account(reg, "newbie", "pw", fill, on_done, o);
    if (rc == 0) {
        scripted_pump(&s);
        epode_stanza_t *get = next_iq(&s);
        if (!get)
            rc = -2;
        else
            answer(&s, get, fetch_type, fetch);
        epode_stanza_t *set = next_iq(&s);
        if (rc == 0 && reply && set)
            answer(&s, set, reply_type, reply);
        else if (rc == 0 && reply && !set)
            rc = -3;
        else if (rc == 0 && !reply && set)
            rc = -4;
    }
    epode_register_free(reg);
    scripted_free(&s);
    return rc;
}

#define LEGACY "<query xmlns='jabber:iq:register'><username/><password/></query>"

TEST(register_reports_the_servers_refusals)
{
    outcome o = {0};
    CHECK_INT(try_register(&o, "result", LEGACY, "error",
                           "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-"
                           "stanzas'/></error>", NULL), 0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.cond, EPODE_COND_CONFLICT);
    CHECK_STR(o.text, "already registered");
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "result", LEGACY, "error",
                           "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-"
                           "stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Password "
                           "too weak</text></error>", NULL), 0);
    CHECK_INT(o.cond, EPODE_COND_NOT_ACCEPTABLE);
    CHECK_STR(o.text, "Password too weak");
    /* registration closed: the fetch itself is refused */
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "error", "<error type='cancel'><not-allowed xmlns='urn:ietf:params:"
                           "xml:ns:xmpp-stanzas'/></error>", NULL, NULL, NULL), 0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.cond, EPODE_COND_NOT_ALLOWED);
    CHECK(strncmp(o.text, "registration not allowed", 24) == 0);
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "result", LEGACY, "error",
                           "<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-"
                           "stanzas'/></error>", NULL), 0);
    CHECK_INT(o.cond, EPODE_COND_BAD_REQUEST);
    /* an error without a condition */
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "result", LEGACY, "error", "<error/>", NULL), 0);
    CHECK_INT(o.cond, EPODE_COND_UNDEFINED_CONDITION);
}

TEST(register_survives_garbage_answers)
{
    outcome o = {0};
    /* a result without the query */
    CHECK_INT(try_register(&o, "result", "<nonsense xmlns='urn:x'/>", NULL, NULL, NULL), 0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, EPODE_EPROTOCOL);
    /* a malformed data form */
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "result", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data'"
                           " type='form'><field type='text-single'/></x></query>", NULL, NULL, NULL), 0);
    CHECK_INT(o.status, EPODE_EPROTOCOL);
    /* a required field the application cannot fill (no fill callback) */
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "result", "<query xmlns='jabber:iq:register'><username/><password/>"
                           "<email/></query>", NULL, NULL, NULL), 0);
    CHECK_INT(o.status, EPODE_EINVAL);
    CHECK(strstr(o.text, "email") != NULL);
    /* the fill callback gives up */
    memset(&o, 0, sizeof o);
    o.fill_rc = EPODE_ECANCELED;
    CHECK_INT(try_register(&o, "result", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:oob'>"
                           "<url>https://example.com/signup</url></x></query>", NULL, NULL, on_fill), 0);
    CHECK_INT(o.fills, 1);
    CHECK_INT(o.status, EPODE_ECANCELED);
    /* only a web page, and nobody to hand it to */
    memset(&o, 0, sizeof o);
    CHECK_INT(try_register(&o, "result", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:oob'>"
                           "<url>https://example.com/signup</url></x></query>", NULL, NULL, NULL), 0);
    CHECK_INT(o.status, EPODE_EINVAL);
    CHECK(strstr(o.text, "https://example.com/signup") != NULL);
    /* a form with 10,000 fields */
    size_t cap = 10000 * 30 + 200;
    char *big = malloc(cap);
    CHECK(big != NULL);
    size_t n = (size_t)snprintf(big, cap, "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' "
                                          "type='form'>");
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(big + n, cap - n, "<field var='f%d'/>", i);
    snprintf(big + n, cap - n, "</x></query>");
    memset(&o, 0, sizeof o);
    int rc = try_register(&o, "result", big, NULL, NULL, NULL);
    free(big);
    CHECK_INT(rc, 0);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, EPODE_ELIMIT);
}

/* Answers that are not the server's, or not answers, change nothing: the
 * real answer still counts. */
TEST(register_ignores_forged_answers)
{
    scripted s;
    int ready = 0;
    CHECK_INT(reg_login(&s, 1, &ready), 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    CHECK_INT(epode_register_account(reg, "newbie", "pw", NULL, on_done, &o), 0);
    scripted_pump(&s);
    epode_stanza_t *get = next_iq(&s);
    CHECK(get != NULL);
    char xml[512];
    /* from another entity */
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='evil@example.net'><error type='cancel'>"
             "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
             epode_stanza_get_id(get));
    scripted_send(&s, xml);
    CHECK_INT(o.calls, 0);
    /* a request with the same id is a request, not an answer */
    snprintf(xml, sizeof xml, "<iq type='set' id='%s'><query xmlns='jabber:iq:register'/></iq>",
             epode_stanza_get_id(get));
    scripted_send(&s, xml);
    CHECK_INT(o.calls, 0);
    epode_stanza_t *err = next_iq(&s);
    CHECK(err && strcmp(epode_stanza_get_type(err), "error") == 0);
    /* the server's own answer, from its domain */
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='example.com'><query xmlns='jabber:"
             "iq:register'><username/><password/></query></iq>", epode_stanza_get_id(get));
    scripted_send(&s, xml);
    epode_stanza_t *set = next_iq(&s);
    CHECK(set && strcmp(epode_stanza_get_type(set), "set") == 0);
    answer(&s, set, "result", "");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.cond, EPODE_COND_NONE);
    epode_register_free(reg);
    scripted_free(&s);
}

TEST(register_fetch_and_submit_by_hand)
{
    scripted s;
    int ready = 0;
    CHECK_INT(reg_login(&s, 1, &ready), 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    CHECK_INT(epode_register_submit(reg, 0, on_done, &o), EPODE_ESTATE); /* nothing fetched */
    CHECK_INT(epode_register_fetch(reg, 0, on_done, &o), 0);
    scripted_pump(&s);
    answer(&s, next_iq(&s), "result", "<query xmlns='jabber:iq:register'><registered/><username>"
                                      "old</username><password/></query>");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(epode_register_is_registered(reg), 1);
    epode_form_t *f = epode_register_form(reg);
    CHECK(f != NULL);
    CHECK_STR(epode_form_get_value(f, "username"), "old");
    CHECK_INT(epode_form_field_type(epode_form_get_field(f, "password")), EPODE_FIELD_TEXT_PRIVATE);
    CHECK_INT(epode_register_submit(reg, 0, on_done, &o), EPODE_EINVAL); /* password empty */
    CHECK_INT(epode_register_set_credentials(reg, "new", "pw"), 0);
    CHECK_INT(epode_register_submit(reg, 0, on_done, &o), 0);
    scripted_pump(&s);
    epode_stanza_t *set = next_iq(&s);
    CHECK(set != NULL);
    CHECK_STR(epode_stanza_child_text(epode_stanza_find_child(set, "query", EPODE_NS_REGISTER),
                                      "username", NULL), "new");
    /* the connection ends before the answer: canceled */
    epode_conn_close(s.conn);
    scripted_send(&s, "</stream:stream>");
    CHECK_INT(o.calls, 2);
    CHECK_INT(o.status, EPODE_ECANCELED);
    epode_register_free(reg);
    scripted_free(&s);
}

TEST(register_change_password_and_remove)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@example.com", "juliet@example.com/r"), 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    CHECK_INT(epode_register_change_password(reg, "old", "new!", on_done, &o), 0);
    scripted_pump(&s);
    epode_stanza_t *set = next_iq(&s);
    CHECK(set != NULL);
    CHECK(epode_stanza_get_to(set) == NULL);
    epode_stanza_t *q = epode_stanza_find_child(set, "query", EPODE_NS_REGISTER);
    CHECK_STR(epode_stanza_child_text(q, "username", NULL), "juliet");
    CHECK_STR(epode_stanza_child_text(q, "password", NULL), "new!");
    /* the server wants the old password, through its form */
    answer(&s, set, "error", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='form'>"
                             "<field type='hidden' var='FORM_TYPE'><value>jabber:iq:register:"
                             "changepassword</value></field><field var='username'><required/>"
                             "</field><field var='old_password' type='text-private'><required/>"
                             "</field><field var='password' type='text-private'><required/></field>"
                             "</x></query><error type='modify'><not-authorized xmlns='urn:ietf:"
                             "params:xml:ns:xmpp-stanzas'/></error>");
    CHECK_INT(o.calls, 0);
    set = next_iq(&s);
    CHECK(set != NULL);
    epode_form_t *sub;
    CHECK_INT(epode_form_parse(NULL, epode_form_find(epode_stanza_find_child(set, "query",
                                                     EPODE_NS_REGISTER), NULL), &sub), 0);
    CHECK_STR(epode_form_get_value(sub, "old_password"), "old");
    CHECK_STR(epode_form_get_value(sub, "password"), "new!");
    CHECK_STR(epode_form_get_value(sub, "username"), "juliet");
    epode_form_free(sub);
    answer(&s, set, "result", "");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.cond, EPODE_COND_NONE);
    /* refused (without the old password: no second try) */
    memset(&o, 0, sizeof o);
    CHECK_INT(epode_register_change_password(reg, NULL, "x", on_done, &o), 0);
    scripted_pump(&s);
    answer(&s, next_iq(&s), "error", "<error type='cancel'><not-allowed xmlns='urn:ietf:params:"
                                     "xml:ns:xmpp-stanzas'/></error>");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.cond, EPODE_COND_NOT_ALLOWED);
    /* removal */
    memset(&o, 0, sizeof o);
    CHECK_INT(epode_register_remove(reg, on_done, &o), 0);
    scripted_pump(&s);
    set = next_iq(&s);
    CHECK(set != NULL);
    q = epode_stanza_find_child(set, "query", EPODE_NS_REGISTER);
    CHECK(q && epode_stanza_find_child(q, "remove", EPODE_NS_REGISTER));
    answer(&s, set, "result", "");
    scripted_send(&s, "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error></stream:stream>");
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(o.cond, EPODE_COND_NONE);
    CHECK_INT(epode_register_remove(reg, on_done, &o), EPODE_ESTATE); /* not READY */
    epode_register_free(reg);
    scripted_free(&s);
}

static void free_in_callback(epode_register_t *reg, int status, epode_stanza_cond_t cond,
                             const char *text, void *user)
{
    (void)status, (void)cond, (void)text;
    (*(int *)user)++;
    epode_register_free(reg);
}

TEST(register_free_order)
{
    /* the connection freed first: the helper is inert */
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@example.com", "juliet@example.com/r"), 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    CHECK_INT(epode_register_remove(reg, on_done, &o), 0);
    scripted_free(&s);
    CHECK_INT(o.calls, 0);
    CHECK_INT(epode_register_remove(reg, on_done, &o), EPODE_ESTATE);
    epode_register_free(reg);
    /* freed from its own callback */
    CHECK_INT(scripted_login(&s, "juliet@example.com", "juliet@example.com/r"), 0);
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    int calls = 0;
    CHECK_INT(epode_register_change_password(reg, NULL, "n", free_in_callback, &calls), 0);
    scripted_pump(&s);
    answer(&s, next_iq(&s), "result", "");
    CHECK_INT(calls, 1);
    /* freed with a request pending: no callback */
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    CHECK_INT(epode_register_change_password(reg, NULL, "n", on_done, &o), 0);
    epode_register_free(reg);
    scripted_pump(&s);
    answer(&s, next_iq(&s), "result", "");
    CHECK_INT(o.calls, 0);
    scripted_free(&s);
}

/* The whole account flow with every allocation failing in turn: a clean
 * outcome (or a clean refusal to start) each time, nothing leaked. */
TEST(register_every_failing_allocation)
{
    const char *features = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>"
                           "PLAIN</mechanism></mechanisms><register xmlns='http://jabber.org/"
                           "features/iq-register'/>";
    int completed = 0;
    long fail = 0;
    for (; fail < 20000 && !completed; fail++) {
        scripted_mem m;
        scripted_mem_init(&m);
        m.fail_at = fail;
        scripted s;
        int ready = 0;
        outcome o = {.fill_value = "e@example.org"};
        epode_register_t *reg = NULL;
        int started = -1;
        if (reg_login_mem(&s, &m.mem, 1, &ready, features) == 0 && ready &&
            epode_register_new(s.conn, &reg) == 0)
            started = epode_register_account(reg, "newbie", "pw", on_fill, on_done, &o);
        if (started == 0) {
            scripted_pump(&s);
            epode_stanza_t *get = next_iq(&s);
            if (get)
                answer(&s, get, "result", "<query xmlns='jabber:iq:register'><username/>"
                                          "<password/><email/></query>");
            epode_stanza_t *set = next_iq(&s);
            if (set)
                answer(&s, set, "result", "");
            CHECK(o.calls <= 1);
            CHECK(o.status == 0 || o.status == EPODE_ENOMEM || o.status == EPODE_ECANCELED ||
                  o.status == EPODE_EINVAL || o.calls == 0);
        }
        completed = m.calls <= fail; /* no allocation failed: the flow ran whole */
        if (completed) {
            CHECK_INT(o.calls, 1);
            CHECK_INT(o.status, 0);
            CHECK_INT(o.cond, EPODE_COND_NONE);
        }
        epode_register_free(reg);
        scripted_free(&s);
        if (m.live != 0)
            printf("# leak with allocation %ld failing\n", fail);
        CHECK_INT(m.live, 0);
    }
    CHECK(completed);
    printf("# %ld allocation points failed in turn\n", fail - 1);
}

/* Password change with the server's changepassword form, then removal,
 * with every allocation failing in turn. */
TEST(register_change_and_remove_every_failing_allocation)
{
    int completed = 0;
    long fail = 0;
    for (; fail < 20000 && !completed; fail++) {
        scripted_mem m;
        scripted_mem_init(&m);
        m.fail_at = fail;
        scripted s;
        outcome o = {0}, o2 = {0};
        epode_register_t *reg = NULL;
        int logged_in = scripted_login_mem(&s, &m.mem, "juliet@example.com",
                                           "juliet@example.com/r") == 0;
        if (logged_in && epode_register_new(s.conn, &reg) == 0 &&
            epode_register_change_password(reg, "old", "new", on_done, &o) == 0) {
            scripted_pump(&s);
            epode_stanza_t *set = next_iq(&s);
            if (set)
                answer(&s, set, "error", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data'"
                       " type='form'><field type='hidden' var='FORM_TYPE'><value>jabber:iq:"
                       "register:changepassword</value></field><field var='username'><required/>"
                       "</field><field var='old_password' type='text-private'><required/></field>"
                       "<field var='password' type='text-private'><required/></field></x></query>"
                       "<error type='modify'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-"
                       "stanzas'/></error>");
            if ((set = next_iq(&s)))
                answer(&s, set, "result", "");
            if (o.calls == 1 && o.status == 0 && o.cond == EPODE_COND_NONE &&
                epode_register_remove(reg, on_done, &o2) == 0) {
                scripted_pump(&s);
                if ((set = next_iq(&s)))
                    answer(&s, set, "result", "");
            }
        }
        CHECK(o.calls <= 1 && o2.calls <= 1);
        completed = m.calls <= fail;
        if (completed) {
            CHECK_INT(o.calls, 1);
            CHECK_INT(o.cond, EPODE_COND_NONE);
            CHECK_INT(o2.calls, 1);
            CHECK_INT(o2.status, 0);
        }
        epode_register_free(reg);
        scripted_free(&s);
        if (m.live != 0)
            printf("# leak with allocation %ld failing\n", fail);
        CHECK_INT(m.live, 0);
    }
    CHECK(completed);
    printf("# %ld allocation points failed in turn\n", fail - 1);
}

static char logged[65536];

static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user, (void)level, (void)area;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", msg);
}

/* The XML log never shows a password a registration sends. */
TEST(register_passwords_are_redacted_in_the_xml_log)
{
    scripted s;
    int ready = 0;
    logged[0] = '\0';
    reg_log = on_log;
    int rc = reg_login(&s, 1, &ready);
    reg_log = NULL;
    CHECK_INT(rc, 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(s.conn, &reg), 0);
    outcome o = {0};
    /* legacy fields */
    CHECK_INT(epode_register_account(reg, "newbie", "S3cr3t-legacy", NULL, on_done, &o), 0);
    scripted_pump(&s);
    answer(&s, next_iq(&s), "result", LEGACY);
    epode_stanza_t *set = next_iq(&s);
    CHECK(set != NULL);
    CHECK_STR(epode_stanza_child_text(epode_stanza_find_child(set, "query", NULL), "password",
                                      NULL), "S3cr3t-legacy"); /* sent as it is */
    answer(&s, set, "result", "");
    /* a data form */
    CHECK_INT(epode_register_account(reg, "newbie2", "S3cr3t-form", NULL, on_done, &o), 0);
    scripted_pump(&s);
    answer(&s, next_iq(&s), "result", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' "
           "type='form'><field var='username'><required/></field><field var='password' "
           "type='text-private'><required/></field></x></query>");
    answer(&s, next_iq(&s), "result", "");
    CHECK_INT(o.calls, 2);
    CHECK(strstr(logged, "S3cr3t") == NULL);
    CHECK(strstr(logged, "<password>[redacted]</password>") != NULL);
    CHECK(strstr(logged, "<value>[redacted]</value>") != NULL);
    CHECK(strstr(logged, "newbie2") != NULL); /* the rest is shown */
    epode_register_free(reg);
    scripted_free(&s);
}

TEST(register_log_redaction_edges)
{
    char buf[4200];
    size_t len;
    const char *plain = "<iq><query xmlns='jabber:iq:roster'><password>x</password></query></iq>";
    len = strlen(plain);
    CHECK(epode__log_redact(plain, &len, buf, sizeof buf) == plain); /* not a registration */
    const char *cut = "<iq><query xmlns='jabber:iq:register'><password>abc";
    len = strlen(cut);
    const char *r = epode__log_redact(cut, &len, buf, sizeof buf);
    CHECK(r == buf);
    CHECK(len == strlen("<iq><query xmlns='jabber:iq:register'><password>[redacted]"));
    CHECK(memcmp(r, "<iq><query xmlns='jabber:iq:register'><password>[redacted]", len) == 0);
    const char *open_tag = "<q xmlns='jabber:iq:register'><field var='password' <value";
    len = strlen(open_tag);
    r = epode__log_redact(open_tag, &len, buf, sizeof buf);
    CHECK(len <= sizeof buf);
    /* 4000 bytes of secrets: the output stays in the buffer, no secret in it */
    static char many[4001];
    size_t n = (size_t)snprintf(many, sizeof many, "<q xmlns='jabber:iq:register'>");
    while (n + 12 < 4000)
        n += (size_t)snprintf(many + n, sizeof many - n, "<password>s");
    len = n;
    r = epode__log_redact(many, &len, buf, sizeof buf);
    CHECK(len < sizeof buf);
    CHECK(memchr(r, 's', len) != NULL); /* "xmlns" has one; check the secrets: */
    for (size_t i = 0; i + 11 <= len; i++)
        CHECK(memcmp(r + i, "<password>s", 11) != 0);
}

TEST(register_cond_text)
{
    CHECK_STR(epode_register_cond_text(EPODE_COND_CONFLICT), "already registered");
    const char *na = epode_register_cond_text(EPODE_COND_NOT_ALLOWED);
    CHECK(strncmp(na, "registration not allowed", 24) == 0);
    CHECK_STR(epode_register_cond_text(EPODE_COND_GONE), "gone");
    CHECK(epode_register_cond_text(EPODE_COND_NONE) == NULL);
}

TEST_MAIN
