// The hostile-tenant front door suite's fixture: a real xkbusd with the
// options a test asks for, attackers forked as the unprivileged user nobody,
// a victim request/reply pair beside them, and the daemon's CPU time read
// from /proc, a bound that does not depend on the machine's speed.
#pragma once

#include "../support/child_process.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <grp.h>
#include <gtest/gtest.h>
#include <optional>
#include <poll.h>
#include <pwd.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>
#include <xkbus/frontend/message_text.hpp>
#include <xkbus/frontend/open.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::hostile {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct DaemonSetup {
    std::vector<std::string> args; // added to the command line
    rlim_t fileLimit = 0;          // 0: the daemon raises its own
};

class FrontdoorTest : public ::testing::Test {
public: // the tests' free helpers use the gates and the waits
    using Gate = xkbus::testing::support::Gate;

    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root, to run the attacker as nobody";
        }
        const passwd* nobody = ::getpwnam("nobody");
        ASSERT_NE(nobody, nullptr);
        m_nobodyUid = nobody->pw_uid;
        m_nobodyGid = nobody->pw_gid;
        char dir[] = "/tmp/xkbus-hostile-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0); // nobody must reach the sockets
        m_socket = m_dir + "/xkbusd.sock";
        m_trusted = m_dir + "/limpet.sock";
        ::setenv("XKBUS_SOCKET", m_socket.c_str(), 1);
    }

    void TearDown() override {
        for (pid_t pid : m_children) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        stopDaemon();
        if (!m_dir.empty()) {
            std::filesystem::remove_all(m_dir);
        }
    }

    void startDaemon(const DaemonSetup& setup = {}) {
        // XKBUS_HOSTILE_XKBUSD runs another daemon build (an older one, for
        // before/after figures); it gets only the options every build knows.
        const char* other = std::getenv("XKBUS_HOSTILE_XKBUSD");
        const std::string binary = other != nullptr ? other : XKBUSD_PATH;
        std::vector<std::string> args{binary,    "--socket",    m_socket, "--trusted-socket",
                                      m_trusted, "--log-level", "error"};
        if (other == nullptr) {
            args.insert(args.end(), {"--socket-group", std::to_string(m_nobodyGid)});
            args.insert(args.end(), setup.args.begin(), setup.args.end());
        }
        m_daemon = ::fork();
        if (m_daemon == 0) {
            if (setup.fileLimit != 0) {
                const rlimit lim{setup.fileLimit, setup.fileLimit};
                ::setrlimit(RLIMIT_NOFILE, &lim);
            }
            std::vector<char*> argv;
            for (auto& a : args) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            ::execv(binary.c_str(), argv.data());
            ::_exit(127);
        }
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            if (std::filesystem::exists(m_trusted)) {
                if (other != nullptr) {
                    ::chmod(m_socket.c_str(), 0666); // let nobody in
                }
                return;
            }
            std::this_thread::sleep_for(5ms);
        }
        FAIL() << "xkbusd did not start";
    }

    void stopDaemon() {
        if (m_daemon > 0) {
            ::kill(m_daemon, SIGTERM);
            ::waitpid(m_daemon, nullptr, 0);
            m_daemon = 0;
        }
    }

    // Forks `body` as nobody (no supplementary groups); its return value is
    // the exit code. Killed at TearDown if still running.
    pid_t spawnAttacker(const std::function<int()>& body) {
        return spawn([&] {
            if (!xkbus::testing::support::becomeUser(m_nobodyUid, m_nobodyGid)) {
                return 120;
            }
            return body();
        });
    }

    // Forks an attacker that opens up to `count` connections to the client
    // socket and holds them, never saying HELLO, until TearDown; `holding`
    // opens once it has them. With `allMustConnect` a refused connection
    // fails the attacker (exit 2); without, it ends the run (the backlog is full).
    void holdRawConnections(int count, Gate& holding, bool allMustConnect) {
        spawnAttacker([&] {
            std::vector<UniqueFd> kept;
            for (int i = 0; i < count; ++i) {
                auto raw = socket::connectUnix(m_socket);
                if (!raw) {
                    if (allMustConnect) {
                        return 2;
                    }
                    break;
                }
                kept.push_back(std::move(*raw));
            }
            holding.open();
            ::pause();
            return 0;
        });
    }

    pid_t spawn(const std::function<int()>& body) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::_exit(body());
        }
        m_children.push_back(pid);
        return pid;
    }

    int reap(pid_t pid) {
        std::erase(m_children, pid);
        return xkbus::testing::support::reapExitCode(pid);
    }

    // The daemon's user + system CPU time so far, from /proc/PID/stat.
    std::chrono::milliseconds daemonCpu() const {
        std::ifstream stat("/proc/" + std::to_string(m_daemon) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), {});
        std::istringstream fields(text.substr(text.rfind(')') + 2));
        std::string field;
        unsigned long long utime = 0;
        unsigned long long stime = 0;
        for (int i = 3; i <= 15 && fields >> field; ++i) {
            if (i == 14) {
                utime = std::stoull(field);
            } else if (i == 15) {
                stime = std::stoull(field);
            }
        }
        const long hz = ::sysconf(_SC_CLK_TCK);
        return std::chrono::milliseconds((utime + stime) * 1000 /
                                         static_cast<unsigned long long>(hz));
    }

    // The CPU time the daemon used while the test slept for `period`.
    std::chrono::milliseconds daemonCpuOver(std::chrono::milliseconds period) const {
        const auto before = daemonCpu();
        std::this_thread::sleep_for(period);
        return daemonCpu() - before;
    }

    // True if the daemon closed `fd` (EOF or reset) within `timeout`.
    static bool hungUpWithin(int fd, std::chrono::milliseconds timeout) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
            return false;
        }
        char byte = 0;
        const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
        return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
    }

    static bool waitReadable(int fd, int timeoutMs = 5000) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, timeoutMs) == 1 && (p.revents & POLLIN) != 0;
    }

    // A replier for `name` in its own process, answering until killed.
    void startVictimReplier(const std::string& name) {
        int ready[2];
        ASSERT_EQ(::pipe(ready), 0);
        spawn([&] {
            auto k = frontend::openDefaultKsock(0, true);
            if (!k || !(*k)->bind(name, true)) {
                return 1;
            }
            (void)!::write(ready[1], "x", 1);
            for (;;) {
                if (!waitReadable((*k)->fd(), -1)) {
                    continue;
                }
                auto req = (*k)->nextMessage();
                if (!req) {
                    return 2;
                }
                if (!*req || !(*req)->wantsYouToReply()) {
                    continue;
                }
                frontend::Message answer = frontend::textMessage((*req)->name(), "ok");
                answer.header.inReplyTo = (*req)->header.id;
                answer.header.to = (*req)->header.from;
                (void)(*k)->send(answer);
            }
        });
        char c = 0;
        pollfd p{ready[0], POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 10000), 1);
        ASSERT_EQ(::read(ready[0], &c, 1), 1);
        ::close(ready[0]);
        ::close(ready[1]);
    }

    // The slowest of `count` victim round trips, each allowed 2 s; nullopt,
    // with the failure recorded, if one was not answered in time.
    static std::optional<std::chrono::microseconds>
    slowestVictimRoundTrip(frontend::KsockChannel& sender, const std::string& name, int count) {
        std::chrono::microseconds slowest{0};
        for (int i = 0; i < count; ++i) {
            auto took = victimRoundTrip(sender, name, 2000ms);
            if (!took) {
                ADD_FAILURE() << "request " << i << " was not answered within 2 s";
                return std::nullopt;
            }
            slowest = std::max(slowest, *took);
        }
        return slowest;
    }

    // One request to the victim's replier and its reply; nullopt if it failed
    // or took over `limit`.
    static std::optional<std::chrono::microseconds>
    victimRoundTrip(frontend::KsockChannel& sender, const std::string& name,
                    std::chrono::milliseconds limit = 5000ms) {
        const auto start = Clock::now();
        auto id = sender.send(frontend::textMessage(name, "ping", FLAG_WANT_A_REPLY));
        if (!id) {
            return std::nullopt;
        }
        for (;;) {
            const auto left =
                limit - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
            if (left.count() <= 0 || !waitReadable(sender.fd(), static_cast<int>(left.count()))) {
                return std::nullopt;
            }
            auto reply = sender.nextMessage();
            if (!reply) {
                return std::nullopt;
            }
            if (*reply && (*reply)->header.inReplyTo == *id) {
                return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
            }
        }
    }

    std::string m_dir;
    std::string m_socket;
    std::string m_trusted;
    pid_t m_daemon = 0;
    uid_t m_nobodyUid = 0;
    gid_t m_nobodyGid = 0;
    std::vector<pid_t> m_children;
};

} // namespace xkbus::hostile
