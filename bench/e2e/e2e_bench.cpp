// xkbus end to end: clients in separate processes talking through a real
// xkbusd, in the scenarios bench/compare.py runs for every system (the peers
// in bench/peers take the same command line). Prints one JSON line on stdout;
// everything else goes to stderr. Any failure (a lost or short message, a
// client that dies, the hard timeout) exits non-zero.
//
//   bench_e2e --scenario rr --size 64 --iterations 10000
//   bench_e2e --scenario ann --size 64 --listeners 8 --count 20000 --window 64
//   bench_e2e --scenario bindings --bindings 100000 --size 64 --iterations 5000
//   bench_e2e --scenario clients --clients 1000
#include "processes.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <string>
#include <sys/resource.h>
#include <vector>
#include <xkbus/frontend/open.hpp>
#include <xkbus/ksock.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::bench::e2e;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* RR_NAME = "$.bench.rr";
constexpr const char* ANN_NAME = "$.bench.ann";
constexpr const char* ACK_NAME = "$.bench.ack";
constexpr const char* TARGET_NAME = "$.bench.target";
constexpr auto RECEIVE_TIMEOUT = 10s;
constexpr auto READY_TIMEOUT = 60s;
// The daemon's quota is 16384 bindings per connection.
constexpr size_t BINDINGS_PER_CONNECTION = 10000;
// Acknowledgements may pile up between two drains: room for them all.
constexpr uint64_t ACK_QUEUE = 10000;

struct Options {
    std::string scenario;
    size_t size = 64;
    int iterations = 10000;
    int listeners = 1;
    int count = 0;    // 0: the scenario's default
    int window = 128; // as the peers
    size_t bindings = 10;
    int clients = 1000;
    int clientsPerProcess = 50; // fastest of 1, 10, 20, 50, 100 on 2 vCPUs
    unsigned timeoutSeconds = 120;
    int daemonSpinUs = -1; // -1: the daemon's default
};

[[noreturn]] void dieOn(Errc e, const char* what) {
    const std::string_view text = describe(e);
    die("%s: %.*s", what, static_cast<int>(text.size()), text.data());
}

template <class T>
T must(Result<T> r, const char* what) {
    if (!r) {
        dieOn(r.error(), what);
    }
    return std::move(*r);
}

void must(Result<void> r, const char* what) {
    if (!r) {
        dieOn(r.error(), what);
    }
}

std::string makePayload(size_t size) {
    std::string s(size, '\0');
    for (size_t i = 0; i < size; ++i) {
        s[i] = static_cast<char>('a' + i % 26);
    }
    return s;
}

// The length is what a lost or cut message would change; the two ends catch
// a shifted copy.
void checkPayload(const Message& m, size_t size) {
    if (m.isStatus()) {
        die("got the status %s instead of a message", std::string(m.name()).c_str());
    }
    if (m.data().size() != size) {
        die("%s: %zu bytes, expected %zu", std::string(m.name()).c_str(), m.data().size(), size);
    }
    const std::string_view text = m.text();
    if (size > 0 &&
        (text.front() != 'a' || text.back() != static_cast<char>('a' + (size - 1) % 26))) {
        die("%s: payload corrupted", std::string(m.name()).c_str());
    }
}

Ksock openKsock() {
    return must(Ksock::open(0), "open a Ksock");
}

// A Ksock on a connection of its own, where Ksock::open would share the
// process's one connection: the daemon counts clients and quotas per connection.
Ksock openOwnConnection() {
    auto connection =
        must(frontend::connectLocal(frontend::defaultSocketPath()), "connect to xkbusd");
    return Ksock(must(connection->openKsock(0, true), "open a Ksock")); // keeps the connection
}

void setQueueLimit(Ksock& k, uint64_t messages) {
    (void)must(k.channel().control(frontend::Control::MAX_MESSAGES, messages), "MAX_MESSAGES");
}

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

// Nearest rank, as the peers compute it.
double percentile(std::vector<double> values, double fraction) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    const auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

double rounded(double value) {
    return static_cast<double>(static_cast<long long>(value * 100 + 0.5)) / 100;
}

// The figures every scenario reports: latency of the timed operation and
// the rate over the timed stretch.
nlohmann::ordered_json figures(const Options& o, const std::vector<double>& latencyUs,
                               long messages, double elapsedSeconds) {
    const double rate = static_cast<double>(messages) / elapsedSeconds;
    return {{"system", "xkbus"},
            {"scenario", o.scenario},
            {"size", o.size},
            {"listeners", o.listeners},
            {"p50_us", rounded(percentile(latencyUs, 0.50))},
            {"p99_us", rounded(percentile(latencyUs, 0.99))},
            {"msgs_per_s", rounded(rate)},
            {"mb_per_s", rounded(rate * static_cast<double>(o.size) / 1e6)}};
}

// For the fan-out scenarios, where a message has no round trip: the send
// call's own duration is reported apart, and p50/p99 stay empty like the
// peers' (compare.py compares throughput there).
nlohmann::ordered_json asSendLatency(nlohmann::ordered_json out) {
    out["send_p50_us"] = out["p50_us"];
    out["send_p99_us"] = out["p99_us"];
    out["p50_us"] = nullptr;
    out["p99_us"] = nullptr;
    return out;
}

// ---- acknowledgements: how a sender keeps at most `window` unacknowledged

void acknowledge(Ksock& k, int peer, long count) {
    must(k.announce(ACK_NAME, std::to_string(peer) + ":" + std::to_string(count), FLAG_ALL_OR_FAIL),
         "acknowledge");
}

// Each peer (a listener process) announces "peer:count" on ACK_NAME every
// window/2 messages; the sender tracks the slowest peer.
class Credits {
public:
    Credits(Ksock& ksock, int peers) : m_ksock(ksock), m_acked(static_cast<size_t>(peers), 0) {}

    // Blocks until every peer has acknowledged at least `count` messages.
    void waitAcked(long count) {
        auto waited = 0s;
        while (slowest() < count) {
            auto m = m_ksock.receive(1s);
            if (m) {
                take(*m);
                waited = 0s;
                continue;
            }
            if (m.error() != Errc::TIMED_OUT || ++waited > RECEIVE_TIMEOUT) {
                dieOn(m.error(), "wait for an acknowledgement");
            }
            checkClients();
        }
    }
    // Takes the acknowledgements already queued, without waiting.
    void drain() {
        while (auto m = must(m_ksock.tryReceive(), "read acknowledgements")) {
            take(*m);
        }
    }
    long slowest() const { return *std::min_element(m_acked.begin(), m_acked.end()); }

private:
    void take(const Message& m) {
        int peer = -1;
        long count = 0;
        if (m.name() != ACK_NAME ||
            std::sscanf(std::string(m.text()).c_str(), "%d:%ld", &peer, &count) != 2 || peer < 0 ||
            static_cast<size_t>(peer) >= m_acked.size()) {
            die("unexpected message %s", std::string(m.name()).c_str());
        }
        m_acked[static_cast<size_t>(peer)] = std::max(m_acked[static_cast<size_t>(peer)], count);
    }

    Ksock& m_ksock;
    std::vector<long> m_acked;
};

// Sends messages first..last (1-based) to `name`, never more than `window`
// ahead of the slowest peer; returns each send call's duration (us).
// Sends messages first..last, at most `window` ahead of the slowest
// listener, `batch` per call (Ksock::sendBatch when over 1). A message's send
// time is its call's time shared among the call's messages.
std::vector<double> sendWindowed(Ksock& k, Credits& credits, const std::string& name,
                                 const std::string& payload, long first, long last, int window,
                                 int batch) {
    const Message m = makeMessage(name, payload, FLAG_ALL_OR_FAIL);
    const std::vector<Message> messages(static_cast<size_t>(batch), m);
    std::vector<double> sendUs;
    sendUs.reserve(static_cast<size_t>(last - first + 1));
    for (long n = first; n <= last;) {
        const long count = std::min<long>(batch, last - n + 1);
        const long end = n + count - 1;
        if (end - credits.slowest() > window / 2) {
            credits.drain(); // keeps the sender's queue short
        }
        credits.waitAcked(end - window);
        const auto start = Clock::now();
        if (batch == 1) {
            (void)must(k.send(m), "announce");
        } else {
            auto sent = must(k.sendBatch(std::span(messages).first(static_cast<size_t>(count))),
                             "announce a batch");
            for (const auto& one : sent) {
                (void)must(Result<MsgId>(one), "announce in a batch");
            }
        }
        const double each = micros(Clock::now() - start) / static_cast<double>(count);
        sendUs.insert(sendUs.end(), static_cast<size_t>(count), each);
        n += count;
    }
    return sendUs;
}

bool dueForAck(long count, long total, long warm, int window) {
    return count % std::max(1, window / 2) == 0 || count == total || count == warm;
}

// ---- rr: request/reply round trips, one outstanding

int serveRequests(const Options& o, const Gate& ready, int total) {
    Ksock k = openKsock();
    must(k.serve(RR_NAME), "bind the replier");
    ready.open();
    const std::string answer = makePayload(o.size);
    for (int i = 0; i < total; ++i) {
        const Message request = must(k.receive(RECEIVE_TIMEOUT), "wait for a request");
        checkPayload(request, o.size);
        (void)must(k.reply(request, answer), "reply");
    }
    return 0;
}

nlohmann::ordered_json runRequestReply(const Options& o) {
    const int warm = std::max(1, o.iterations / 10);
    Gate ready;
    spawn([&] { return serveRequests(o, ready, warm + o.iterations); });
    ready.waitOpened(1, READY_TIMEOUT); // never request before the replier is bound
    Ksock k = openKsock();
    const std::string payload = makePayload(o.size);
    auto roundTrip = [&] {
        checkPayload(must(k.request(RR_NAME, payload, RECEIVE_TIMEOUT), "request"), o.size);
    };
    for (int i = 0; i < warm; ++i) {
        roundTrip();
    }
    std::vector<double> us;
    us.reserve(static_cast<size_t>(o.iterations));
    const auto start = Clock::now();
    for (int i = 0; i < o.iterations; ++i) {
        const auto t = Clock::now();
        roundTrip();
        us.push_back(micros(Clock::now() - t));
    }
    const double elapsed = seconds(Clock::now() - start);
    reapClients();
    nlohmann::ordered_json out = figures(o, us, o.iterations, elapsed);
    out["operations"] = warm + o.iterations; // what per-operation counts divide by
    return out;
}

// ---- ann: one sender, K listeners, credit window

int listenAndAcknowledge(const Options& o, const Gate& ready, int peer, long total, long warm) {
    Ksock k = openKsock();
    setQueueLimit(k, static_cast<uint64_t>(std::max(100, 2 * o.window)));
    must(k.listen(ANN_NAME), "bind the listener");
    ready.open();
    for (long count = 1; count <= total; ++count) {
        checkPayload(must(k.receive(RECEIVE_TIMEOUT), "wait for an announcement"), o.size);
        if (dueForAck(count, total, warm, o.window)) {
            acknowledge(k, peer, count);
        }
    }
    return 0;
}

Ksock openAckReceiver() {
    Ksock k = openKsock();
    setQueueLimit(k, ACK_QUEUE);
    must(k.listen(ACK_NAME), "bind for acknowledgements");
    return k;
}

nlohmann::ordered_json runAnnouncements(const Options& o) {
    const long total = o.count > 0 ? o.count : 20000;
    const long warm = std::max(1L, total / 10);
    Gate ready;
    for (int peer = 0; peer < o.listeners; ++peer) {
        spawn([&, peer] { return listenAndAcknowledge(o, ready, peer, warm + total, warm); });
    }
    ready.waitOpened(o.listeners, READY_TIMEOUT);
    Ksock k = openAckReceiver();
    Credits credits(k, o.listeners);
    const std::string payload = makePayload(o.size);
    // Half a window per call, as long as the batch fits in one record.
    const auto fits =
        frontend::MAX_BATCH_BYTES / protocol::batchEntrySize(std::strlen(ANN_NAME), o.size);
    const int batch = o.scenario == "ann-batch"
                          ? static_cast<int>(std::clamp<size_t>(fits, 1, std::max(1, o.window / 2)))
                          : 1;
    (void)sendWindowed(k, credits, ANN_NAME, payload, 1, warm, o.window, batch);
    credits.waitAcked(warm);
    const auto start = Clock::now();
    const auto us =
        sendWindowed(k, credits, ANN_NAME, payload, warm + 1, warm + total, o.window, batch);
    credits.waitAcked(warm + total);
    const double elapsed = seconds(Clock::now() - start);
    reapClients();
    nlohmann::ordered_json out = asSendLatency(figures(o, us, total, elapsed));
    out["window"] = o.window;
    out["batch"] = batch;
    out["operations"] = warm + total; // what per-operation counts divide by
    return out;
}

// ---- bindings: the cost of one send with B unrelated bindings on the bus

// Names that never match TARGET_NAME, spread over the name trie: mostly
// exact names (siblings of the target, unrelated subtrees), three in ten
// wildcards ($.x<n>.*, $.y<n>.%, and below the target itself).
std::string unrelatedName(size_t i) {
    const std::string n = std::to_string(i);
    switch (i % 10) {
    case 0:
        return "$.x" + n + ".*";
    case 1:
        return "$.y" + n + ".%";
    case 2:
    case 3:
        return "$.bench.other" + n;
    case 4:
        return "$.bench.target.z" + n + ".*";
    default:
        return "$.w" + std::to_string(i % 500) + ".v" + n;
    }
}

// Holds bindings first..first+count-1 on a connection of its own (the
// daemon's quota is per connection) until the parent kills it.
int holdBindings(size_t first, size_t count, const Gate& ready) {
    Ksock holder = openOwnConnection();
    for (size_t i = first; i < first + count; ++i) {
        must(holder.listen(unrelatedName(i)), "bind an unrelated name");
    }
    ready.open();
    for (;;) {
        ::pause();
    }
}

// Binds in parallel processes: one bind is a round trip to the daemon, and
// 100000 of them one after the other take tens of seconds.
std::vector<pid_t> spawnBindingHolders(size_t bindings) {
    Gate held;
    std::vector<pid_t> holders;
    for (size_t first = 0; first < bindings; first += BINDINGS_PER_CONNECTION) {
        const size_t count = std::min(BINDINGS_PER_CONNECTION, bindings - first);
        holders.push_back(spawn([&, first, count] { return holdBindings(first, count, held); }));
    }
    held.waitOpened(static_cast<int>(holders.size()), READY_TIMEOUT);
    return holders;
}

int listenToTarget(const Options& o, const Gate& ready, long total) {
    Ksock k = openKsock();
    must(k.listen(TARGET_NAME), "bind the target");
    ready.open();
    for (long count = 1; count <= total; ++count) {
        checkPayload(must(k.receive(RECEIVE_TIMEOUT), "wait for the target"), o.size);
        acknowledge(k, 0, count);
    }
    return 0;
}

// Each send is timed alone: the next waits for the listener's acknowledgement,
// so the listener's work never overlaps a timed send.
nlohmann::ordered_json runBindings(const Options& o) {
    const long warm = std::max(1, o.iterations / 10);
    const long total = warm + o.iterations;
    const auto bindStart = Clock::now();
    const std::vector<pid_t> holders = spawnBindingHolders(o.bindings);
    const double bindSeconds = seconds(Clock::now() - bindStart);
    Gate ready;
    spawn([&] { return listenToTarget(o, ready, total); });
    ready.waitOpened(1, READY_TIMEOUT);
    Ksock k = openAckReceiver();
    Credits credits(k, 1);
    const std::string payload = makePayload(o.size);
    std::vector<double> us;
    for (long n = 1; n <= total; ++n) {
        const auto start = Clock::now();
        (void)must(k.announce(TARGET_NAME, payload, FLAG_ALL_OR_FAIL), "announce");
        const double sendUs = micros(Clock::now() - start);
        if (n > warm) {
            us.push_back(sendUs);
        }
        credits.waitAcked(n);
    }
    for (pid_t holder : holders) {
        killClient(holder); // it would hold its bindings forever
    }
    reapClients();
    double sum = 0;
    for (double u : us) {
        sum += u;
    }
    // The rate a sender could keep up if sending were all it did.
    nlohmann::ordered_json out = figures(o, us, o.iterations, sum / 1e6);
    out["bindings"] = o.bindings;
    out["bind_seconds"] = rounded(bindSeconds);
    return out;
}

// ---- clients: 1000 connected clients, memory and fan-out

void raiseDescriptorLimit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// Takes every message already queued on `k`, checking each.
long drainChecked(Ksock& k, size_t size) {
    long taken = 0;
    while (auto m = must(k.tryReceive(), "read a fan-out message")) {
        checkPayload(*m, size);
        ++taken;
    }
    return taken;
}

// One process holding `connections` clients, each on its own connection and
// bound to ANN_NAME; acknowledges for the slowest of them.
int hostClients(const Options& o, const Gate& ready, int peer, int connections, long total) {
    raiseDescriptorLimit();
    std::vector<Ksock> clients;
    for (int i = 0; i < connections; ++i) {
        clients.push_back(openOwnConnection());
        setQueueLimit(clients.back(), static_cast<uint64_t>(std::max(100, 2 * o.window)));
        must(clients.back().listen(ANN_NAME), "bind a client");
    }
    ready.open();
    std::vector<long> counts(clients.size(), 0);
    std::vector<pollfd> fds;
    for (const Ksock& k : clients) {
        fds.push_back(pollfd{k.fd(), POLLIN, 0});
    }
    long acked = 0;
    while (acked < total) {
        const auto timeoutMs = std::chrono::milliseconds(RECEIVE_TIMEOUT).count();
        if (::poll(fds.data(), fds.size(), static_cast<int>(timeoutMs)) <= 0) {
            die("client %d: no message for %lds", peer, static_cast<long>(RECEIVE_TIMEOUT.count()));
        }
        for (size_t i = 0; i < clients.size(); ++i) {
            if ((fds[i].revents & POLLIN) != 0) {
                counts[i] += drainChecked(clients[i], o.size);
            }
        }
        const long slowest = *std::min_element(counts.begin(), counts.end());
        if (slowest > total) {
            die("client %d: more messages than were sent", peer);
        }
        if (slowest / std::max(1, o.window / 2) > acked / std::max(1, o.window / 2) ||
            slowest == total) {
            acknowledge(clients.front(), peer, slowest);
            acked = slowest;
        }
    }
    return 0;
}

nlohmann::ordered_json runClients(const Options& o) {
    const long total = o.count > 0 ? o.count : 200;
    const int perProcess = std::max(1, o.clientsPerProcess);
    const int processes = (o.clients + perProcess - 1) / perProcess;
    const long long before = residentBytes(daemonPid());
    Gate ready;
    for (int peer = 0, left = o.clients; peer < processes; ++peer, left -= perProcess) {
        const int mine = std::min(left, perProcess);
        spawn([&, peer, mine] { return hostClients(o, ready, peer, mine, total); });
    }
    ready.waitOpened(processes, READY_TIMEOUT);
    const long long after = residentBytes(daemonPid());
    Ksock k = openAckReceiver();
    Credits credits(k, processes);
    const std::string payload = makePayload(o.size);
    const auto start = Clock::now();
    const auto us = sendWindowed(k, credits, ANN_NAME, payload, 1, total, o.window, 1);
    credits.waitAcked(total);
    const double elapsed = seconds(Clock::now() - start);
    reapClients();
    Options shown = o;
    shown.listeners = o.clients;
    nlohmann::ordered_json out = asSendLatency(figures(shown, us, total, elapsed));
    out["clients"] = o.clients;
    out["clients_per_process"] = perProcess;
    out["daemon_rss_before"] = before;
    out["daemon_rss_after"] = after;
    out["bytes_per_client"] = (after - before) / std::max(1, o.clients);
    return out;
}

int run(const Options& o) {
    nlohmann::ordered_json (*scenario)(const Options&) = nullptr;
    if (o.scenario == "rr") {
        scenario = runRequestReply;
    } else if (o.scenario == "ann" || o.scenario == "ann-batch") {
        scenario = runAnnouncements;
    } else if (o.scenario == "bindings") {
        scenario = runBindings;
    } else if (o.scenario == "clients") {
        scenario = runClients;
    } else {
        std::fprintf(stderr, "bench_e2e: scenario %s is not supported\n", o.scenario.c_str());
        return 2; // compare.py skips it
    }
    armHardTimeout(o.timeoutSeconds);
    startDaemon(XKBUSD_PATH, o.daemonSpinUs);
    const nlohmann::ordered_json out = scenario(o);
    stopDaemon();
    std::cout << out.dump() << std::endl;
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus end to end through xkbusd: one JSON line on stdout"};
    Options o;
    app.add_option("--scenario", o.scenario, "rr, ann, ann-batch, bindings or clients")->required();
    app.add_option("--size", o.size, "payload bytes");
    app.add_option("--iterations", o.iterations, "timed round trips or sends (rr, bindings)")
        ->check(CLI::PositiveNumber);
    app.add_option("--listeners", o.listeners, "listener processes (ann)")
        ->check(CLI::PositiveNumber);
    app.add_option("--count", o.count, "timed messages (ann: 20000, clients: 200)");
    app.add_option("--window", o.window, "most unacknowledged messages (ann, clients)")
        ->check(CLI::PositiveNumber);
    app.add_option("--bindings", o.bindings, "unrelated bindings on the bus (bindings)");
    app.add_option("--clients", o.clients, "connected clients (clients)")
        ->check(CLI::PositiveNumber);
    app.add_option("--clients-per-process", o.clientsPerProcess,
                   "connections each client process holds (clients)");
    app.add_option("--timeout", o.timeoutSeconds, "hard limit in seconds");
    app.add_option("--daemon-spin-us", o.daemonSpinUs,
                   "xkbusd --spin-us (default: the daemon's own); clients read XKBUS_SPIN_US")
        ->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);
    return run(o);
}
