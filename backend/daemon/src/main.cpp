// xkbusd: the xkbus daemon. The composition root: parses options, chooses
// the implementations (the local front door always, the Xen one with --xen)
// and wires them to one event loop, one peer hub and one bus core.
//
// Exit codes (xkbusd(8)): 0 stopped on SIGTERM/SIGINT; 1 could not start;
// 2 another xkbusd already serves the socket; 64 bad command line or
// configuration file (/etc/xkbus/xkbusd.conf, xkbus-policy.conf(5)).
#include "instance_lock.hpp"
#include "xen_frontdoor.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <grp.h>
#include <malloc.h>
#include <optional>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <xkbus/core/core.hpp>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/daemon/event_loop.hpp>
#include <xkbus/daemon/local_frontdoor.hpp>
#include <xkbus/daemon/peer_hub.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::daemon;

// Where clients look for the daemon unless XKBUS_SOCKET says otherwise.
constexpr const char* DEFAULT_SOCKET_PATH = "/run/xkbus/xkbusd.sock";
constexpr const char* DEFAULT_CONFIG = "/etc/xkbus/xkbusd.conf";
constexpr const char* DEFAULT_POLICY = "/etc/xkbus/policy.conf";
constexpr int EXIT_ALREADY_RUNNING = 2;
constexpr int EXIT_USAGE = 64;

struct Options {
    std::string socketPath = DEFAULT_SOCKET_PATH;
    std::string trustedSocketPath;
    bool xen = false;
    uint32_t slotsPerGuest = 0;
    uint32_t buses = 1;
    uint64_t maxQueuedBytesPerPeer = 64ull << 20;
    unsigned spinUs = 20;
    std::string level = "info";
    std::string policyPath = DEFAULT_POLICY;
    std::string socketGroup; // empty: the daemon's own group
    unsigned handshakeTimeoutMs = 2000;
    size_t maxPendingHandshakes = 128;
    size_t maxPendingPerUser = 32;
};

// A group name, or a number.
std::optional<gid_t> groupNamed(const std::string& name) {
    std::vector<char> buffer(16384);
    group entry{};
    group* found = nullptr;
    if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
        found != nullptr) {
        return found->gr_gid;
    }
    char* end = nullptr;
    const unsigned long number = std::strtoul(name.c_str(), &end, 10);
    if (!name.empty() && *end == '\0') {
        return static_cast<gid_t>(number);
    }
    return std::nullopt;
}

Result<LocalDoorOptions> localDoorOptions(const Options& o, spdlog::logger& log) {
    LocalDoorOptions door;
    door.socketPath = o.socketPath;
    door.trustedSocketPath = o.trustedSocketPath;
    door.clientLimits = {o.maxPendingHandshakes, o.maxPendingPerUser};
    door.handshakeTimeout = std::chrono::milliseconds(o.handshakeTimeoutMs);
    if (!o.socketGroup.empty()) {
        door.socketGroup = groupNamed(o.socketGroup);
        if (!door.socketGroup) {
            log.error("--socket-group: no group {}", o.socketGroup);
            return fail(Errc::INVALID);
        }
    }
    return door;
}

void raiseFileLimit(spdlog::logger& log) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max; // each Ksock costs the daemon two descriptors
        if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
            log.info("descriptor limit raised to {}", lim.rlim_cur);
        }
    }
}

// SIGTERM and SIGINT (stop) and SIGHUP (reload the policy) arrive on a
// descriptor the loop watches: the daemon acts between two passes, never in
// the middle of one.
Result<UniqueFd> controlSignals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    UniqueFd fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) {
        return fail(Errc::NO_MEMORY);
    }
    return fd;
}

// The policy file with the limits the options give guests and local users.
tl::expected<Policy, PolicyError> readPolicy(const Options& o) {
    auto policy = loadPolicy(o.policyPath);
    if (policy) {
        policy->baseLimits.queuedBytes = o.maxQueuedBytesPerPeer;
    }
    return policy;
}

// SIGHUP: a file that does not parse leaves the policy in force untouched.
void reloadPolicy(const Options& o, Dispatcher& dispatcher, spdlog::logger& log) {
    auto policy = readPolicy(o);
    if (!policy) {
        log.error("policy not reloaded, the old one stays: {}", policy.error().describe());
        return;
    }
    log.info("policy reloaded from {} ({} rule(s))", policy->file, policy->rules.size());
    dispatcher.setPolicy(std::move(*policy));
}

// One line per refusal, but a tenant looping on refused calls must not turn
// the log into its weapon: past a burst per second the lines are counted,
// and the count is logged with the first refusal of a later second.
class RefusalLog {
public:
    explicit RefusalLog(std::shared_ptr<spdlog::logger> log) : m_log(std::move(log)) {}
    void operator()(const std::string& line) {
        const auto now = std::chrono::steady_clock::now();
        if (now - m_windowStart >= std::chrono::seconds(1)) {
            if (m_suppressed > 0) {
                m_log->warn("{} more refusal(s) not logged in the last second", m_suppressed);
            }
            m_windowStart = now;
            m_inWindow = 0;
            m_suppressed = 0;
        }
        if (m_inWindow++ < BURST) {
            m_log->warn("{}", line);
        } else {
            ++m_suppressed;
        }
    }

private:
    static constexpr unsigned BURST = 50;
    std::shared_ptr<spdlog::logger> m_log;
    std::chrono::steady_clock::time_point m_windowStart{};
    unsigned m_inWindow = 0;
    unsigned m_suppressed = 0;
};

core::CoreConfig coreConfig(const Options& o) {
    core::CoreConfig c;
    c.initialBuses = o.buses;
    c.bus.recordQueueEvents = true;
    c.bus.limits.queuedBytes = o.maxQueuedBytesPerPeer;
    return c;
}

// A busy daemon frees and allocates message memory all the time: giving it
// back to the kernel at every lull cost a brk() and a TLB flush each time.
void keepFreedMemory() {
    ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
    ::mallopt(M_TOP_PAD, 16 << 20);
}

// Locks every path the daemon listens on, so a second daemon cannot take
// either socket from under the first.
int lockPaths(const Options& o, spdlog::logger& log, std::vector<UniqueFd>& locks) {
    std::vector<std::string> paths{o.socketPath};
    if (!o.trustedSocketPath.empty()) {
        paths.push_back(o.trustedSocketPath);
    }
    for (const auto& path : paths) {
        pid_t holder = 0;
        auto lock = lockInstance(path, holder);
        if (lock) {
            locks.push_back(std::move(*lock));
            continue;
        }
        if (lock.error() == Errc::TRY_AGAIN) {
            const std::string who = holder > 0 ? " (pid " + std::to_string(holder) + ")" : "";
            log.error("another xkbusd{} is already serving {} (it holds {}); stop it first, or "
                      "give this one another --socket",
                      who, path, lockPathFor(path));
            return EXIT_ALREADY_RUNNING;
        }
        log.error("cannot create the lock file {}: {}", lockPathFor(path), describe(lock.error()));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

// Only a socket is replaced (a dead daemon's): anything else at the path is
// somebody's file.
bool refuseNonSocket(const std::string& path, spdlog::logger& log) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISSOCK(st.st_mode)) {
        return false;
    }
    log.error("cannot listen on {}: it exists and is not a socket; remove it or choose another "
              "--socket",
              path);
    return true;
}

int serve(const Options& o, const std::shared_ptr<spdlog::logger>& log) {
    // Held until serve() returns; the kernel drops them if we die.
    std::vector<UniqueFd> locks;
    if (const int refused = lockPaths(o, *log, locks); refused != EXIT_SUCCESS) {
        return refused;
    }
    if (refuseNonSocket(o.socketPath, *log) || refuseNonSocket(o.trustedSocketPath, *log)) {
        return EXIT_FAILURE;
    }
    raiseFileLimit(*log);
    keepFreedMemory();
    auto policy = readPolicy(o);
    if (!policy) {
        log->error("bad policy: {}", policy.error().describe());
        return EXIT_USAGE;
    }
    auto signals = controlSignals();
    auto loop = EventLoop::create();
    if (!signals || !loop) {
        log->error("cannot start: out of descriptors or memory");
        return 1;
    }
    core::Core core(coreConfig(o));
    Dispatcher dispatcher(core);
    log->info("policy from {} ({} rule(s))", policy->file, policy->rules.size());
    dispatcher.setPolicy(std::move(*policy));
    dispatcher.onRefusal = RefusalLog(log);
    HubOptions hubOptions;
    hubOptions.spin = std::chrono::microseconds(o.spinUs);
    PeerHub hub(**loop, dispatcher, hubOptions, log);
    auto doorOptions = localDoorOptions(o, *log);
    if (!doorOptions) {
        return EXIT_USAGE;
    }
    LocalFrontdoor local(**loop, hub.sink(), std::move(*doorOptions), log);
    if (!local.start()) {
        return 1;
    }
    std::optional<XenFrontdoor> xen;
    if (o.xen) {
        xen.emplace(**loop, hub.sink(), log, o.slotsPerGuest, ring::BackendOptions{});
        if (!xen->start()) {
            return 1;
        }
        hub.onDropped = [&xen](ConnectionId id) { xen->peerGone(id); };
        (void)(*loop)->watch(xen->watchFd(), [&xen] { xen->onWatchReadable(); });
        (*loop)->addLeftover([&xen] { return xen->serveDeferred(); });
    }
    EventLoop& events = **loop;
    (void)events.watch(signals->get(), [&events, &signals, &log, &o, &dispatcher] {
        signalfd_siginfo info{};
        while (::read(signals->get(), &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) {
                reloadPolicy(o, dispatcher, *log);
                continue;
            }
            log->info("stopping on signal {}", info.ssi_signo);
            events.stop();
        }
    });
    log->info("serving {} bus(es) on {}", core.busCount(), o.socketPath);
    const auto ran = events.run();
    if (!ran) {
        log->error("event loop failed: {}", describe(ran.error()));
    }
    hub.dropAll("the daemon is stopping");
    local.stop();
    log->info("stopped");
    return ran ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    if (const char* env = std::getenv("XKBUS_SOCKET"); env != nullptr && *env != '\0') {
        o.socketPath = env;
    }
    CLI::App app{"xkbusd: the xkbus message bus daemon (KBUS semantics, local and Xen)"};
    app.set_version_flag("--version", std::string("xkbusd ") + XKBUS_VERSION);
    // The file is read only if it exists, unless --config names it.
    app.set_config("--config", DEFAULT_CONFIG,
                   "options file: `key = value` lines, the long option names (default " +
                       std::string(DEFAULT_CONFIG) + " if it exists; xkbus-policy.conf(5))");
    app.allow_config_extras(CLI::config_extras_mode::error); // a misspelt key is not ignored
    app.add_option("--socket", o.socketPath,
                   "Unix socket for local clients (default: $XKBUS_SOCKET, else "
                   "/run/xkbus/xkbusd.sock)");
    app.add_option("--buses", o.buses, "number of buses to start with (like kbus_num_devices)")
        ->check(CLI::Range(1u, 256u));
    app.add_option("--max-queued-bytes", o.maxQueuedBytesPerPeer,
                   "bytes the queues of one tenant (a guest, a local user) may hold, on every bus, "
                   "unless the policy sets its queued_bytes");
    app.add_option("--spin-us", o.spinUs,
                   "microseconds the daemon keeps looking at busy rings before it sleeps "
                   "(0: never; never on a single CPU)")
        ->check(CLI::Range(0u, 10000u));
    app.add_option("--log-level", o.level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_option("--trusted-socket", o.trustedSocketPath,
                   "second Unix socket whose clients are trusted as Limpets (may send "
                   "SYNTHETIC status messages); protect it with file permissions");
    app.add_option("--policy", o.policyPath,
                   "who may do what: the tenants' policy file (default " +
                       std::string(DEFAULT_POLICY) +
                       "; absent: the built-in defaults; SIGHUP reloads it; docs/security.md)");
    app.add_option("--socket-group", o.socketGroup,
                   "group of the client socket, which is mode 0660 (default: the daemon's "
                   "group); the trusted socket is always 0600");
    app.add_option("--handshake-timeout-ms", o.handshakeTimeoutMs,
                   "a local connection whose ring handshake has not arrived by then is closed")
        ->check(CLI::Range(10u, 60000u));
    app.add_option("--max-pending-handshakes", o.maxPendingHandshakes,
                   "handshakes in progress on the client socket (the trusted socket has its "
                   "own 16)")
        ->check(CLI::Range(size_t{1}, size_t{65536}));
    app.add_option("--max-pending-per-user", o.maxPendingPerUser, "of those, from one Unix user")
        ->check(CLI::Range(size_t{1}, size_t{65536}));
    app.add_flag("--xen", o.xen, "also serve Xen guests through xenstore (dom0)");
    app.add_option("--guest-slots", o.slotsPerGuest,
                   "with --xen: device slots on bus 0 for every new guest (0: only slots "
                   "provisioned with `xkbus xen-provision`)")
        ->check(CLI::Range(0u, 64u));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? EXIT_SUCCESS : EXIT_USAGE;
    }

    auto log = spdlog::stderr_color_mt("xkbusd");
    log->set_level(spdlog::level::from_str(o.level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    return serve(o, log);
}
