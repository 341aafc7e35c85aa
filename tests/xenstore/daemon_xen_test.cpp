// `xkbusd --xen` against the real xenstored: it serves local clients and
// follows the device protocol at the same time, adopts slots another tool
// provisions while it runs, closes a device whose ring it cannot map (there
// is no hypervisor here) with a reason, and cleans up on @releaseDomain.
// Mapping real grants is covered by the QEMU harness (tests/xen).
#include "xenstored_fixture.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <xkbus/frontend/open.hpp>
#include <xkbus/xenstore/device_protocol.hpp>
#include <xkbus/xenstore/frontend_device.hpp>

namespace xkbus::xenstore {
namespace {

using namespace std::chrono_literals;

int runCli(const std::string& xenstored, const std::string& args) {
    const std::string command =
        "XENSTORED_PATH='" + xenstored + "' " + XKBUS_CLI_PATH + " " + args + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Polls `check` for up to five seconds.
template <class Check>
bool eventually(Check check) {
    for (int i = 0; i < 500; ++i) {
        if (check()) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

class XenDaemon {
public:
    explicit XenDaemon(const std::string& xenstored) {
        char dir[] = "/tmp/xkbus-xen-XXXXXX";
        m_dir = ::mkdtemp(dir);
        m_socket = m_dir + "/xkbusd.sock";
        m_pid = ::fork();
        if (m_pid == 0) {
            ::setenv("XENSTORED_PATH", xenstored.c_str(), 1);
            ::execl(XKBUSD_PATH, "xkbusd", "--xen", "--socket", m_socket.c_str(), "--log-level",
                    "warn", static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~XenDaemon() {
        if (m_pid > 0) { // never kill(-1, ...): that is every process we may signal
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
        std::filesystem::remove_all(m_dir);
    }
    const std::string& socket() const { return m_socket; }
    bool listening() const {
        return eventually([&] { return std::filesystem::exists(m_socket); });
    }
    // Its exit status after SIGTERM, or -1.
    int stop() {
        ::kill(m_pid, SIGTERM);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    std::string m_dir;
    std::string m_socket;
    pid_t m_pid = -1;
};

TEST(XenDaemon, ServesLocalClientsAndGuestDevicesAtOnce) {
    if (auto why = testing::RealXenstored::skipReason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    testing::RealXenstored xenstored;
    ASSERT_EQ(xenstored.start(), "");
    ASSERT_TRUE(xenstored.introduceDomain(5));
    XenDaemon daemon(xenstored.socketPath());
    ASSERT_TRUE(daemon.listening());

    // Slots provisioned by another tool while the daemon runs are adopted.
    ASSERT_EQ(runCli(xenstored.socketPath(), "xen-provision 5 --slots 2"), 0);
    auto store = xenstored.connect();
    const DeviceId slot0{5, 0};
    // A guest process claims slot 0 and publishes a ring the daemon cannot
    // map (no hypervisor): the daemon closes the device and says why.
    auto guest = FrontendDevice::claim(*store, FrontendOptions{5, std::nullopt, "guest.1", {}});
    ASSERT_TRUE(guest);
    ASSERT_EQ(guest->device().devid, 0u);
    ASSERT_TRUE(guest->publish(DeviceParams{PROTOCOL_VERSION, 8, 17, 12, 12}));
    EXPECT_TRUE(eventually([&] {
        auto phase = guest->update();
        return phase && *phase == FrontendPhase::CLOSED;
    })) << "the daemon never closed the device it could not map";
    EXPECT_FALSE(guest->backendReason().empty());

    // Meanwhile local clients are served.
    ::setenv("XKBUS_TRANSPORT", "local", 1);
    auto local = frontend::connectLocal(daemon.socket());
    ASSERT_TRUE(local) << describe(local.error());
    auto ksock = (*local)->openKsock(0, true);
    ASSERT_TRUE(ksock);
    EXPECT_TRUE((*ksock)->bind("$.dom0.x", false));

    // The domain dies: its slots go.
    ASSERT_TRUE(xenstored.releaseDomain(5));
    EXPECT_TRUE(eventually([&] {
        auto st = store->read(NO_TRANSACTION, nodePath(backendDir(slot0), key::STATE));
        return !st && st.error() == NOT_FOUND;
    })) << "the dead domain's slots were not removed";
    ksock = fail(Errc::DISCONNECTED);
    local = fail(Errc::DISCONNECTED);
    EXPECT_EQ(daemon.stop(), 0) << "stops cleanly on SIGTERM";
}

} // namespace
} // namespace xkbus::xenstore
