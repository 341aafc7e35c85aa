// The Xen transport on a machine without a hypervisor: every entry point must
// fail with a clear error (NOT_SUPPORTED and a reason naming /dev/xen), not
// crash. On a real Xen host these tests skip; the conformance suite there
// exercises the transport itself.
#include <filesystem>
#include <gtest/gtest.h>
#include <xkbus/ring/xen/xen_transport.hpp>

namespace xkbus::ring {
namespace {

bool onXen() {
    return std::filesystem::exists("/dev/xen/evtchn");
}

TEST(XenTransport, FrontendWithoutXenFailsClearly) {
    if (onXen()) {
        GTEST_SKIP() << "running on Xen";
    }
    std::string_view why;
    auto connection = xen::connectFrontend(0, {}, &why);
    ASSERT_FALSE(connection);
    EXPECT_EQ(connection.error(), Errc::NOT_SUPPORTED);
    if (xen::builtWithXen()) {
        EXPECT_NE(why.find("/dev/xen"), std::string_view::npos) << why;
    } else {
        EXPECT_NE(why.find("XKBUS_WITH_XEN"), std::string_view::npos) << why;
    }
}

TEST(XenTransport, BackendWithoutXenFailsClearly) {
    if (onXen()) {
        GTEST_SKIP() << "running on Xen";
    }
    std::string_view why;
    auto connection = xen::acceptBackend(1, 8, 5, {}, &why);
    ASSERT_FALSE(connection);
    EXPECT_EQ(connection.error(), Errc::NOT_SUPPORTED);
    EXPECT_FALSE(why.empty());
}

} // namespace
} // namespace xkbus::ring
