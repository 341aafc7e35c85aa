#include <xkbus/limpet/rate_limit.hpp>

namespace xkbus::limpet {

RateLimitedLog::RateLimitedLog(Sink sink, Clock::duration interval, uint32_t perInterval)
    : m_sink(std::move(sink)), m_interval(interval), m_perInterval(perInterval) {}

void RateLimitedLog::note(std::string_view line, Clock::time_point now) {
    if (m_inWindow == 0 || now - m_windowStart >= m_interval) {
        m_windowStart = now;
        m_inWindow = 0;
    }
    if (m_inWindow >= m_perInterval) {
        ++m_suppressed;
        ++m_suppressedTotal;
        return;
    }
    ++m_inWindow;
    if (m_suppressed == 0) {
        m_sink(line);
        return;
    }
    m_sink(std::string(line) + " (" + std::to_string(m_suppressed) +
           " similar lines left out before this one)");
    m_suppressed = 0;
}

} // namespace xkbus::limpet
