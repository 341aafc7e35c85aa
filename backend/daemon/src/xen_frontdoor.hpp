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
#include <xkbus/daemon/peer_hub.hpp>
#include <xkbus/ring/connection.hpp>
#include <xkbus/xenstore/backend_device.hpp>

namespace xkbus::daemon {

class XenFrontdoor final : public xenstore::Connector {
public:
    XenFrontdoor(PeerSink sink, std::shared_ptr<spdlog::logger> log, uint32_t slotsPerGuest,
                 ring::BackendOptions ringOptions);
    ~XenFrontdoor() override;

    // Opens xenstore, registers the watches and adopts existing slots.
    Result<void> start();
    int watchFd() const;
    // Handles every queued xenstore event; never fails on guest data.
    void onWatchReadable();
    // The server dropped one of our peers: free its slot for the next process.
    void peerGone(ConnectionId id);

    Result<void> connect(xenstore::DeviceId device, uint32_t bus,
                         const xenstore::DeviceParams& params) override;
    void disconnect(xenstore::DeviceId device) override;

private:
    PeerSink m_sink;
    std::shared_ptr<spdlog::logger> m_log;
    uint32_t m_slotsPerGuest;
    ring::BackendOptions m_ringOptions;
    std::unique_ptr<xenstore::Store> m_store;
    std::unique_ptr<xenstore::BackendDevices> m_devices;
    std::map<xenstore::DeviceId, ConnectionId> m_byDevice;
    std::map<ConnectionId, xenstore::DeviceId> m_byPeer;
};

} // namespace xkbus::daemon
