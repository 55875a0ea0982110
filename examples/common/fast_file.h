/* examples/common/fast_file.h — keeps a connection's FAST token (XEP-0484)
 * in a file between runs, with the user-agent id the server files it
 * under: epode-send --fast-token-file. */
#ifndef EXAMPLES_FAST_FILE_H
#define EXAMPLES_FAST_FILE_H

#include <epode.h>

/* Reads `path` if it exists (a missing file is an empty store), sets the
 * connection's user-agent id from it (or keeps the one epode makes, to
 * be written with the first token), and installs load/store hooks: the
 * stored token is offered at every connect, and every new token replaces
 * the file atomically (mode 0600); a token the server refuses is removed
 * from it. `path` is kept by pointer. Returns 0, or -1 with a message on
 * stderr (unreadable or malformed file). */
int fast_file_use(epode_conn_t *conn, const char *path);

/* Wipes what was read (the token) from memory. */
void fast_file_done(void);

#endif
