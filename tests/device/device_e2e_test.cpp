// Programs that use /dev/kbusN directly, run unchanged under `xkbus run`
// against a real xkbusd: device_cases.c (raw open/ioctl/read/write/poll/
// select/epoll/dup/fork/close and /proc/kbus, every ioctl), and a Python
// program that drives the device as KBUS's Python module did (open() and
// fcntl.ioctl()).
#include "../e2e/daemon_fixture.hpp"

#include <cstdlib>
#include <string>
#include <vector>

namespace xkbus::testing {
namespace {

class DeviceTest : public DaemonTest {
protected:
    // Runs `xkbus run -- argv...` and returns its exit status.
    static int underXkbusRun(std::vector<std::string> argv) {
        argv.insert(argv.begin(), {XKBUS_CLI_PATH, "run", "--"});
        const pid_t child = spawn([&argv] {
            if (const char* asan = XKBUS_ASAN_RUNTIME; *asan != '\0') {
                // An instrumented program needs ASan's runtime first in line.
                ::setenv("LD_PRELOAD", asan, 1);
                ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
            }
            std::vector<char*> args;
            for (auto& a : argv) {
                args.push_back(a.data());
            }
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            return 127;
        });
        return reap(child);
    }

    static int deviceCase(const char* name) { return underXkbusRun({DEVICE_CASES_PATH, name}); }
};

TEST_F(DeviceTest, OpenKsockIdResetAndTheKernelsRefusals) {
    EXPECT_EQ(deviceCase("open"), 0);
}
TEST_F(DeviceTest, BindUnbindAndReplier) {
    EXPECT_EQ(deviceCase("bind"), 0);
}
TEST_F(DeviceTest, WriteSendNextmsgLenleftReadDiscardLastsent) {
    EXPECT_EQ(deviceCase("send_read"), 0);
}
TEST_F(DeviceTest, RequestReplyUnrepliedtoAndMsgonlyonce) {
    EXPECT_EQ(deviceCase("request_reply"), 0);
}
TEST_F(DeviceTest, MaxmsgsAndMaxmsgsize) {
    EXPECT_EQ(deviceCase("limits"), 0);
}
TEST_F(DeviceTest, PollSelectEpollAndABlockedAllOrWaitSend) {
    EXPECT_EQ(deviceCase("poll"), 0);
}
TEST_F(DeviceTest, ReportreplierbindsVerboseAndNewdevice) {
    EXPECT_EQ(deviceCase("device_settings"), 0);
}
TEST_F(DeviceTest, DupDup2Dup3FcntlAndFork) {
    EXPECT_EQ(deviceCase("dup_fork"), 0);
}
TEST_F(DeviceTest, ProcKbusBindingsAndStats) {
    EXPECT_EQ(deviceCase("proc"), 0);
}

TEST_F(DeviceTest, APythonProgramDrivingTheDeviceWithFcntlIoctl) {
    EXPECT_EQ(underXkbusRun({"/usr/bin/python3", DEVICE_PYTHON_PATH}), 0);
}

TEST_F(DeviceTest, XkbusRunWithoutAProgramFails) {
    EXPECT_NE(underXkbusRun({"/nonexistent/program"}), 0);
}

} // namespace
} // namespace xkbus::testing
