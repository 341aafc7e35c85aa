// D-Bus as the peer of the comparison: a real dbus-broker, clients on sd-bus.
//   rr:  method calls org.xkbus.Peer.Echo(ay) -> ay to a replier owning a name
//   ann: signals org.xkbus.Peer.Announce(ay), K listeners with a match rule
//
// dbus-broker runs without systemd: dbus-broker-launch gets its listening
// socket by socket activation (fd 3, LISTEN_FDS/LISTEN_PID). It logs to the
// journal and will not start without one, so it runs in private mount and
// PID namespaces: a tmpfs on /run/systemd holds a journal socket that the
// namespace's init drains, and killing that init (PID 1 of the namespace)
// ends the launcher and the broker with it, whatever order they exit in.
#include "peer_common.hpp"

#include <fstream>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>

namespace {

using namespace xkbus::bench::peers;

constexpr const char* SERVICE = "org.xkbus.Peer";
constexpr const char* PATH = "/org/xkbus/Peer";
constexpr const char* INTERFACE = "org.xkbus.Peer";
constexpr uint64_t CALL_TIMEOUT_US = 10'000'000; // a hung broker fails the run quickly

void check(int r, std::string_view what) {
    if (r < 0) {
        die(std::string(what) + ": " + std::strerror(-r));
    }
}

// ---------------------------------------------------------------- the broker

// Debian's session.conf without the service directories and includes (no
// activation here), without <listen> (the socket is passed in), and without
// eavesdropping, which dbus-broker ignores with a warning, dropping the rule
// that let everyone receive: receive_sender="*" says it instead.
constexpr const char* BUS_CONFIG = R"(<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_incoming_unix_fds">250000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_outgoing_unix_fds">250000000</limit>
  <limit name="max_message_size">1000000000</limit>
  <limit name="service_start_timeout">120000</limit>
  <limit name="auth_timeout">240000</limit>
  <limit name="pending_fd_timeout">150000</limit>
  <limit name="max_completed_connections">100000</limit>
  <limit name="max_incomplete_connections">10000</limit>
  <limit name="max_connections_per_user">100000</limit>
  <limit name="max_pending_service_starts">10000</limit>
  <limit name="max_names_per_connection">50000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
)";

sockaddr_un addressOf(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        die("socket path too long: " + path);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

int bindUnix(int type, const std::string& path) {
    const int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    const sockaddr_un addr = addressOf(path);
    if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        dieErrno("bind " + path);
    }
    return fd;
}

// Runs in the launcher's process: the socket as fd 3, stdout to stderr (our
// stdout carries only the result line).
[[noreturn]] void execLauncher(int listenFd, const std::string& config) {
    if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0 || dup2(listenFd, 3) < 0 ||
        fcntl(3, F_SETFD, 0) != 0) {
        dieErrno("launcher descriptors");
    }
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    unsetenv("LISTEN_FDNAMES");
    execlp("dbus-broker-launch", "dbus-broker-launch", "--scope", "user", "--config-file",
           config.c_str(), static_cast<char*>(nullptr));
    dieErrno("exec dbus-broker-launch");
}

// A journal for the launcher and the broker to log to, in this mount namespace only.
int makeJournal() {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755") != 0) {
        dieErrno("mount a private /run/systemd");
    }
    if (mkdir("/run/systemd/journal", 0755) != 0) {
        dieErrno("mkdir /run/systemd/journal");
    }
    return bindUnix(SOCK_DGRAM, "/run/systemd/journal/socket");
}

// Prints the MESSAGE= field of a native journal entry.
void printJournalEntry(std::string_view entry) {
    const auto at = entry.find("MESSAGE=");
    if (at == std::string_view::npos) {
        return;
    }
    const auto message = entry.substr(at + 8);
    std::cerr << "journal: " << message.substr(0, message.find('\n')) << std::endl;
}

// PID 1 of the bus namespace: starts the launcher, then drains the journal
// and reaps orphans until it is killed, or until the launcher and the broker
// (an orphan of ours if the launcher ends first) are both gone.
[[noreturn]] void busInit(int listenFd, const std::string& config, bool verbose) {
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int journal = makeJournal();
    const pid_t launcher = fork();
    if (launcher < 0) {
        dieErrno("fork the launcher");
    }
    if (launcher == 0) {
        execLauncher(listenFd, config);
    }
    close(listenFd);
    std::vector<char> entry(256 * 1024);
    for (;;) {
        pollfd p{journal, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            const ssize_t n = recv(journal, entry.data(), entry.size(), 0);
            if (verbose && n > 0) {
                printJournalEntry({entry.data(), static_cast<std::size_t>(n)});
            }
        }
        int status = 0;
        pid_t gone = 0;
        while ((gone = waitpid(-1, &status, WNOHANG)) > 0) {
            std::cerr << (gone == launcher ? "dbus-broker-launch" : "a bus process")
                      << " ended, status " << status << std::endl;
        }
        if (gone < 0 && errno == ECHILD) {
            die("the bus is gone");
        }
    }
}

// The child the benchmark forks: new namespaces, then their init. Killing this
// process kills the init (its parent-death signal), and with it the namespace.
int busNamespace(int listenFd, const std::string& config, bool verbose) {
    if (unshare(CLONE_NEWNS | CLONE_NEWPID) != 0) {
        dieErrno("unshare (needs root)");
    }
    const pid_t init = fork();
    if (init < 0) {
        dieErrno("fork the bus init");
    }
    if (init == 0) {
        busInit(listenFd, config, verbose);
    }
    int status = 0;
    while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
    }
    return 1; // the init never ends by itself
}

struct Bus {
    pid_t pid = -1; // busNamespace's
    std::string address;
};

Bus startBus(const TempDir& dir, const Options& o) {
    const std::string config = dir.file("bus.conf");
    std::ofstream(config) << BUS_CONFIG;
    const std::string socketPath = dir.file("bus");
    const int listenFd = bindUnix(SOCK_STREAM, socketPath);
    if (listen(listenFd, 128) != 0) {
        dieErrno("listen");
    }
    // The launcher itself connects to the bus it starts, through this
    // variable, and so do the clients.
    Bus bus;
    bus.address = "unix:path=" + socketPath;
    setenv("DBUS_SESSION_BUS_ADDRESS", bus.address.c_str(), 1);
    // Listening already: clients may connect before the broker runs, and wait.
    bus.pid = spawnChild("dbus", [&] { return busNamespace(listenFd, config, o.verbose); });
    close(listenFd);
    return bus;
}

// ---------------------------------------------------------------- sd-bus

struct BusDeleter {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusDeleter>;

struct MessageDeleter {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageDeleter>;

// Connected and through Hello: the broker is up.
BusPtr connectBus(const std::string& address) {
    sd_bus* raw = nullptr;
    check(sd_bus_new(&raw), "sd_bus_new");
    BusPtr bus(raw);
    check(sd_bus_set_address(raw, address.c_str()), "sd_bus_set_address");
    check(sd_bus_set_bus_client(raw, 1), "sd_bus_set_bus_client");
    check(sd_bus_set_method_call_timeout(raw, CALL_TIMEOUT_US), "sd_bus_set_method_call_timeout");
    check(sd_bus_start(raw), "sd_bus_start");
    const char* unique = nullptr;
    check(sd_bus_get_unique_name(raw, &unique), "Hello");
    return bus;
}

// Dispatches incoming messages until `done()`.
template <typename Done>
void processUntil(sd_bus* bus, Done&& done) {
    while (!done()) {
        const int r = sd_bus_process(bus, nullptr);
        check(r, "sd_bus_process");
        if (r == 0) {
            check(sd_bus_wait(bus, UINT64_MAX), "sd_bus_wait");
        }
    }
}

std::span<const std::byte> readBytes(sd_bus_message* m) {
    const void* data = nullptr;
    std::size_t size = 0;
    check(sd_bus_message_read_array(m, 'y', &data, &size), "read the payload");
    return {static_cast<const std::byte*>(data), size};
}

// ---------------------------------------------------------------- rr

int onEcho(sd_bus_message* call, void*, sd_bus_error*) {
    if (sd_bus_message_is_method_call(call, INTERFACE, "Echo") <= 0) {
        return 0; // not ours: let sd-bus answer it
    }
    const auto payload = readBytes(call);
    sd_bus_message* raw = nullptr;
    check(sd_bus_message_new_method_return(call, &raw), "new method return");
    const MessagePtr reply(raw);
    check(sd_bus_message_append_array(raw, 'y', payload.data(), payload.size()), "append");
    check(sd_bus_send(nullptr, raw, nullptr), "send the reply");
    return 1;
}

int echoReplies(const std::string& address, const AckPipe& acks) {
    const BusPtr bus = connectBus(address);
    check(sd_bus_add_object(bus.get(), nullptr, PATH, onEcho, nullptr), "sd_bus_add_object");
    check(sd_bus_request_name(bus.get(), SERVICE, 0), "RequestName");
    Acker(acks, 0, Options{}).ready();
    processUntil(bus.get(), [] { return false; });
    return 1;
}

std::span<const std::byte> callEcho(sd_bus* bus, std::span<const std::byte> request,
                                    MessagePtr& reply) {
    sd_bus_message* raw = nullptr;
    check(sd_bus_message_new_method_call(bus, &raw, SERVICE, PATH, INTERFACE, "Echo"),
          "new method call");
    const MessagePtr call(raw);
    check(sd_bus_message_append_array(raw, 'y', request.data(), request.size()), "append");
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* answer = nullptr;
    const int r = sd_bus_call(bus, raw, 0, &error, &answer);
    if (r < 0) {
        die(std::string("Echo: ") + (error.message != nullptr ? error.message : strerror(-r)));
    }
    reply.reset(answer);
    return readBytes(answer);
}

Measured runRoundTrips(const Options& o, const Bus& busProcess) {
    AckPipe acks;
    const pid_t replier =
        spawnChild("replier", [&] { return echoReplies(busProcess.address, acks); });
    CreditWindow ready(acks, 1, 1);
    ready.watch({replier}, 1);
    ready.waitReady();
    const BusPtr bus = connectBus(busProcess.address);
    std::vector<std::byte> request = makePayload(o.size);
    const Measured m = measureRoundTrips(o, [&](uint64_t seq) {
        stampSequence(request, seq);
        MessagePtr reply;
        checkPayload(callEcho(bus.get(), request, reply), o.size, seq);
    });
    stopChild(replier);
    return m;
}

// ---------------------------------------------------------------- ann

struct Listening {
    const Options* options;
    Acker* acker;
    uint64_t received = 0;
};

int onAnnouncement(sd_bus_message* signal, void* userdata, sd_bus_error*) {
    auto& state = *static_cast<Listening*>(userdata);
    checkPayload(readBytes(signal), state.options->size, state.received);
    state.acker->received(++state.received);
    return 0;
}

int listenForAnnouncements(const std::string& address, const AckPipe& acks, uint32_t index,
                           const Options& o) {
    const BusPtr bus = connectBus(address);
    Acker acker(acks, index, o);
    Listening state{&o, &acker};
    // Synchronous AddMatch: the broker has the rule when this returns.
    check(sd_bus_match_signal(bus.get(), nullptr, nullptr, PATH, INTERFACE, "Announce",
                              onAnnouncement, &state),
          "AddMatch");
    acker.ready();
    processUntil(bus.get(), [&] { return state.received == o.count; });
    return 0;
}

void emitAnnouncement(sd_bus* bus, std::span<const std::byte> payload) {
    sd_bus_message* raw = nullptr;
    check(sd_bus_message_new_signal(bus, &raw, PATH, INTERFACE, "Announce"), "new signal");
    const MessagePtr signal(raw);
    check(sd_bus_message_append_array(raw, 'y', payload.data(), payload.size()), "append");
    check(sd_bus_send(bus, raw, nullptr), "send the signal");
}

Measured runAnnouncements(const Options& o, const Bus& busProcess) {
    AckPipe acks;
    std::vector<pid_t> listeners;
    for (uint32_t i = 0; i < o.listeners; ++i) {
        listeners.push_back(spawnChild(
            "listener", [&, i] { return listenForAnnouncements(busProcess.address, acks, i, o); }));
    }
    CreditWindow credit(acks, o.listeners, o.window);
    credit.watch(listeners, o.count);
    credit.waitReady();
    const BusPtr bus = connectBus(busProcess.address);
    std::vector<std::byte> payload = makePayload(o.size);
    // sd-bus queues what the socket does not take: flush before blocking for credit.
    const Measured m = measureAnnouncements(
        o, credit,
        [&](uint64_t seq) {
            stampSequence(payload, seq);
            emitAnnouncement(bus.get(), payload);
        },
        [&] { check(sd_bus_flush(bus.get()), "sd_bus_flush"); });
    const bool allOk = waitListeners(listeners);
    if (!allOk) {
        die("a listener failed");
    }
    return m;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app("D-Bus: dbus-broker with sd-bus clients", "bench_peer_dbus");
    Options o;
    if (const int rc = parseOptions(app, o, argc, argv); rc >= 0) {
        return rc;
    }
    armTimeout(o.timeoutSeconds);
    const TempDir dir;
    const Bus bus = startBus(dir, o);
    const Measured m = o.isRoundTrip() ? runRoundTrips(o, bus) : runAnnouncements(o, bus);
    stopChild(bus.pid);
    printResult("dbus", o, m);
    return 0;
}
