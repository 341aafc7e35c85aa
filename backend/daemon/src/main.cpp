// xkbusd: the xkbus daemon. Parses options, sets up logging, and runs the
// server; the composition root, where implementations are chosen.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <xkbus/daemon/server.hpp>

int main(int argc, char** argv) {
    xkbus::daemon::ServerOptions options;
    if (const char* env = std::getenv("XKBUS_SOCKET"); env != nullptr && *env != '\0') {
        options.socketPath = env;
    }
    std::string level = "info";
    CLI::App app{"xkbusd: the xkbus message bus daemon (KBUS semantics, local and Xen)"};
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
    CLI11_PARSE(app, argc, argv);

    auto log = spdlog::stderr_color_mt("xkbusd");
    log->set_level(spdlog::level::from_str(level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    xkbus::daemon::Server server(options, log);
    return server.run() ? 0 : 1;
}
