/* Integer, flags, string and SSE2 edge cases; prints everything it computes. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <stdint.h>

static volatile int64_t vals[] = {0, 1, -1, 2, -2, 7, -7, 0x7fffffff, -0x7fffffff - 1,
                                  0x7fffffffffffffffLL, (int64_t)0x8000000000000000ULL,
                                  123456789, -987654321, 0xff, 0x100, 0xffff, 0x12345678abcdefLL};
#define N (sizeof(vals) / sizeof(vals[0]))

static unsigned flags_of(long a, long b) {
    unsigned long f;
    __asm__ volatile("cmp %2, %1\n\tpushf\n\tpop %0" : "=r"(f) : "r"(a), "r"(b) : "cc");
    return f & 0x8d5;
}

static unsigned flags_add8(unsigned char a, unsigned char b) {
    unsigned long f;
    __asm__ volatile("add %2, %1\n\tpushf\n\tpop %0" : "=r"(f), "+q"(a) : "q"(b) : "cc");
    return (f & 0x8d5) | (a << 16);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(void) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned i = 0; i < N; i++) {
        for (unsigned j = 0; j < N; j++) {
            int64_t a = vals[i], b = vals[j];
            uint64_t ua = a, ub = b;
            int32_t a32 = (int32_t)a, b32 = (int32_t)b;
            h = (h ^ (uint64_t)(a + b)) * 1099511628211ULL;
            h = (h ^ (uint64_t)(a * b)) * 1099511628211ULL;
            h = (h ^ (uint64_t)(a32 * b32)) * 1099511628211ULL;
            if (b != 0 && !(a == INT64_MIN && b == -1)) {
                h = (h ^ (uint64_t)(a / b) ^ (uint64_t)(a % b)) * 1099511628211ULL;
                h = (h ^ (ua / ub) ^ (ua % ub)) * 1099511628211ULL;
            }
            if (b32 != 0 && !(a32 == INT32_MIN && b32 == -1))
                h = (h ^ (uint32_t)(a32 / b32) ^ (uint32_t)(a32 % b32)) * 1099511628211ULL;
            h = (h ^ (a < b) ^ ((ua < ub) << 1) ^ ((a32 <= b32) << 2)) * 1099511628211ULL;
            h = (h ^ (ua >> (b & 63)) ^ (uint64_t)(a >> (b & 63)) ^ (ua << (b & 63))) * 1099511628211ULL;
            h = (h ^ ((uint32_t)a32 >> (b & 31)) ^ (uint32_t)(a32 >> (b & 31))) * 1099511628211ULL;
            h = (h ^ flags_of(a, b)) * 1099511628211ULL;
            h = (h ^ flags_add8((unsigned char)a, (unsigned char)b)) * 1099511628211ULL;
#ifdef __x86_64__
            __int128 p = (__int128)a * b;
            unsigned __int128 up = (unsigned __int128)ua * ub;
            h = (h ^ (uint64_t)(p >> 64) ^ (uint64_t)(up >> 64)) * 1099511628211ULL;
#endif
        }
        int64_t a = vals[i];
        h = (h ^ (uint64_t)__builtin_popcountll(a) ^ (a ? __builtin_ctzll(a) : 99) ^
             (a ? __builtin_clzll(a) << 8 : 0)) * 1099511628211ULL;
        h = (h ^ __builtin_bswap64(a) ^ __builtin_bswap32((uint32_t)a)) * 1099511628211ULL;
        h = (h ^ (uint64_t)(int8_t)a ^ (uint64_t)(int16_t)a ^ (uint64_t)(uint16_t)a) * 1099511628211ULL;
    }
    printf("hash %016llx\n", (unsigned long long)h);

    /* rotates and bit tests */
    unsigned x = 0x80000001u;
    for (int i = 0; i < 40; i++) {
        x = (x << 3) | (x >> 29);
        x ^= (x >> 7) | (x << 25);
        x += i;
    }
    printf("rot %08x bt %d\n", x, (int)((x >> 5) & 1));

    /* strings (glibc's SSE2 routines) */
    char buf[300], buf2[300];
    for (int i = 0; i < 299; i++) buf[i] = 'a' + i % 26;
    buf[299] = 0;
    memcpy(buf2, buf, 300);
    memmove(buf2 + 3, buf2, 100);
    printf("len %zu cmp %d chr %ld str %ld\n", strlen(buf), memcmp(buf, buf2, 300) > 0,
           (long)(strchr(buf, 'q') - buf), (long)(strstr(buf, "xyzab") - buf));
    memset(buf2, 'z', 250);
    buf2[250] = 0;
    printf("rchr %ld n %zu\n", (long)(strrchr(buf2, 'z') - buf2), strnlen(buf2, 299));

    /* sort */
    int arr[200];
    unsigned s = 12345;
    for (int i = 0; i < 200; i++) { s = s * 1103515245 + 12345; arr[i] = (int)(s >> 8) - (1 << 22); }
    qsort(arr, 200, sizeof arr[0], cmp_int);
    long acc = 0;
    for (int i = 0; i < 200; i++) acc = acc * 31 + arr[i];
    printf("sorted %d %d %ld\n", arr[0], arr[199], acc);

    /* doubles through SSE2 */
    double d = 1.0, e = 0.0;
    for (int i = 1; i < 50; i++) { d = d * 1.5 + 1.0 / i; e += d / (i + 0.25); }
    float f = 1.0f;
    for (int i = 1; i < 30; i++) f = f * 1.37f - 0.1f / i;
    printf("fp %.17g %.17g %.9g %ld %d\n", d, e, f, (long)(d / 3), (int)f);
    printf("conv %g %g %d\n", (double)(long)-7.9, (double)3000000000u, (int)-2.5);
    return (int)(h & 0x3f);
}
