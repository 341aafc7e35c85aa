// Each way of failing to reach xkbusd has its own errno and its own words:
// no daemon at the path, permission denied, not a socket, a path too long,
// no such bus. Checked through the library, the C API and the CLI.
#include "daemon_fixture.hpp"
#include "run_command.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <xkbus/frontend/open.hpp>
#include <xkbus/kbus.h>

namespace xkbus::testing {
namespace {

const std::string CLI = XKBUS_CLI_PATH;
constexpr uid_t NOBODY = 65534;

// A folder of its own for paths no daemon serves.
class ConnectErrorTest : public ::testing::Test {
protected:
    void SetUp() override {
        char dir[] = "/tmp/xkbus-connect-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    static Errc connectError(const std::string& path) {
        auto c = frontend::connectLocal(path);
        return c ? Errc{} : c.error();
    }
    // The CLI against `path`: its exit status and what it printed on stderr.
    static CommandResult cliAt(const std::string& path) {
        return runCommand("XKBUS_SOCKET=" + shellQuote(path) + " " + CLI + " send '$.x'");
    }
    std::string m_dir;
};

TEST_F(ConnectErrorTest, NothingAtThePathIsNoDaemonAndSaysHowToStartOne) {
    const std::string path = m_dir + "/xkbusd.sock";
    EXPECT_EQ(connectError(path), Errc::NO_DAEMON);
    const auto cli = cliAt(path);
    EXPECT_EQ(cli.status, 69) << cli.err;
    EXPECT_NE(cli.err.find("no xkbusd is listening at " + path + " (no such file)"),
              std::string::npos)
        << cli.err;
    EXPECT_NE(cli.err.find("xkbusd --socket " + path), std::string::npos) << cli.err;
    EXPECT_NE(cli.err.find("errno " + std::to_string(EHOSTDOWN)), std::string::npos) << cli.err;
}

TEST_F(ConnectErrorTest, AStaleSocketIsNoDaemonAndSaysTheDaemonStopped) {
    const std::string path = m_dir + "/xkbusd.sock";
    {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    } // closed without listening: what a killed daemon leaves
    EXPECT_EQ(connectError(path), Errc::NO_DAEMON);
    const auto cli = cliAt(path);
    EXPECT_NE(cli.err.find("its daemon has stopped"), std::string::npos) << cli.err;
}

TEST_F(ConnectErrorTest, ARegularFileIsNotASocket) {
    const std::string path = m_dir + "/notes.txt";
    UniqueFd(::open(path.c_str(), O_CREAT | O_WRONLY, 0644));
    EXPECT_EQ(connectError(path), Errc::NOT_A_SOCKET);
    const auto cli = cliAt(path);
    EXPECT_EQ(cli.status, 69) << cli.err;
    EXPECT_NE(cli.err.find(path + " is a regular file, not xkbusd's socket"), std::string::npos)
        << cli.err;
    EXPECT_NE(cli.err.find("errno " + std::to_string(ENOTSOCK)), std::string::npos) << cli.err;
}

TEST_F(ConnectErrorTest, APathTooLongForAUnixSocketSaysSo) {
    const std::string path = m_dir + "/" + std::string(150, 'x') + ".sock";
    EXPECT_EQ(connectError(path), Errc::NAME_TOO_LONG);
    const auto cli = cliAt(path);
    EXPECT_NE(cli.err.find("must be shorter than 108 bytes"), std::string::npos) << cli.err;
    EXPECT_EQ(cli.err.find("message name"), std::string::npos) << cli.err;
}

TEST_F(ConnectErrorTest, TheCApiReturnsTheSameErrno) {
    ::setenv("XKBUS_SOCKET", (m_dir + "/none.sock").c_str(), 1);
    EXPECT_EQ(kbus_ksock_open(0, O_RDWR), -EHOSTDOWN);
    ::unsetenv("XKBUS_SOCKET");
}

// These need the daemon: a bus it does not have, a socket we may not open.
class ConnectToDaemonErrorTest : public DaemonTest {
protected:
    // Runs `body` as an unprivileged user (root ignores file modes).
    static int asNobody(const std::function<int()>& body) {
        return reap(spawn([&] {
            if (::geteuid() == 0 &&
                (::setgroups(0, nullptr) != 0 || ::setgid(NOBODY) != 0 || ::setuid(NOBODY) != 0)) {
                return 100;
            }
            return body();
        }));
    }
};

TEST_F(ConnectToDaemonErrorTest, ABusTheDaemonDoesNotHaveIsNoSuchBus) {
    auto connection = frontend::connectLocal(m_socket);
    ASSERT_TRUE(connection);
    EXPECT_EQ((*connection)->openKsock(7, true).error(), Errc::NO_SUCH_DEVICE);
    const auto cli = runCommand(CLI + " send '$.x' --bus 7");
    EXPECT_EQ(cli.status, 1) << cli.err;
    EXPECT_NE(cli.err.find("bus 7: no such bus on the daemon at " + m_socket), std::string::npos)
        << cli.err;
    EXPECT_NE(cli.err.find("errno " + std::to_string(ENOENT)), std::string::npos) << cli.err;
}

TEST_F(ConnectToDaemonErrorTest, ASocketWeMayNotOpenNamesItsOwnerAndMode) {
    // Root's child becomes nobody, whom 0600 shuts out; anyone else shuts
    // themselves out with 0000.
    const bool root = ::geteuid() == 0;
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(m_socket.c_str(), root ? 0600 : 0), 0);
    const std::string expected = "permission denied on " + m_socket + " (owner " +
                                 ::getpwuid(::geteuid())->pw_name + ", group ";
    const std::string mode = root ? "mode 0600)" : "mode 0000)";
    EXPECT_EQ(asNobody([&] {
                  auto c = frontend::connectLocal(m_socket);
                  if (c || c.error() != Errc::ACCESS_DENIED) {
                      return 1;
                  }
                  const std::string why = frontend::explainOpenError(c.error(), m_socket);
                  if (why.find(expected) == std::string::npos ||
                      why.find(mode) == std::string::npos) {
                      std::fprintf(stderr, "unexpected: %s\n", why.c_str());
                      return 2;
                  }
                  return 0;
              }),
              0);
}

TEST_F(ConnectToDaemonErrorTest, AFolderWeMayNotSearchIsNamed) {
    ASSERT_EQ(::chmod(m_dir.c_str(), ::geteuid() == 0 ? 0700 : 0600), 0);
    EXPECT_EQ(asNobody([&] {
                  auto c = frontend::connectLocal(m_socket);
                  if (c || c.error() != Errc::ACCESS_DENIED) {
                      return 1;
                  }
                  const std::string why = frontend::explainOpenError(c.error(), m_socket);
                  return why.find("permission denied on " + m_dir + " (") != std::string::npos ? 0
                                                                                               : 2;
              }),
              0);
    ::chmod(m_dir.c_str(), 0700); // so TearDown can clean up as a non-root user
}

} // namespace
} // namespace xkbus::testing
