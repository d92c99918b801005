/* File and directory system calls: the results a program sees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* Evaluate, then print the result and (on failure) errno's text. */
#define SHOW(label, expr) do { long r_ = (long)(expr); int e_ = errno; \
    printf("%s: %ld%s%s\n", label, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(e_) : ""); } while (0)

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

int main(int argc, char **argv)
{
    if (argc < 2 || chdir(argv[1]) != 0) { perror("chdir"); return 1; }
    int fd = open("a.txt", O_CREAT | O_RDWR | O_TRUNC, 0640);
    printf("open: %s\n", fd >= 0 ? "ok" : strerror(errno));
    printf("write: %zd\n", write(fd, "hello, file\n", 12));
    struct iovec iov[2] = { { "abc", 3 }, { "defgh\n", 6 } };
    printf("writev: %zd\n", writev(fd, iov, 2));
    printf("lseek: %ld\n", (long)lseek(fd, 7, SEEK_SET));
    char buf[64] = {0};
    ssize_t got = read(fd, buf, sizeof buf);
    printf("read: %zd '%.*s'\n", got, 5, buf);
    got = pread(fd, buf, 3, 12);
    printf("pread: %zd '%.3s'\n", got, buf);
    struct stat st;
    int rc = fstat(fd, &st);
    printf("fstat: %d size=%ld mode=%o nlink=%ld\n", rc, (long)st.st_size,
           st.st_mode & 07777, (long)st.st_nlink);
    printf("ftruncate: %d\n", ftruncate(fd, 5));
    rc = stat("a.txt", &st);
    printf("stat: %d size=%ld isreg=%d\n", rc, (long)st.st_size, S_ISREG(st.st_mode));
    int fd2 = dup(fd);
    printf("dup: %s\n", fd2 > fd ? "higher" : "lower");
    printf("dup2: %d\n", dup2(fd, 20));
    close(fd2); close(20); close(fd);
    SHOW("close bad", close(fd));
    SHOW("open missing", open("missing", O_RDONLY));
    printf("mkdir: %d\n", mkdir("sub", 0755));
    SHOW("mkdir again", mkdir("sub", 0755));
    printf("rename: %d\n", rename("a.txt", "sub/b.txt"));
    SHOW("access", access("sub/b.txt", R_OK));
    SHOW("access gone", access("a.txt", F_OK));
    printf("symlink: %d\n", symlink("sub/b.txt", "link"));
    char target[64] = {0};
    ssize_t len = readlink("link", target, sizeof target - 1);
    printf("readlink: %zd %s\n", len, target);
    rc = lstat("link", &st);
    printf("lstat link: %d islnk=%d\n", rc, S_ISLNK(st.st_mode));
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "sub/f%d", i);
        close(open(name, O_CREAT | O_WRONLY, 0600));
    }
    DIR *d = opendir("sub");
    char *names[16];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 16)
        names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("readdir:");
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
    char cwd[4096];
    printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) && strcmp(cwd, argv[1]) == 0 ? "same" : "different");
    FILE *f = fopen("sub/b.txt", "r");
    printf("fgets: %s\n", fgets(buf, sizeof buf, f) ? buf : "(null)");
    fclose(f);
    SHOW("unlink", unlink("link"));
    SHOW("rmdir nonempty", rmdir("sub"));
    int p[2];
    printf("pipe: %d\n", pipe(p));
    printf("pipe write: %zd\n", write(p[1], "through a pipe", 14));
    memset(buf, 0, sizeof buf);
    got = read(p[0], buf, sizeof buf);
    printf("pipe read: %zd %s\n", got, buf);
    return 0;
}
