/* lib/stream/sasl2.h — the XML of SASL2 (XEP-0388) with its inline
 * extensions Bind2 (XEP-0386), stream management inside authentication
 * (XEP-0198 via XEP-0388/0386) and FAST (XEP-0484): reading what the
 * server offers and answers, writing <authenticate/>. No state and no
 * I/O: the engine (engine.c) decides and keeps the state; these functions
 * only translate, and refuse what is malformed with a sentence. */
#ifndef EPODE__SASL2_H
#define EPODE__SASL2_H

#include <stddef.h>
#include <stdint.h>

#include "epode/stanza.h"
#include "util/buf.h"

#define EPODE__NS_SASL2 "urn:xmpp:sasl:2"
#define EPODE__NS_BIND2 "urn:xmpp:bind:0"
#define EPODE__NS_FAST "urn:xmpp:fast:0"
#define EPODE__NS_CARBONS "urn:xmpp:carbons:2"
#define EPODE__NS_CSI "urn:xmpp:csi:0"

#define EPODE__SASL2_MAX_MECHS 32
#define EPODE__SASL2_MAX_FAST 8

/* What <authentication xmlns='urn:xmpp:sasl:2'/> in the stream features
 * offers. Strings are borrowed from the features. */
typedef struct epode__sasl2_offer {
    const char *mechs[EPODE__SASL2_MAX_MECHS]; /* SASL mechanisms */
    size_t n_mechs;
    int bind2;                 /* Bind2 inline */
    int bind2_carbons;         /* ...with carbons (XEP-0280) inline */
    int bind2_csi;             /* ...with CSI (XEP-0352) inline */
    int bind2_sm;              /* ...with stream management enable inline */
    int sm;                    /* stream management resume inline */
    int fast;                  /* FAST offered */
    const char *fast_mechs[EPODE__SASL2_MAX_FAST];
    size_t n_fast;
} epode__sasl2_offer;

/* 1 and *o filled when the features offer SASL2 (with at least one
 * mechanism element), else 0 (*o zeroed). */
int epode__sasl2_offer_parse(const epode_stanza_t *features, epode__sasl2_offer *o);
/* 1 if `mech` is one of the offered FAST mechanisms. */
int epode__sasl2_offer_has_fast(const epode__sasl2_offer *o, const char *mech);

/* What to put into <authenticate/>. */
typedef struct epode__sasl2_request {
    const char *mechanism;
    const unsigned char *initial; /* the initial response (raw; base64 here) */
    size_t initial_len;
    int has_initial;              /* 0: no <initial-response/> */
    const char *ua_id;            /* <user-agent id=…>; NULL: none */
    const char *software, *device;
    int bind;                     /* Bind2 */
    const char *tag;              /* ...its <tag/> (NULL: none) */
    int carbons, csi_inactive, sm_enable;
    const char *resume_previd;    /* <resume/> inline (NULL: none) */
    uint32_t resume_h;
    const char *request_token;    /* FAST: ask for a token for this mechanism */
    int fast;                     /* FAST: we authenticate with a token */
} epode__sasl2_request;

/* Appends <authenticate/> to b. The whole element is marked secret in b
 * (util/buf.h) when it carries an initial response. `logtext` receives
 * the element with the response redacted (cut to size). Returns 0, or
 * EPODE_ENOMEM (b->failed set). */
int epode__sasl2_write_authenticate(epode__buf *b, const epode__sasl2_request *r, char *logtext,
                                    size_t logsize);

/* A <success xmlns='urn:xmpp:sasl:2'/>, taken apart (borrowed). */
typedef struct epode__sasl2_success {
    const char *additional;           /* <additional-data/> base64 text, or NULL */
    const char *authzid;              /* <authorization-identifier/> (a valid JID) */
    const epode_stanza_t *bound;      /* <bound xmlns='urn:xmpp:bind:0'/> or NULL */
    const epode_stanza_t *sm_enabled; /* <enabled xmlns='urn:xmpp:sm:3'/> in bound */
    const epode_stanza_t *sm_failed;  /* <failed xmlns='urn:xmpp:sm:3'/> in bound */
    const epode_stanza_t *resumed;    /* <resumed xmlns='urn:xmpp:sm:3'/> in success */
    const epode_stanza_t *resume_failed; /* <failed xmlns='urn:xmpp:sm:3'/> in success */
    const char *token;                /* FAST <token token=…/> */
    const char *token_expiry;         /* ...its expiry, or NULL */
} epode__sasl2_success;

/* 0, or EPODE_EPROTOCOL with `why` saying what is malformed: no or two
 * authorization identifiers, an invalid JID, a bound session whose
 * identifier is not a full JID, two <additional-data/>, a <token/>
 * without a token, both <resumed/> and <bound/>. */
int epode__sasl2_success_parse(const epode_stanza_t *st, epode__sasl2_success *s, char *why,
                               size_t whylen);

/* A sentence for <continue/>: the tasks the server asks for (which epode
 * does not implement) and its text. */
void epode__sasl2_continue_text(const epode_stanza_t *st, char *out, size_t size);

/* The condition (a SASL condition's element name, or NULL) and the text
 * (or NULL) of a <failure/> (borrowed). */
void epode__sasl2_failure(const epode_stanza_t *st, const char **cond, const char **text);

#endif
