// Two-process benchmark of the shared ring over the local transport: ping-pong
// latency and one-way streaming throughput for 64 B, 4 KiB and 256 KiB
// records, next to a raw shared-memory busy-poll ping-pong (the physical
// floor) and an AF_UNIX socketpair ping-pong (the blocking-IPC baseline).
#include "../common/machine.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>
#include <xkbus/ring/local/local_transport.hpp>

namespace {

using namespace xkbus;
using namespace xkbus::ring;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint8_t RING_ORDER = 16; // 64 KiB each way: 33 pages

struct Sizes {
    const char* name;
    size_t bytes;
    int pingPongRounds;
    int streamRecords;
};
constexpr Sizes SIZES[] = {
    {"64B", 64, 20000, 200000}, {"4KiB", 4096, 10000, 40000}, {"256KiB", 262144, 300, 600}};

void pinTo(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

struct Percentiles {
    double p50Ns = 0;
    double p99Ns = 0;
};

// One-way latency = half the round trip.
Percentiles oneWay(std::vector<double> rttNs) {
    std::sort(rttNs.begin(), rttNs.end());
    const auto at = [&](double q) {
        return rttNs[static_cast<size_t>(q * double(rttNs.size() - 1))] / 2;
    };
    return {at(0.50), at(0.99)};
}

void die(const char* what) {
    std::fprintf(stderr, "bench_ring: %s\n", what);
    std::exit(1);
}

// Runs `child` in a forked process pinned to cpu 1, `parent` here on cpu 0.
template <class Child, class Parent>
void forked(Child child, Parent parent) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        die("fork failed");
    }
    if (pid == 0) {
        pinTo(1);
        child();
        ::_exit(0);
    }
    pinTo(0);
    parent();
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        die("child failed");
    }
}

Connection acceptBlocking(int socketFd) {
    pollfd p{socketFd, POLLIN, 0};
    (void)::poll(&p, 1, 5000);
    auto connection = local::acceptBackend(socketFd);
    if (!connection) {
        die("accept failed");
    }
    return std::move(*connection);
}

Connection connectFront(int socketFd) {
    FrontendOptions options;
    options.toBackendOrder = RING_ORDER;
    options.toFrontendOrder = RING_ORDER;
    auto connection = local::connectFrontend(socketFd, options);
    if (!connection) {
        die("connect failed");
    }
    return std::move(*connection);
}

struct SocketPair {
    int a = -1;
    int b = -1;
    SocketPair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            die("socketpair failed");
        }
        a = sv[0];
        b = sv[1];
    }
    ~SocketPair() {
        ::close(a);
        ::close(b);
    }
};

Percentiles ringPingPong(const Sizes& size) {
    SocketPair sockets;
    Percentiles result;
    forked(
        [&] {
            auto backend = acceptBlocking(sockets.b);
            for (int i = 0; i < size.pingPongRounds; ++i) {
                auto record = backend.receive(-1ms);
                if (!record) {
                    ::_exit(2);
                }
                const std::vector<std::byte> copy(record->begin(), record->end());
                if (!backend.send(copy, -1ms)) {
                    ::_exit(3);
                }
            }
        },
        [&] {
            auto frontend = connectFront(sockets.a);
            std::vector<std::byte> ping(size.bytes, std::byte{1});
            std::vector<double> rtt;
            rtt.reserve(size_t(size.pingPongRounds));
            for (int i = 0; i < size.pingPongRounds; ++i) {
                const auto start = Clock::now();
                if (!frontend.send(ping, 5000ms) || !frontend.receive(5000ms)) {
                    die("ring ping-pong failed");
                }
                rtt.push_back(
                    std::chrono::duration<double, std::nano>(Clock::now() - start).count());
            }
            result = oneWay(std::move(rtt));
        });
    return result;
}

double ringStreamMiBps(const Sizes& size) {
    SocketPair sockets;
    double mibps = 0;
    forked(
        [&] {
            auto backend = acceptBlocking(sockets.b);
            for (int i = 0; i < size.streamRecords; ++i) {
                if (!backend.receive(-1ms)) {
                    ::_exit(2);
                }
            }
            const std::byte done{1};
            if (!backend.send(std::span(&done, 1), -1ms)) {
                ::_exit(3);
            }
        },
        [&] {
            auto frontend = connectFront(sockets.a);
            std::vector<std::byte> record(size.bytes, std::byte{2});
            const auto start = Clock::now();
            for (int i = 0; i < size.streamRecords; ++i) {
                if (!frontend.send(record, 5000ms)) {
                    die("ring stream send failed");
                }
            }
            if (!frontend.receive(5000ms)) {
                die("ring stream ack failed");
            }
            const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
            mibps = double(size.bytes) * size.streamRecords / seconds / (1024.0 * 1024.0);
        });
    return mibps;
}

// Two flags on separate cache lines, each written by one side only.
struct alignas(64) Flag {
    std::atomic<uint32_t> value{0};
};

Percentiles shmBusyPoll(int rounds) {
    void* memory = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        die("mmap failed");
    }
    auto* ping = new (memory) Flag;
    auto* pong = new (static_cast<char*>(memory) + 64) Flag;
    Percentiles result;
    forked(
        [&] {
            for (uint32_t i = 1; i <= uint32_t(rounds); ++i) {
                while (ping->value.load(std::memory_order_acquire) != i) {
                }
                pong->value.store(i, std::memory_order_release);
            }
        },
        [&] {
            std::vector<double> rtt;
            rtt.reserve(size_t(rounds));
            for (uint32_t i = 1; i <= uint32_t(rounds); ++i) {
                const auto start = Clock::now();
                ping->value.store(i, std::memory_order_release);
                while (pong->value.load(std::memory_order_acquire) != i) {
                }
                rtt.push_back(
                    std::chrono::duration<double, std::nano>(Clock::now() - start).count());
            }
            result = oneWay(std::move(rtt));
        });
    ::munmap(memory, 4096);
    return result;
}

bool readFull(int fd, char* buffer, size_t size) {
    for (size_t got = 0; got < size;) {
        const ssize_t n = ::read(fd, buffer + got, size - got);
        if (n <= 0) {
            return false;
        }
        got += size_t(n);
    }
    return true;
}

Percentiles socketPingPong(int rounds) {
    SocketPair sockets;
    Percentiles result;
    forked(
        [&] {
            char buffer[64];
            for (int i = 0; i < rounds; ++i) {
                if (!readFull(sockets.b, buffer, sizeof buffer) ||
                    ::write(sockets.b, buffer, sizeof buffer) != sizeof buffer) {
                    ::_exit(2);
                }
            }
        },
        [&] {
            char buffer[64] = {};
            std::vector<double> rtt;
            rtt.reserve(size_t(rounds));
            for (int i = 0; i < rounds; ++i) {
                const auto start = Clock::now();
                if (::write(sockets.a, buffer, sizeof buffer) != sizeof buffer ||
                    !readFull(sockets.a, buffer, sizeof buffer)) {
                    die("socket ping-pong failed");
                }
                rtt.push_back(
                    std::chrono::duration<double, std::nano>(Clock::now() - start).count());
            }
            result = oneWay(std::move(rtt));
        });
    return result;
}

nlohmann::json toJson(const Percentiles& p) {
    return {{"one_way_p50_ns", p.p50Ns}, {"one_way_p99_ns", p.p99Ns}};
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Shared-ring benchmark (local transport, two processes)"};
    std::string resultsDir = "bench/results";
    app.add_option("--results-dir", resultsDir, "where ring.json goes");
    CLI11_PARSE(app, argc, argv);

    nlohmann::json out;
    out["machine"] = xkbus::bench::describeMachine();
    out["ring_order"] = RING_ORDER;
    out["note"] = "one-way = half the round trip; throughput counts record payload bytes";

    const Percentiles floor = shmBusyPoll(200000);
    std::printf("raw shm busy-poll ping-pong   p50 %8.0f ns  p99 %8.0f ns\n", floor.p50Ns,
                floor.p99Ns);
    const Percentiles socket = socketPingPong(20000);
    std::printf("AF_UNIX socketpair 64 B       p50 %8.0f ns  p99 %8.0f ns\n", socket.p50Ns,
                socket.p99Ns);
    out["shm_busy_poll"] = toJson(floor);
    out["unix_socketpair_64B"] = toJson(socket);

    for (const Sizes& size : SIZES) {
        const Percentiles latency = ringPingPong(size);
        const double mibps = ringStreamMiBps(size);
        std::printf("ring %-6s ping-pong         p50 %8.0f ns  p99 %8.0f ns   stream %9.1f MiB/s\n",
                    size.name, latency.p50Ns, latency.p99Ns, mibps);
        auto entry = toJson(latency);
        entry["record_bytes"] = size.bytes;
        entry["ping_pong_rounds"] = size.pingPongRounds;
        entry["stream_records"] = size.streamRecords;
        entry["stream_MiB_per_s"] = mibps;
        if (size.bytes == 64) {
            entry["p50_vs_shm_floor"] = latency.p50Ns / floor.p50Ns;
            entry["socketpair_p50_vs_ring"] = socket.p50Ns / latency.p50Ns;
            std::printf("  ratios (64 B p50): ring/shm-floor %.2fx, socketpair/ring %.2fx\n",
                        latency.p50Ns / floor.p50Ns, socket.p50Ns / latency.p50Ns);
        }
        out["ring"][size.name] = entry;
    }

    std::filesystem::create_directories(resultsDir);
    const auto path = std::filesystem::path(resultsDir) / "ring.json";
    std::ofstream(path) << out.dump(2) << '\n';
    std::printf("wrote %s\n", path.c_str());
    return 0;
}
