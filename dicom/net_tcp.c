/* net_tcp.c - plain TCP: listening, accepting, connecting, and the TCP
 * transport. Every DICOM socket gets TCP_NODELAY: a DIMSE exchange is a
 * small request and a small response, the pattern on which Nagle's
 * algorithm and delayed ACKs together cost ~40 ms per round trip. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "address:port" (IPv6 in brackets) of a socket address. */
static void describe_address(const struct sockaddr *sa, char out[64])
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(out, 64, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(out, 64, "[%s]:%u", host, port);
    } else {
        snprintf(out, 64, "unknown");
    }
}

static int set_nodelay(int fd)
{
    int on = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

int dcm_tcp_listen(const char *address, const char *port, int backlog,
                   dcm_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(address && *address ? address : NULL, port, &hints,
                          &found);
    if (gai != 0)
        return dcm_fail(err, DCM_E_ARG, -1, "cannot listen on %s:%s: %s",
                        address ? address : "*", port, gai_strerror(gai));
    int fd = -1, saved_errno = 0;
    for (struct addrinfo *ai = found; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, backlog) < 0) {
            saved_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot listen on %s:%s: %s",
                        address && *address ? address : "*", port,
                        strerror(saved_errno));
    return fd;
}

int dcm_tcp_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int dcm_tcp_accept(int listen_fd, char peer[64], dcm_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;
    do {
        fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "accept failed: %s",
                        strerror(errno));
    set_nodelay(fd);
    describe_address((struct sockaddr *)&ss, peer);
    return fd;
}

/* Waits for a non-blocking connect to finish within timeout_ms. */
static int finish_connect(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int ready;
    do {
        ready = poll(&p, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0)
        return -1;
    if (so_error) {
        errno = so_error;
        return -1;
    }
    return 0;
}

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
                    SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
        (errno != EINPROGRESS || finish_connect(fd, timeout_ms) < 0)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    set_nodelay(fd);
    return fd;
}

int dcm_tcp_connect(const char *host, const char *port, int timeout_ms,
                    char peer[64], dcm_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, port, &hints, &found);
    if (gai != 0)
        return dcm_fail(err, DCM_E_ARG, -1, "cannot resolve %s:%s: %s", host,
                        port, gai_strerror(gai));
    int fd = -1, saved_errno = 0;
    for (struct addrinfo *ai = found; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_one(ai, timeout_ms);
        if (fd < 0)
            saved_errno = errno;
        else
            describe_address(ai->ai_addr, peer);
    }
    freeaddrinfo(found);
    if (fd < 0)
        return dcm_fail(err, saved_errno == ETIMEDOUT ? DCM_E_TIMEOUT
                                                      : DCM_E_IO,
                        -1, "cannot connect to %s:%s: %s", host, port,
                        strerror(saved_errno));
    return fd;
}

/* ---- the transport -------------------------------------------------------- */

typedef struct tcp_transport {
    dcm_transport base; /* first: the transport is the tcp_transport */
    int fd;
} tcp_transport;

int dcm_fd_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int ready;
    do {
        ready = poll(&p, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0)
        return DCM_E_IO;
    return ready == 0 ? DCM_E_TIMEOUT : DCM_OK;
}

/* Reads try the socket first and wait only when it has nothing: while
 * data streams in, that is one system call per read instead of two. */
static long tcp_read(dcm_transport *t, void *buf, size_t len, int timeout_ms,
                     dcm_error *err)
{
    tcp_transport *tcp = (tcp_transport *)t;
    for (;;) {
        ssize_t got = recv(tcp->fd, buf, len, MSG_DONTWAIT);
        if (got > 0)
            return (long)got;
        if (got == 0)
            return dcm_fail(err, DCM_E_CLOSED, -1, "%s closed the connection",
                            t->peer);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return dcm_fail(err, errno == ECONNRESET ? DCM_E_CLOSED : DCM_E_IO,
                            -1, "%s: %s", t->peer, strerror(errno));
        int rc = dcm_fd_wait(tcp->fd, POLLIN, timeout_ms);
        if (rc == DCM_E_TIMEOUT)
            return dcm_fail(err, rc, -1, "%s: timed out waiting for data",
                            t->peer);
        if (rc < 0)
            return dcm_fail(err, rc, -1, "%s: %s", t->peer, strerror(errno));
    }
}

static int tcp_write(dcm_transport *t, const void *buf, size_t len,
                     int timeout_ms, dcm_error *err)
{
    tcp_transport *tcp = (tcp_transport *)t;
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t put = send(tcp->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (put > 0) {
            p += put;
            len -= (size_t)put;
            continue;
        }
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0 && errno != EAGAIN)
            return dcm_fail(err, errno == EPIPE || errno == ECONNRESET
                                     ? DCM_E_CLOSED : DCM_E_IO,
                            -1, "%s: %s", t->peer, strerror(errno));
        int rc = dcm_fd_wait(tcp->fd, POLLOUT, timeout_ms);
        if (rc == DCM_E_TIMEOUT)
            return dcm_fail(err, rc, -1, "%s: timed out waiting to send",
                            t->peer);
        if (rc < 0)
            return dcm_fail(err, rc, -1, "%s: %s", t->peer, strerror(errno));
    }
    return DCM_OK;
}

static void tcp_close(dcm_transport *t)
{
    tcp_transport *tcp = (tcp_transport *)t;
    close(tcp->fd);
    free(tcp);
}

static const dcm_transport_ops tcp_ops = {
    .read = tcp_read,
    .write = tcp_write,
    .close = tcp_close,
};

dcm_transport *dcm_tcp_transport(int fd, const char *peer, dcm_error *err)
{
    tcp_transport *tcp = calloc(1, sizeof *tcp);
    if (!tcp) {
        close(fd);
        dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
        return NULL;
    }
    tcp->base.ops = &tcp_ops;
    snprintf(tcp->base.peer, sizeof tcp->base.peer, "%s", peer ? peer : "?");
    tcp->fd = fd;
    return &tcp->base;
}
