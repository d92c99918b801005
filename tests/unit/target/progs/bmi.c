/* BMI1/BMI2 through intrinsics (run with -cpu max). */
#include <stdio.h>
#include <x86intrin.h>

int main(void) {
    volatile unsigned long long v[] = {0, 1, 0x8000000000000000ULL, 0xf0f0f0f0f0f0f0f0ULL,
                                       0x123456789abcdef0ULL, ~0ULL};
    unsigned long long h = 0;
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 6; j++) {
            unsigned long long a = v[i], b = v[j];
            unsigned lo32 = (unsigned)a, b32 = (unsigned)b;
            unsigned long long hi;
            h = h * 31 + _andn_u64(a, b) + _andn_u32(lo32, b32);
            h = h * 31 + __bextr_u64(a, (unsigned)b) + __bextr_u32(lo32, b32 & 0xffff);
            h = h * 31 + _bzhi_u64(a, (unsigned)b & 0xff) + _bzhi_u32(lo32, b32 & 0x3f);
            h = h * 31 + _pdep_u64(a, b) + _pext_u64(a, b) + _pdep_u32(lo32, b32) + _pext_u32(lo32, b32);
            h = h * 31 + _mulx_u64(a, b, &hi) + hi;
            h = h * 31 + (a << (b & 63)) + (a >> (b & 63)) + (unsigned long long)((long long)a >> (b & 63));
        }
        unsigned long long a = v[i];
        h = h * 31 + _blsr_u64(a) + _blsmsk_u64(a) + _blsi_u64(a) + _tzcnt_u64(a) + _lzcnt_u64(a);
        h = h * 31 + ((a >> 13) | (a << 51)) + (((unsigned)a >> 7) | ((unsigned)a << 25));
    }
    printf("%016llx\n", h);
    return 0;
}
