// `xkbus xen-provision` against the real xenstored: the slots it writes are
// the ones the backend protocol expects, waiting for a guest in InitWait.
#include "xenstored_fixture.hpp"

#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <sys/wait.h>
#include <xkbus/xenstore/device_protocol.hpp>

namespace xkbus::xenstore {
namespace {

int runCli(const std::string& socket, const std::string& args) {
    const std::string command =
        "XENSTORED_PATH='" + socket + "' " + XKBUS_CLI_PATH + " " + args + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CliProvision, WritesSlotsInInitWaitForAnIntroducedDomain) {
    if (auto why = testing::RealXenstored::skipReason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    testing::RealXenstored daemon;
    ASSERT_EQ(daemon.start(), "");
    ASSERT_TRUE(daemon.introduceDomain(3));
    ASSERT_EQ(runCli(daemon.socketPath(), "xen-provision 3 --slots 2 --bus 1"), 0);
    auto store = daemon.connect();
    for (DevId devid : {0u, 1u}) {
        const DeviceId d{3, devid};
        EXPECT_EQ(store->read(NO_TRANSACTION, nodePath(backendDir(d), key::STATE)).value(), "2");
        EXPECT_EQ(store->read(NO_TRANSACTION, nodePath(backendDir(d), key::BUS)).value(), "1");
    }
    EXPECT_FALSE(store->read(NO_TRANSACTION, nodePath(backendDir(DeviceId{3, 2}), key::STATE)))
        << "only the slots asked for";
    EXPECT_NE(runCli(daemon.socketPath(), "xen-provision 9"), 0) << "domain 9 does not exist";
}

} // namespace
} // namespace xkbus::xenstore
