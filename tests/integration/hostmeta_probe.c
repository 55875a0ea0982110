/* tests/integration/hostmeta_probe.c — XEP-0156 discovery (lib/http/hostmeta.c)
 * against a real server's host-meta, for test_hostmeta.py. An internal
 * API (linked from the static library) until lib/conn uses it for
 * epode_conn_set_websocket(conn, NULL) / epode_conn_set_bosh(conn, NULL):
 * then the public API covers it and this probe can go.
 *
 * usage: hostmeta_probe DOMAIN PORT CA_FILE
 * prints one line: status=NAME ws=URL|- bosh=URL|- ms=N text=WORDS */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <epode.h>

#include "http/dns.h"
#include "http/hostmeta.h"
#include "http/http.h"
#include "loop/loop.h"

static int done;

static void on_result(void *user, int status, const char *ws, const char *bosh, const char *text)
{
    uint64_t *t0 = user;
    printf("status=%s ws=%s bosh=%s ms=%llu text=%s\n", status ? epode_err_name(status) : "OK",
           ws ? ws : "-", bosh ? bosh : "-", (unsigned long long)(epode__now_ms() - *t0), text);
    done = 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: hostmeta_probe DOMAIN PORT CA_FILE\n");
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    epode_global_init();
    epode__loop *l = NULL;
    epode__http *h = NULL;
    epode__http_dns *d = NULL;
    if (epode__loop_new(NULL, &l) < 0 || epode__http_new(NULL, l, &h) < 0 ||
        epode__http_dns_new(NULL, l, NULL, &d) < 0) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    epode__hostmeta_opts o = {.port = (unsigned)atoi(argv[2]), .ca_file = argv[3]};
    uint64_t t0 = epode__now_ms();
    int rc = epode__hostmeta_lookup(h, d, argv[1], &o, on_result, &t0, NULL);
    if (rc < 0) {
        printf("start=%s\n", epode_err_name(rc));
        return 1;
    }
    while (!done)
        epode__loop_run_once(l, 100);
    epode__http_free(h);
    epode__http_dns_free(d);
    for (int i = 0; i < 3; i++)
        epode__loop_run_once(l, 0);
    epode__loop_free(l);
    return 0;
}
