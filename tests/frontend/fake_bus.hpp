// An in-process stand-in for xkbusd: KsockChannels over xkbus::core::Bus with
// PollSignal fds kept in step from the core's queue events, so the C API runs
// against the real bus rules in one process.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>
#include <xkbus/core/bus.hpp>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/frontend/poll_signal.hpp>

namespace xkbus::frontend::testing {

class FakeBusHost : public std::enable_shared_from_this<FakeBusHost> {
public:
    FakeBusHost();
    // Installs this host as the C API's channel factory.
    void install();
    Result<std::unique_ptr<KsockChannel>> open(uint32_t bus, bool writable);

    // For the fake channels: every bus call goes through here, under the lock.
    template <class Call>
    auto onBus(uint32_t bus, Call&& call) {
        std::lock_guard lock(m_mutex);
        auto result = call(*m_buses.at(bus));
        applyEvents(bus);
        return result;
    }
    Result<uint32_t> newBus();
    void forget(uint32_t bus, KsockId id);
    void markSending(uint32_t bus, KsockId id, bool blocked);
    void taken(uint32_t bus, KsockId id);

private:
    void applyEvents(uint32_t bus);
    PollSignal* signalOf(uint32_t bus, KsockId id);

    std::mutex m_mutex;
    std::vector<std::unique_ptr<core::Bus>> m_buses;
    // (bus << 32 | Ksock id) -> its signal, owned by the channel.
    std::unordered_map<uint64_t, PollSignal*> m_signals;
};

// Installs a fresh host (fresh buses) as the channel factory.
std::shared_ptr<FakeBusHost> installFakeBus();

} // namespace xkbus::frontend::testing
