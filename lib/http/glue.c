/* lib/http/glue.c — what the HTTP users above conn (lib/im/upload.c) need
 * from a connection and its context: the context's loop, allocator and
 * log, and the connection's trust settings. The one place outside
 * lib/conn that reads conn_int.h, so that an upload's sockets and
 * deadlines ride the same loop as the connection's (external loops
 * included) and its certificates are checked against the same CA file. */
#include "http/glue.h"

#include "conn/conn_int.h"

epode__loop *epode__http_glue_loop(epode_conn_t *conn)
{
    return conn ? conn->ctx->loop : NULL;
}

const char *epode__http_glue_ca_file(const epode_conn_t *conn)
{
    return conn ? conn->ca_file : NULL;
}

const char *epode__http_glue_dns_servers(const epode_conn_t *conn)
{
    return conn ? conn->ctx->dns_servers : NULL;
}
