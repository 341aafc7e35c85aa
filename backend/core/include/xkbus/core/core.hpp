// The bus core: every bus the daemon hosts (KBUS's /dev/kbus0, kbus1, ...).
// Pure logic, deterministic, single-threaded: the daemon owns the only instance.
#pragma once

#include <memory>
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

    // nullptr if there is no bus with that index.
    Bus* bus(uint32_t index) noexcept;
    const Bus* bus(uint32_t index) const noexcept;
    uint32_t busCount() const noexcept { return static_cast<uint32_t>(m_buses.size()); }

    // NEWDEVICE: adds a bus and returns its index.
    Result<uint32_t> newBus();

private:
    CoreConfig m_config;
    std::vector<std::unique_ptr<Bus>> m_buses;
};

} // namespace xkbus::core
