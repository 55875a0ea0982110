/* tests/integration/im_roster_probe.c — logs in, lets the roster helper
 * fetch the roster (with a cached version when given a cache file), makes
 * the changes asked for, and prints what happened, one fact per line:
 *
 *   ready FULLJID
 *   sent-ver VER | sent-ver -        (the ver of each roster get sent)
 *   store full=0|1 count=N ver=VER|-   (each call of the cache's store hook)
 *   event added|updated|removed JID
 *   received
 *   result add|remove JID ok | result add|remove JID COND
 *   item JID<TAB>SUB<TAB>ASK<TAB>NAME<TAB>GROUPS   (the final roster)
 *   ver VER|-
 *   done
 *
 *   im_roster_probe --server HOST --port N --ca-file FILE --jid JID
 *       --password P [--cache FILE] [--assume-versioning]
 *       [--add JID NAME GROUPS]... [--remove JID]... [--timeout S] [--verbose]
 *
 * --cache FILE is read before the first fetch (if it exists) and written
 * with the final roster and version at the end; --assume-versioning sends
 * ver="" when there is nothing cached. GROUPS is comma-separated ("-":
 * none). Exit 0 if the roster arrived, every change was accepted and its
 * push seen, and the stream closed cleanly; else 1. Public API only. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OPS 16

typedef struct op {
    struct probe *probe;
    int remove;
    const char *jid, *name;
    char groups[256];
    int answered, ok, pushed;
} op;

typedef struct probe {
    const char *server, *ca_file, *jid, *password, *cache;
    unsigned port;
    int assume_ver, verbose;
    long timeout_s;
    op ops[MAX_OPS];
    int nops;

    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode_roster_t *roster;
    int received, started, failed, finished;
    long deadline;
} probe;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void usage(const char *why)
{
    fprintf(stderr, "im_roster_probe: %s\n", why);
    exit(64);
}

/* ---- the cache file ---------------------------------------------------- */

static epode_roster_sub_t sub_from(const char *s)
{
    static const epode_roster_sub_t all[] = {EPODE_ROSTER_SUB_NONE, EPODE_ROSTER_SUB_TO,
                                             EPODE_ROSTER_SUB_FROM, EPODE_ROSTER_SUB_BOTH};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(epode_roster_sub_name(all[i]), s))
            return all[i];
    return EPODE_ROSTER_SUB_NONE;
}

static int load_cache(epode_roster_t *r, void *user)
{
    probe *p = user;
    FILE *f = p->cache ? fopen(p->cache, "r") : NULL;
    if (!f) {
        if (p->assume_ver)
            epode_roster_load_ver(r, "");
        return 0;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *fields[6] = {0};
        int n = 0;
        for (char *s = line; n < 6;) {
            fields[n++] = s;
            char *t = strchr(s, '\t');
            if (!t)
                break;
            *t = '\0';
            s = t + 1;
        }
        if (n == 2 && !strcmp(fields[0], "ver")) {
            epode_roster_load_ver(r, fields[1]);
        } else if (n == 6 && !strcmp(fields[0], "item")) {
            const char *groups[32];
            size_t ng = 0;
            for (char *g = strtok(fields[5], ","); g && ng < 32; g = strtok(NULL, ","))
                groups[ng++] = g;
            epode_roster_load_item(r, fields[1], *fields[4] ? fields[4] : NULL,
                                   sub_from(fields[2]), atoi(fields[3]), groups, ng);
        }
    }
    fclose(f);
    printf("loaded count=%zu ver=%s\n", epode_roster_count(r),
           epode_roster_ver(r) ? epode_roster_ver(r) : "-");
    return 0;
}

static void store_cache(epode_roster_t *r, const char *ver, int full,
                        const epode_roster_item_t *const *items, size_t count, void *user)
{
    (void)r;
    (void)items;
    (void)user;
    printf("store full=%d count=%zu ver=%s\n", full, count, ver ? ver : "-");
}

static void print_item(FILE *f, const char *prefix, const epode_roster_item_t *it)
{
    fprintf(f, "%s\t%s\t%s\t%d\t%s\t", prefix, epode_roster_item_jid(it),
            epode_roster_sub_name(epode_roster_item_subscription(it)), epode_roster_item_ask(it),
            epode_roster_item_name(it) ? epode_roster_item_name(it) : "");
    for (size_t g = 0; g < epode_roster_item_group_count(it); g++)
        fprintf(f, "%s%s", g ? "," : "", epode_roster_item_group(it, g));
    fputc('\n', f);
}

static void write_cache(probe *p)
{
    if (!p->cache)
        return;
    FILE *f = fopen(p->cache, "w");
    if (!f)
        return;
    if (epode_roster_ver(p->roster))
        fprintf(f, "ver\t%s\n", epode_roster_ver(p->roster));
    for (size_t i = 0; i < epode_roster_count(p->roster); i++)
        print_item(f, "item", epode_roster_item_at(p->roster, i));
    fclose(f);
}

/* ---- running ------------------------------------------------------------ */

static void maybe_finish(probe *p)
{
    if (p->finished || !p->received)
        return;
    for (int i = 0; i < p->nops; i++)
        if (!p->ops[i].answered || (p->ops[i].ok && !p->ops[i].pushed))
            return;
    p->finished = 1;
    for (size_t i = 0; i < epode_roster_count(p->roster); i++) {
        const epode_roster_item_t *it = epode_roster_item_at(p->roster, i);
        printf("item %s\t%s\t%d\t%s\t", epode_roster_item_jid(it),
               epode_roster_sub_name(epode_roster_item_subscription(it)),
               epode_roster_item_ask(it), epode_roster_item_name(it) ? epode_roster_item_name(it) : "");
        for (size_t g = 0; g < epode_roster_item_group_count(it); g++)
            printf("%s%s", g ? "," : "", epode_roster_item_group(it, g));
        printf("\n");
    }
    printf("ver %s\n", epode_roster_ver(p->roster) ? epode_roster_ver(p->roster) : "-");
    write_cache(p);
    printf("done\n");
    fflush(stdout);
    epode_conn_close(p->conn);
}

static void on_result(epode_roster_t *r, int status, epode_stanza_cond_t cond, const char *text,
                      void *user)
{
    (void)r;
    (void)text;
    op *o = user;
    o->answered = 1;
    o->ok = status == 0 && cond == EPODE_COND_NONE;
    printf("result %s %s %s\n", o->remove ? "remove" : "add", o->jid,
           o->ok ? "ok" : status < 0 ? epode_err_name(status) : epode_stanza_cond_name(cond));
    fflush(stdout);
    maybe_finish(o->probe); /* the push may have come first (ejabberd) */
}

static void on_roster(epode_roster_t *r, epode_roster_event_t ev, const epode_roster_item_t *it,
                      void *user)
{
    probe *p = user;
    static const char *const names[] = {"", "received", "added", "updated", "removed",
                                        "fetch-failed"};
    if (it)
        printf("event %s %s\n", names[ev], epode_roster_item_jid(it));
    else
        printf("%s\n", names[ev]);
    if (ev == EPODE_ROSTER_FETCH_FAILED) {
        p->failed = 1;
        epode_conn_close(p->conn);
        return;
    }
    if (it) {
        for (int i = 0; i < p->nops; i++)
            if (epode_jid_str_equal(p->ops[i].jid, epode_roster_item_jid(it), 0) &&
                (ev == EPODE_ROSTER_REMOVED) == p->ops[i].remove)
                p->ops[i].pushed = 1;
    }
    if (ev == EPODE_ROSTER_RECEIVED && !p->started) {
        p->received = 1;
        p->started = 1;
        for (int i = 0; i < p->nops; i++) {
            op *o = &p->ops[i];
            const char *groups[32];
            size_t ng = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", o->groups);
            if (strcmp(buf, "-") != 0)
                for (char *g = strtok(buf, ","); g && ng < 32; g = strtok(NULL, ","))
                    groups[ng++] = g;
            int rc = o->remove ? epode_roster_remove(r, o->jid, on_result, o)
                               : epode_roster_add(r, o->jid, o->name, groups, ng, on_result, o);
            if (rc < 0) {
                printf("result %s %s %s\n", o->remove ? "remove" : "add", o->jid,
                       epode_err_name(rc));
                o->answered = 1;
            }
        }
    }
    fflush(stdout);
    maybe_finish(p);
}

static int on_sent_get(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    (void)user;
    epode_stanza_t *q = epode_stanza_find_child(st, "query", EPODE_NS_ROSTER);
    const char *ver = q ? epode_stanza_get_attr(q, "ver") : NULL;
    printf("sent-ver %s\n", ver ? (*ver ? ver : "\"\"") : "-");
    return EPODE_PASS;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    probe *p = user;
    if (ev == EPODE_CONN_READY) {
        printf("ready %s\n", epode_conn_bound_jid(conn));
        fflush(stdout);
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        printf("disconnected %s\n", epode_conn_error_text(conn));
        fflush(stdout);
        epode_ctx_stop(p->ctx);
    }
}

static int on_tick(epode_conn_t *conn, void *user)
{
    probe *p = user;
    if (now_ms() > p->deadline) {
        printf("timeout\n");
        fflush(stdout);
        p->failed = 1;
        epode_conn_close(conn);
        return 0;
    }
    return 1;
}

static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user;
    (void)level;
    fprintf(stderr, "[%s] %s\n", area, msg);
}

int main(int argc, char **argv)
{
    probe p = {.timeout_s = 20};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = argc - i - 1;
        if (!strcmp(a, "--assume-versioning")) p.assume_ver = 1;
        else if (!strcmp(a, "--verbose")) p.verbose = 1;
        else if (!strcmp(a, "--server") && more) p.server = argv[++i];
        else if (!strcmp(a, "--port") && more) p.port = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--ca-file") && more) p.ca_file = argv[++i];
        else if (!strcmp(a, "--jid") && more) p.jid = argv[++i];
        else if (!strcmp(a, "--password") && more) p.password = argv[++i];
        else if (!strcmp(a, "--cache") && more) p.cache = argv[++i];
        else if (!strcmp(a, "--timeout") && more) p.timeout_s = atol(argv[++i]);
        else if (!strcmp(a, "--add") && more >= 3 && p.nops < MAX_OPS) {
            op *o = &p.ops[p.nops++];
            o->probe = &p;
            o->jid = argv[++i];
            o->name = argv[++i];
            snprintf(o->groups, sizeof o->groups, "%s", argv[++i]);
        } else if (!strcmp(a, "--remove") && more && p.nops < MAX_OPS) {
            op *o = &p.ops[p.nops++];
            o->probe = &p;
            o->remove = 1;
            o->jid = argv[++i];
        } else usage(a);
    }
    if (!p.jid || !p.password)
        usage("--jid and --password are required");
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &p.ctx) < 0 ||
        epode_conn_new(p.ctx, &p.conn) < 0)
        return 1;
    if (p.verbose)
        epode_ctx_set_log(p.ctx, EPODE_LOG_XML, on_log, NULL);
    epode_conn_set_jid(p.conn, p.jid);
    epode_conn_set_password(p.conn, p.password);
    if (p.server)
        epode_conn_set_server(p.conn, p.server, p.port);
    if (p.ca_file)
        epode_conn_set_ca_file(p.conn, p.ca_file);
    epode_conn_add_event_cb(p.conn, on_event, &p, NULL);
    epode_roster_cache_t cache = {.load = load_cache, .store = store_cache, .user = &p};
    if (epode_roster_new(p.conn, &p.roster) < 0 ||
        epode_roster_set_event_cb(p.roster, on_roster, &p) < 0 ||
        epode_roster_set_cache(p.roster, &cache) < 0 ||
        epode_conn_add_filter(p.conn, "iq", EPODE_NS_ROSTER, "get", on_sent_get, &p, NULL) < 0)
        return 1;
    p.deadline = now_ms() + p.timeout_s * 1000;
    epode_conn_add_timer(p.conn, 200, on_tick, &p, NULL);
    if (epode_conn_connect(p.conn) < 0)
        return 1;
    epode_ctx_run(p.ctx);
    int ok = p.finished && !p.failed && epode_conn_reason(p.conn) == EPODE_REASON_CLOSED;
    for (int i = 0; i < p.nops; i++)
        ok = ok && p.ops[i].ok;
    epode_roster_free(p.roster);
    epode_conn_free(p.conn);
    epode_ctx_free(p.ctx);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
