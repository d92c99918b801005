/* Process identity, time, uname, randomness, limits, terminal ioctls. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Evaluate, then print the result and (on failure) errno's text. */
#define SHOW(label, expr) do { long r_ = (long)(expr); int e_ = errno; \
    printf("%s: %ld%s%s\n", label, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(e_) : ""); } while (0)

int main(void)
{
    struct utsname u;
    uname(&u);
    printf("uname: %s\n", u.sysname);
    printf("pid ok: %d\n", getpid() > 1 && getppid() > 0);
    printf("uid: %d %d\n", getuid() == geteuid(), getgid() == getegid());
    struct timespec t1, t2, res;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct timespec req = { 0, 20 * 1000 * 1000 };
    printf("nanosleep: %d\n", nanosleep(&req, NULL));
    clock_gettime(CLOCK_MONOTONIC, &t2);
    long ms = (t2.tv_sec - t1.tv_sec) * 1000 + (t2.tv_nsec - t1.tv_nsec) / 1000000;
    printf("slept >= 20ms: %d\n", ms >= 20);
    printf("getres: %d\n", clock_getres(CLOCK_REALTIME, &res));
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("time sane: %d\n", tv.tv_sec > 1600000000 && labs(time(NULL) - tv.tv_sec) < 5);
    unsigned char rnd[32];
    printf("getrandom: %zd\n", getrandom(rnd, sizeof rnd, 0));
    struct rlimit rl;
    printf("getrlimit: %d\n", getrlimit(RLIMIT_NOFILE, &rl));
    struct winsize ws;
    int fd = open("/dev/null", O_RDWR);
    SHOW("TIOCGWINSZ on /dev/null", ioctl(fd, TIOCGWINSZ, &ws));
    struct termios tio;
    SHOW("tcgetattr on /dev/null", tcgetattr(fd, &tio));
    printf("isatty: %d\n", isatty(fd));
    int p[2];
    pipe(p);
    write(p[1], "12345", 5);
    int avail = -1, rc;
    rc = ioctl(p[0], FIONREAD, &avail);
    printf("FIONREAD: %d %d\n", rc, avail);
    printf("umask: %o\n", umask(022));
    return 0;
}
