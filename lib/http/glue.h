/* lib/http/glue.h — a connection's loop and trust settings for the HTTP
 * users above conn (see glue.c). Built only with libcurl. */
#ifndef EPODE__HTTP_GLUE_H
#define EPODE__HTTP_GLUE_H

#include "epode/conn.h"
#include "loop/loop.h"

/* The loop of the connection's context (borrowed; NULL for NULL). */
epode__loop *epode__http_glue_loop(epode_conn_t *conn);
/* The CA file set with epode_conn_set_ca_file (borrowed, valid until the
 * next set), or NULL: the system store. */
const char *epode__http_glue_ca_file(const epode_conn_t *conn);

/* The DNS servers set with epode_ctx_set_dns_servers (borrowed), or
 * NULL: the system's. */
const char *epode__http_glue_dns_servers(const epode_conn_t *conn);

#endif
