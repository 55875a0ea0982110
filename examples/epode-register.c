/* examples/epode-register.c — creates an XMPP account by in-band
 * registration (XEP-0077), changes its password, or removes it.
 *
 *   epode-register [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *                  --jid JID --password-file FILE
 *                  [--change-password FILE | --remove] [--verbose]
 *   epode-register --help | --version
 *
 * Without --change-password or --remove it registers JID (its localpart
 * is the username) with the password in FILE: the stream stops after TLS,
 * before authentication, and the server's registration form is filled
 * in. A server that asks for more (an e-mail address, a CAPTCHA) gets it
 * from the terminal when stdin is one; otherwise the program fails and
 * names what was asked. With --change-password NEWFILE it logs in with
 * the password in FILE and sets the one in NEWFILE; with --remove it logs
 * in and removes the account.
 *
 * Prints nothing on success (exit 0); on failure one line on stderr —
 * "epode-register: conflict: already registered" — and exit 1; bad
 * usage exits 64. */
#include <epode.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"

typedef struct app {
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode_register_t *reg;
    const char *username;
    const char *password;     /* for registration, or the current one */
    const char *new_password; /* --change-password */
    int remove;
    int done;                 /* 1: success, -1: failure */
    char why[600];
} app;

/* Asks the terminal for each required field still empty; 0 when all got
 * a value. Without a terminal: names what the server wants. */
static int on_fill(epode_register_t *reg, epode_form_t *form, void *user)
{
    app *a = user;
    const char *oob = epode_register_oob_url(reg);
    int tty = isatty(0);
    if (oob && epode_form_field_count(form) == 0) {
        snprintf(a->why, sizeof a->why, "the server registers accounts on a web page: %s", oob);
        return EPODE_EINVAL;
    }
    if (tty && epode_form_get_title(form))
        fprintf(stderr, "%s\n", epode_form_get_title(form));
    for (size_t i = 0; tty && i < epode_form_instructions_count(form); i++)
        fprintf(stderr, "%s\n", epode_form_instructions_at(form, i));
    for (size_t i = 0; i < epode_form_field_count(form); i++) {
        epode_form_field_t *f = epode_form_field_at(form, i);
        const char *v = epode_form_field_value(f), *var = epode_form_field_var(f);
        if (!epode_form_field_required(f) || (v && *v) || !var)
            continue;
        const char *label = epode_form_field_label(f) ? epode_form_field_label(f) : var;
        if (!tty) {
            snprintf(a->why, sizeof a->why, "the server also asks for '%s' (%s); run from a "
                     "terminal to answer", var, label);
            return EPODE_EINVAL;
        }
        const epode_stanza_t *media = epode_form_field_media(f);
        if (media) {
            /* a CAPTCHA: show where the challenge is */
            for (epode_stanza_t *u = epode_stanza_first_child(media); u; u = epode_stanza_next(u))
                fprintf(stderr, "  (%s: %s)\n", epode_stanza_get_attr(u, "type") ?
                        epode_stanza_get_attr(u, "type") : "media", epode_stanza_get_text(u));
        }
        fprintf(stderr, "%s: ", label);
        char line[1024];
        if (!fgets(line, sizeof line, stdin)) {
            snprintf(a->why, sizeof a->why, "no answer for '%s'", var);
            return EPODE_EINVAL;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (epode_form_field_set_value(f, line) < 0) {
            snprintf(a->why, sizeof a->why, "'%s' cannot carry that text", var);
            return EPODE_EINVAL;
        }
    }
    return 0;
}

static void on_done(epode_register_t *reg, int status, epode_stanza_cond_t cond, const char *text,
                    void *user)
{
    (void)reg;
    app *a = user;
    if (status == 0 && cond == EPODE_COND_NONE) {
        a->done = 1;
    } else if (status == 0) {
        const char *phrase = epode_register_cond_text(cond);
        if (text && strcmp(text, phrase) != 0)
            snprintf(a->why, sizeof a->why, "%s: %s (%s)", epode_stanza_cond_name(cond), phrase,
                     text);
        else
            snprintf(a->why, sizeof a->why, "%s: %s", epode_stanza_cond_name(cond), phrase);
        a->done = -1;
    } else {
        if (!a->why[0])
            snprintf(a->why, sizeof a->why, "%s", text ? text : epode_strerror(status));
        a->done = -1;
    }
    epode_conn_close(a->conn); /* DISCONNECTED ends the loop */
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        int rc;
        if (a->remove)
            rc = epode_register_remove(a->reg, on_done, a);
        else if (a->new_password)
            rc = epode_register_change_password(a->reg, a->password, a->new_password, on_done, a);
        else
            rc = epode_register_account(a->reg, a->username, a->password, on_fill, on_done, a);
        if (rc < 0) {
            snprintf(a->why, sizeof a->why, "could not start: %s", epode_strerror(rc));
            a->done = -1;
            epode_conn_close(conn);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (a->done == 0) {
            snprintf(a->why, sizeof a->why, "%s", epode_conn_error_text(conn));
            a->done = -1;
        }
        epode_ctx_stop(a->ctx);
    }
}

/* The first line of `path` into buf; exits 1 if it cannot be read. */
static void read_password(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "epode-register: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (!fgets(buf, (int)size, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
}

int main(int argc, char **argv)
{
    /* --change-password FILE and --remove are ours; the rest are shared */
    const char *new_file = NULL;
    int remove = 0;
    for (int i = 1; i < argc;) {
        if (!strcmp(argv[i], "--")) {
            break;
        } else if (!strcmp(argv[i], "--remove")) {
            remove = 1;
            memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof *argv);
            argc -= 1;
        } else if (!strcmp(argv[i], "--change-password")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "epode-register: --change-password needs a file\n");
                return 64;
            }
            new_file = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);
            argc -= 2;
        } else {
            i++;
        }
    }
    cli_t o;
    cli_set_help(
        "Creates the account JID with the password in --password-file by in-band\n"
        "registration (XEP-0077): the stream stops after TLS, before logging in, and the\n"
        "server's registration form is filled in (anything more it asks for, such as an\n"
        "e-mail address or a CAPTCHA, is read from the terminal). Or, logged in with\n"
        "that password, changes it or removes the account. A refusal is printed with\n"
        "its condition, e.g. \"conflict: already registered\".",
        "  --change-password FILE log in, then set the password to the first line of FILE\n"
        "  --remove               log in, then remove (cancel) the account\n");
    cli_parse(&o, argc, argv, "[--change-password FILE | --remove]");
    if (o.argc > 0) {
        fprintf(stderr, "epode-register: unexpected argument %s\n", o.argv[0]);
        return 64;
    }
    if (remove && new_file) {
        fprintf(stderr, "epode-register: --change-password and --remove exclude each other\n");
        return 64;
    }
    char username[1024];
    size_t at = strcspn(o.jid, "@/");
    if (o.jid[at] != '@' || at == 0 || at >= sizeof username) {
        fprintf(stderr, "epode-register: the JID needs a username (user@domain): %s\n", o.jid);
        return 64;
    }
    memcpy(username, o.jid, at);
    username[at] = '\0';
    if (!o.password[0]) {
        fprintf(stderr, "epode-register: the password file %s is empty\n", o.password_file);
        return 64;
    }
    char new_password[1024] = "";
    if (new_file) {
        read_password(new_file, new_password, sizeof new_password);
        if (!new_password[0]) {
            fprintf(stderr, "epode-register: the password file %s is empty\n", new_file);
            return 64;
        }
    }

    app a = {.username = username, .password = o.password,
             .new_password = new_file ? new_password : NULL, .remove = remove};
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    epode_conn_set_fast(conn, 0, NULL, NULL, NULL); /* one login: no token to keep */
    a.ctx = ctx;
    a.conn = conn;
    int rc = 0;
    if (!remove && !new_file) /* a new account: stop before logging in */
        rc = epode_conn_set_register(conn, 1, 0);
    if (rc == 0)
        rc = epode_register_new(conn, &a.reg);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_event, &a, NULL);
    if (rc == 0)
        rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "epode-register: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(ctx); /* until DISCONNECTED stops it */
    int ok = a.done == 1;
    epode_register_free(a.reg);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    if (!ok) {
        fprintf(stderr, "epode-register: %s\n", a.why[0] ? a.why : "failed");
        return 1;
    }
    return 0;
}
