// The set of buses, and the accounts they share.
#include "ledger.hpp"

#include <xkbus/core/core.hpp>

namespace xkbus::core {

Core::Core(CoreConfig config)
    : m_config(config), m_ledger(std::make_shared<Ledger>(config.bus.limits)) {
    const uint32_t initial = std::min(std::max(config.initialBuses, 1u), config.maxBuses);
    for (uint32_t i = 0; i < initial; ++i) {
        m_buses.push_back(std::make_unique<Bus>(i, m_config.bus, m_ledger));
    }
}

Core::~Core() = default;

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
    m_buses.push_back(std::make_unique<Bus>(index, m_config.bus, m_ledger));
    return index;
}

GroupUsage Core::groupUsage(uint32_t group) const {
    return m_ledger->usage(group);
}

std::vector<GroupUsage> Core::groupUsages() const {
    return m_ledger->usages();
}

void Core::setGroupLimits(uint32_t group, std::optional<TenantLimits> limits) {
    if (limits) {
        m_ledger->setLimits(group, *limits);
    } else {
        m_ledger->clearLimits(group);
    }
}

std::vector<uint32_t> Core::takeTouchedBuses() {
    return m_ledger->takeTouched();
}

} // namespace xkbus::core
