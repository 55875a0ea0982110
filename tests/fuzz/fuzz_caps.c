/* tests/fuzz/fuzz_caps.c — the caps helper's verification path fed
 * arbitrary disco#info answers. The bytes are parsed as a stanza (a
 * <query/>); when its verification string can be computed, a peer
 * announces that ver (or, for odd inputs, a ver it does not match), the
 * helper asks it, and the bytes come back as the answer, then once more
 * through the store hook for a second peer. Whatever the helper keeps for
 * a JID must hash to the ver that JID announced, and nothing may crash or
 * leak. Runs on a scripted server (tests/unit/scripted.h) over the memory
 * transport; the connection stays logged in across inputs, the helper is
 * made anew for each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "../unit/scripted.h"

static scripted s;
static epode_disco_t *disco;
static const char *load_text; /* what the store hook hands back */

static const char *load(void *user, const char *hash, const char *ver)
{
    (void)user, (void)hash, (void)ver;
    return load_text;
}

static void store(void *user, const char *hash, const char *ver, const char *xml)
{
    (void)user, (void)hash, (void)ver, (void)xml;
}

/* The client's stanzas so far are of no more use. */
static void drain(void)
{
    for (int i = 0; i < s.nsent; i++)
        epode_stanza_unref(s.sent[i]);
    s.nsent = s.next = 0;
}

/* What the helper keeps for `jid`, if anything, hashes to `ver`. */
static void check_kept(epode_caps_t *caps, const char *jid, const char *ver)
{
    const epode_disco_info_t *kept = epode_caps_get_info(caps, jid);
    if (!kept)
        return;
    char again[EPODE_CAPS_VER_MAX];
    if (epode_caps_hash(kept, "sha-1", again, sizeof again) != 0 || strcmp(again, ver) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (scripted_login(&s, "me@example.com", "me@example.com/fuzz") != 0 ||
            epode_disco_new(s.conn, &disco) != 0)
            abort();
        init = 1;
    }
    static unsigned long round;
    round++;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    epode_stanza_t *q;
    epode_disco_info_t *info;
    if (epode_stanza_from_text(NULL, text, size, &q, NULL) != 0) {
        free(text);
        return 0;
    }
    int rc = epode_disco_info_parse(q, &info);
    epode_stanza_unref(q);
    if (rc != 0) {
        free(text);
        return 0;
    }
    char ver[EPODE_CAPS_VER_MAX];
    rc = epode_caps_hash(info, "sha-1", ver, sizeof ver);
    epode_disco_info_free(info);
    if (rc != 0 && rc != EPODE_EPROTOCOL && rc != EPODE_ENOMEM)
        abort(); /* only ill-formed input may fail, never with an odd error */
    if (rc != 0 || (size & 1))
        snprintf(ver, sizeof ver, "%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");

    epode_caps_t *caps;
    if (epode_caps_new(disco, "https://epode.example/fuzz", &caps) != 0)
        abort();
    epode_caps_set_store(caps, load, store, NULL);
    load_text = NULL;
    drain();

    char jid[64], xml[512];
    snprintf(jid, sizeof jid, "p%lu@example.com/a", round);
    snprintf(xml, sizeof xml, "<presence from='%s'><c xmlns='http://jabber.org/protocol/caps' "
             "hash='sha-1' node='n' ver='%s'/></presence>", jid, ver);
    scripted_send(&s, xml);
    epode_stanza_t *ask = scripted_next(&s);
    if (ask && epode_stanza_get_id(ask)) {
        /* the answer: an IQ result around the fuzzer's bytes, as bytes */
        char head[256];
        snprintf(head, sizeof head, "<iq type='result' id='%s' from='%s' to='me@example.com/fuzz'>",
                 epode_stanza_get_id(ask), jid);
        epode__transport_write(s.server, head, strlen(head));
        epode__transport_write(s.server, text, size);
        scripted_send(&s, "</iq>");
        check_kept(caps, jid, ver);
    }
    /* a second JID with the same ver: the bytes come from the store */
    load_text = text;
    snprintf(jid, sizeof jid, "q%lu@example.com/b", round);
    snprintf(xml, sizeof xml, "<presence from='%s'><c xmlns='http://jabber.org/protocol/caps' "
             "hash='sha-1' node='n' ver='%s'/></presence>", jid, ver);
    scripted_send(&s, xml);
    check_kept(caps, jid, ver);
    load_text = NULL;
    epode_caps_free(caps);
    drain();
    if (!epode_conn_is_ready(s.conn))
        abort(); /* nothing a peer answers may end our session */
    free(text);
    return 0;
}
