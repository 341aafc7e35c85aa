// The floors under every bus in the comparison: what a request/reply round
// trip costs with no protocol at all, only shared memory and a wake-up.
//
//   --system shm    A <-> B, busy-polling shared memory (yielding the CPU while
//                   it polls, so that a single CPU still makes progress).
//   --system relay  A -> M -> B -> M -> A: the shape of a brokered round trip.
//                   Each waiter spins briefly, then sleeps on a futex, as
//                   xkbus's clients and daemon do (adaptive spin, then sleep).
//                   --busy-poll relays with the shm waiting instead.
// Confined to one CPU (taskset -c 0) a waiter does not spin, as the peer
// cannot run meanwhile: the busy-poll yields at every look, the relay sleeps.
//
// The mapping is anonymous MAP_SHARED, made before fork(), so every process
// sees it at the same address.
#include "peer_common.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>

namespace {

using namespace xkbus::bench::peers;

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// One direction of one hop. `seq` is the number of the last message put in
// the buffer and doubles as the futex word.
struct alignas(64) Mailbox {
    std::atomic<uint32_t> seq{0};
    std::atomic<uint32_t> sleeping{0};
};
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// The mailboxes, then one payload buffer per mailbox.
class SharedArea {
public:
    SharedArea(std::size_t mailboxes, std::size_t payloadBytes)
        : m_count(mailboxes), m_stride((payloadBytes + 63) / 64 * 64) {
        m_bytes = m_count * (sizeof(Mailbox) + m_stride);
        void* at =
            mmap(nullptr, m_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (at == MAP_FAILED) {
            dieErrno("mmap");
        }
        m_base = static_cast<std::byte*>(at);
        for (std::size_t i = 0; i < m_count; ++i) {
            new (m_base + i * sizeof(Mailbox)) Mailbox();
        }
    }
    SharedArea(const SharedArea&) = delete;
    SharedArea& operator=(const SharedArea&) = delete;
    ~SharedArea() { munmap(m_base, m_bytes); }

    Mailbox& box(std::size_t i) { return *std::launder(reinterpret_cast<Mailbox*>(m_base) + i); }
    std::byte* buffer(std::size_t i) { return m_base + m_count * sizeof(Mailbox) + i * m_stride; }

private:
    std::size_t m_count;
    std::size_t m_stride;
    std::size_t m_bytes = 0;
    std::byte* m_base = nullptr;
};

long futex(std::atomic<uint32_t>& word, int op, uint32_t value) {
    return syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), op, value, nullptr, nullptr, 0);
}

// Busy-poll: the shm floor. On one CPU the peer cannot answer while we poll,
// so every failed look yields to it; with more CPUs the peer answers while we
// spin, and an occasional yield only covers more pollers than CPUs.
struct BusyPoll {
    unsigned yieldEvery = 16;

    void wait(Mailbox& box, uint32_t seq) const {
        for (unsigned i = 1; box.seq.load(std::memory_order_acquire) != seq; ++i) {
            if (i % yieldEvery == 0) {
                sched_yield();
            } else {
                cpuRelax();
            }
        }
    }
    void announce(Mailbox& box, uint32_t seq) const {
        box.seq.store(seq, std::memory_order_release);
    }
};

// Spin, then sleep on the futex: the relay floor. The spin budget adapts like
// xkbus's: at least twice what a successful spin took, halved after a wasted
// one, kept between maxSpin/16 and maxSpin.
class SpinThenSleep {
public:
    explicit SpinThenSleep(std::chrono::nanoseconds maxSpin) : m_max(maxSpin), m_budget(maxSpin) {}

    void wait(Mailbox& box, uint32_t seq) {
        if (spin(box, seq)) {
            return;
        }
        // Publish that we sleep before the last look: the sender stores seq,
        // then reads `sleeping` (both seq_cst), so one of us sees the other.
        box.sleeping.store(1);
        for (uint32_t now = box.seq.load(); now != seq; now = box.seq.load()) {
            (void)futex(box.seq, FUTEX_WAIT, now);
        }
        box.sleeping.store(0);
    }

    void announce(Mailbox& box, uint32_t seq) {
        box.seq.store(seq);
        if (box.sleeping.load() != 0) {
            (void)futex(box.seq, FUTEX_WAKE, 1);
        }
    }

private:
    bool spin(Mailbox& box, uint32_t seq) {
        if (m_max.count() <= 0) {
            return box.seq.load(std::memory_order_acquire) == seq;
        }
        const auto start = Clock::now();
        for (unsigned i = 1;; ++i) {
            if (box.seq.load(std::memory_order_acquire) == seq) {
                const auto took = Clock::now() - start;
                m_budget = std::clamp<std::chrono::nanoseconds>(std::max(m_budget, 2 * took),
                                                                m_max / 16, m_max);
                return true;
            }
            cpuRelax();
            if (i % 32 == 0 && Clock::now() - start >= m_budget) {
                m_budget = std::max(m_budget / 2, m_max / 16);
                return false;
            }
        }
    }

    std::chrono::nanoseconds m_max;
    std::chrono::nanoseconds m_budget;
};

// Moves payloads through the mailboxes of one SharedArea with one wait strategy.
template <typename Waiter>
class Hops {
public:
    Hops(SharedArea& area, std::size_t size, Waiter waiter)
        : m_area(area), m_size(size), m_waiter(std::move(waiter)) {}

    void put(std::size_t box, const std::byte* payload, uint32_t seq) {
        std::memcpy(m_area.buffer(box), payload, m_size);
        m_waiter.announce(m_area.box(box), seq);
    }
    void take(std::size_t box, std::byte* payload, uint32_t seq) {
        m_waiter.wait(m_area.box(box), seq);
        std::memcpy(payload, m_area.buffer(box), m_size);
    }

private:
    SharedArea& m_area;
    std::size_t m_size;
    Waiter m_waiter;
};

// Takes from `in` and puts to `out`, `messages` times: B of shm, M and B of relay.
template <typename Waiter>
int forward(Hops<Waiter>& hops, std::size_t size, uint64_t messages,
            std::initializer_list<std::pair<std::size_t, std::size_t>> legs) {
    std::vector<std::byte> payload(size);
    for (uint64_t n = 1; n <= messages; ++n) {
        for (const auto& [in, out] : legs) {
            hops.take(in, payload.data(), static_cast<uint32_t>(n));
            hops.put(out, payload.data(), static_cast<uint32_t>(n));
        }
    }
    return 0;
}

// A's round trip: out through `first`, back through `last`.
template <typename Waiter>
Measured measure(const Options& o, Hops<Waiter>& hops, std::size_t first, std::size_t last) {
    std::vector<std::byte> request = makePayload(o.size);
    std::vector<std::byte> reply(o.size);
    return measureRoundTrips(o, [&](uint64_t seq) {
        const auto n = static_cast<uint32_t>(seq + 1);
        stampSequence(request, seq);
        hops.put(first, request.data(), n);
        hops.take(last, reply.data(), n);
        checkPayload(reply, o.size, seq);
    });
}

bool confinedToOneCpu() {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    return sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) == 1;
}

// On a single CPU the peer cannot run while we spin, so every spin is wasted
// (a measured 3 us a hop at the smallest budget): the floors do not spin there.
BusyPoll busyPoll() {
    return BusyPoll{confinedToOneCpu() ? 1u : 16u};
}

std::chrono::nanoseconds spinBudgetFor(unsigned maxSpinUs) {
    return confinedToOneCpu() ? std::chrono::nanoseconds(0) : std::chrono::microseconds(maxSpinUs);
}

// Mailboxes: 0 A->B, 1 B->A.
Measured runShm(const Options& o) {
    SharedArea area(2, o.size);
    Hops hops(area, o.size, busyPoll());
    const uint64_t messages = o.warmups() + o.iterations;
    const pid_t b = spawnChild("B", [&] { return forward(hops, o.size, messages, {{0, 1}}); });
    const Measured m = measure(o, hops, 0, 1);
    if (!waitChild(b, "B")) {
        die("B failed");
    }
    return m;
}

// Mailboxes: 0 A->M, 1 M->B, 2 B->M, 3 M->A.
template <typename Waiter>
Measured runRelay(const Options& o, Waiter waiter) {
    SharedArea area(4, o.size);
    Hops hops(area, o.size, std::move(waiter));
    const uint64_t messages = o.warmups() + o.iterations;
    const pid_t m = spawnChild("M", [&] {
        return forward(hops, o.size, messages, {{0, 1}, {2, 3}});
    });
    const pid_t b = spawnChild("B", [&] { return forward(hops, o.size, messages, {{1, 2}}); });
    const Measured result = measure(o, hops, 0, 3);
    const bool mOk = waitChild(m, "M");
    const bool bOk = waitChild(b, "B");
    if (!mOk || !bOk) {
        die("relay failed");
    }
    return result;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app("Round-trip floors: shared-memory busy-poll and a futex relay",
                 "bench_peer_floor");
    Options o;
    std::string system = "shm";
    unsigned maxSpinUs = 50;
    app.add_option("--system", system, "shm: busy-poll A<->B; relay: A->M->B->M->A with futex")
        ->check(CLI::IsMember({"shm", "relay"}));
    bool busyRelay = false;
    app.add_flag("--busy-poll", busyRelay,
                 "relay: busy-poll like shm instead of sleeping (a calibration figure)");
    app.add_option("--max-spin-us", maxSpinUs,
                   "relay: longest spin before sleeping (none on one CPU)");
    if (const int rc = parseOptions(app, o, argc, argv); rc >= 0) {
        return rc;
    }
    if (!o.isRoundTrip()) {
        unsupported("the floors measure request/reply (rr) only");
    }
    armTimeout(o.timeoutSeconds);
    Measured m;
    if (system == "shm") {
        m = runShm(o);
    } else if (busyRelay) {
        m = runRelay(o, busyPoll());
    } else {
        m = runRelay(o, SpinThenSleep(spinBudgetFor(maxSpinUs)));
    }
    printResult(system == "shm" ? "shm-floor" : "relay-floor", o, m);
    return 0;
}
