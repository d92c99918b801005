/* CPU-bound guest workload for bench/user_cpu.py: checksum, sort, strings, floating point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned checksum(const unsigned char *p, int n) {
    unsigned a = 1, b = 0;
    for (int i = 0; i < n; i++) { a = (a + p[i]) % 65521; b = (b + a) % 65521; }
    return (b << 16) | a;
}

static void sort(int *v, int n) {
    for (int gap = n / 2; gap > 0; gap /= 2)
        for (int i = gap; i < n; i++) {
            int t = v[i], j = i;
            while (j >= gap && v[j - gap] > t) { v[j] = v[j - gap]; j -= gap; }
            v[j] = t;
        }
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    static unsigned char buf[4096];
    static int arr[2000];
    char s[256];
    unsigned acc = 0;
    double x = 0.5, sum = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 4096; i++) buf[i] = (unsigned char)(i * 7 + r);
        acc ^= checksum(buf, 4096);
        unsigned seed = r + 1;
        for (int i = 0; i < 2000; i++) { seed = seed * 1103515245 + 12345; arr[i] = seed >> 8; }
        sort(arr, 2000);
        acc += arr[1000];
        for (int i = 0; i < 100; i++) {
            snprintf(s, sizeof s, "round %d item %d value %u", r, i, acc + i);
            acc += strlen(s) + (strstr(s, "item") - s) + strcmp(s, "round 5");
        }
        for (int i = 0; i < 2000; i++) { x = x * 3.7 * (1 - x); sum += x / (i + 1); }
    }
    printf("%u %.6f\n", acc, sum);
    return 0;
}
