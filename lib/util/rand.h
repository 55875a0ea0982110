/* lib/util/rand.h — random bytes from the kernel, and random ids. */
#ifndef EPODE__RAND_H
#define EPODE__RAND_H

#include <stddef.h>

/* Fills buf with len random bytes. 0, or EPODE_ERANDOM. */
int epode__random(void *buf, size_t len);

/* Writes a random id of `len` base64url characters plus a NUL into
 * out[len + 1]. 0, or EPODE_ERANDOM. */
int epode__random_id(char *out, size_t len);

#endif
