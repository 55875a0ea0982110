/* lib/transport/verify.c — is the server's certificate good for this XMPP
 * domain? Runs after the handshake (never inside it), so the application
 * can be asked about a failure. gnutls checks the chain and the DNS-ID /
 * CN / IP names (RFC 6125); the XmppAddr SAN (RFC 6120 §13.7.1.4) is
 * ours to check, and so are the issuers' name constraints on it: gnutls
 * applies those to DNS names only. Reasons come out in plain words. */
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

/* ---- name constraints on the XmppAddr --------------------------------------
 *
 * A CA may be restricted to names under some domains (RFC 5280 name
 * constraints). gnutls enforces that on DNS names (and on the CN when
 * there is none) but knows nothing of XmppAddr, so without this check a
 * CA limited to evil.test could vouch for example.test through an
 * XmppAddr alone. The XmppAddr's domain is, for constraint purposes, a
 * DNS name: RFC 6120 §13.7.1.4 makes it the same identity as a DNS-ID.
 * We check it rather than refuse every XmppAddr under a constrained
 * chain: names inside a constrained CA's subtrees are its to certify,
 * and refusing those would break good certificates for no gain.
 *
 * Which CAs: every certificate the server sent after its own, and every
 * certificate of our trust store that issued one of those it sent. That
 * is the verified path and maybe more: gnutls does not hand the path
 * out, and a CA the server sent but did not need can only refuse more
 * (the server chose to send it). Anything unreadable refuses. */

static void lower_ascii(char *out, const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] - 'A' + 'a') : in[i];
}

/* The DNS-name form of an XmppAddr domainpart, in lower case (gnutls
 * compares constraints byte for byte): ASCII as is, else its IDNA
 * A-label, as DNS constraints hold. 0, or -1 if there is none. */
static int dns_form(const char *name, size_t len, char *out, size_t out_len)
{
    gnutls_datum_t mapped = {NULL, 0};
    size_t i;
    for (i = 0; i < len && (unsigned char)name[i] < 0x80; i++)
        ;
    if (i < len) {
        if (gnutls_idna_map(name, (unsigned)len, &mapped, 0) < 0)
            return -1;
        name = (const char *)mapped.data;
        len = mapped.size;
    }
    int ok = len > 0 && len < out_len;
    if (ok) {
        lower_ascii(out, name, len);
        out[len] = '\0';
    }
    gnutls_free(mapped.data);
    return ok ? 0 : -1;
}

/* 1 if the CA certificate `ca` allows the DNS name `dns` (NULL: a name
 * with no DNS form, allowed only where there are no DNS constraints). */
static int ca_permits(gnutls_x509_crt_t ca, const char *dns)
{
    gnutls_x509_name_constraints_t nc = NULL, lower = NULL;
    unsigned critical = 0;
    int ok = 0, any = 0;
    if (gnutls_x509_name_constraints_init(&nc) < 0)
        return 0;
    int r = gnutls_x509_crt_get_name_constraints(ca, nc, 0, &critical);
    if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
        ok = 1;
        goto done;
    }
    if (r < 0 || gnutls_x509_name_constraints_init(&lower) < 0)
        goto done;
    /* Its DNS constraints again, in lower case like the name. */
    for (int excluded = 0; excluded < 2; excluded++) {
        for (unsigned i = 0;; i++) {
            unsigned type;
            gnutls_datum_t name;
            r = excluded ? gnutls_x509_name_constraints_get_excluded(nc, i, &type, &name)
                         : gnutls_x509_name_constraints_get_permitted(nc, i, &type, &name);
            if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                break;
            if (r < 0)
                goto done;
            if (type != GNUTLS_SAN_DNSNAME)
                continue;
            char low[256];
            if (name.size >= sizeof low || memchr(name.data, '\0', name.size))
                goto done;
            lower_ascii(low, (const char *)name.data, name.size);
            gnutls_datum_t d = {(unsigned char *)low, name.size};
            if (excluded)
                r = gnutls_x509_name_constraints_add_excluded(lower, GNUTLS_SAN_DNSNAME, &d);
            else
                r = gnutls_x509_name_constraints_add_permitted(lower, GNUTLS_SAN_DNSNAME, &d);
            if (r < 0)
                goto done;
            any = 1;
        }
    }
    if (!any) {
        ok = 1; /* constraints on other kinds of names only */
    } else if (dns) {
        gnutls_datum_t d = {(unsigned char *)dns, (unsigned)strlen(dns)};
        ok = gnutls_x509_name_constraints_check(lower, GNUTLS_SAN_DNSNAME, &d) != 0;
    }
done:
    if (lower)
        gnutls_x509_name_constraints_deinit(lower);
    gnutls_x509_name_constraints_deinit(nc);
    return ok;
}

/* 1 if every CA above the peer's certificate (see above) allows the
 * XmppAddr domain `name`. */
static int xmppaddr_within_constraints(gnutls_session_t s, const char *name, size_t len)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_x509_trust_list_t trust = NULL;
    if (gnutls_credentials_get(s, GNUTLS_CRD_CERTIFICATE, (void **)&cred) < 0 || !cred)
        return 0;
    gnutls_certificate_get_trust_list(cred, &trust);
    char dns[256];
    const char *form = dns_form(name, len, dns, sizeof dns) == 0 ? dns : NULL;
    int ok = certs && n > 0 && trust;
    for (unsigned i = 0; ok && i < n; i++) {
        gnutls_x509_crt_t crt, issuer;
        if (gnutls_x509_crt_init(&crt) < 0)
            return 0;
        ok = gnutls_x509_crt_import(crt, &certs[i], GNUTLS_X509_FMT_DER) >= 0;
        if (ok && i > 0)
            ok = ca_permits(crt, form);
        /* Then every trusted issuer above it, to the anchor: a private CA
         * file may hold an intermediate under a constrained root. */
        for (int depth = 0; ok && depth < 8; depth++) {
            if (gnutls_x509_trust_list_get_issuer(trust, crt, &issuer, GNUTLS_TL_GET_COPY) < 0)
                break;
            ok = ca_permits(issuer, form);
            int anchor = gnutls_x509_crt_check_issuer(issuer, issuer) == 1;
            gnutls_x509_crt_deinit(crt);
            crt = issuer;
            if (anchor)
                break;
        }
        gnutls_x509_crt_deinit(crt);
    }
    return ok;
}

/* 1 if the peer's certificate has an XmppAddr SAN equal to domain and
 * allowed by its issuers' name constraints; -1 if it has one equal to
 * domain but outside them; 0 if it has none equal to domain. */
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
        for (unsigned seq = 0; found <= 0; seq++) {
            char name[1024];
            size_t size = sizeof name;
            int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, name, &size, NULL);
            if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
                continue; /* longer than any domain: not ours */
            if (type < 0)
                break;
            /* gnutls decodes the UTF8String of id-on-xmppAddr for us. */
            if (type == GNUTLS_SAN_OTHERNAME_XMPP && memchr(name, '\0', size) == NULL &&
                same_domain(name, size, domain))
                found = xmppaddr_within_constraints(s, name, size) ? 1 : -1;
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
    /* gnutls knows no XmppAddr: a name mismatch may still be a match,
     * if the CAs that vouch for it may vouch for that name. */
    if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
        int m = xmppaddr_matches(s, domain);
        if (m != 0)
            status &= ~(unsigned)GNUTLS_CERT_UNEXPECTED_OWNER;
        if (m < 0)
            status |= GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE;
    }
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
