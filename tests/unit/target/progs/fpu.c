#include <stdio.h>
#include <math.h>
#include <fenv.h>
#include <stdint.h>
int main(void) {
    volatile double d = 1.0, e = 0.0;
    for (int i = 1; i < 50; i++) { d = d * 1.5 + 1.0 / i; e += d / (i + 0.25); }
    volatile float f = 1.0f;
    for (int i = 1; i < 30; i++) f = f * 1.37f - 0.1f / i;
    long double ld = 1.0L;
    for (int i = 1; i < 40; i++) ld = ld * 1.1L + 1.0L / (i * 3.0L);
    printf("%.17g %.17g %.9g %.21Lg\n", d, e, f, ld);
    printf("%Lf %Le %La\n", ld / 7, ld * 1e300L, ld);
    printf("%.10Lf %.10Lf\n", sqrtl(2.0L), sqrtl(ld));
    volatile double z = 0.0;
    printf("%g %g %g %d\n", 1.0 / z, -1.0 / z, z / z, (int)(d / 1e6));
    long long big = 123456789012345LL;
    printf("%lld %lld %lld\n", (long long)(double)big, (long long)(ld * 1000), llrint(2.5));
    int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        volatile long double a = 1.0L, b3 = 3.0L;
        volatile double x = 1.0, y = 3.0;
        printf("rm%d %.21Lg %.17g %ld\n", m, a / b3, x / y, lrint(-2.5));
    }
    fesetround(FE_TONEAREST);
    printf("%.6f %.6f %.6f\n", sin(1.0), exp(1.5), log(10.0));
    return 0;
}
