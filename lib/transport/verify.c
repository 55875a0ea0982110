/* lib/transport/verify.c — is the server's certificate good for this XMPP
 * domain? Runs after the handshake (never inside it), so the application
 * can be asked about a failure. gnutls checks the chain and the DNS-ID /
 * CN / IP names (RFC 6125); the XmppAddr SAN (RFC 6120 §13.7.1.4) is
 * ours to check. Reasons come out in plain words. */
#include "transport/transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

static void put(char *why, size_t why_len, size_t *used, const char *fmt, ...)
{
    if (!why || why_len == 0 || *used >= why_len - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why + *used, why_len - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used = (size_t)n < why_len - *used ? *used + (size_t)n : why_len - 1;
}

/* Domain names compare without regard to ASCII case; XmppAddr holds a
 * domainpart, which never has a wildcard. */
static int same_domain(const char *a, size_t alen, const char *b)
{
    if (alen != strlen(b))
        return 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* 1 if the peer's certificate has an XmppAddr SAN equal to domain. */
static int xmppaddr_matches(gnutls_session_t s, const char *domain)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0)
        return 0;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return 0;
    int found = 0;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
        for (unsigned seq = 0; !found; seq++) {
            char name[1024];
            size_t size = sizeof name;
            int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, name, &size, NULL);
            if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
                continue; /* longer than any domain: not ours */
            if (type < 0)
                break;
            /* gnutls decodes the UTF8String of id-on-xmppAddr for us. */
            if (type == GNUTLS_SAN_OTHERNAME_XMPP && memchr(name, '\0', size) == NULL)
                found = same_domain(name, size, domain);
        }
    }
    gnutls_x509_crt_deinit(crt);
    return found;
}

static const struct {
    unsigned flag;
    const char *words;
} reasons[] = {
    {GNUTLS_CERT_SIGNER_NOT_FOUND, "signed by an unknown authority"},
    {GNUTLS_CERT_SIGNER_NOT_CA, "signed by a certificate that is not a CA"},
    {GNUTLS_CERT_REVOKED, "revoked"},
    {GNUTLS_CERT_EXPIRED, "expired"},
    {GNUTLS_CERT_NOT_ACTIVATED, "not yet valid"},
    {GNUTLS_CERT_INSECURE_ALGORITHM, "signed with an insecure algorithm"},
    {GNUTLS_CERT_SIGNATURE_FAILURE, "carries an invalid signature"},
    {GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "outside its issuer's name constraints"},
    {GNUTLS_CERT_PURPOSE_MISMATCH, "not meant for a TLS server"},
    {GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED, "has outdated revocation data"},
    {GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE, "has revocation data from the future"},
    {GNUTLS_CERT_MISSING_OCSP_STATUS, "lacks the required OCSP status"},
    {GNUTLS_CERT_INVALID_OCSP_STATUS, "has an invalid OCSP status"},
    {GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS, "has an unknown critical extension"},
};

int epode__tls_verify(epode__transport *t, const char *domain, char *why, size_t why_len)
{
    size_t used = 0;
    if (why && why_len)
        why[0] = '\0';
    gnutls_session_t s = epode__tls_session(t);
    if (!s) {
        put(why, why_len, &used, "not a TLS transport");
        return EPODE_EINVAL;
    }
    if (epode__tls_version(t) == 0) {
        put(why, why_len, &used, "the TLS handshake is not complete");
        return EPODE_ESTATE;
    }
    if (!domain)
        domain = epode__tls_server_name(t);
    if (!domain || !*domain) {
        put(why, why_len, &used, "no name to check the certificate against");
        return EPODE_EINVAL;
    }
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509) {
        put(why, why_len, &used, "the server did not send an X.509 certificate");
        return EPODE_ECERT;
    }

    unsigned status = 0;
    int r = gnutls_certificate_verify_peers3(s, domain, &status);
    if (r == GNUTLS_E_MEMORY_ERROR)
        return EPODE_ENOMEM;
    if (r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
        put(why, why_len, &used, "the server sent no certificate");
        return EPODE_ECERT;
    }
    if (r < 0) {
        put(why, why_len, &used, "cannot verify the certificate: %s", gnutls_strerror(r));
        return EPODE_ECERT;
    }
    /* gnutls knows no XmppAddr: a name mismatch may still be a match. */
    if ((status & GNUTLS_CERT_UNEXPECTED_OWNER) && xmppaddr_matches(s, domain))
        status &= ~(unsigned)GNUTLS_CERT_UNEXPECTED_OWNER;
    if ((status & ~(unsigned)GNUTLS_CERT_INVALID) == 0)
        return 0;

    const char *sep = "";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (status & reasons[i].flag) {
            put(why, why_len, &used, "%s%s", sep, reasons[i].words);
            sep = "; ";
            status &= ~reasons[i].flag;
        }
    }
    if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
        put(why, why_len, &used, "%sissued for another name (not %s)", sep, domain);
        sep = "; ";
        status &= ~(unsigned)GNUTLS_CERT_UNEXPECTED_OWNER;
    }
    status &= ~(unsigned)GNUTLS_CERT_INVALID;
    if (status) {
        /* Anything newer than this list: gnutls' own words. */
        gnutls_datum_t text = {NULL, 0};
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0 &&
            text.data) {
            put(why, why_len, &used, "%s%s", sep, (const char *)text.data);
            gnutls_free(text.data);
        } else {
            put(why, why_len, &used, "%snot trusted (status 0x%x)", sep, status);
        }
    }
    if (used == 0)
        put(why, why_len, &used, "not trusted");
    return EPODE_ECERT;
}
