// The set of buses.
#include <xkbus/core/core.hpp>

namespace xkbus::core {

Core::Core(CoreConfig config) : m_config(config) {
    const uint32_t initial = std::min(std::max(config.initialBuses, 1u), config.maxBuses);
    for (uint32_t i = 0; i < initial; ++i) {
        m_buses.push_back(std::make_unique<Bus>(i, m_config.bus));
    }
}

Bus* Core::bus(uint32_t index) noexcept {
    return index < m_buses.size() ? m_buses[index].get() : nullptr;
}

const Bus* Core::bus(uint32_t index) const noexcept {
    return index < m_buses.size() ? m_buses[index].get() : nullptr;
}

Result<uint32_t> Core::newBus() {
    if (m_buses.size() >= m_config.maxBuses) {
        return fail(Errc::TOO_MANY);
    }
    const auto index = static_cast<uint32_t>(m_buses.size());
    m_buses.push_back(std::make_unique<Bus>(index, m_config.bus));
    return index;
}

} // namespace xkbus::core
