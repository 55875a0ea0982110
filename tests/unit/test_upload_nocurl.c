/* tests/unit/test_upload_nocurl.c — a build without libcurl
 * (meson -Dcurl=disabled): the upload helper says EPODE_ENOTSUP, and
 * what needs no HTTP (the slot parser, the OOB helpers) still works. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

TEST(upload_without_curl_is_not_supported)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "me@example.com/r"), 0);
    epode_upload_t *up = NULL;
    CHECK_INT(epode_upload_new(s.conn, &up), EPODE_ENOTSUP);
    CHECK(up == NULL);
    CHECK_INT(epode_upload_new(NULL, &up), EPODE_EINVAL);
    CHECK_STR(epode_err_name(EPODE_ENOTSUP), "NOTSUP");
    epode_upload_free(NULL);
    CHECK_INT(epode_upload_send_url(s.conn, "you@example.com", NULL, "https://f.example/x"), 0);
    scripted_pump(&s);
    epode_stanza_t *m = scripted_next(&s);
    CHECK(m != NULL);
    CHECK_STR(epode_oob_url(m), "https://f.example/x");
    const char *xml = "<slot xmlns='urn:xmpp:http:upload:0'><put url='https://u.example/p'/>"
                      "<get url='https://u.example/g'/></slot>";
    epode_stanza_t *slot_el = NULL;
    CHECK_INT(epode_stanza_from_text(NULL, xml, strlen(xml), &slot_el, NULL), 0);
    epode_upload_slot_t *slot = NULL;
    CHECK_INT(epode_upload_slot_parse(NULL, slot_el, &slot), 0);
    CHECK_STR(slot->get_url, "https://u.example/g");
    epode_upload_slot_free(slot);
    epode_stanza_unref(slot_el);
    scripted_free(&s);
}
