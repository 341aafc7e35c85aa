// Runs the C smoke program against the in-process fake bus.
#include "fake_bus.hpp"

extern "C" int c_smoke_run(void);

int main() {
    auto host = xkbus::frontend::testing::installFakeBus();
    return c_smoke_run();
}
