/* prctl, sysinfo, times, getrusage, groups and ids, sendfile, fchown. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <grp.h>
int main(int argc, char **argv) {
    char name[16] = {0};
    printf("prctl set: %d\n", prctl(PR_SET_NAME, "pyqemu-test"));
    prctl(PR_GET_NAME, name);
    printf("prctl get: %s\n", name);
    struct sysinfo si;
    int rc = sysinfo(&si);
    printf("sysinfo: %d procs>0=%d unit=%u\n", rc, si.procs > 0, si.mem_unit);
    struct tms t;
    printf("times ok: %d\n", times(&t) != (clock_t)-1);
    struct rusage ru;
    printf("getrusage: %d\n", getrusage(RUSAGE_SELF, &ru));
    gid_t g[64];
    int n = getgroups(64, g);
    printf("getgroups: %d\n", n >= 0);
    uid_t r, e, s;
    rc = getresuid(&r, &e, &s);
    printf("getresuid: %d same=%d\n", rc, r == getuid());
    printf("getpgrp: %d\n", getpgrp() == getpgid(0));
    int fd = open(argv[0], O_RDONLY);
    int p[2]; pipe(p);
    off_t off = 1;
    ssize_t sent = sendfile(p[1], fd, &off, 3);
    char b[4] = {0}; read(p[0], b, 3);
    printf("sendfile: %zd off=%ld %s\n", sent, (long)off, b);
    printf("chown self: %d\n", fchown(fd, -1, -1));
    return 0;
}
