/* The libkbus smoke program (tests/frontend/c_smoke.c), as a stand-alone C
 * program built against an installed xkbus with pkg-config and run against a
 * real xkbusd. */
#include "../frontend/c_smoke.c"

int main(void) {
    const int failedAt = c_smoke_run();
    if (failedAt == 0) {
        puts("kbus consumer: ok");
    }
    return failedAt == 0 ? 0 : 1;
}
