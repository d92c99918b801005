/* SSSE3, SSE4.1 and SSE4.2 through intrinsics (run with -cpu max). */
#include <stdio.h>
#include <string.h>
#include <nmmintrin.h>
#include <math.h>

static void p128(const char *name, __m128i v) {
    unsigned long long q[2];
    memcpy(q, &v, 16);
    printf("%s %016llx%016llx\n", name, q[1], q[0]);
}

int main(void) {
    __m128i a = _mm_set_epi32(0x80000000, 0x7fff8001, -1, 0x01020304);
    __m128i b = _mm_set_epi32(0x0f0e0d0c, 0x8b0a0908, 0x07068504, 0x03020100);
    p128("pshufb", _mm_shuffle_epi8(a, b));
    p128("palignr", _mm_alignr_epi8(a, b, 5));
    p128("phaddw", _mm_hadd_epi16(a, b));
    p128("phsubd", _mm_hsub_epi32(a, b));
    p128("pmaddubsw", _mm_maddubs_epi16(a, b));
    p128("psignb", _mm_sign_epi8(a, b));
    p128("pabsd", _mm_abs_epi32(a));
    p128("pmulhrsw", _mm_mulhrs_epi16(a, b));
    p128("pmovsxbw", _mm_cvtepi8_epi16(b));
    p128("pmovzxwd", _mm_cvtepu16_epi32(a));
    p128("pmovsxbq", _mm_cvtepi8_epi64(b));
    p128("pminsd", _mm_min_epi32(a, b));
    p128("pmaxuw", _mm_max_epu16(a, b));
    p128("pmulld", _mm_mullo_epi32(a, b));
    p128("pmuldq", _mm_mul_epi32(a, b));
    p128("pcmpeqq", _mm_cmpeq_epi64(a, a));
    p128("pcmpgtq", _mm_cmpgt_epi64(a, b));
    p128("packusdw", _mm_packus_epi32(a, b));
    p128("pblendvb", _mm_blendv_epi8(a, b, b));
    p128("pblendw", _mm_blend_epi16(a, b, 0x5a));
    p128("pinsrd", _mm_insert_epi32(a, 0x12345678, 2));
    printf("pextrb %d pextrd %d ptestz %d ptestc %d\n", _mm_extract_epi8(b, 13),
           _mm_extract_epi32(a, 2), _mm_testz_si128(a, b), _mm_testc_si128(a, a));
    const char *hay = "hello, world: find the needle in this haystack!";
    __m128i set = _mm_loadu_si128((const __m128i *)"aeiou\0\0\0\0\0\0\0\0\0\0\0");
    __m128i rng = _mm_loadu_si128((const __m128i *)"az\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    for (int off = 0; off < 32; off += 16) {
        __m128i s = _mm_loadu_si128((const __m128i *)(hay + off));
        printf("istri any %d ranges-neg %d ordered %d each %d\n",
               _mm_cmpistri(set, s, _SIDD_CMP_EQUAL_ANY),
               _mm_cmpistri(rng, s, _SIDD_CMP_RANGES | _SIDD_NEGATIVE_POLARITY),
               _mm_cmpistri(_mm_loadu_si128((const __m128i *)"ld\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), s,
                            _SIDD_CMP_EQUAL_ORDERED),
               _mm_cmpistri(s, s, _SIDD_CMP_EQUAL_EACH | _SIDD_NEGATIVE_POLARITY |
                            _SIDD_MOST_SIGNIFICANT));
        p128("istrm", _mm_cmpistrm(set, s, _SIDD_CMP_EQUAL_ANY | _SIDD_UNIT_MASK));
        printf("estri %d\n", _mm_cmpestri(set, 3, s, 10, _SIDD_CMP_EQUAL_ANY));
    }
    unsigned c = 0;
    for (const char *p = hay; *p; p++) c = _mm_crc32_u8(c, *p);
    c = _mm_crc32_u32(c, 0xdeadbeef);
    unsigned long long c64 = _mm_crc32_u64(c, 0x0123456789abcdefULL);
    printf("crc32 %08x %08llx popcnt %d\n", c, c64, _mm_popcnt_u32(0xf0f0f0f1));
    __m128d rd = _mm_set_pd(-2.5, 2.5);
    __m128 rs = _mm_set_ps(-0.5f, 1.5f, -1.75f, 3.25f);
    p128("roundpd", _mm_castpd_si128(_mm_round_pd(rd, _MM_FROUND_TO_NEAREST_INT)));
    p128("roundps", _mm_castps_si128(_mm_round_ps(rs, _MM_FROUND_TO_NEG_INF)));
    p128("roundsd", _mm_castpd_si128(_mm_round_sd(rd, rd, _MM_FROUND_TO_POS_INF)));
    p128("roundss", _mm_castps_si128(_mm_round_ss(rs, rs, _MM_FROUND_TO_ZERO)));
    volatile double fl = -7.5;
    printf("floor %g ceil %g trunc %g rint %g\n", floor(fl), ceil(fl), trunc(fl), rint(fl));
    /* glibc picks SSE4.2/SSSE3 string functions under -cpu max */
    char buf[200];
    memset(buf, 'x', sizeof buf);
    buf[150] = 0;
    printf("%zu %zu %zu %s\n", strlen(buf), strcspn(hay, "!:"), strspn(hay, "helo"),
           strpbrk(hay, "w"));
    return 0;
}
