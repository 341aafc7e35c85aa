// reply --exec's command runner: input on stdin, the reply from stdout, the
// exit status kept, limits enforced, and nothing left running afterwards.
#include "exec_command.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>
#include <unistd.h>

namespace xkbus::cli {
namespace {

using namespace std::chrono_literals;

CommandOutcome run(const std::string& command, std::string_view input = {},
                   CommandLimits limits = {}) {
    auto r = runCommand(command, input, limits);
    EXPECT_TRUE(r);
    return r ? *r : CommandOutcome{};
}

// Running, or stopped: not dead. A zombie is dead, waiting for whoever
// adopted it to reap it.
bool alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pidText, comm, state;
    stat >> pidText >> comm >> state;
    return stat && state != "Z" && state != "X";
}

TEST(ExecCommand, TheInputIsOnStdinAndTheOutputIsTheReply) {
    const auto r = run("tr a-z A-Z", "hello");
    EXPECT_TRUE(r.succeeded());
    EXPECT_EQ(r.output, "HELLO");
    const std::string binary("\x00\xff\x10", 3);
    EXPECT_EQ(run("cat", binary).output, binary);
}

TEST(ExecCommand, ANonZeroExitIsKeptWithTheEndOfStandardError) {
    CommandLimits limits;
    limits.errorTail = 8;
    const auto r = run("echo partial; echo 'something went wrong' >&2; exit 3", {}, limits);
    EXPECT_FALSE(r.succeeded());
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(r.output, "partial\n");
    EXPECT_EQ(r.errorTail, "t wrong\n");
}

TEST(ExecCommand, ACommandKilledBySignalSaysWhich) {
    const auto r = run("kill -TERM $$");
    EXPECT_EQ(r.status, 128 + SIGTERM);
}

TEST(ExecCommand, ACommandThatIgnoresItsInputDoesNotBlockUs) {
    const std::string big(4 << 20, 'x'); // far beyond a pipe's buffer
    const auto r = run("echo ok", big);
    EXPECT_TRUE(r.succeeded());
    EXPECT_EQ(r.output, "ok\n");
}

TEST(ExecCommand, BigInputAndOutputFlowTogether) {
    const std::string big(3 << 20, 'y');
    EXPECT_EQ(run("cat", big).output, big);
}

TEST(ExecCommand, ATimeoutKillsTheWholeCommand) {
    char pidFile[] = "/tmp/xkbus-exec-XXXXXX";
    ::close(::mkstemp(pidFile));
    CommandLimits limits;
    limits.timeout = 300ms;
    const auto r = run(std::string("sleep 60 & echo $! > ") + pidFile + "; wait", {}, limits);
    EXPECT_TRUE(r.timedOut);
    EXPECT_FALSE(r.succeeded());
    pid_t sleeper = 0;
    std::ifstream(pidFile) >> sleeper;
    ::unlink(pidFile);
    ASSERT_GT(sleeper, 0);
    // SIGKILL is delivered asynchronously: give it a bounded moment.
    for (int i = 0; i < 200 && alive(sleeper); ++i) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_FALSE(alive(sleeper));
}

TEST(ExecCommand, OutputPastTheLimitStopsTheCommand) {
    CommandLimits limits;
    limits.maxOutput = 1000;
    const auto r = run("yes", {}, limits);
    EXPECT_TRUE(r.tooMuchOutput);
    EXPECT_FALSE(r.succeeded());
}

TEST(ExecCommand, ABackgroundJobLeftByTheCommandDoesNotHoldTheReply) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run("sleep 60 & echo done");
    EXPECT_TRUE(r.succeeded());
    EXPECT_EQ(r.output, "done\n");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

} // namespace
} // namespace xkbus::cli
