// The xkbus command-line client against a real daemon. XKBUS_CLI_PATH is the
// binary (set by CMake).
#include "daemon_fixture.hpp"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

namespace xkbus::testing {
namespace {

// Runs a shell command line; returns its exit status and standard output.
std::pair<int, std::string> run(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string CLI = XKBUS_CLI_PATH;

TEST_F(DaemonTest, CliCallGetsTheCliRepliersAnswer) {
    Gate ready;
    const pid_t replier = spawn([&] {
        ::execl(CLI.c_str(), "xkbus", "reply", "$.Time.*", "--exec", "tr a-z A-Z", "--count", "1",
                static_cast<char*>(nullptr));
        return 127;
    });
    // Ready once the replier's binding shows up.
    for (int i = 0; i < 500; ++i) {
        if (run(CLI + " bindings --json").second.find("$.Time.*") != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto [status, out] = run(CLI + " call '$.Time.Now' hello --json --timeout 5");
    EXPECT_EQ(status, 0) << out;
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    EXPECT_EQ(j["kind"], "reply");
    EXPECT_EQ(j["data"], "HELLO");
    EXPECT_EQ(reap(replier), 0);
}

TEST_F(DaemonTest, CliCallWithNoReplierFailsClearly) {
    auto [status, out] = run(CLI + " call '$.Nobody' 2>&1");
    EXPECT_EQ(status, 1);
    EXPECT_NE(out.find("no replier"), std::string::npos) << out;
}

TEST_F(DaemonTest, CliStatsAndNewBusAsJson) {
    auto [status, out] = run(CLI + " new-bus --json");
    EXPECT_EQ(status, 0);
    EXPECT_EQ(nlohmann::json::parse(out)["bus"], 2) << "the fixture starts two buses";
    auto stats = nlohmann::json::parse(run(CLI + " stats --bus 2 --json").second);
    EXPECT_EQ(stats["bus"], 2);
}

} // namespace
} // namespace xkbus::testing
