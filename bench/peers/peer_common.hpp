// Shared pieces of the peer-system benchmarks (issue #7): the common command
// line, the process tree each program forks for itself, the credit window of
// the announcement scenario, round-trip timing and the one-line JSON result.
//
// Every program forks its whole tree so that `taskset -c 0 ./bench_peer_x`
// pins the broker and all clients to one CPU together. The parent is always
// the measuring client (requester or announcement sender); the children are
// services (a broker, a replier: killed at the end) or listeners (which must
// exit 0 after receiving every message).
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <span>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace xkbus::bench::peers {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- files

// The temporary directory of a run and the files made in it, in plain arrays
// so that even the SIGALRM handler can remove them (unlink and rmdir are
// async-signal-safe): a failed run leaves nothing in /tmp either.
struct RunFiles {
    using Path = std::array<char, 256>;
    pid_t owner = 0; // only the process that made them removes them
    Path dir{};
    std::array<Path, 16> files{};
    std::size_t fileCount = 0;
};
inline RunFiles g_runFiles;

inline void removeRunFiles() noexcept {
    if (g_runFiles.owner != getpid()) {
        return;
    }
    for (std::size_t i = 0; i < g_runFiles.fileCount; ++i) {
        (void)unlink(g_runFiles.files[i].data());
    }
    (void)rmdir(g_runFiles.dir.data());
    g_runFiles.owner = 0;
}

// ---------------------------------------------------------------- failing

// Children leave with _exit() (no destructors or stdio flushes of state they
// share with the parent); a parent that fails leaves the same way and its
// children die with it (PR_SET_PDEATHSIG).
[[noreturn]] inline void die(std::string_view what) {
    std::cerr << "peer[" << getpid() << "]: " << what << std::endl;
    removeRunFiles();
    _exit(1);
}

[[noreturn]] inline void dieErrno(std::string_view what) {
    const int saved = errno;
    die(std::string(what) + ": " + std::strerror(saved));
}

// A scenario or size this system is not measured with: exit 2, as the runner expects.
[[noreturn]] inline void unsupported(std::string_view what) {
    std::cerr << "unsupported: " << what << std::endl;
    std::exit(2);
}

// ---------------------------------------------------------------- options

struct Options {
    std::string scenario = "rr";
    std::size_t size = 64;
    uint64_t iterations = 0; // rr round trips; 0: a default by size
    unsigned listeners = 1;  // ann
    uint64_t count = 0;      // ann messages; 0: a default by size
    uint64_t window = 128;   // ann credit window, in messages
    unsigned timeoutSeconds = 120;
    bool verbose = false;

    bool isRoundTrip() const { return scenario == "rr"; }
    // A listener acknowledges every `ackEvery` messages (and the last one).
    uint64_t ackEvery() const { return std::max<uint64_t>(1, window / 2); }
    // Round trips not measured before the measured ones (caches, allocations, paging).
    uint64_t warmups() const { return iterations / 10; }
};

inline void addOptions(CLI::App& app, Options& o) {
    app.add_option("--scenario", o.scenario, "rr: request/reply; ann: announcements")
        ->check(CLI::IsMember({"rr", "ann"}));
    app.add_option("--size", o.size, "payload bytes (at least 8: a sequence number leads it)");
    app.add_option("--iterations", o.iterations, "rr: measured round trips (default by size)");
    app.add_option("--listeners", o.listeners, "ann: listeners K")->check(CLI::Range(1, 64));
    app.add_option("--count", o.count, "ann: messages sent (default by size)");
    app.add_option("--window", o.window, "ann: most unacknowledged messages")
        ->check(CLI::Range(1, 1 << 20));
    app.add_option("--timeout", o.timeoutSeconds, "give up (exit 3) after this many seconds");
    app.add_flag("--verbose", o.verbose, "more detail on stderr");
}

// Defaults keep a whole comparison run to seconds.
inline void applyDefaults(Options& o) {
    if (o.iterations == 0) {
        o.iterations = o.size <= 64 ? 20000 : o.size <= 4096 ? 10000 : 2000;
    }
    if (o.count == 0) {
        o.count = o.size <= 64 ? 200000 : o.size <= 4096 ? 50000 : 5000;
    }
    if (o.size < sizeof(uint64_t)) {
        unsupported("--size below 8 bytes (the payload carries a sequence number)");
    }
    if (o.isRoundTrip()) {
        o.listeners = 1; // one replier; K means nothing here
    }
}

// Parses argv; returns an exit code to leave with, or -1 to go on.
inline int parseOptions(CLI::App& app, Options& o, int argc, char** argv) {
    addOptions(app, o);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    applyDefaults(o);
    return -1;
}

// ---------------------------------------------------------------- payload

// The first 8 bytes of every payload are its sequence number: a lost,
// repeated or reordered message shows up as a wrong number.
inline void stampSequence(std::span<std::byte> payload, uint64_t seq) {
    std::memcpy(payload.data(), &seq, sizeof seq);
}

inline uint64_t sequenceOf(std::span<const std::byte> payload) {
    uint64_t seq = 0;
    std::memcpy(&seq, payload.data(), sizeof seq);
    return seq;
}

inline std::vector<std::byte> makePayload(std::size_t size) {
    std::vector<std::byte> payload(size);
    for (std::size_t i = 0; i < size; ++i) {
        payload[i] = std::byte(i * 131 + 7);
    }
    return payload;
}

// Dies unless `got` is a `size`-byte payload carrying `seq`.
inline void checkPayload(std::span<const std::byte> got, std::size_t size, uint64_t seq) {
    if (got.size() != size) {
        die("payload " + std::to_string(seq) + " has " + std::to_string(got.size()) +
            " bytes, expected " + std::to_string(size));
    }
    if (const uint64_t s = sequenceOf(got); s != seq) {
        die("expected message " + std::to_string(seq) + ", got " + std::to_string(s));
    }
}

// ---------------------------------------------------------------- children

// The children to kill when the parent gives up. A fixed table, because the
// SIGALRM handler reads it and may do nothing but async-signal-safe calls.
inline std::array<std::atomic<pid_t>, 128> g_children{};

inline void forgetChild(pid_t pid) {
    for (auto& slot : g_children) {
        pid_t expected = pid;
        if (slot.compare_exchange_strong(expected, 0)) {
            return;
        }
    }
}

inline void rememberChild(pid_t pid) {
    for (auto& slot : g_children) {
        pid_t expected = 0;
        if (slot.compare_exchange_strong(expected, pid)) {
            return;
        }
    }
    die("too many child processes");
}

// Only ever a single positive pid: kill(0) or kill(-1) would hit far more.
inline void killOne(pid_t pid) {
    if (pid > 0) {
        (void)kill(pid, SIGKILL);
    }
}

inline void onTimeout(int) {
    for (auto& slot : g_children) {
        killOne(slot.load());
    }
    for (auto& slot : g_children) {
        if (const pid_t pid = slot.load(); pid > 0) {
            (void)waitpid(pid, nullptr, 0);
        }
    }
    removeRunFiles();
    constexpr char message[] = "peer: timed out, children killed\n";
    (void)!write(STDERR_FILENO, message, sizeof message - 1);
    _exit(3);
}

// A hard limit on the whole run: a hung broker must not hang the runner.
inline void armTimeout(unsigned seconds) {
    struct sigaction action {};
    action.sa_handler = onTimeout;
    sigemptyset(&action.sa_mask);
    (void)sigaction(SIGALRM, &action, nullptr);
    alarm(seconds);
}

// Forks a child that runs `body` and exits with what it returns. The child
// dies with the parent, so a parent that fails leaves nothing behind.
template <typename Body>
pid_t spawnChild(std::string_view role, Body&& body) {
    const pid_t parent = getpid();
    std::cerr << std::flush;
    const pid_t pid = fork();
    if (pid < 0) {
        dieErrno("fork " + std::string(role));
    }
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1); // the parent died before the line above
        }
        const int rc = body();
        std::cerr << std::flush;
        _exit(rc);
    }
    rememberChild(pid);
    return pid;
}

// Waits for a child that should finish on its own; true when it exited 0.
inline bool waitChild(pid_t pid, std::string_view role) {
    if (pid <= 0) {
        return false;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            dieErrno("waitpid " + std::string(role));
        }
    }
    forgetChild(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return true;
    }
    std::cerr << role << " (pid " << pid << ") "
              << (WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                                    : "killed by signal " + std::to_string(WTERMSIG(status)))
              << std::endl;
    return false;
}

// Waits for every listener; true when all of them exited 0.
inline bool waitListeners(const std::vector<pid_t>& listeners) {
    bool allOk = true;
    for (const pid_t pid : listeners) {
        allOk = waitChild(pid, "listener") && allOk;
    }
    return allOk;
}

// Kills and reaps a service child (a broker, a replier) that never ends by itself.
inline void stopChild(pid_t pid) {
    if (pid <= 0) {
        return;
    }
    killOne(pid);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    forgetChild(pid);
}

// ---------------------------------------------------------------- files

// The private directory of one run (sockets, a config file), removed at the
// end. One at a time.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "xkbus-peer-XXXXXX");
        if (pattern.size() >= g_runFiles.dir.size() - 32 || mkdtemp(pattern.data()) == nullptr) {
            dieErrno("mkdtemp");
        }
        std::memcpy(g_runFiles.dir.data(), pattern.c_str(), pattern.size() + 1);
        g_runFiles.owner = getpid();
        m_path = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() { removeRunFiles(); }

    // The path of a file in the directory (short names only), to be removed with it.
    std::string file(std::string_view name) const {
        const std::string path = m_path + "/" + std::string(name);
        if (path.size() >= RunFiles::Path().size() ||
            g_runFiles.fileCount == g_runFiles.files.size()) {
            die("too many or too long temporary file names");
        }
        std::memcpy(g_runFiles.files[g_runFiles.fileCount++].data(), path.c_str(), path.size() + 1);
        return path;
    }

private:
    std::string m_path;
};

inline void writeFully(int fd, const void* data, std::size_t bytes) {
    const auto* at = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t n = write(fd, at, bytes);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            dieErrno("write");
        }
        at += n;
        bytes -= static_cast<std::size_t>(n);
    }
}

// ---------------------------------------------------------------- credit window

// The side channel of the announcement scenario: one pipe from every listener
// to the sender. Records are 16 bytes, under PIPE_BUF, so concurrent writes
// never interleave and reads always return whole records.
struct AckRecord {
    uint32_t listener = 0;
    uint32_t ready = 0;    // 1: subscribed, send away
    uint64_t received = 0; // messages received so far
};

class AckPipe {
public:
    AckPipe() {
        if (pipe2(m_fds.data(), O_CLOEXEC) != 0) {
            dieErrno("pipe2");
        }
    }
    int readEnd() const { return m_fds[0]; }
    int writeEnd() const { return m_fds[1]; }

private:
    std::array<int, 2> m_fds{-1, -1};
};

// A listener's end: says when it is subscribed, then acknowledges every
// ackEvery() messages and the last one.
class Acker {
public:
    Acker(const AckPipe& pipe, uint32_t listener, const Options& o)
        : m_fd(pipe.writeEnd()), m_listener(listener), m_every(o.ackEvery()), m_total(o.count) {}

    void ready() { send(1, 0); }
    void received(uint64_t count) {
        if (count % m_every == 0 || count == m_total) {
            send(0, count);
        }
    }

private:
    void send(uint32_t ready, uint64_t count) {
        const AckRecord record{m_listener, ready, count};
        writeFully(m_fd, &record, sizeof record);
    }
    int m_fd;
    uint32_t m_listener;
    uint64_t m_every;
    uint64_t m_total;
};

// The sender's end: never more than `window` messages beyond what the
// slowest listener has acknowledged.
class CreditWindow {
public:
    CreditWindow(const AckPipe& pipe, unsigned listeners, uint64_t window)
        : m_fd(pipe.readEnd()), m_window(window), m_acked(listeners, 0), m_ready(listeners, false) {
    }

    // True once every listener said it is subscribed; false after `timeout`.
    bool waitReady(std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (m_readyCount < m_ready.size()) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0 || !readRecords(static_cast<int>(left.count()))) {
                return false;
            }
        }
        return true;
    }
    void waitReady() { (void)waitReady(std::chrono::hours(1)); }

    // Listener i is process pids[i]: when one dies before acknowledging
    // `total`, the sender fails at once instead of waiting for the timeout.
    void watch(std::vector<pid_t> pids, uint64_t total) {
        m_watched = std::move(pids);
        m_total = total;
    }

    bool hasRoom(uint64_t sent) const { return sent - slowest() < m_window; }
    void waitForRoom(uint64_t sent) {
        while (!hasRoom(sent)) {
            (void)readRecords(-1);
        }
    }
    void waitAllAcked(uint64_t total) {
        while (slowest() < total) {
            (void)readRecords(-1);
        }
    }

private:
    uint64_t slowest() const { return *std::min_element(m_acked.begin(), m_acked.end()); }

    // Reads what is there (after waiting up to timeoutMs, -1: for ever);
    // false: nothing came.
    bool readRecords(int timeoutMs) {
        constexpr int SLICE_MS = 200; // how often a silent pipe makes us look for dead listeners
        for (;;) {
            const int sliceMs = timeoutMs < 0 ? SLICE_MS : std::min(timeoutMs, SLICE_MS);
            pollfd p{m_fd, POLLIN, 0};
            const int ready = poll(&p, 1, sliceMs);
            if (ready < 0 && errno != EINTR) {
                dieErrno("poll acks");
            }
            if (ready > 0) {
                break;
            }
            checkWatched();
            if (timeoutMs >= 0 && (timeoutMs -= sliceMs) <= 0) {
                return false;
            }
        }
        std::array<AckRecord, 64> records{};
        const ssize_t n = read(m_fd, records.data(), sizeof records);
        if (n <= 0 || static_cast<std::size_t>(n) % sizeof(AckRecord) != 0) {
            dieErrno("read acks (a listener died?)");
        }
        for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof(AckRecord); ++i) {
            apply(records[i]);
        }
        return true;
    }

    void checkWatched() const {
        for (std::size_t i = 0; i < m_watched.size(); ++i) {
            siginfo_t info{};
            const bool gone = m_watched[i] > 0 &&
                              waitid(P_PID, static_cast<id_t>(m_watched[i]), &info,
                                     WEXITED | WNOHANG | WNOWAIT) == 0 &&
                              info.si_pid != 0;
            if (gone && m_acked[i] < m_total) {
                die("client " + std::to_string(i) + " exited, having acknowledged " +
                    std::to_string(m_acked[i]) + " of " + std::to_string(m_total));
            }
        }
    }

    void apply(const AckRecord& r) {
        if (r.listener >= m_acked.size()) {
            die("ack from unknown listener " + std::to_string(r.listener));
        }
        if (r.ready != 0) {
            if (!m_ready[r.listener]) {
                m_ready[r.listener] = true;
                ++m_readyCount;
            }
            return;
        }
        m_acked[r.listener] = std::max(m_acked[r.listener], r.received);
    }

    int m_fd;
    uint64_t m_window;
    std::vector<uint64_t> m_acked;
    std::vector<bool> m_ready;
    std::size_t m_readyCount = 0;
    std::vector<pid_t> m_watched;
    uint64_t m_total = 0;
};

// ---------------------------------------------------------------- measuring

struct Measured {
    double p50Us = 0;
    double p99Us = 0;
    double msgsPerS = 0;
};

// Nearest-rank percentile of sorted samples.
inline double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) {
        return 0;
    }
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// Runs roundTrip(seq) for the warm-ups, then times each of the measured ones.
template <typename RoundTrip>
Measured measureRoundTrips(const Options& o, RoundTrip&& roundTrip) {
    uint64_t seq = 0;
    for (uint64_t i = 0; i < o.warmups(); ++i) {
        roundTrip(seq++);
    }
    std::vector<double> us;
    us.reserve(o.iterations);
    const auto begin = Clock::now();
    for (uint64_t i = 0; i < o.iterations; ++i) {
        const auto start = Clock::now();
        roundTrip(seq++);
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    std::sort(us.begin(), us.end());
    return {percentile(us, 0.50), percentile(us, 0.99),
            static_cast<double>(o.iterations) / seconds};
}

// Sends o.count announcements through sendOne(seq), within the credit window,
// and times from the first send until every listener acknowledged the last.
// flush() pushes out whatever the client library still holds before the
// sender blocks for credit (sd-bus queues when the socket is full).
template <typename SendOne, typename Flush>
Measured measureAnnouncements(const Options& o, CreditWindow& credit, SendOne&& sendOne,
                              Flush&& flush) {
    const auto begin = Clock::now();
    for (uint64_t seq = 0; seq < o.count; ++seq) {
        if (!credit.hasRoom(seq)) {
            flush();
            credit.waitForRoom(seq);
        }
        sendOne(seq);
    }
    flush();
    credit.waitAllAcked(o.count);
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    return {0, 0, static_cast<double>(o.count) / seconds};
}

inline double rounded(double value) {
    return std::round(value * 1000) / 1000;
}

// The one line on stdout the runner reads. MB are 10^6 bytes.
inline void printResult(std::string_view system, const Options& o, const Measured& m) {
    const nlohmann::json line = {
        {"system", system},
        {"scenario", o.scenario},
        {"size", o.size},
        {"listeners", o.listeners},
        {"p50_us", rounded(m.p50Us)},
        {"p99_us", rounded(m.p99Us)},
        {"msgs_per_s", rounded(m.msgsPerS)},
        {"mb_per_s", rounded(m.msgsPerS * static_cast<double>(o.size) / 1e6)},
        // Everything the run did, warm-up included: what per-operation counts divide by.
        {"operations", o.isRoundTrip() ? o.warmups() + o.iterations : o.count},
    };
    std::cout << line.dump() << std::endl;
}

} // namespace xkbus::bench::peers
