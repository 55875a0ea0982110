/* lib/util/errors.c — names and sentences for the error codes, generated
 * from the one list in epode/common.h. */
#include "epode/common.h"

const char *epode_strerror(int err)
{
    if (err == 0)
        return "success";
    switch (err) {
#define EPODE__ERR_TEXT(name, code, text) case code: return text;
        EPODE_ERRORS(EPODE__ERR_TEXT)
#undef EPODE__ERR_TEXT
    }
    return "unknown error";
}

const char *epode_err_name(int err)
{
    if (err == 0)
        return "OK";
    switch (err) {
#define EPODE__ERR_NAME(name, code, text) case code: return #name;
        EPODE_ERRORS(EPODE__ERR_NAME)
#undef EPODE__ERR_NAME
    }
    return "UNKNOWN";
}

const char *epode_version(void)
{
    return EPODE_VERSION_STRING;
}
