/* argv, environment and exit status reach the guest unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *v = getenv("PYQEMU_TEST_VAR");
    printf("env=%s\n", v ? v : "(unset)");
    printf("sizeof(long)=%zu\n", sizeof(long));
    return argc > 1 ? atoi(argv[1]) : 0;
}
