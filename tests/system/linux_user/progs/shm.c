/* MAP_SHARED memory across fork: anonymous and file-backed mappings, a
 * process-shared semaphore, coherence of a file mapping with read/write. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared { sem_t ready; sem_t done; volatile int counter; char text[64]; };

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    struct shared *sh = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *priv = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED || priv == MAP_FAILED) { perror("mmap"); return 1; }
    sem_init(&sh->ready, 1, 0);
    sem_init(&sh->done, 1, 0);
    strcpy(priv, "parent private");
    pid_t pid = fork();
    if (pid == 0) {
        sem_wait(&sh->ready);                 /* woken by the parent through the futex */
        for (int i = 0; i < 1000; i++) __sync_fetch_and_add(&sh->counter, 1);
        strcpy(sh->text, "written by the child");
        strcpy(priv, "child private");
        sem_post(&sh->done);
        _exit(0);
    }
    for (int i = 0; i < 1000; i++) __sync_fetch_and_add(&sh->counter, 1);
    sem_post(&sh->ready);
    sem_wait(&sh->done);
    int st;
    waitpid(pid, &st, 0);
    printf("anon shared: counter=%d text=%s private=%s status=%d\n", sh->counter, sh->text, priv,
           WEXITSTATUS(st));

    /* a file mapping: writes through the mapping reach the file and a child */
    char path[256];
    snprintf(path, sizeof path, "%s/shm-file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "0123456789", 10) != 10) { perror("file"); return 1; }
    char *f = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED) { perror("mmap file"); return 1; }
    printf("file map sees: %.10s, past end: %d\n", f, f[100]);
    memcpy(f, "ABC", 3);
    char buf[16] = {0};
    pread(fd, buf, 10, 0);
    printf("read after store: %s\n", buf);
    pwrite(fd, "xyz", 3, 5);
    printf("map after write: %.10s\n", f);
    pid = fork();
    if (pid == 0) { f[9] = '!'; _exit(0); }
    waitpid(pid, &st, 0);
    pread(fd, buf, 10, 0);
    printf("after child store: %s %.10s\n", buf, f);
    msync(f, 4096, MS_SYNC);
    munmap(f, 8192);

    /* read-only file: a shared writable mapping is refused, a read-only one can't become writable */
    int ro = open(path, O_RDONLY);
    void *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
    printf("rw map of ro fd: %s\n", w == MAP_FAILED ? strerror(errno) : "mapped");
    char *r = mmap(0, 4096, PROT_READ, MAP_SHARED, ro, 0);
    printf("ro map: %.3s mprotect rw: %s\n", r,
           mprotect(r, 4096, PROT_READ | PROT_WRITE) ? strerror(errno) : "ok");
    unlink(path);
    return 0;
}
