/* lib/stanza/conditions.c — RFC 6120 stream and stanza error conditions:
 * names both ways and each stanza condition's usual error type. Tables
 * come from the X-macros in epode/stanza.h. */
#include <string.h>

#include "epode/stanza.h"

static const char *const stream_names[] = {
    "none",
#define NAME(id, name) name,
    EPODE_STREAM_CONDITIONS(NAME)
#undef NAME
};

const char *epode_stream_cond_name(epode_stream_cond_t cond)
{
    if ((int)cond < 0 || cond >= EPODE_STREAM__COUNT)
        return NULL;
    return stream_names[cond];
}

epode_stream_cond_t epode_stream_cond_from_name(const char *name)
{
    if (!name)
        return EPODE_STREAM_NONE;
    for (int i = 1; i < EPODE_STREAM__COUNT; i++)
        if (strcmp(stream_names[i], name) == 0)
            return (epode_stream_cond_t)i;
    return EPODE_STREAM_NONE;
}

static const char *const stanza_names[] = {
    NULL,
#define NAME(id, name, type) name,
    EPODE_STANZA_CONDITIONS(NAME)
#undef NAME
};

static const epode_error_type_t stanza_types[] = {
    EPODE_ERRTYPE_DEFAULT,
#define TYPE(id, name, type) EPODE_ERRTYPE_##type,
    EPODE_STANZA_CONDITIONS(TYPE)
#undef TYPE
};

const char *epode_stanza_cond_name(epode_stanza_cond_t cond)
{
    if ((int)cond <= 0 || cond >= EPODE_COND__COUNT)
        return NULL;
    return stanza_names[cond];
}

epode_stanza_cond_t epode_stanza_cond_from_name(const char *name)
{
    if (!name)
        return EPODE_COND_NONE;
    for (int i = 1; i < EPODE_COND__COUNT; i++)
        if (strcmp(stanza_names[i], name) == 0)
            return (epode_stanza_cond_t)i;
    return EPODE_COND_NONE;
}

epode_error_type_t epode_stanza_cond_default_type(epode_stanza_cond_t cond)
{
    if ((int)cond <= 0 || cond >= EPODE_COND__COUNT)
        return EPODE_ERRTYPE_CANCEL;
    return stanza_types[cond];
}

static const char *const type_names[] = {NULL, "auth", "cancel", "continue", "modify", "wait"};

const char *epode_error_type_name(epode_error_type_t type)
{
    if ((int)type <= 0 || type > EPODE_ERRTYPE_WAIT)
        return NULL;
    return type_names[type];
}

epode_error_type_t epode_error_type_from_name(const char *name)
{
    if (!name)
        return EPODE_ERRTYPE_DEFAULT;
    for (int i = 1; i <= EPODE_ERRTYPE_WAIT; i++)
        if (strcmp(type_names[i], name) == 0)
            return (epode_error_type_t)i;
    return EPODE_ERRTYPE_DEFAULT;
}
