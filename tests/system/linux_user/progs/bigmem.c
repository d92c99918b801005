/* Large, sparsely used memory: a 64 GiB PROT_NONE reservation, 8 GiB read-write
 * mapping touched every 16 MiB, a 9 GiB mremap move, a 2 GiB heap (x86_64 only). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    /* a 64 GiB reservation, as runtimes make, then a part of it made usable */
    char *res = mmap(0, 64ul << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("reserve 64G: %s\n", res == MAP_FAILED ? "failed" : "ok");
    if (res != MAP_FAILED) {
        printf("mprotect 1M: %d\n", mprotect(res + (40ul << 30), 1 << 20, PROT_READ | PROT_WRITE));
        res[(40ul << 30) + 4096] = 7;
        printf("value: %d\n", res[(40ul << 30) + 4096]);
        printf("munmap: %d\n", munmap(res, 64ul << 30));
    }
    /* 8 GiB read-write, touched sparsely */
    char *big = mmap(0, 8ul << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("map 8G: %s\n", big == MAP_FAILED ? "failed" : "ok");
    long sum = 0;
    for (unsigned long off = 0; off < (8ul << 30); off += 16ul << 20) { big[off] = (char)(off >> 24); sum += big[off]; }
    printf("sum %ld\n", sum);
    /* grow it by moving */
    char *moved = mremap(big, 8ul << 30, 9ul << 30, MREMAP_MAYMOVE);
    printf("mremap 9G: %s first=%d last=%d\n", moved == MAP_FAILED ? "failed" : "ok",
           moved == MAP_FAILED ? -1 : moved[16 << 20], moved == MAP_FAILED ? -1 : moved[(9ul << 30) - 1]);
    /* the heap */
    char *b0 = sbrk(0);
    printf("sbrk 2G: %s\n", sbrk(2l << 30) == (void *)-1 ? "failed" : "ok");
    b0[(2l << 30) - 2] = 1;
    printf("brk back: %d\n", brk(b0));
    return 0;
}
