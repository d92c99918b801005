/* brk, mmap, munmap, mprotect, mremap as malloc and programs use them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char *b0 = sbrk(0);
    char *b1 = sbrk(100000);
    printf("sbrk grows: %d\n", b1 == b0 && (char *)sbrk(0) == b0 + 100000);
    memset(b1, 7, 100000);
    unsigned sum = 0;
    for (int i = 0; i < 100000; i += 1000) sum += b1[i];
    printf("sbrk mem: %u\n", sum);
    size_t big = 8 << 20;
    char *m = malloc(big);
    memset(m, 1, big);
    printf("malloc big: %d\n", m[big - 1]);
    free(m);
    char *a = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap: %d zero=%d aligned=%d\n", a != MAP_FAILED, a[5000] == 0, ((long)a & 4095) == 0);
    strcpy(a + 8000, "kept across mremap");
    char *r = mremap(a, 3 * 4096, 64 * 4096, MREMAP_MAYMOVE);
    printf("mremap: %d %s\n", r != MAP_FAILED, r + 8000);
    r[64 * 4096 - 1] = 1;
    printf("mprotect: %d\n", mprotect(r, 4096, PROT_READ));
    printf("munmap: %d\n", munmap(r, 64 * 4096));
    printf("munmap unaligned: %d\n", munmap(r + 1, 4096));
    int fd = open(argv[0], O_RDONLY);
    char *f = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("file map: %.3s\n", f + 1);
    close(fd);
    void *fixed = mmap((void *)0x20000000, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("fixed: %d\n", fixed == (void *)0x20000000);
    void *bad = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("zero length: %d\n", bad == MAP_FAILED);
    return 0;
}
