/* libm in double and long double: on i386 this is the x87's transcendental instructions. */
#include <stdio.h>
#include <math.h>
int main(void) {
    volatile double xs[] = {0.5, 1.0, 1.5, 2.0, 10.0, -0.75, 1e-5, 3.14159, 100.0};
    volatile long double lx[] = {0.5L, 1.0L, 2.5L, -0.3L, 1e3L};
    for (int i = 0; i < 9; i++) {
        double x = xs[i];
        printf("%.17g %.17g %.17g %.17g %.17g %.17g %.17g\n", sin(x), cos(x), tan(x), atan(x),
               exp(x), log(fabs(x)), pow(x, 1.7));
    }
    for (int i = 0; i < 5; i++) {
        long double x = lx[i];
        printf("%.21Lg %.21Lg %.21Lg %.21Lg %.21Lg %.21Lg %.21Lg %.21Lg\n", sinl(x), cosl(x), atanl(x), expl(x),
               logl(fabsl(x)), atan2l(x, 0.7L), tanl(x), log1pl(x / 4));
    }
    return 0;
}
