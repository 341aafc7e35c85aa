// See spin.hpp.
#include <xkbus/ring/spin.hpp>

namespace xkbus::ring {

SpinPolicy spinWhereUseful(SpinPolicy wanted) noexcept {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) <= 1) {
        wanted.maxSpin = std::chrono::nanoseconds(0);
    }
    return wanted;
}

} // namespace xkbus::ring
