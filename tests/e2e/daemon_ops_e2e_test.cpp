// What an administrator meets when starting xkbusd: one daemon per socket
// (a second one refuses and leaves the first alone), and a stale socket
// from a daemon that died is replaced.
#include "daemon_fixture.hpp"
#include "run_command.hpp"

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

} // namespace
} // namespace xkbus::testing
