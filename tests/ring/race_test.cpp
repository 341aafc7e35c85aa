// Lost-wakeup races: two threads over the local transport (real eventfds),
// with spinning off so every wait goes through "arm, barrier, re-check,
// sleep". A lost wakeup shows up as a TIMED_OUT long before any real delay.
// Labelled `threads`: ./run test-tsan runs these under ThreadSanitizer.
#include "heap_ring.hpp"
#include "local_pair.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <thread>

namespace xkbus::ring {
namespace {

using namespace std::chrono_literals;
using test::patterned;
using test::toVector;

constexpr auto WATCHDOG = 10000ms; // far beyond any honest wait

struct Pair {
    test::SocketPair sockets;
    std::optional<Connection> frontend;
    std::optional<Connection> backend;

    explicit Pair(std::chrono::nanoseconds spin, uint8_t order = 12) {
        FrontendOptions f;
        f.toBackendOrder = order;
        f.toFrontendOrder = order;
        f.spin.maxSpin = spin;
        auto front = local::connectFrontend(sockets.frontend, f);
        EXPECT_TRUE(front);
        frontend.emplace(std::move(*front));
        BackendOptions b;
        b.spin.maxSpin = spin;
        auto back = test::acceptWithin(sockets.backend, 1000, b);
        EXPECT_TRUE(back);
        backend.emplace(std::move(*back));
    }
};

void echoUntilEmptyRecord(Connection& connection, std::atomic<bool>& failed) {
    for (;;) {
        auto record = connection.receive(WATCHDOG);
        if (!record) {
            failed = true;
            return;
        }
        const auto copy = toVector(*record);
        if (!connection.send(copy, WATCHDOG)) {
            failed = true;
            return;
        }
        if (copy.empty()) {
            return;
        }
    }
}

void pingPong(std::chrono::nanoseconds spin, int rounds) {
    Pair pair(spin);
    std::atomic<bool> echoFailed{false};
    std::thread echo(echoUntilEmptyRecord, std::ref(*pair.backend), std::ref(echoFailed));
    int completed = 0;
    for (int i = 0; i < rounds; ++i) {
        const auto ping = patterned(1 + static_cast<size_t>(i % 200), static_cast<uint32_t>(i));
        ASSERT_TRUE(pair.frontend->send(ping, WATCHDOG));
        auto pong = pair.frontend->receive(WATCHDOG);
        ASSERT_TRUE(pong) << "round " << i << ": " << describe(pong.error());
        ASSERT_EQ(toVector(*pong), ping);
        ++completed;
    }
    ASSERT_TRUE(pair.frontend->send({}, WATCHDOG));
    ASSERT_TRUE(pair.frontend->receive(WATCHDOG));
    echo.join();
    EXPECT_FALSE(echoFailed);
    EXPECT_EQ(completed, rounds);
}

TEST(Races, PingPongWithoutSpinningLosesNoWakeup) {
    pingPong(0ns, 5000);
}

TEST(Races, PingPongWithAdaptiveSpinLosesNoWakeup) {
    pingPong(20us, 5000);
}

// A producer streaming records several times the ring size into a small
// ring: both sides block on each other constantly (space and data waits).
TEST(Races, StreamingThroughASmallRingLosesNoWakeup) {
    Pair pair(0ns, 8);
    constexpr uint32_t RECORDS = 400;
    std::atomic<bool> producerFailed{false};
    std::thread producer([&] {
        for (uint32_t i = 0; i < RECORDS; ++i) {
            if (!pair.frontend->send(patterned((i * 7919) % 20000, i), WATCHDOG)) {
                producerFailed = true;
                return;
            }
        }
    });
    uint32_t received = 0;
    for (; received < RECORDS; ++received) {
        auto record = pair.backend->receive(WATCHDOG);
        ASSERT_TRUE(record) << "record " << received << ": " << describe(record.error());
        ASSERT_EQ(toVector(*record), patterned((received * 7919) % 20000, received));
    }
    producer.join();
    EXPECT_FALSE(producerFailed);
    EXPECT_EQ(received, RECORDS);
}

// Both directions streaming at once, each side one thread that alternates
// between pushing its own records and draining the peer's.
TEST(Races, FullDuplexStreamingMakesProgress) {
    Pair pair(0ns, 9);
    constexpr uint32_t RECORDS = 300;
    auto run = [](Connection& self, std::atomic<bool>& failed) {
        uint32_t sent = 0;
        uint32_t got = 0;
        const auto deadline = std::chrono::steady_clock::now() + WATCHDOG;
        while ((sent < RECORDS || got < RECORDS || self.endpoint().sendPending()) &&
               std::chrono::steady_clock::now() < deadline) {
            if (sent < RECORDS && self.trySend(patterned(1500, sent))) {
                ++sent;
            }
            if (!self.flush()) {
                failed = true;
                return;
            }
            auto record = got < RECORDS ? self.receive(1ms) : fail(Errc::TIMED_OUT);
            if (record) {
                const auto expected = patterned(1500, got);
                if (!std::equal(record->begin(), record->end(), expected.begin(), expected.end())) {
                    failed = true;
                    return;
                }
                ++got;
            } else if (record.error() != Errc::TIMED_OUT) {
                failed = true;
                return;
            }
        }
        failed = failed || sent < RECORDS || got < RECORDS;
    };
    std::atomic<bool> frontFailed{false};
    std::atomic<bool> backFailed{false};
    std::thread back(run, std::ref(*pair.backend), std::ref(backFailed));
    run(*pair.frontend, frontFailed);
    back.join();
    EXPECT_FALSE(frontFailed);
    EXPECT_FALSE(backFailed);
}

} // namespace
} // namespace xkbus::ring
