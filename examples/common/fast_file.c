/* examples/common/fast_file.c — a FAST token store in one file (see
 * fast_file.h). The file is a credential: written with mode 0600 through
 * a temporary file in the same directory and rename(), so a crash leaves
 * the old token or the new one, never half of either; the token is wiped
 * from this program's memory when replaced and at the end. Format, one
 * "key value" per line:
 *   user-agent UUID / jid BARE-JID / mechanism HT-SHA-256-… /
 *   expiry DATE-TIME (or -) / token SECRET */
#include "fast_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fast_file {
    char *path;
    int report;
    char ua[64], jid[1024], mech[64], expiry[64];
    char token[1024];
};

static void wipe_token(fast_file_t *ff)
{
    explicit_bzero(ff->token, sizeof ff->token);
}

void fast_file_free(fast_file_t *ff)
{
    if (!ff)
        return;
    wipe_token(ff);
    free(ff->path);
    free(ff);
}

static int load_cb(epode_conn_t *conn, const char *jid, epode_fast_token_t *out, void *user)
{
    (void)jid;
    fast_file_t *ff = user;
    if (!ff->token[0])
        return 0;
    /* filed under another user-agent id (the application gave its own):
     * the server would refuse it; the next token is kept under this one */
    const char *ua = epode_conn_get_user_agent_id(conn);
    if (ff->ua[0] && ua && strcmp(ff->ua, ua) != 0)
        return 0;
    out->jid = ff->jid;
    out->mechanism = ff->mech;
    out->token = ff->token;
    out->expiry = ff->expiry[0] ? ff->expiry : NULL;
    return 1;
}

static int write_file(fast_file_t *ff)
{
    char tmp[4096];
    const char *slash = strrchr(ff->path, '/');
    int dirlen = slash ? (int)(slash - ff->path) + 1 : 0;
    snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", dirlen, ff->path,
             slash ? slash + 1 : ff->path);
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0)
        return -1;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "# FAST token (XEP-0484) of epode: a credential, keep it like a password\n"
                     "user-agent %s\n", ff->ua);
    if (ff->token[0])
        n += snprintf(buf + n, sizeof buf - (size_t)n, "jid %s\nmechanism %s\nexpiry %s\ntoken %s\n",
                      ff->jid, ff->mech, ff->expiry[0] ? ff->expiry : "-", ff->token);
    int ok = n > 0 && (size_t)n < sizeof buf && write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    explicit_bzero(buf, sizeof buf);
    if (close(fd) != 0)
        ok = 0;
    if (!ok || rename(tmp, ff->path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* 1 when s has a control character (a newline would add lines, and keys,
 * to the file). */
static int has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void store_cb(epode_conn_t *conn, const epode_fast_token_t *t, void *user)
{
    fast_file_t *ff = user;
    if (t->token && (has_control(t->token) || has_control(t->jid) ||
                     has_control(t->mechanism) || has_control(t->expiry))) {
        fprintf(stderr, "epode: a FAST token with control characters; not stored\n");
        return;
    }
    wipe_token(ff);
    ff->mech[0] = ff->expiry[0] = '\0';
    if (t->token) {
        snprintf(ff->jid, sizeof ff->jid, "%s", t->jid);
        snprintf(ff->mech, sizeof ff->mech, "%s", t->mechanism);
        snprintf(ff->expiry, sizeof ff->expiry, "%s", t->expiry ? t->expiry : "");
        if (strlen(t->token) >= sizeof ff->token) {
            fprintf(stderr, "epode: FAST token too long to keep; not stored\n");
        } else {
            snprintf(ff->token, sizeof ff->token, "%s", t->token);
        }
    }
    const char *ua = epode_conn_get_user_agent_id(conn);
    snprintf(ff->ua, sizeof ff->ua, "%s", ua ? ua : "");
    if (write_file(ff) < 0 && ff->report)
        fprintf(stderr, "epode: could not write the FAST token file %s: %s\n", ff->path,
                strerror(errno));
}

fast_file_t *fast_file_use(epode_conn_t *conn, const char *path, int report, char *err,
                           size_t errlen)
{
    fast_file_t *ff = calloc(1, sizeof *ff);
    if (!ff || !(ff->path = strdup(path))) {
        free(ff);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ff->report = report;
    /* the whole file, read with read(2) into a buffer wiped afterwards (no
     * stdio buffer left holding the token) */
    char buf[8192];
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot read the FAST token file %s: %s", path, strerror(errno));
        fast_file_free(ff);
        return NULL;
    }
    int bad = 0;
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s is not a regular file", path);
            close(fd);
            fast_file_free(ff);
            return NULL;
        }
        if (st.st_mode & 077)
            fprintf(stderr, "epode: warning: the FAST token file %s can be read by others "
                            "(mode %03o): it holds a credential; chmod 600 it\n",
                    path, (unsigned)(st.st_mode & 0777));
        ssize_t n;
        while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(err, errlen, "cannot read the FAST token file %s: %s", path,
                         strerror(errno));
                explicit_bzero(buf, sizeof buf);
                close(fd);
                fast_file_free(ff);
                return NULL;
            }
            len += (size_t)n;
        }
        close(fd);
        bad = len == sizeof buf; /* far more than a token file holds */
    }
    for (size_t at = 0; !bad && at < len;) {
        char *line = buf + at, *nl = memchr(line, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - line) : len - at;
        at += ll + 1;
        line[ll] = '\0'; /* the newline, or the byte after the data (len < sizeof buf) */
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (strlen(line) != ll || has_control(line)) {
            bad = 1; /* a NUL or another control inside a line */
            break;
        }
        if (!line[0] || line[0] == '#')
            continue;
        char *v = strchr(line, ' ');
        if (!v) {
            bad = 1;
            continue;
        }
        *v++ = '\0';
        struct { const char *key; char *dst; size_t size; } keys[] = {
            {"user-agent", ff->ua, sizeof ff->ua}, {"jid", ff->jid, sizeof ff->jid},
            {"mechanism", ff->mech, sizeof ff->mech},
            {"expiry", ff->expiry, sizeof ff->expiry},
            {"token", ff->token, sizeof ff->token},
        };
        int known = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (!strcmp(line, keys[i].key)) {
                known = strlen(v) < keys[i].size;
                if (known)
                    snprintf(keys[i].dst, keys[i].size, "%s", v);
            }
        bad |= !known;
    }
    explicit_bzero(buf, sizeof buf);
    if (!strcmp(ff->expiry, "-"))
        ff->expiry[0] = '\0';
    if (bad || (ff->token[0] && (!ff->jid[0] || !ff->mech[0]))) {
        snprintf(err, errlen, "%s is not a FAST token file", path);
        fast_file_free(ff);
        return NULL;
    }
    if (ff->ua[0] && epode_conn_set_user_agent(conn, ff->ua, NULL, NULL) < 0) {
        snprintf(err, errlen, "%s: the user-agent id is not a UUID", path);
        fast_file_free(ff);
        return NULL;
    }
    if (epode_conn_set_fast(conn, 1, load_cb, store_cb, ff) < 0) {
        snprintf(err, errlen, "could not set the FAST token store");
        fast_file_free(ff);
        return NULL;
    }
    return ff;
}
