// Waiting without sleeping: the one spin loop that the client's waits and the
// daemon's event loop share (docs/performance.md, "Wake strategy").
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sched.h>

namespace xkbus::ring {

// A waiting side first polls shared memory for up to `maxSpin` (about 0.3 us
// per handoff when the peer is running) before paying for a sleep and a kick
// (about 10 us in these VMs, 25 us when the sleeper's vCPU halted). Zero
// disables spinning, and so does a process that may run on one CPU only:
// there the peer it waits for can only run once it stops spinning.
struct SpinPolicy {
    std::chrono::nanoseconds maxSpin = std::chrono::microseconds(50);
};

// The policy with spinning off where it cannot help (this process may run
// on one CPU only).
SpinPolicy spinWhereUseful(SpinPolicy wanted) noexcept;

inline void cpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Polls `ready()` until it holds (returns how long that took) or `budget` has
// passed (returns a negative duration). Yields every few dozen polls: on a
// CPU shared with the peer, spinning alone would keep the peer from running
// (a no-op when it runs elsewhere).
template <class Ready>
std::chrono::nanoseconds spinFor(std::chrono::nanoseconds budget, Ready&& ready) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    for (uint32_t i = 1;; ++i) {
        if (ready()) {
            return Clock::now() - start;
        }
        cpuRelax();
        if (i % 32 == 0) {
            ::sched_yield();
            if (Clock::now() - start >= budget) {
                return std::chrono::nanoseconds(-1);
            }
        }
    }
}

// A spin whose budget follows recent success, between maxSpin/16 and
// maxSpin: a wait that spinning served allows twice what it took next time;
// a wasted spin halves the budget (never below what lets it recover).
class AdaptiveSpin {
public:
    explicit AdaptiveSpin(SpinPolicy policy) noexcept
        : m_max(spinWhereUseful(policy).maxSpin), m_budget(m_max) {}

    template <class Ready>
    bool until(Ready&& ready) {
        if (m_budget.count() <= 0) {
            return false;
        }
        const auto took = spinFor(m_budget, ready);
        if (took.count() < 0) {
            m_budget = std::max(m_budget / 2, m_max / 16);
            return false;
        }
        m_budget =
            std::clamp<std::chrono::nanoseconds>(std::max(m_budget, 2 * took), m_max / 16, m_max);
        return true;
    }

    std::chrono::nanoseconds budget() const noexcept { return m_budget; }

private:
    std::chrono::nanoseconds m_max;
    std::chrono::nanoseconds m_budget;
};

} // namespace xkbus::ring
