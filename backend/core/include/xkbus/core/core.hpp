// The bus core: every bus the daemon hosts (KBUS's /dev/kbus0, kbus1, ...).
// Pure logic, deterministic, single-threaded: the daemon owns the only instance.
#pragma once

#include <memory>
#include <optional>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {

inline constexpr uint32_t MAX_BUSES = 256; // as KBUS_MAX_NUM_DEVICES

struct CoreConfig {
    uint32_t initialBuses = 1; // kbus_num_devices
    uint32_t maxBuses = MAX_BUSES;
    BusConfig bus;
};

class Core {
public:
    explicit Core(CoreConfig config = {});
    ~Core();
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    // nullptr if there is no bus with that index.
    Bus* bus(uint32_t index) noexcept;
    const Bus* bus(uint32_t index) const noexcept;
    uint32_t busCount() const noexcept { return static_cast<uint32_t>(m_buses.size()); }

    // NEWDEVICE: adds a bus and returns its index.
    Result<uint32_t> newBus();

    // Accounting by tenant, across every bus (accounts.hpp).
    GroupUsage groupUsage(uint32_t group) const;
    std::vector<GroupUsage> groupUsages() const; // every group holding something, by group
    // Replaces a group's limits (nullopt: back to config.bus.limits).
    void setGroupLimits(uint32_t group, std::optional<TenantLimits> limits);

    // Buses whose queues changed during a call on another bus (a send there
    // was waiting for its charge group to have room, and the call made it):
    // the host ships their queue events too.
    std::vector<uint32_t> takeTouchedBuses();

private:
    CoreConfig m_config;
    std::shared_ptr<Ledger> m_ledger;
    std::vector<std::unique_ptr<Bus>> m_buses;
};

} // namespace xkbus::core
