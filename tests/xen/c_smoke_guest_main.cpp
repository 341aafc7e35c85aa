// The libkbus C smoke program (tests/frontend/c_smoke.c, compiled unchanged)
// against the real bus: in a Xen guest, libxkbus reaches dom0's xkbusd
// through an xkbus xenstore device.
#include <cstdio>

extern "C" int c_smoke_run(void);

int main() {
    const int failedAt = c_smoke_run();
    std::printf("c_smoke: %s (%d)\n", failedAt == 0 ? "passed" : "failed", failedAt);
    return failedAt == 0 ? 0 : 1;
}
