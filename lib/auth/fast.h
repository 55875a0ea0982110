/* lib/auth/fast.h — the HT-* SASL mechanisms of FAST (XEP-0484, the
 * "hashed token" mechanisms of draft-schmaus-kitten-sasl-ht): pure
 * computation on a token and channel-binding data, no XML, no I/O.
 *
 * The client's only message is authcid NUL HMAC-SHA-256(token,
 * "Initiator" || cb-data); the server proves it knows the token too by
 * sending HMAC-SHA-256(token, "Responder" || cb-data) as the success's
 * additional data. cb-data is empty for -NONE, the tls-unique data for
 * -UNIQ, the tls-exporter data for -EXPR (and -ENDP's server certificate
 * hash, which epode does not compute). Outputs that carry the token's
 * proof are wiped by their callers once written. */
#ifndef EPODE__FAST_H
#define EPODE__FAST_H

#include <stddef.h>

#include "epode/common.h"

/* Channel binding a FAST mechanism needs. */
enum epode__fast_cb {
    EPODE__FAST_CB_UNKNOWN = -1, /* not an HT-SHA-256 mechanism epode knows */
    EPODE__FAST_CB_NONE = 0,     /* HT-SHA-256-NONE */
    EPODE__FAST_CB_UNIQUE,       /* HT-SHA-256-UNIQ: tls-unique (TLS 1.2) */
    EPODE__FAST_CB_EXPORTER,     /* HT-SHA-256-EXPR: tls-exporter (TLS 1.3) */
    EPODE__FAST_CB_ENDPOINT      /* HT-SHA-256-ENDP: not computed by epode */
};

/* The binding `mech` uses (case-sensitive: SASL names are upper case). */
enum epode__fast_cb epode__fast_mech_cb(const char *mech);

#define EPODE__FAST_HMAC_LEN 32

/* HMAC-SHA-256(token, label || cb) into out. 0, or EPODE_EINVAL (NULL
 * token or label, cb_len without cb), EPODE_ENOMEM (gnutls failed). */
int epode__fast_hmac(const char *token, const char *label, const unsigned char *cb,
                     size_t cb_len, unsigned char out[EPODE__FAST_HMAC_LEN]);

/* The client's message: authcid NUL initiator-hash, in a secret block
 * (util/secret.h) the caller frees with epode__secret_free. 0,
 * EPODE_EINVAL (empty authcid or token, authcid with a NUL), EPODE_ENOMEM. */
int epode__fast_initial(const epode_mem_t *mem, const char *authcid, const char *token,
                        const unsigned char *cb, size_t cb_len, unsigned char **out,
                        size_t *out_len);

/* 1 when data is the server's proof (the responder hash), compared in
 * constant time; 0 otherwise (any other length included). */
int epode__fast_check_responder(const char *token, const unsigned char *cb, size_t cb_len,
                                const unsigned char *data, size_t len);

#define EPODE__FAST_TOKEN_MAX 1024

/* 1 when a token a server issued may be kept: 1 to EPODE__FAST_TOKEN_MAX
 * printable ASCII characters, no space (a token goes into line-based
 * files and key=value stores; a newline there would inject lines). */
int epode__fast_token_ok(const char *token);

/* An XEP-0082 date-time ("2026-12-27T12:00:00Z", fractions and a
 * numeric offset allowed) as seconds since the epoch. 0, or EPODE_EINVAL. */
int epode__fast_parse_time(const char *s, long long *out);

#endif
