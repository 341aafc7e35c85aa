// A program outside the tree, built against an installed xkbus: proves the
// headers, libraries, xkbus.pc and the CMake package are usable.
#include <cstdio>
#include <xkbus/core/bus.hpp>

int main() {
    xkbus::core::Bus bus{0};
    auto listener = bus.open().value();
    auto sender = bus.open().value();
    if (!bus.bind(listener, "$.installed.*", false)) {
        return 1;
    }
    if (!bus.send(sender, xkbus::makeMessage("$.installed.ok", "yes"))) {
        return 1;
    }
    auto got = bus.nextMessage(listener).value();
    if (!got || got->name() != "$.installed.ok") {
        return 1;
    }
    std::puts("consumer: ok");
    return 0;
}
