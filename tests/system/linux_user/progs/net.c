/* Sockets (unix and TCP on localhost), poll, select, epoll, sendmsg/recvmsg. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int sv[2];
    printf("socketpair: %d\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct pollfd pfd = { sv[1], POLLIN, 0 };
    printf("poll empty: %d\n", poll(&pfd, 1, 10));
    send(sv[0], "ping", 4, 0);
    printf("poll ready: %d revents=%#x\n", poll(&pfd, 1, 1000), pfd.revents);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sv[1], &rd);
    struct timeval tv = { 1, 0 };
    printf("select: %d isset=%d\n", select(sv[1] + 1, &rd, NULL, NULL, &tv), FD_ISSET(sv[1], &rd));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1122334455667788ULL };
    printf("epoll_ctl: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 1000);
    printf("epoll_wait: %d data=%llx events=%#x\n", n, (unsigned long long)out[0].data.u64, out[0].events);
    char buf[64] = {0};
    ssize_t got = recv(sv[1], buf, sizeof buf, 0);
    printf("recv: %zd %s\n", got, buf);

    struct iovec iov[2] = { { "scatter", 7 }, { "-gather", 7 } };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
    printf("sendmsg: %zd\n", sendmsg(sv[0], &msg, 0));
    char a[5] = {0}, b[20] = {0};
    struct iovec riov[2] = { { a, 4 }, { b, 19 } };
    struct msghdr rmsg = { .msg_iov = riov, .msg_iovlen = 2 };
    got = recvmsg(sv[1], &rmsg, 0);
    printf("recvmsg: %zd '%s' '%s'\n", got, a, b);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    printf("bind: %d\n", bind(ls, (struct sockaddr *)&sa, sizeof sa));
    printf("listen: %d\n", listen(ls, 4));
    socklen_t len = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &len);
    printf("getsockname: len=%d family=%d port_nonzero=%d\n", len, sa.sin_family, sa.sin_port != 0);
    int type = 0;
    len = sizeof type;
    getsockopt(ls, SOL_SOCKET, SO_TYPE, &type, &len);
    printf("getsockopt SO_TYPE: %d len=%d\n", type, len);
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) _exit(1);
        send(c, "hello over tcp", 14, 0);
        char r[16] = {0};
        recv(c, r, sizeof r, MSG_WAITALL);
        _exit(strcmp(r, "reply") == 0 ? 0 : 2);
    }
    struct sockaddr_in peer;
    len = sizeof peer;
    int c = accept(ls, (struct sockaddr *)&peer, &len);
    printf("accept: %d peer=%s\n", c >= 0, inet_ntoa(peer.sin_addr));
    memset(buf, 0, sizeof buf);
    got = recv(c, buf, 14, MSG_WAITALL);
    printf("tcp recv: %zd %s\n", got, buf);
    send(c, "reply\0\0\0\0\0\0\0\0\0\0\0", 16, 0);
    int st;
    waitpid(pid, &st, 0);
    printf("client status: %d\n", WEXITSTATUS(st));
    struct sockaddr_in from;
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(u1, (struct sockaddr *)&ua, sizeof ua);
    len = sizeof ua;
    getsockname(u1, (struct sockaddr *)&ua, &len);
    printf("sendto: %zd\n", sendto(u2, "dgram", 5, 0, (struct sockaddr *)&ua, sizeof ua));
    len = sizeof from;
    memset(buf, 0, sizeof buf);
    got = recvfrom(u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    printf("recvfrom: %zd %s family=%d\n", got, buf, from.sin_family);
    return 0;
}
