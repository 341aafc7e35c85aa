// The processes of one end-to-end benchmark run: a private xkbusd and the
// forked clients. Every pid is registered so that every way out (a failure, a
// finished run, the alarm() hard timeout) kills and reaps all of them: a bench
// must never leave a daemon or a client behind. A pid is only ever signalled
// if it is > 0 (kill(0) or kill(-1) would hit far more than our children).
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace xkbus::bench::e2e {

inline constexpr int MAX_PROCESSES = 1100; // up to one client process per connection

// Plain arrays: the SIGALRM handler reads them, so no allocation, no locks.
struct Registry {
    pid_t pids[MAX_PROCESSES] = {};
    int count = 0;
    pid_t daemon = 0;
    char socketPath[sizeof(sockaddr_un::sun_path)] = {};
    char dir[64] = {};
    bool isChild = false;
};

inline Registry& registry() {
    static Registry r;
    return r;
}

inline void killAndReap(pid_t& pid) noexcept {
    if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    pid = 0;
}

// Async-signal-safe: called from the SIGALRM handler as well.
inline void killEverything() noexcept {
    Registry& r = registry();
    if (r.isChild) {
        return; // only the process that forked them cleans up
    }
    for (int i = 0; i < r.count; ++i) {
        killAndReap(r.pids[i]);
    }
    killAndReap(r.daemon);
    if (r.socketPath[0] != '\0') {
        ::unlink(r.socketPath);
    }
    if (r.dir[0] != '\0') {
        ::rmdir(r.dir);
    }
}

// Reports a failure and leaves: a child just exits (its parent sees the
// status); the parent first kills and reaps everything it started.
[[noreturn]] inline void die(const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::fprintf(stderr, "bench_e2e[%d]: ", static_cast<int>(::getpid()));
    std::vfprintf(stderr, format, args);
    std::fputc('\n', stderr);
    va_end(args);
    if (registry().isChild) {
        ::_exit(1);
    }
    killEverything();
    std::exit(1);
}

inline void onAlarm(int) {
    static const char message[] = "bench_e2e: hard timeout, killing everything\n";
    (void)!::write(STDERR_FILENO, message, sizeof message - 1);
    killEverything();
    ::_exit(1);
}

inline void armHardTimeout(unsigned seconds) {
    std::signal(SIGALRM, onAlarm);
    ::alarm(seconds);
}

// In a fresh child: die with the parent, forget the parent's processes.
inline void becomeChild(pid_t parent) {
    Registry& r = registry();
    r = Registry{};
    r.isChild = true;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) { // the parent died before prctl took effect
        ::_exit(1);
    }
}

// Forks a client running `body`; its return value is the exit status.
inline pid_t spawn(const std::function<int()>& body) {
    Registry& r = registry();
    if (r.count == MAX_PROCESSES) {
        die("too many processes");
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        die("fork: %s", std::strerror(errno));
    }
    if (pid == 0) {
        becomeChild(parent);
        int status = 1;
        try {
            status = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_e2e child: %s\n", e.what());
        }
        std::fflush(stderr);
        ::_exit(status);
    }
    r.pids[r.count++] = pid;
    return pid;
}

// Waits for every client to exit; dies unless all exited with 0.
inline void reapClients() {
    Registry& r = registry();
    for (int i = 0; i < r.count; ++i) {
        if (r.pids[i] <= 0) {
            continue;
        }
        int status = 0;
        ::waitpid(r.pids[i], &status, 0);
        r.pids[i] = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            die("a client failed (status %d)", status);
        }
    }
    r.count = 0;
}

// Dies at once if a client already failed, rather than when the messages it
// should have sent time out.
inline void checkClients() {
    Registry& r = registry();
    for (int i = 0; i < r.count; ++i) {
        int status = 0;
        if (r.pids[i] > 0 && ::waitpid(r.pids[i], &status, WNOHANG) == r.pids[i]) {
            r.pids[i] = 0;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                die("a client failed (status %d)", status);
            }
        }
    }
}

// Kills a client that would otherwise wait forever (one that only holds
// bindings), and forgets it.
inline void killClient(pid_t pid) {
    Registry& r = registry();
    for (int i = 0; i < r.count; ++i) {
        if (r.pids[i] == pid) {
            killAndReap(r.pids[i]);
        }
    }
}

// A pipe through which children say they reached a point (bound, connected).
// Close-on-exec, so the daemon never holds it.
class Gate {
public:
    Gate() {
        if (::pipe2(m_fds, O_CLOEXEC) != 0) {
            die("pipe: %s", std::strerror(errno));
        }
    }
    ~Gate() {
        ::close(m_fds[0]);
        ::close(m_fds[1]);
    }
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;

    void open() const { (void)!::write(m_fds[1], "x", 1); }
    // Waits for `count` children to open it.
    void waitOpened(int count, std::chrono::seconds timeout) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (int seen = 0; seen < count;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{m_fds[0], POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) {
                die("only %d of %d clients got ready", seen, count);
            }
            char buffer[64];
            const ssize_t n = ::read(m_fds[0], buffer, sizeof buffer);
            if (n > 0) {
                seen += static_cast<int>(n);
            }
        }
    }

private:
    int m_fds[2] = {-1, -1};
};

inline bool socketAccepts(const char* path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const size_t length = std::strlen(path);
    if (length >= sizeof address.sun_path) {
        ::close(fd);
        return false;
    }
    std::memcpy(address.sun_path, path, length + 1);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
}

// Starts xkbusd on a private socket and returns once it accepts connections,
// so that no client ever talks to a daemon that is not listening yet.
// Sets XKBUS_SOCKET for the clients forked later. A negative spinUs keeps
// the daemon's default spin budget.
inline void startDaemon(const char* daemonPath, int spinUs = -1) {
    Registry& r = registry();
    char dir[] = "/tmp/xkbus-bench-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
        die("mkdtemp: %s", std::strerror(errno));
    }
    std::snprintf(r.dir, sizeof r.dir, "%s", dir);
    std::snprintf(r.socketPath, sizeof r.socketPath, "%s/xkbusd.sock", dir);
    ::setenv("XKBUS_SOCKET", r.socketPath, 1);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        die("fork: %s", std::strerror(errno));
    }
    if (pid == 0) {
        const std::string socketPath = r.socketPath; // becomeChild clears the registry
        const std::string spin = std::to_string(spinUs);
        becomeChild(parent); // the death signal survives exec: no orphaned daemon
        if (spinUs < 0) {
            ::execl(daemonPath, "xkbusd", "--socket", socketPath.c_str(), "--log-level", "warn",
                    static_cast<char*>(nullptr));
        } else {
            ::execl(daemonPath, "xkbusd", "--socket", socketPath.c_str(), "--log-level", "warn",
                    "--spin-us", spin.c_str(), static_cast<char*>(nullptr));
        }
        ::_exit(127);
    }
    r.daemon = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!socketAccepts(r.socketPath)) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) {
            r.daemon = 0;
            die("xkbusd exited at start");
        }
        if (std::chrono::steady_clock::now() > deadline) {
            die("xkbusd did not start listening");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

inline void stopDaemon() {
    Registry& r = registry();
    if (r.daemon > 0) {
        ::kill(r.daemon, SIGTERM);
        bool exited = false;
        for (int i = 0; i < 200 && !exited; ++i) { // 2 s to stop cleanly
            exited = ::waitpid(r.daemon, nullptr, WNOHANG) == r.daemon;
            if (!exited) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
        if (exited) {
            r.daemon = 0;
        }
        killAndReap(r.daemon);
    }
    killEverything(); // the socket and the directory
}

inline pid_t daemonPid() {
    return registry().daemon;
}

// The resident set of `pid` in bytes (VmRSS), or 0 if unreadable.
inline long long residentBytes(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return 0;
    }
    long long kib = 0;
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::sscanf(line, "VmRSS: %lld kB", &kib) == 1) {
            break;
        }
    }
    std::fclose(f);
    return kib * 1024;
}

} // namespace xkbus::bench::e2e
