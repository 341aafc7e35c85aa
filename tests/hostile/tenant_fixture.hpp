// A real xkbusd with a policy file, and tenants beside each other: the test
// process is root (dom0); an attacker child drops to `nobody` before it
// connects, a victim child to `daemon`, so the daemon sees three tenants by
// their SO_PEERCRED uid. Used by the policy_* and tenants_* tests.
#pragma once

#include "../support/child_process.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <xkbus/frontend/connection.hpp>
#include <xkbus/frontend/open.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::testing {

inline constexpr uid_t NOBODY = 65534;    // the attacker
inline constexpr uid_t DAEMON_USER = 1;   // the victim, another unprivileged tenant
inline constexpr int UNEXPECTED_OK = 200; // a child's exit code: a refusal did not come

class TenantDaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root: the tenants are other users it becomes";
        }
        char dir[] = "/tmp/xkbus-hostile-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        ::chmod(m_dir.c_str(), 0755); // other users reach the socket through it
        m_socket = m_dir + "/xkbusd.sock";
        m_policy = m_dir + "/policy.conf";
        m_log = m_dir + "/xkbusd.log";
    }

    void TearDown() override {
        stopDaemon();
        if (!m_dir.empty()) {
            std::filesystem::remove_all(m_dir);
        }
    }

    void writePolicy(const std::string& text) const {
        const std::string tmp = m_policy + ".new";
        std::ofstream(tmp) << text;
        std::filesystem::rename(tmp, m_policy); // as an editor saves: never half a file
    }

    void startDaemon(std::vector<std::string> extra = {}) {
        m_daemon = ::fork();
        if (m_daemon == 0) {
            const int log = ::open(m_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(log, STDERR_FILENO);
            std::vector<std::string> args{"xkbusd",   "--socket", m_socket,      "--buses", "3",
                                          "--policy", m_policy,   "--log-level", "info"};
            args.insert(args.end(), extra.begin(), extra.end());
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            ::execv(XKBUSD_PATH, argv.data());
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (socket::connectUnix(m_socket)) {
                ::chmod(m_socket.c_str(), 0666); // the test's users are strangers to its group
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        FAIL() << "xkbusd did not start:\n" << logText();
    }

    int stopDaemon() {
        if (m_daemon <= 0) {
            return 0;
        }
        ::kill(m_daemon, SIGTERM);
        int status = 0;
        ::waitpid(m_daemon, &status, 0);
        m_daemon = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    std::string logText() const {
        std::ifstream in(m_log);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    size_t logCount(const std::string& needle) const {
        const std::string text = logText();
        size_t n = 0;
        for (size_t at = text.find(needle); at != std::string::npos;
             at = text.find(needle, at + 1)) {
            ++n;
        }
        return n;
    }

    // Waits until the log has `needle` more than `before` times; false on timeout.
    bool waitForLog(const std::string& needle, size_t before, int timeoutMs = 10000) const {
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (std::chrono::steady_clock::now() < deadline) {
            if (logCount(needle) > before) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    }

    // SIGHUP, then wait for the daemon to say whether it took the new file.
    // Returns true if it did.
    bool reload() {
        const size_t took = logCount("policy reloaded");
        const size_t kept = logCount("policy not reloaded");
        ::kill(m_daemon, SIGHUP);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (logCount("policy reloaded") > took) {
                return true;
            }
            if (logCount("policy not reloaded") > kept) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ADD_FAILURE() << "xkbusd did not answer SIGHUP";
        return false;
    }

    // Runs `body` in a child that has become `uid` (groups dropped first, so
    // nothing of root's is left); the child's exit code is body's result.
    pid_t spawnAs(uid_t uid, const std::function<int()>& body) const {
        const pid_t pid = ::fork();
        if (pid == 0) {
            if (!support::becomeUser(uid, uid)) {
                ::_exit(126);
            }
            ::_exit(body());
        }
        return pid;
    }

    static int reap(pid_t pid) { return support::reapExitCode(pid); }

    int runAs(uid_t uid, const std::function<int()>& body) const {
        return reap(spawnAs(uid, body));
    }

    Result<std::shared_ptr<frontend::Connection>> connect() const {
        return frontend::connectLocal(m_socket);
    }

    static Result<std::unique_ptr<frontend::KsockChannel>>
    openOn(const Result<std::shared_ptr<frontend::Connection>>& c, uint32_t bus) {
        if (!c) {
            return fail(c.error());
        }
        return (*c)->openKsock(bus, true);
    }

    // The errno of a refused call as an exit code, or UNEXPECTED_OK.
    template <class T>
    static int errnoOf(const Result<T>& r) {
        return r ? UNEXPECTED_OK : toErrno(r.error());
    }

    // The daemon's resident memory, in KiB.
    long daemonRssKiB() const {
        std::ifstream in("/proc/" + std::to_string(m_daemon) + "/status");
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("VmRSS:", 0) == 0) {
                return std::stol(line.substr(6));
            }
        }
        return -1;
    }

    using Gate = support::Gate;

    std::string m_dir;
    std::string m_socket;
    std::string m_policy;
    std::string m_log;
    pid_t m_daemon = 0;
};

} // namespace xkbus::testing
