// A log that a hostile bus client or peer cannot flood: a few lines per
// interval, then a count of what was left out. Pure: the caller gives the time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace xkbus::limpet {

class RateLimitedLog {
public:
    using Clock = std::chrono::steady_clock;
    using Sink = std::function<void(std::string_view)>;

    RateLimitedLog(Sink sink, Clock::duration interval = std::chrono::seconds(1),
                   uint32_t perInterval = 5);

    // Writes `line` unless this interval's lines are used up. The first line
    // written after some were left out says how many.
    void note(std::string_view line, Clock::time_point now);
    uint64_t suppressed() const noexcept { return m_suppressedTotal; }

private:
    Sink m_sink;
    Clock::duration m_interval;
    uint32_t m_perInterval;
    Clock::time_point m_windowStart{};
    uint32_t m_inWindow = 0;
    uint64_t m_suppressed = 0; // since the last line written
    uint64_t m_suppressedTotal = 0;
};

} // namespace xkbus::limpet
