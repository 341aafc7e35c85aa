// xkbus-limpet: joins two KBUS buses (docs/limpet.md).
//   xkbus-limpet local   --x-socket S --x-bus N --x-id ID --y-socket S --y-bus N --y-id ID
//   xkbus-limpet listen  --socket S --bus N --id ID --address tcp:HOST:PORT --cert C --key K --ca A
//                        --peer-name NAME (or --any-peer)
//   xkbus-limpet listen  --socket S --id ID --address unix:PATH --plain
//   xkbus-limpet connect (the same options)
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <vector>
#include <xkbus/limpet/drivers.hpp>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void onSignal(int) {
    g_stop = 1;
}

void addEnd(CLI::App* cmd, xkbus::limpet::BusEnd& end, const std::string& prefix) {
    cmd->add_option("--" + prefix + "socket", end.socketPath,
                    "the daemon's trusted socket (xkbusd --trusted-socket), or xen: for dom0's bus "
                    "from a Xen guest")
        ->required();
    cmd->add_option("--" + prefix + "bus", end.bus, "bus index")->default_val(0);
    cmd->add_option("--" + prefix + "id", end.config.networkId,
                    "this Limpet's network id (non-zero, unique)")
        ->required()
        ->check(CLI::Range(1u, 0xFFFFFFFFu));
    cmd->add_option("--" + prefix + "filter", end.config.filter, "names that cross")
        ->default_val("$.*");
}

void addNet(CLI::App* cmd, xkbus::limpet::NetOptions& o) {
    addEnd(cmd, o.end, "");
    cmd->add_option("--address", o.address, "unix:PATH or tcp:HOST:PORT")->required();
    cmd->add_flag("!--plain", o.tls, "no TLS: only on a unix: address");
    cmd->add_option("--cert", o.tlsFiles.cert, "this Limpet's certificate (PEM)");
    cmd->add_option("--key", o.tlsFiles.key, "its private key (PEM)");
    cmd->add_option("--ca", o.tlsFiles.ca, "CA certificate the peer's must chain to (PEM)");
    cmd->add_option("--peer-name", o.tlsFiles.peerName,
                    "name the peer's certificate must carry (required with TLS)");
    cmd->add_flag("--any-peer", o.anyPeer,
                  "accept any certificate the CA signed (instead of --peer-name)");
    auto* hb = cmd->add_option_function<uint32_t>(
        "--heartbeat-ms", [&o](uint32_t ms) { o.heartbeat = std::chrono::milliseconds(ms); },
        "heartbeat interval");
    hb->check(CLI::Range(xkbus::limpet::MIN_HEARTBEAT_MS, xkbus::limpet::MAX_HEARTBEAT_MS));
    cmd->add_option_function<uint32_t>(
        "--dead-after-ms", [&o](uint32_t ms) { o.deadAfter = std::chrono::milliseconds(ms); },
        "silence after which the peer counts as dead");
    cmd->add_option_function<uint32_t>(
        "--retry-ms", [&o](uint32_t ms) { o.retry = std::chrono::milliseconds(ms); },
        "wait between connection attempts");
    cmd->add_option_function<uint32_t>(
           "--handshake-ms", [&o](uint32_t ms) { o.handshake = std::chrono::milliseconds(ms); },
           "time a new connection has for its TLS handshake and HELLO")
        ->check(CLI::Range(10u, 600000u));
    cmd->add_option("--max-pending", o.maxPending,
                    "connections that have not said HELLO, at once (listener)")
        ->check(CLI::Range(1, 1024));
    cmd->add_option_function<uint32_t>(
           "--stall-ms", [&o](uint32_t ms) { o.stallAfter = std::chrono::milliseconds(ms); },
           "time the peer may take none of this Limpet's frames before it is dropped")
        ->check(CLI::Range(10u, 600000u));
}

// --reconnect: wait for a daemon that went away, then join its bus again.
void addReconnect(CLI::App* cmd, const std::vector<xkbus::limpet::BusEnd*>& ends) {
    cmd->add_flag_callback(
        "--reconnect",
        [ends] {
            for (auto* end : ends) {
                end->reconnect = xkbus::limpet::RECONNECT_BACKOFF;
            }
        },
        "when a daemon goes away, wait for it (100 ms to 5 s between attempts, until stopped), "
        "open the Ksock again and re-establish the link; without it the Limpet exits with "
        "status 1");
}

int finish(const xkbus::Result<void>& ok, const std::string& error) {
    if (ok) {
        return 0;
    }
    std::fprintf(stderr, "xkbus-limpet: %s (%s)\n", error.c_str(),
                 std::string(xkbus::describe(ok.error())).c_str());
    return ok.error() == xkbus::Errc::PROTOCOL_VIOLATION ? 3 : 1;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus-limpet: joins two KBUS buses, locally or over a TLS link"};
    app.set_version_flag("--version", std::string("xkbus-limpet ") + XKBUS_VERSION);
    app.footer("Exit status: 0 stopped on SIGTERM or SIGINT; 1 the daemon was lost (without "
               "--reconnect) or the set-up failed; 2 options that break a link rule (--plain on "
               "tcp:, TLS without "
               "--peer-name or --any-peer); 3 this Limpet's own probe came back: it stands in a "
               "cycle; 64 bad command line. See xkbus-limpet(1).");
    app.require_subcommand(1);
    xkbus::limpet::BusEnd x;
    xkbus::limpet::BusEnd y;
    auto* local = app.add_subcommand("local", "join two buses this process can reach");
    addEnd(local, x, "x-");
    addEnd(local, y, "y-");
    addReconnect(local, {&x, &y});
    xkbus::limpet::NetOptions net;
    auto* listen = app.add_subcommand("listen", "one side of a network pair: wait for the peer");
    auto* connect = app.add_subcommand("connect", "one side of a network pair: reach the peer");
    addNet(listen, net);
    addNet(connect, net);
    addReconnect(listen, {&net.end});
    addReconnect(connect, {&net.end});
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 64;
    }

    std::signal(SIGTERM, onSignal);
    std::signal(SIGINT, onSignal);
    std::signal(SIGPIPE, SIG_IGN);
    const auto keepGoing = [] { return g_stop == 0; };
    std::string error;
    if (local->parsed()) {
        return finish(xkbus::limpet::runLocal(x, y, keepGoing, error), error);
    }
    net.listen = listen->parsed();
    if (!xkbus::limpet::checkNetOptions(net, error)) {
        std::fprintf(stderr, "xkbus-limpet: %s\n", error.c_str());
        return 2;
    }
    return finish(xkbus::limpet::runNet(net, keepGoing, error), error);
}
