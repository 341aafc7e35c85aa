// xkbusd: the xkbus daemon. Parses options, sets up logging, and runs the
// server; the composition root, where implementations are chosen.
//
// Exit codes (xkbusd(8)): 0 stopped on SIGTERM/SIGINT; 1 could not start;
// 2 another xkbusd already serves the socket; 64 bad command line or
// configuration file (/etc/xkbus/xkbusd.conf, xkbus-policy.conf(5)).
#include "instance_lock.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <vector>
#include <xkbus/daemon/server.hpp>

namespace {

constexpr int EXIT_ALREADY_RUNNING = 2;
constexpr int EXIT_USAGE = 64;
constexpr const char* DEFAULT_CONFIG = "/etc/xkbus/xkbusd.conf";

// Locks every path the daemon listens on, so a second daemon cannot take
// either socket from under the first.
int lockPaths(const xkbus::daemon::ServerOptions& options, std::vector<xkbus::UniqueFd>& locks) {
    std::vector<std::string> paths{options.socketPath};
    if (!options.trustedSocketPath.empty()) {
        paths.push_back(options.trustedSocketPath);
    }
    for (const auto& path : paths) {
        pid_t holder = 0;
        auto lock = xkbus::daemon::lockInstance(path, holder);
        if (lock) {
            locks.push_back(std::move(*lock));
            continue;
        }
        if (lock.error() == xkbus::Errc::TRY_AGAIN) {
            const std::string who = holder > 0 ? " (pid " + std::to_string(holder) + ")" : "";
            spdlog::error("another xkbusd{} is already serving {} (it holds {}); stop it first, "
                          "or give this one another --socket",
                          who, path, xkbus::daemon::lockPathFor(path));
            return EXIT_ALREADY_RUNNING;
        }
        spdlog::error("cannot create the lock file {}: {}", xkbus::daemon::lockPathFor(path),
                      xkbus::describe(lock.error()));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

// Only a socket is replaced (a dead daemon's): anything else at the path is
// somebody's file.
bool refuseNonSocket(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISSOCK(st.st_mode)) {
        return false;
    }
    spdlog::error("cannot listen on {}: it exists and is not a socket; remove it or choose "
                  "another --socket",
                  path);
    return true;
}

} // namespace

int main(int argc, char** argv) {
    xkbus::daemon::ServerOptions options;
    if (const char* env = std::getenv("XKBUS_SOCKET"); env != nullptr && *env != '\0') {
        options.socketPath = env;
    }
    std::string level = "info";
    CLI::App app{"xkbusd: the xkbus message bus daemon (KBUS semantics, local and Xen)"};
    app.set_version_flag("--version", std::string("xkbusd ") + XKBUS_VERSION);
    // The file is read only if it exists, unless --config names it.
    app.set_config("--config", DEFAULT_CONFIG,
                   "options file: `key = value` lines, the long option names (default " +
                       std::string(DEFAULT_CONFIG) + " if it exists; xkbus-policy.conf(5))");
    app.allow_config_extras(CLI::config_extras_mode::error); // a misspelt key is not ignored
    app.add_option("--socket", options.socketPath,
                   "Unix socket for local clients (default: $XKBUS_SOCKET, else "
                   "/run/xkbus/xkbusd.sock)");
    app.add_option("--buses", options.buses,
                   "number of buses to start with (like kbus_num_devices)")
        ->check(CLI::Range(1u, 256u));
    app.add_option("--max-queued-bytes", options.maxQueuedBytesPerPeer,
                   "bytes the queues of one client may hold on one bus");
    app.add_option("--log-level", level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_option("--trusted-socket", options.trustedSocketPath,
                   "second Unix socket whose clients are trusted as Limpets (may send "
                   "SYNTHETIC status messages); protect it with file permissions");
    app.add_flag("--xen", options.xen, "also serve Xen guests through xenstore (dom0)");
    app.add_option("--guest-slots", options.slotsPerGuest,
                   "with --xen: device slots on bus 0 for every new guest (0: only slots "
                   "provisioned with `xkbus xen-provision`)")
        ->check(CLI::Range(0u, 64u));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : EXIT_USAGE;
    }

    auto log = spdlog::stderr_color_mt("xkbusd");
    spdlog::set_default_logger(log);
    log->set_level(spdlog::level::from_str(level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    std::vector<xkbus::UniqueFd> locks;
    if (const int refused = lockPaths(options, locks); refused != EXIT_SUCCESS) {
        return refused;
    }
    if (refuseNonSocket(options.socketPath) || refuseNonSocket(options.trustedSocketPath)) {
        return EXIT_FAILURE;
    }
    xkbus::daemon::Server server(options, log);
    return server.run() ? EXIT_SUCCESS : EXIT_FAILURE;
}
