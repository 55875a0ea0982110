/* lib/im/message_view.h — the parsed message view (epode_message_t),
 * shared by the IM files that hand views to the application: message.c
 * (live messages), msgext.c (views made from any stanza) and mam.c
 * (archived messages unwrapped from their <forwarded/>). Private to
 * lib/im; applications see only the opaque type and its accessors. A
 * view never owns its stanza unless `owned` says so (views made with
 * epode_message_view_new()). */
#ifndef EPODE_IM_MESSAGE_VIEW_H
#define EPODE_IM_MESSAGE_VIEW_H

#include <epode.h>

struct epode_message {
    epode_stanza_t *st;
    const char *type;             /* normalized */
    const char *stanza_id;        /* trusted only */
    epode_chatstate_t chatstate;
    /* Set when the message was unwrapped from a forward (MAM): the
     * <delay/> of the wrapper and the archive's id. NULL otherwise (the
     * delay is then looked up in the message itself). */
    const epode_stanza_t *delay;
    const char *archive_id;
    /* 1 for an archived message: only the archive's delay counts, never
     * one the message carries itself (its sender could claim any time). */
    int archived;
    /* Views made by epode_message_view_new(): they hold a reference on
     * the stanza and are freed through this allocator. */
    const epode_mem_t *mem;
    int owned;
};

/* Fills `v` for `st` (type normalized, chat state read; nothing trusted,
 * no delay or archive id). Defined in message.c. */
void epode__message_view_init(struct epode_message *v, epode_stanza_t *st);

#endif
