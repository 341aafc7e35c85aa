// XKBUS_SPIN_US: the client's spin budget from the environment.
#include "../../frontend/connection/src/client_spin.hpp"

#include <cstdlib>
#include <gtest/gtest.h>

namespace xkbus::frontend {
namespace {

std::chrono::nanoseconds spinWith(const char* value) {
    if (value == nullptr) {
        ::unsetenv("XKBUS_SPIN_US");
    } else {
        ::setenv("XKBUS_SPIN_US", value, 1);
    }
    const auto spin = clientSpin().maxSpin;
    ::unsetenv("XKBUS_SPIN_US");
    return spin;
}

TEST(ClientSpin, TheEnvironmentSetsTheBudgetInMicroseconds) {
    EXPECT_EQ(spinWith(nullptr), ring::SpinPolicy{}.maxSpin);
    EXPECT_EQ(spinWith("0"), std::chrono::nanoseconds(0));
    EXPECT_EQ(spinWith("120"), std::chrono::microseconds(120));
    EXPECT_EQ(spinWith("99999999"), std::chrono::milliseconds(10)) << "capped";
}

TEST(ClientSpin, AMalformedValueKeepsTheDefault) {
    for (const char* bad : {"", "-5", "12us", "x", " 7"}) {
        EXPECT_EQ(spinWith(bad), ring::SpinPolicy{}.maxSpin) << '"' << bad << '"';
    }
}

} // namespace
} // namespace xkbus::frontend
