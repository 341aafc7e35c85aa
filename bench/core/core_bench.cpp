// Cost of bus-core operations whose work could grow with what other Ksocks
// hold. "send": one send with 10 and with 100,000 bindings on the bus, each
// reaching the same three listeners (routing walks a trie of name words, so
// the two should be close). The "work" scenarios each time one operation at a
// small and a large size of what the others hold; a bounded operation costs
// about the same at both.
#include "../common/machine.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <xkbus/core/bus.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::core;
using Clock = std::chrono::steady_clock;

constexpr const char* TARGET = "$.target.x";

// No tenant limits: the scenarios hold more than a tenant may by default.
BusConfig benchConfig() {
    BusConfig config;
    config.recordQueueEvents = true;
    config.limits = TenantLimits::unlimited();
    return config;
}

template <class T>
T must(Result<T> r, const char* what) {
    if (!r) {
        std::fprintf(stderr, "%s failed: errno %d\n", what, toErrno(r.error()));
        std::exit(1);
    }
    return std::move(*r);
}

void must(const Result<void>& r, const char* what) {
    if (!r) {
        std::fprintf(stderr, "%s failed: errno %d\n", what, toErrno(r.error()));
        std::exit(1);
    }
}

// Bindings that never match TARGET, spread over the trie: siblings and
// children of the target's own nodes, and unrelated subtrees, a third of them
// wildcards.
void addNonMatchingBindings(Bus& bus, KsockId owner, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        const std::string n = std::to_string(i);
        std::string name;
        switch (i % 6) {
        case 0:
            name = "$.w" + n + ".*";
            break;
        case 1:
            name = "$.w" + n + ".%";
            break;
        case 2:
            name = "$.w" + std::to_string(i % 500) + ".v" + n;
            break;
        case 3:
            name = "$.target.y" + n;
            break;
        case 4:
            name = "$.target.x.z" + n + ".*";
            break;
        default:
            name = "$.target.y" + n + ".%";
            break;
        }
        must(bus.bind(owner, name, false), "bind");
    }
}

struct Setup {
    Bus bus{0, benchConfig()};
    KsockId sender = 0;
    std::vector<KsockId> listeners;
};

void prepare(Setup& s, size_t totalBindings) {
    s.sender = s.bus.open().value();
    for (const char* name : {"$.target.x", "$.target.*", "$.target.%"}) {
        const KsockId l = s.bus.open().value();
        (void)s.bus.maxMessages(l, 1u << 20);
        (void)s.bus.bind(l, name, false);
        s.listeners.push_back(l);
    }
    const KsockId bulk = s.bus.open().value();
    addNonMatchingBindings(s.bus, bulk, totalBindings - s.listeners.size());
}

// Median over rounds of the mean ns per send in a batch.
double nsPerSend(Setup& s, int rounds, int batch) {
    const Message msg = makeMessage(TARGET, "0123456789abcdef0123456789abcdef01234567");
    std::vector<double> perRound;
    for (int r = 0; r < rounds; ++r) {
        const auto start = Clock::now();
        for (int i = 0; i < batch; ++i) {
            must(s.bus.send(s.sender, msg), "send");
        }
        const auto elapsed = std::chrono::duration<double, std::nano>(Clock::now() - start);
        perRound.push_back(elapsed.count() / batch);
        for (KsockId l : s.listeners) { // drain outside the timed part
            while (s.bus.nextMessage(l).value()) {
            }
        }
        (void)s.bus.takeQueueEvents();
    }
    std::sort(perRound.begin(), perRound.end());
    return perRound[perRound.size() / 2];
}

// ---------------------------------------------------------------- work scenarios

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Runs `op` `count` times after `setup`, `rounds` times; median ns per op.
double timeOps(int rounds, const std::function<void()>& setup, const std::function<void()>& op,
               int count) {
    std::vector<double> perRound;
    for (int r = 0; r < rounds; ++r) {
        setup();
        const auto start = Clock::now();
        for (int i = 0; i < count; ++i) {
            op();
        }
        perRound.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
                           count);
    }
    return median(perRound);
}

// Closing a Ksock that holds n "$.*" listener bindings: ns per binding.
double closeManyBindings(size_t n, int rounds) {
    std::vector<double> perRound;
    for (int r = 0; r < rounds; ++r) {
        Bus bus{0, benchConfig()};
        const KsockId k = bus.open().value();
        for (size_t i = 0; i < n; ++i) {
            must(bus.bind(k, "$.*", false), "bind");
        }
        const auto start = Clock::now();
        must(bus.close(k), "close");
        perRound.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
                           static_cast<double>(n));
    }
    return median(perRound);
}

// A victim binds and unbinds "$.*" while another Ksock holds n "$.*"
// bindings: ns per bind + unbind.
double unbindBesideOthers(size_t n, int rounds) {
    Bus bus{0, benchConfig()};
    const KsockId other = bus.open().value();
    for (size_t i = 0; i < n; ++i) {
        must(bus.bind(other, "$.*", false), "bind");
    }
    const KsockId victim = bus.open().value();
    return timeOps(
        rounds, [] {},
        [&] {
            must(bus.bind(victim, "$.*", false), "bind");
            must(bus.unbind(victim, "$.*", false), "unbind");
        },
        1000);
}

// A send whose name matches n listener bindings spread over three trie
// lists ("$.*", "$.a.*", "$.a.%"), all on one full Ksock, so no copy is
// queued and the cost is routing: ns per matching binding.
double routeManyListeners(size_t n, int rounds) {
    Bus bus{0, benchConfig()};
    const KsockId sender = bus.open().value();
    const KsockId full = bus.open().value();
    must(bus.bind(full, "$.fill", false), "bind");
    must(bus.maxMessages(full, 1), "maxMessages");
    must(bus.send(sender, makeMessage("$.fill")), "send");
    const char* names[] = {"$.*", "$.a.*", "$.a.%"};
    for (size_t i = 0; i < n; ++i) {
        must(bus.bind(full, names[i % 3], false), "bind");
    }
    const Message msg = makeMessage("$.a.b", "x");
    return timeOps(
               rounds, [] {}, [&] { must(bus.send(sender, msg), "send"); }, 200) /
           static_cast<double>(n);
}

// Popping, by copy id, the newest copy of a queue n long: ns per send + pop.
double popCopyFromLongQueue(size_t n, int rounds) {
    Bus bus{0, benchConfig()};
    const KsockId sender = bus.open().value();
    const KsockId l = bus.open().value();
    must(bus.bind(l, "$.q", false), "bind");
    must(bus.maxMessages(l, static_cast<uint32_t>(n + 10)), "maxMessages");
    for (size_t i = 0; i < n; ++i) {
        must(bus.send(sender, makeMessage("$.q")), "send");
    }
    (void)bus.takeQueueEvents();
    const Message msg = makeMessage("$.q");
    return timeOps(
        rounds, [] {},
        [&] {
            must(bus.send(sender, msg), "send");
            const uint64_t copy = bus.takeQueueEvents().back().copyId;
            must(bus.popCopy(l, copy), "popCopy");
        },
        1000);
}

// n ALL_OR_WAIT senders blocked on one full listener; another listener is
// sent to and popped: ns per send + pop (each pop may retry blocked senders).
double popBesideBlockedSenders(size_t n, int rounds) {
    Bus bus{0, benchConfig()};
    const KsockId stuck = bus.open().value();
    must(bus.bind(stuck, "$.stuck", false), "bind");
    must(bus.maxMessages(stuck, 1), "maxMessages");
    const KsockId first = bus.open().value();
    must(bus.send(first, makeMessage("$.stuck")), "send");
    for (size_t i = 0; i < n; ++i) {
        const KsockId s = bus.open().value();
        (void)bus.send(s, makeMessage("$.stuck", "", FLAG_ALL_OR_WAIT)); // blocks
    }
    const KsockId sender = bus.open().value();
    const KsockId l = bus.open().value();
    must(bus.bind(l, "$.free", false), "bind");
    const Message msg = makeMessage("$.free");
    const double ns = timeOps(
        rounds, [] {},
        [&] {
            must(bus.send(sender, msg), "send");
            must(bus.nextMessage(l), "pop");
            (void)bus.takeQueueEvents();
        },
        1000);
    return ns;
}

struct Scenario {
    const char* name;
    const char* unit;
    double (*run)(size_t, int);
    size_t small;
    size_t large;
};

nlohmann::json runWorkScenarios(int rounds) {
    const Scenario scenarios[] = {
        {"close_bindings", "ns per binding", closeManyBindings, 1000, 8000},
        {"unbind_beside_others", "ns per bind+unbind", unbindBesideOthers, 10, 10000},
        {"route_listeners", "ns per matching binding", routeManyListeners, 30, 3000},
        {"pop_copy_long_queue", "ns per send+popCopy", popCopyFromLongQueue, 10, 10000},
        {"pop_beside_blocked", "ns per send+pop", popBesideBlockedSenders, 0, 1000},
    };
    nlohmann::json out;
    std::printf("\n%-22s %8s %12s %8s %12s %8s  %s\n", "scenario", "small", "ns", "large", "ns",
                "ratio", "unit");
    for (const Scenario& s : scenarios) {
        const double small = s.run(s.small, rounds);
        const double large = s.run(s.large, rounds);
        std::printf("%-22s %8zu %12.1f %8zu %12.1f %8.2f  %s\n", s.name, s.small, small, s.large,
                    large, large / small, s.unit);
        out[s.name] = {{"unit", s.unit},   {"small", s.small},  {"small_ns", small},
                       {"large", s.large}, {"large_ns", large}, {"ratio", large / small}};
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus bus-core send cost"};
    std::string resultsDir = "bench/results";
    int rounds = 31;
    int batch = 2000;
    int workRounds = 5;
    app.add_option("--results-dir", resultsDir, "where core.json goes");
    app.add_option("--rounds", rounds, "timed rounds per figure (median reported)");
    app.add_option("--batch", batch, "sends per round");
    app.add_option("--work-rounds", workRounds, "timed rounds per work scenario");
    CLI11_PARSE(app, argc, argv);

    nlohmann::json out;
    out["machine"] = xkbus::bench::describeMachine();
    out["benchmark"] = "core send, 3 recipients, 40-byte payload";
    std::printf("%-12s %14s\n", "bindings", "ns per send");
    double figures[2] = {0, 0};
    const size_t sizes[2] = {10, 100000};
    for (int i = 0; i < 2; ++i) {
        Setup s;
        prepare(s, sizes[i]);
        (void)nsPerSend(s, 3, batch); // warm up
        figures[i] = nsPerSend(s, rounds, batch);
        std::printf("%-12zu %14.1f\n", sizes[i], figures[i]);
        out["send_ns"][std::to_string(sizes[i])] = figures[i];
    }
    const double ratio = figures[1] / figures[0];
    out["ratio_100000_to_10"] = ratio;
    std::printf("ratio 100000/10 bindings: %.2f (target: within 2)\n", ratio);
    out["work"] = runWorkScenarios(workRounds);
    std::filesystem::create_directories(resultsDir);
    std::ofstream(std::filesystem::path(resultsDir) / "core.json") << out.dump(2) << "\n";
    return 0;
}
