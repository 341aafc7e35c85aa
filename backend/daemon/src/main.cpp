// xkbusd: the xkbus daemon. The composition root: parses options, chooses
// the implementations (the local front door always, the Xen one with --xen)
// and wires them to one event loop, one peer hub and one bus core.
#include "xen_frontdoor.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>
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

struct Options {
    std::string socketPath = DEFAULT_SOCKET_PATH;
    std::string trustedSocketPath;
    bool xen = false;
    uint32_t slotsPerGuest = 0;
    uint32_t buses = 1;
    uint64_t maxQueuedBytesPerPeer = 64ull << 20;
    unsigned spinUs = 20;
    std::string level = "info";
};

void raiseFileLimit(spdlog::logger& log) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max; // each Ksock costs the daemon two descriptors
        if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
            log.info("descriptor limit raised to {}", lim.rlim_cur);
        }
    }
}

// SIGTERM and SIGINT arrive on a descriptor the loop watches: the daemon
// stops between two passes, never in the middle of one.
Result<UniqueFd> stopSignals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    UniqueFd fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) {
        return fail(Errc::NO_MEMORY);
    }
    return fd;
}

core::CoreConfig coreConfig(const Options& o) {
    core::CoreConfig c;
    c.initialBuses = o.buses;
    c.bus.recordQueueEvents = true;
    c.bus.maxQueuedBytesPerGroup = o.maxQueuedBytesPerPeer;
    return c;
}

int serve(const Options& o, const std::shared_ptr<spdlog::logger>& log) {
    raiseFileLimit(*log);
    auto signals = stopSignals();
    auto loop = EventLoop::create();
    if (!signals || !loop) {
        log->error("cannot start: out of descriptors or memory");
        return 1;
    }
    core::Core core(coreConfig(o));
    Dispatcher dispatcher(core);
    HubOptions hubOptions;
    hubOptions.spin = std::chrono::microseconds(o.spinUs);
    PeerHub hub(**loop, dispatcher, hubOptions, log);
    LocalFrontdoor local(**loop, hub.sink(),
                         LocalDoorOptions{o.socketPath, o.trustedSocketPath, {}, 128}, log);
    if (!local.start()) {
        return 1;
    }
    std::optional<XenFrontdoor> xen;
    if (o.xen) {
        xen.emplace(hub.sink(), log, o.slotsPerGuest, ring::BackendOptions{});
        if (!xen->start()) {
            return 1;
        }
        hub.onDropped = [&xen](ConnectionId id) { xen->peerGone(id); };
        (void)(*loop)->watch(xen->watchFd(), [&xen] { xen->onWatchReadable(); });
    }
    EventLoop& events = **loop;
    (void)events.watch(signals->get(), [&events, &signals, &log] {
        signalfd_siginfo info{};
        (void)!::read(signals->get(), &info, sizeof info);
        log->info("stopping on signal {}", info.ssi_signo);
        events.stop();
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
    app.add_option("--socket", o.socketPath,
                   "Unix socket for local clients (default: $XKBUS_SOCKET, else "
                   "/run/xkbus/xkbusd.sock)");
    app.add_option("--buses", o.buses, "number of buses to start with (like kbus_num_devices)")
        ->check(CLI::Range(1u, 256u));
    app.add_option("--max-queued-bytes", o.maxQueuedBytesPerPeer,
                   "bytes the queues of one client may hold on one bus");
    app.add_option("--spin-us", o.spinUs,
                   "microseconds the daemon keeps looking at busy rings before it sleeps "
                   "(0: never; never on a single CPU)")
        ->check(CLI::Range(0u, 10000u));
    app.add_option("--log-level", o.level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_option("--trusted-socket", o.trustedSocketPath,
                   "second Unix socket whose clients are trusted as Limpets (may send "
                   "SYNTHETIC status messages); protect it with file permissions");
    app.add_flag("--xen", o.xen, "also serve Xen guests through xenstore (dom0)");
    app.add_option("--guest-slots", o.slotsPerGuest,
                   "with --xen: device slots on bus 0 for every new guest (0: only slots "
                   "provisioned with `xkbus xen-provision`)")
        ->check(CLI::Range(0u, 64u));
    CLI11_PARSE(app, argc, argv);

    auto log = spdlog::stderr_color_mt("xkbusd");
    log->set_level(spdlog::level::from_str(o.level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    return serve(o, log);
}
