// xenstore/ checks guest-written ring orders against bounds it keeps itself
// (the layer depends on common only). They must be the ring ABI's.
#include <gtest/gtest.h>
#include <xkbus/ring/abi.hpp>
#include <xkbus/xenstore/device_protocol.hpp>

namespace {

TEST(RingBounds, XenstoreOrderLimitsAreTheRingAbis) {
    EXPECT_EQ(xkbus::xenstore::MIN_RING_ORDER, xkbus::ring::abi::MIN_RING_ORDER);
    EXPECT_EQ(xkbus::xenstore::MAX_RING_ORDER, xkbus::ring::abi::MAX_RING_ORDER);
    EXPECT_EQ(xkbus::xenstore::PROTOCOL_VERSION, xkbus::ring::abi::VERSION);
}

} // namespace
