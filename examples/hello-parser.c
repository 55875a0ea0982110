#include <epode.h>
#include <stdio.h>
#include <string.h>

static void on_event(void *user, epode_parser_event_t ev, epode_stanza_t *st)
{
    (void)user;
    if (ev != EPODE_PARSER_STANZA || strcmp(epode_stanza_get_name(st), "message"))
        return;
    const char *body = epode_stanza_child_text(st, "body", NULL);   /* borrowed */
    printf("%s says %s\n", epode_stanza_get_from(st), body ? body : "(nothing)");

    epode_stanza_t *reply;                                         /* caller owns */
    if (epode_stanza_new_message(NULL, "chat", epode_stanza_get_from(st), "got it", &reply) == 0) {
        char *xml;
        if (epode_stanza_to_text(reply, 0, &xml, NULL) == 0) {
            puts(xml);
            epode_free(xml);
        }
        epode_stanza_unref(reply);
    }
}

int main(void)
{
    epode_parser_t *p;
    if (epode_parser_new(NULL, on_event, NULL, &p) < 0)
        return 1;
    const char *bytes = "<stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>"
        "<message from='juliet@example.com/balcony'><body>hi</body></message>";
    if (epode_parser_feed(p, bytes, strlen(bytes)) < 0)
        fprintf(stderr, "bad stream: %s\n",
                epode_stream_cond_name(epode_parser_condition(p)));
    epode_parser_free(p);
    return 0;
}
