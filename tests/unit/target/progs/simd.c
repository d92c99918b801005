/* MMX, SSE, SSE2 and SSE3 through intrinsics; prints every result. */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <mmintrin.h>
#include <emmintrin.h>
#include <pmmintrin.h>

static void p128(const char *name, __m128i v) {
    unsigned long long q[2];
    memcpy(q, &v, 16);
    printf("%s %016llx%016llx\n", name, q[1], q[0]);
}

static void p64(const char *name, __m64 v) {
    unsigned long long q;
    memcpy(&q, &v, 8);
    printf("%s %016llx\n", name, q);
}

int main(void) {
    volatile float fa[4] = {1.5f, -2.25f, NAN, 1e30f};
    volatile float fb[4] = {1.5f, 3.0f, 0.0f, -1e30f};
    volatile double da[2] = {1.0 / 3, -0.0}, db[2] = {2.0, 0.0};
    __m128 a = _mm_loadu_ps((const float *)fa), b = _mm_loadu_ps((const float *)fb);
    __m128d x = _mm_loadu_pd((const double *)da), y = _mm_loadu_pd((const double *)db);
    p128("cmpeqps", _mm_castps_si128(_mm_cmpeq_ps(a, b)));
    p128("cmpltps", _mm_castps_si128(_mm_cmplt_ps(a, b)));
    p128("cmpunordps", _mm_castps_si128(_mm_cmpunord_ps(a, b)));
    p128("cmplesd", _mm_castpd_si128(_mm_cmple_sd(x, y)));
    p128("cvtps2pd", _mm_castpd_si128(_mm_cvtps_pd(b)));
    p128("cvtpd2ps", _mm_castps_si128(_mm_cvtpd_ps(x)));
    p128("cvtdq2ps", _mm_castps_si128(_mm_cvtepi32_ps(_mm_set_epi32(-7, 16777217, 3, 0x7fffffff))));
    p128("cvtps2dq", _mm_cvtps_epi32(_mm_set_ps(2.5f, -2.5f, 1e10f, 0.49f)));
    p128("cvttps2dq", _mm_cvttps_epi32(_mm_set_ps(2.5f, -2.5f, 1e10f, 0.99f)));
    p128("cvtpd2dq", _mm_cvtpd_epi32(_mm_set_pd(-3.5, 4.5)));
    p128("cvtdq2pd", _mm_castpd_si128(_mm_cvtepi32_pd(_mm_set_epi32(0, 0, -5, 123456789))));
    p128("addps", _mm_castps_si128(_mm_add_ps(a, b)));
    p128("mulpd", _mm_castpd_si128(_mm_mul_pd(x, y)));
    p128("divps", _mm_castps_si128(_mm_div_ps(a, b)));
    p128("sqrtpd", _mm_castpd_si128(_mm_sqrt_pd(y)));
    p128("minps", _mm_castps_si128(_mm_min_ps(a, b)));
    p128("maxsd", _mm_castpd_si128(_mm_max_sd(x, y)));
    p128("addsubps", _mm_castps_si128(_mm_addsub_ps(a, b)));
    p128("haddpd", _mm_castpd_si128(_mm_hadd_pd(x, y)));
    p128("hsubps", _mm_castps_si128(_mm_hsub_ps(a, b)));
    p128("movddup", _mm_castpd_si128(_mm_movedup_pd(x)));
    p128("movshdup", _mm_castps_si128(_mm_movehdup_ps(a)));
    __m128i i1 = _mm_set_epi32(0x80000000, 0x7fff8001, -1, 0x01020304);
    __m128i i2 = _mm_set_epi32(1, 0x7fff7fff, 0x00010001, 0x04030201);
    p128("paddsw", _mm_adds_epi16(i1, i2));
    p128("psubusb", _mm_subs_epu8(i1, i2));
    p128("pmulhw", _mm_mulhi_epi16(i1, i2));
    p128("pmuludq", _mm_mul_epu32(i1, i2));
    p128("pmaddwd", _mm_madd_epi16(i1, i2));
    p128("packsswb", _mm_packs_epi16(i1, i2));
    p128("packuswb", _mm_packus_epi16(i1, i2));
    p128("packssdw", _mm_packs_epi32(i1, i2));
    p128("punpckhbw", _mm_unpackhi_epi8(i1, i2));
    p128("punpckldq", _mm_unpacklo_epi32(i1, i2));
    p128("psraw", _mm_srai_epi16(i1, 3));
    p128("psrad", _mm_sra_epi32(i1, _mm_cvtsi32_si128(40)));
    p128("psllq", _mm_slli_epi64(i1, 13));
    p128("pslldq", _mm_slli_si128(i1, 5));
    p128("psrldq", _mm_srli_si128(i1, 3));
    p128("pshufd", _mm_shuffle_epi32(i1, 0x1b));
    p128("pshufhw", _mm_shufflehi_epi16(i1, 0x93));
    p128("pcmpgtb", _mm_cmpgt_epi8(i1, i2));
    p128("psadbw", _mm_sad_epu8(i1, i2));
    p128("pavgb", _mm_avg_epu8(i1, i2));
    p128("pinsrw", _mm_insert_epi16(i1, 0xbeef, 5));
    printf("pextrw %d movmskps %d pmovmskb %d\n", _mm_extract_epi16(i1, 6),
           _mm_movemask_ps(a), _mm_movemask_epi8(i1));
    p128("shufps", _mm_castps_si128(_mm_shuffle_ps(a, b, 0x4e)));
    p128("unpckhpd", _mm_castpd_si128(_mm_unpackhi_pd(x, y)));
    __m64 m1 = _mm_set_pi16(1, -2, 0x7fff, -32768), m2 = _mm_set_pi16(3, 4, 1, -1);
    p64("mmx paddsw", _mm_adds_pi16(m1, m2));
    p64("mmx pmullw", _mm_mullo_pi16(m1, m2));
    p64("mmx punpckhwd", _mm_unpackhi_pi16(m1, m2));
    p64("mmx punpcklbw", _mm_unpacklo_pi8(m1, m2));
    p64("mmx packsswb", _mm_packs_pi16(m1, m2));
    p64("mmx psrlw", _mm_srli_pi16(m1, 4));
    p64("mmx pcmpeqw", _mm_cmpeq_pi16(m1, m1));
    int lo = _mm_cvtsi64_si32(m1);
    _mm_empty();
    printf("mmx movd %08x\n", lo);
    volatile double after = 1.25;
    printf("x87 after emms %.3f\n", after * 3);
    return 0;
}
