// Starts a real xkbusd on a private socket for a test, and forks client
// processes that talk to it. XKBUSD_PATH is the daemon binary (set by CMake).
#pragma once

#include "../support/child_process.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <xkbus/frontend/message_text.hpp>
#include <xkbus/frontend/open.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::testing {

class DaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        char dir[] = "/tmp/xkbus-e2e-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_socket = m_dir + "/xkbusd.sock";
        ::setenv("XKBUS_SOCKET", m_socket.c_str(), 1);
        startDaemon();
    }

    void TearDown() override {
        stopDaemon(SIGTERM);
        std::filesystem::remove_all(m_dir);
    }

    void startDaemon() {
        m_daemon = ::fork();
        if (m_daemon == 0) {
            const std::string trusted = m_dir + "/limpet.sock";
            ::execl(XKBUSD_PATH, "xkbusd", "--socket", m_socket.c_str(), "--trusted-socket",
                    trusted.c_str(), "--buses", "2", "--log-level", "warn",
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // Ready when it accepts a connection: poll, don't sleep blindly.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (socket::connectUnix(m_socket)) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        FAIL() << "xkbusd did not start";
    }

    // Returns the daemon's exit status (or -signal).
    int stopDaemon(int sig) {
        if (m_daemon <= 0) {
            return 0;
        }
        ::kill(m_daemon, sig);
        int status = 0;
        ::waitpid(m_daemon, &status, 0);
        m_daemon = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }

    // Runs `body` in a child process; its return value is the exit code.
    static pid_t spawn(const std::function<int()>& body) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::_exit(body());
        }
        return pid;
    }

    static int reap(pid_t pid) { return support::reapExitCode(pid); }

    // Waits until `fd` is readable; false on timeout.
    static bool waitReadable(int fd, int timeoutMs = 5000) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, timeoutMs) == 1 && (p.revents & POLLIN) != 0;
    }

    static short pollNow(int fd) {
        pollfd p{fd, POLLIN | POLLOUT, 0};
        return ::poll(&p, 1, 0) == 1 ? p.revents : 0;
    }

    using Gate = support::Gate;

    std::string m_dir;
    std::string m_socket;
    pid_t m_daemon = 0;
};

} // namespace xkbus::testing
