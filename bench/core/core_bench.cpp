// Cost of one send through the bus core with 10 and with 100,000 bindings on
// the bus (wildcards included), each send reaching the same three listeners.
// Routing walks a trie of name words, so the two figures should be close.
#include "../common/machine.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <xkbus/core/bus.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::core;
using Clock = std::chrono::steady_clock;

constexpr const char* TARGET = "$.target.x";

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
        if (!bus.bind(owner, name, false)) {
            std::fprintf(stderr, "bind %s failed\n", name.c_str());
            std::exit(1);
        }
    }
}

struct Setup {
    Bus bus{0};
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
            if (!s.bus.send(s.sender, msg)) {
                std::fprintf(stderr, "send failed\n");
                std::exit(1);
            }
        }
        const auto elapsed = std::chrono::duration<double, std::nano>(Clock::now() - start);
        perRound.push_back(elapsed.count() / batch);
        for (KsockId l : s.listeners) { // drain outside the timed part
            while (s.bus.nextMessage(l).value()) {
            }
        }
    }
    std::sort(perRound.begin(), perRound.end());
    return perRound[perRound.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"xkbus bus-core send cost"};
    std::string resultsDir = "bench/results";
    int rounds = 31;
    int batch = 2000;
    app.add_option("--results-dir", resultsDir, "where core.json goes");
    app.add_option("--rounds", rounds, "timed rounds per figure (median reported)");
    app.add_option("--batch", batch, "sends per round");
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
    std::filesystem::create_directories(resultsDir);
    std::ofstream(std::filesystem::path(resultsDir) / "core.json") << out.dump(2) << "\n";
    return 0;
}
