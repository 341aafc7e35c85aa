// What an administrator meets when starting xkbusd: one daemon per socket
// (a second one refuses and leaves the first alone), and a stale socket
// from a daemon that died is replaced.
#include "daemon_fixture.hpp"
#include "run_command.hpp"

#include <algorithm>
#include <sys/stat.h>
#include <xkbus/frontend/open.hpp>

namespace xkbus::testing {
namespace {

const std::string XKBUSD = XKBUSD_PATH;

class DaemonOpsTest : public DaemonTest {
protected:
    // A Ksock on bus 0 through a fresh connection: the daemon really serves.
    bool serves(const std::string& path) {
        auto connection = frontend::connectLocal(path);
        return connection && (*connection)->openKsock(0, true).has_value();
    }
    std::string trustedSocket() const { return m_dir + "/limpet.sock"; }
};

TEST_F(DaemonOpsTest, ASecondDaemonOnALiveSocketRefusesAndNamesTheFirst) {
    const auto second = runCommand(XKBUSD + " --socket " + m_socket + " --log-level warn");
    EXPECT_EQ(second.status, 2) << second.err;
    EXPECT_NE(second.err.find("already serving " + m_socket), std::string::npos) << second.err;
    EXPECT_NE(second.err.find("pid " + std::to_string(m_daemon)), std::string::npos) << second.err;
    EXPECT_TRUE(serves(m_socket)) << "the first daemon lost its socket";
}

TEST_F(DaemonOpsTest, ASecondDaemonCannotTakeTheTrustedSocketEither) {
    const std::string other = m_dir + "/other.sock";
    const auto second = runCommand(XKBUSD + " --socket " + other + " --trusted-socket " +
                                   trustedSocket() + " --log-level warn");
    EXPECT_EQ(second.status, 2) << second.err;
    EXPECT_NE(second.err.find(trustedSocket()), std::string::npos) << second.err;
    EXPECT_TRUE(serves(trustedSocket()));
}

TEST_F(DaemonOpsTest, AStaleSocketFromAKilledDaemonIsReplaced) {
    EXPECT_EQ(stopDaemon(SIGKILL), -SIGKILL);
    struct stat st {};
    ASSERT_EQ(::lstat(m_socket.c_str(), &st), 0) << "SIGKILL leaves the socket file behind";
    ASSERT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_FALSE(serves(m_socket));
    startDaemon();
    EXPECT_TRUE(serves(m_socket));
    EXPECT_TRUE(serves(trustedSocket()));
}

TEST_F(DaemonOpsTest, ANonSocketFileAtThePathIsLeftAloneAndReported) {
    EXPECT_EQ(stopDaemon(SIGTERM), 0);
    const std::string file = m_dir + "/precious.txt";
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("not a socket\n", f);
    std::fclose(f);
    const auto refused = runCommand(XKBUSD + " --socket " + file + " --log-level warn");
    EXPECT_EQ(refused.status, 1) << refused.err;
    EXPECT_NE(refused.err.find(file + ": it exists and is not a socket"), std::string::npos)
        << refused.err;
    EXPECT_EQ(readWholeFile(file), "not a socket\n");
}

TEST_F(DaemonOpsTest, AConfigFileSetsTheDaemonsOptions) {
    const std::string conf = m_dir + "/xkbusd.conf";
    const std::string other = m_dir + "/configured.sock";
    {
        std::FILE* f = std::fopen(conf.c_str(), "w");
        std::fprintf(f, "# as /etc/xkbus/xkbusd.conf\nsocket = %s\nbuses = 3\nlog-level = warn\n",
                     other.c_str());
        std::fclose(f);
    }
    const pid_t daemon = spawn([&] {
        ::execl(XKBUSD_PATH, "xkbusd", "--config", conf.c_str(), static_cast<char*>(nullptr));
        return 127;
    });
    const std::string cli = std::string(XKBUS_CLI_PATH) + " --socket " + other;
    EXPECT_EQ(runCommand(cli + " wait").status, 0);
    const auto buses = runCommand(cli + " buses --json");
    EXPECT_EQ(std::count(buses.out.begin(), buses.out.end(), '{'), 3) << buses.out;
    ::kill(daemon, SIGTERM);
    EXPECT_EQ(reap(daemon), 0);
}

TEST_F(DaemonOpsTest, AMisspeltConfigKeyIsRefusedNotIgnored) {
    const std::string conf = m_dir + "/bad.conf";
    {
        std::FILE* f = std::fopen(conf.c_str(), "w");
        std::fputs("sockets = /tmp/nowhere.sock\n", f);
        std::fclose(f);
    }
    // `timeout`: were the key ignored, the daemon would run on.
    const auto r = runCommand("timeout 10 " + XKBUSD + " --config " + conf);
    EXPECT_EQ(r.status, 64) << r.err;
    EXPECT_NE(r.err.find("sockets"), std::string::npos) << r.err;
}

} // namespace
} // namespace xkbus::testing
