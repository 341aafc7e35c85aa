// The shared spin loop (ring/spin.hpp): bounded by its budget, and adaptive.
#include <gtest/gtest.h>
#include <sched.h>
#include <thread>
#include <xkbus/ring/spin.hpp>

namespace xkbus::ring {
namespace {

using namespace std::chrono_literals;

TEST(Spin, ReturnsAtOnceWhenReady) {
    int polls = 0;
    const auto took = spinFor(1s, [&] { return ++polls == 3; });
    EXPECT_GE(took.count(), 0);
    EXPECT_LT(took, 1s);
    EXPECT_EQ(polls, 3);
}

TEST(Spin, GivesUpOnceTheBudgetHasPassed) {
    const auto start = std::chrono::steady_clock::now();
    const auto took = spinFor(2ms, [] { return false; });
    EXPECT_LT(took.count(), 0);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 2ms);
}

// Runs `body` on a thread of its own: affinity is per thread.
template <class Body>
void onOwnThread(Body&& body) {
    std::thread(std::forward<Body>(body)).join();
}

TEST(Spin, AWastedSpinHalvesTheBudgetDownToASixteenth) {
    onOwnThread([] {
        AdaptiveSpin spin(SpinPolicy{1600us});
        if (spin.budget() == 0ns) {
            GTEST_SKIP() << "this process may only run on one CPU";
        }
        EXPECT_FALSE(spin.until([] { return false; }));
        EXPECT_EQ(spin.budget(), 800us);
        for (int i = 0; i < 8; ++i) {
            (void)spin.until([] { return false; });
        }
        EXPECT_EQ(spin.budget(), 100us) << "never below maxSpin/16, so it can recover";
    });
}

TEST(Spin, ASpinThatServedAllowsTwiceWhatItTookUpToTheMaximum) {
    onOwnThread([] {
        // A spin yields the CPU every few polls, and on a loaded machine a
        // yield can cost it its whole budget: a wait of 2.5 ms in a 4 ms
        // budget leaves 1.5 ms for preemption, and a few attempts.
        for (int attempt = 0; attempt < 10; ++attempt) {
            AdaptiveSpin spin(SpinPolicy{64ms});
            if (spin.budget() == 0ns) {
                GTEST_SKIP() << "this process may only run on one CPU";
            }
            for (int i = 0; i < 4; ++i) {
                (void)spin.until([] { return false; });
            }
            ASSERT_EQ(spin.budget(), 4ms);
            EXPECT_TRUE(spin.until([] { return true; }));
            EXPECT_EQ(spin.budget(), 4ms) << "a quick success keeps the budget";
            const auto start = std::chrono::steady_clock::now();
            if (!spin.until([&] { return std::chrono::steady_clock::now() - start >= 2500us; })) {
                continue; // preempted past the budget
            }
            // About twice the 2.5 ms it took (the spin's clock starts a
            // moment after ours): more than the 4 ms it had, at most the max.
            EXPECT_GT(spin.budget(), 4400us);
            EXPECT_LE(spin.budget(), 64ms);
            return;
        }
        FAIL() << "a 2.5 ms wait never ended within a 4 ms spin in 10 attempts";
    });
}

TEST(Spin, NeverSpinsWhereOnlyOneCpuIsAllowed) {
    onOwnThread([] {
        cpu_set_t one;
        CPU_ZERO(&one);
        ASSERT_EQ(::sched_getaffinity(0, sizeof one, &one), 0);
        const int cpu = [&] {
            for (int c = 0; c < CPU_SETSIZE; ++c) {
                if (CPU_ISSET(c, &one)) {
                    return c;
                }
            }
            return 0;
        }();
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
        EXPECT_EQ(spinWhereUseful(SpinPolicy{50us}).maxSpin, 0ns);
        AdaptiveSpin spin(SpinPolicy{50us});
        int polls = 0;
        EXPECT_FALSE(spin.until([&] { return ++polls > 0; }));
        EXPECT_EQ(polls, 0) << "a process alone on its CPU only delays the peer it waits for";
    });
}

} // namespace
} // namespace xkbus::ring
