// How guests reach xkbusd: the xenstore device handshake (BackendDevices)
// and, once a guest process publishes its ring, the Xen ring transport. It
// turns xenstore events into peers of the hub.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <spdlog/logger.h>
#include <string>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/daemon/event_loop.hpp>
#include <xkbus/daemon/loop_timer.hpp>
#include <xkbus/daemon/peer_hub.hpp>
#include <xkbus/ring/connection.hpp>
#include <xkbus/xenstore/backend_device.hpp>
#include <xkbus/xenstore/event_pacer.hpp>

namespace xkbus::daemon {

class XenFrontdoor final : public xenstore::Connector {
public:
    XenFrontdoor(EventLoop& loop, PeerSink sink, std::shared_ptr<spdlog::logger> log,
                 uint32_t slotsPerGuest, ring::BackendOptions ringOptions,
                 xenstore::PacerLimits pacing = {});
    ~XenFrontdoor() override;

    // Opens xenstore (or uses `store`: tests give an in-memory one),
    // registers the watches and adopts existing slots.
    Result<void> start(std::unique_ptr<xenstore::Store> store = nullptr);
    int watchFd() const;
    // Takes every queued xenstore event into the pacer, for serveDeferred().
    void onWatchReadable();
    // The event loop's leftover hook: handles the next share of the events
    // that wait; true while the next pass may handle more. Events that wait
    // only for a domain's transition budget wake the loop by a timer.
    bool serveDeferred();
    const xenstore::EventPacer& pacer() const noexcept { return m_pacer; }
    // The server dropped one of our peers: free its slot for the next process.
    void peerGone(ConnectionId id);

    Result<void> connect(xenstore::DeviceId device, uint32_t bus,
                         const xenstore::DeviceParams& params) override;
    void disconnect(xenstore::DeviceId device) override;

private:
    EventLoop& m_loop;
    PeerSink m_sink;
    std::shared_ptr<spdlog::logger> m_log;
    uint32_t m_slotsPerGuest;
    ring::BackendOptions m_ringOptions;
    std::unique_ptr<xenstore::Store> m_store;
    std::unique_ptr<xenstore::BackendDevices> m_devices;
    std::map<xenstore::DeviceId, ConnectionId> m_byDevice;
    std::map<ConnectionId, xenstore::DeviceId> m_byPeer;
    xenstore::EventPacer m_pacer;
    std::unique_ptr<LoopTimer> m_refillTimer; // a pass when a throttled domain may go on
};

} // namespace xkbus::daemon
