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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    const char *path;
    char ua[64], jid[1024], mech[64], expiry[64];
    char token[1024];
} store;

static void wipe_token(void)
{
    explicit_bzero(store.token, sizeof store.token);
}

void fast_file_done(void)
{
    wipe_token();
}

static int load_cb(epode_conn_t *conn, const char *jid, epode_fast_token_t *out, void *user)
{
    (void)conn;
    (void)jid;
    (void)user;
    if (!store.token[0])
        return 0;
    out->jid = store.jid;
    out->mechanism = store.mech;
    out->token = store.token;
    out->expiry = store.expiry[0] ? store.expiry : NULL;
    return 1;
}

static int write_file(void)
{
    char tmp[4096];
    const char *slash = strrchr(store.path, '/');
    int dirlen = slash ? (int)(slash - store.path) + 1 : 0;
    snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", dirlen, store.path,
             slash ? slash + 1 : store.path);
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0)
        return -1;
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "# FAST token (XEP-0484) of epode: a credential, keep it like a password\n"
                     "user-agent %s\n", store.ua);
    if (store.token[0])
        n += snprintf(buf + n, sizeof buf - (size_t)n, "jid %s\nmechanism %s\nexpiry %s\ntoken %s\n",
                      store.jid, store.mech, store.expiry[0] ? store.expiry : "-", store.token);
    int ok = n > 0 && (size_t)n < sizeof buf && write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    explicit_bzero(buf, sizeof buf);
    if (close(fd) != 0)
        ok = 0;
    if (!ok || rename(tmp, store.path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void store_cb(epode_conn_t *conn, const epode_fast_token_t *t, void *user)
{
    (void)user;
    wipe_token();
    store.mech[0] = store.expiry[0] = '\0';
    if (t->token) {
        snprintf(store.jid, sizeof store.jid, "%s", t->jid);
        snprintf(store.mech, sizeof store.mech, "%s", t->mechanism);
        snprintf(store.expiry, sizeof store.expiry, "%s", t->expiry ? t->expiry : "");
        if (strlen(t->token) >= sizeof store.token) {
            fprintf(stderr, "epode: FAST token too long to keep; not stored\n");
        } else {
            snprintf(store.token, sizeof store.token, "%s", t->token);
        }
    }
    const char *ua = epode_conn_get_user_agent_id(conn);
    snprintf(store.ua, sizeof store.ua, "%s", ua ? ua : "");
    if (write_file() < 0)
        fprintf(stderr, "epode: could not write the FAST token file %s: %s\n", store.path,
                strerror(errno));
}

int fast_file_use(epode_conn_t *conn, const char *path)
{
    memset(&store, 0, sizeof store);
    store.path = path;
    FILE *f = fopen(path, "r");
    if (!f && errno != ENOENT) {
        fprintf(stderr, "epode: cannot read the FAST token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int bad = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *v = strchr(line, ' ');
        if (!v) {
            bad = 1;
            continue;
        }
        *v++ = '\0';
        struct { const char *key; char *dst; size_t size; } keys[] = {
            {"user-agent", store.ua, sizeof store.ua}, {"jid", store.jid, sizeof store.jid},
            {"mechanism", store.mech, sizeof store.mech},
            {"expiry", store.expiry, sizeof store.expiry},
            {"token", store.token, sizeof store.token},
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
    explicit_bzero(line, sizeof line);
    if (f)
        fclose(f);
    if (!strcmp(store.expiry, "-"))
        store.expiry[0] = '\0';
    if (bad || (store.token[0] && (!store.jid[0] || !store.mech[0]))) {
        fprintf(stderr, "epode: %s is not a FAST token file\n", path);
        wipe_token();
        return -1;
    }
    if (store.ua[0] && epode_conn_set_user_agent(conn, store.ua, NULL, NULL) < 0) {
        fprintf(stderr, "epode: %s: the user-agent id is not a UUID\n", path);
        wipe_token();
        return -1;
    }
    return epode_conn_set_fast(conn, 1, load_cb, store_cb, NULL) < 0 ? -1 : 0;
}
