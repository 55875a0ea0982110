/* lib/transport/cut.c — the output cutter of the message-framed
 * transports (see cut.h): complete top-level elements out of the stream
 * engine's framed output, by tag depth. */
#include "transport/cut.h"

#include "epode/common.h"

#define NO_FRAME ((size_t)-1)

enum cut_state { CUT_TEXT = 0, CUT_LT, CUT_START_TAG, CUT_END_TAG, CUT_QUOTE, CUT_OTHER };

void epode__cut_init(epode__cut *c, const epode_mem_t *mem, epode__cut_element_cb element,
                     epode__cut_space_cb space, void *user)
{
    *c = (epode__cut){.frame_start = NO_FRAME, .element = element, .space = space, .user = user};
    epode__buf_init(&c->out, mem);
}

void epode__cut_free(epode__cut *c)
{
    epode__buf_free(&c->out);
}

/* Scans d[from, len), handing over each complete top-level element (the
 * scanner's state and frame_start carry over between calls, relative to
 * d). *done: the bytes of d fully dealt with (elements and whitespace). */
static int scan(epode__cut *c, const char *d, size_t from, size_t len, size_t *done_out)
{
    int space = 0;
    size_t done = 0, i;
    for (i = from; i < len; i++) {
        char ch = d[i];
        switch (c->state) {
        case CUT_TEXT:
            if (c->depth == 0 && c->frame_start == NO_FRAME) {
                if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
                    /* told at once: an element after it goes out after it */
                    if (!space && c->space) {
                        int rc = c->space(c->user);
                        if (rc < 0)
                            return rc;
                    }
                    space = 1;
                    done = i + 1;
                    continue;
                }
                c->frame_start = i;
            }
            if (ch == '<')
                c->state = CUT_LT;
            break;
        case CUT_LT:
            c->last = 0;
            c->state = ch == '/' ? CUT_END_TAG : (ch == '!' || ch == '?') ? CUT_OTHER : CUT_START_TAG;
            break;
        case CUT_START_TAG:
            if (ch == '\'' || ch == '"') {
                c->quote = ch;
                c->state = CUT_QUOTE;
            } else if (ch == '>') {
                c->state = CUT_TEXT;
                if (c->last != '/')
                    c->depth++;
                else if (c->depth == 0)
                    goto element_done;
            } else {
                c->last = ch;
            }
            break;
        case CUT_QUOTE:
            if (ch == c->quote) {
                c->state = CUT_START_TAG;
                c->last = ch;
            }
            break;
        case CUT_END_TAG:
            if (ch == '>') {
                c->state = CUT_TEXT;
                if (--c->depth <= 0) {
                    c->depth = 0;
                    goto element_done;
                }
            }
            break;
        case CUT_OTHER:
            if (ch == '>')
                c->state = CUT_TEXT;
            break;
        }
        continue;
    element_done: {
        int rc = c->element(c->user, d, c->frame_start, i + 1);
        if (rc < 0)
            return rc;
        done = i + 1;
        c->frame_start = NO_FRAME;
    }
    }
    *done_out = done;
    return 0;
}

int epode__cut_write(epode__cut *c, const void *buf, size_t len, int *lost)
{
    *lost = 0;
    /* Complete elements are handed over from the caller's bytes; only an
     * element cut short waits in `out` for the rest. */
    const char *d = buf;
    size_t dlen = len, from = 0, done = 0;
    if (c->out.len > 0) {
        size_t before = c->out.len;
        epode__buf_append(&c->out, buf, len);
        if (c->out.failed) {
            c->out.failed = 0;
            c->out.len = before;
            return EPODE_ENOMEM;
        }
        epode__buf_mark_secret(&c->out);
        d = c->out.data, dlen = c->out.len, from = c->cut_pos;
    }
    int rc = scan(c, d, from, dlen, &done);
    if (rc < 0)
        return rc;
    if (d == c->out.data) {
        epode__buf_consume(&c->out, done);
    } else if (done < dlen) {
        epode__buf_append(&c->out, d + done, dlen - done);
        if (c->out.failed) {
            c->out.failed = 0;
            c->out.len = 0;
            *lost = 1;
            return EPODE_ENOMEM;
        }
        epode__buf_mark_secret(&c->out);
    }
    if (c->frame_start != NO_FRAME)
        c->frame_start -= done;
    c->cut_pos = c->out.len;
    return 0;
}
