/* examples/common/fast_file.h — keeps a connection's FAST token (XEP-0484)
 * in a file between runs, with the user-agent id the server files it
 * under: epode-send --fast-token-file, and the Lua binding's
 * fast_token_file option. */
#ifndef EXAMPLES_FAST_FILE_H
#define EXAMPLES_FAST_FILE_H

#include <stddef.h>

#include <epode.h>

typedef struct fast_file fast_file_t;

/* Reads `path` if it exists (a missing file is an empty store), sets the
 * connection's user-agent id from it (or keeps the one epode makes, to
 * be written with the first token), and installs load/store hooks: the
 * stored token is offered at every connect, and every new token replaces
 * the file atomically (mode 0600); a token the server refuses is removed
 * from it. Returns the store (free it with fast_file_free() after the
 * connection), or NULL with a sentence in `err` (unreadable or malformed
 * file, a path that is no regular file — a directory —, out of memory).
 * A file others may read (mode & 077) is used with a warning on stderr.
 * A token whose strings hold control characters is not stored (it would
 * add lines to the file). With `report` set, a failure to write the file
 * later is printed on stderr. */
fast_file_t *fast_file_use(epode_conn_t *conn, const char *path, int report, char *err,
                           size_t errlen);

/* Wipes the token from memory and frees the store. NULL: no-op. */
void fast_file_free(fast_file_t *ff);

#endif
