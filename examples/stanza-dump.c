/* examples/stanza-dump.c — reads an XMPP stream from stdin in whatever
 * chunks arrive and prints each stanza it parses on its own line, as
 * epode serializes it. On a bad stream it prints "error: CONDITION" (the
 * RFC 6120 stream error condition) to stderr and exits 2.
 *
 *   printf '<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">
 *           <message to="a@b"><body>hi</body></message>' | stanza-dump
 *   stanza-dump --help | --version
 */
#include <epode.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int print_failed;

static void on_event(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev != EPODE_PARSER_STANZA)
        return;
    char *text;
    size_t len;
    if (epode_stanza_to_text(el, EPODE_TEXT_IN_STREAM | EPODE_TEXT_ONE_LINE, &text, &len) < 0) {
        print_failed = 1;
        return;
    }
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    epode_free(text);
}

static int report(epode_parser_t *p, int rc)
{
    fflush(stdout);
    epode_stream_cond_t cond = epode_parser_condition(p);
    if (cond != EPODE_STREAM_NONE)
        fprintf(stderr, "error: %s\n", epode_stream_cond_name(cond));
    else
        fprintf(stderr, "error: %s\n", epode_strerror(rc));
    if (getenv("STANZA_DUMP_VERBOSE") && epode_parser_error_text(p)[0])
        fprintf(stderr, "detail: %s\n", epode_parser_error_text(p));
    epode_parser_free(p);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("usage: stanza-dump < STREAM\n\n"
               "Reads an XMPP stream (starting with its stream header) from standard input and\n"
               "prints every stanza on its own line, as epode serializes it. On a bad stream it\n"
               "prints \"error: CONDITION\" (the RFC 6120 stream error condition) on standard\n"
               "error and exits 2; the stanzas before the error are still printed.\n\n"
               "Options:\n"
               "  --help      print this help and exit\n"
               "  --version   print the version and exit\n\n"
               "Environment:\n"
               "  STANZA_DUMP_VERBOSE   when set, also print the parser's detail on an error\n\n"
               "Exit status: 0 for a good stream, 2 for a bad one, 1 on other failures\n"
               "(reading, memory), 64 on bad usage.\n");
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("stanza-dump (epode %s)\n", epode_version());
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc > 1) {
        fprintf(stderr, "stanza-dump: takes no arguments (the stream comes on standard input)\n"
                        "usage: stanza-dump < STREAM   (stanza-dump --help for more)\n");
        return 64;
    }
    epode_parser_t *p;
    if (epode_parser_new(NULL, on_event, NULL, &p) < 0) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    char buf[4096];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "error: reading stdin: %s\n", strerror(errno));
            epode_parser_free(p);
            return 1;
        }
        if (n == 0)
            break;
        long rc = epode_parser_feed(p, buf, (size_t)n);
        if (rc < 0)
            return report(p, (int)rc);
        if (print_failed) {
            fprintf(stderr, "error: out of memory\n");
            epode_parser_free(p);
            return 1;
        }
    }
    int rc = epode_parser_finish(p);
    if (rc < 0)
        return report(p, rc);
    epode_parser_free(p);
    return fflush(stdout) == 0 ? 0 : 1;
}
