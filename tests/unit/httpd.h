/* tests/unit/httpd.h — a one-request HTTP server for tests: a thread on
 * a loopback port that reads one request (headers, then Content-Length
 * bytes) and answers from a script, or misbehaves on purpose (never
 * answers, sends an endless body, answers before reading, answers a
 * body byte at a time). */
#ifndef EPODE_TEST_HTTPD_H
#define EPODE_TEST_HTTPD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum srv_mode {
    SRV_ANSWER,
    SRV_SILENT,
    SRV_ENDLESS,
    SRV_AT_ONCE, /* answers without reading */
    SRV_TRICKLE  /* answers the head, then the body a byte every 250 ms */
};

typedef struct srv {
    int lfd;
    unsigned port;
    pthread_t thread;
    enum srv_mode mode;
    const char *answer; /* sent after the request has been read */
    size_t answer_len;
    char request[1 << 20];
    size_t request_len;
    volatile int stop;
} srv;

static inline size_t content_length(const char *req, size_t headers_end)
{
    const char *p = req;
    while ((p = strcasestr(p, "\r\ncontent-length:")) && (size_t)(p - req) < headers_end)
        return strtoul(p + 17, NULL, 10);
    return 0;
}

static inline void *srv_main(void *arg)
{
    srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* the request: headers, then Content-Length bytes */
    size_t need = s->mode == SRV_AT_ONCE ? 0 : SIZE_MAX;
    while (s->request_len < sizeof s->request - 1 && s->request_len < need) {
        ssize_t n = recv(fd, s->request + s->request_len, sizeof s->request - 1 - s->request_len, 0);
        if (n <= 0)
            break;
        s->request_len += (size_t)n;
        s->request[s->request_len] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        if (end && need == SIZE_MAX) {
            size_t hl = (size_t)(end - s->request) + 4;
            need = hl + content_length(s->request, hl);
        }
    }
    if (s->mode == SRV_SILENT) {
        while (!s->stop)
            usleep(10000);
    } else if (s->mode == SRV_TRICKLE) {
        /* the head at once, then the body (what curl counts as moving) */
        const char *body = strstr(s->answer, "\r\n\r\n");
        size_t i = body ? (size_t)(body + 4 - s->answer) : 0;
        send(fd, s->answer, i, MSG_NOSIGNAL);
        for (; i < s->answer_len && !s->stop; i++) {
            if (send(fd, s->answer + i, 1, MSG_NOSIGNAL) != 1)
                break;
            for (int t = 0; t < 25 && !s->stop; t++)
                usleep(10000);
        }
    } else {
        send(fd, s->answer, s->answer_len, MSG_NOSIGNAL);
        if (s->mode == SRV_ENDLESS) {
            static char zeros[16384];
            while (!s->stop && send(fd, zeros, sizeof zeros, MSG_NOSIGNAL) > 0)
                ;
        }
    }
    close(fd);
    return NULL;
}

static inline srv *srv_start(enum srv_mode mode, const char *answer)
{
    srv *s = calloc(1, sizeof *s);
    s->mode = mode;
    s->answer = answer;
    s->answer_len = answer ? strlen(answer) : 0;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    listen(s->lfd, 4);
    pthread_create(&s->thread, NULL, srv_main, s);
    return s;
}

static inline void srv_stop(srv *s)
{
    s->stop = 1;
    shutdown(s->lfd, SHUT_RDWR); /* wakes an accept() nobody reached */
    pthread_join(s->thread, NULL);
    close(s->lfd);
    free(s);
}

#endif
