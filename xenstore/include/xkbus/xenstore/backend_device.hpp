// The dom0 side of device setup: provisions slots, follows each frontend's
// state through the XenbusState handshake and calls the daemon's Connector to
// map or unmap. Single-threaded: the daemon feeds it watch events from its loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <xkbus/xenstore/state_machine.hpp>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

// Implemented by the daemon (ring layer): map the control page, bind the
// event channel, create the peer. It must check the params against the page
// it maps; we only checked that each value is in range.
class Connector {
public:
    virtual ~Connector() = default;
    virtual Result<void> connect(DeviceId device, uint32_t bus, const DeviceParams& params) = 0;
    // Unmaps and unbinds; called at most once per successful connect().
    virtual void disconnect(DeviceId device) = 0;
};

struct SlotPlan {
    uint32_t bus = 0;
    uint32_t slotCount = 1;
};

// Which new domains get slots when they appear (@introduceDomain); nullopt: none.
using ProvisionPolicy = std::function<std::optional<SlotPlan>(DomId domid)>;
using LogSink = std::function<void(std::string_view message)>;

struct BackendOptions {
    ProvisionPolicy policy;          // empty: only provision() adds slots
    LogSink log;                     // empty: discard
    uint32_t maxSlotsPerDomain = 64; // keeps each guest well inside xenstored's quotas
};

struct DeviceSnapshot {
    DeviceId device;
    uint32_t bus = 0;
    bool connected = false;
};

class BackendDevices {
public:
    BackendDevices(Store& store, Connector& connector, BackendOptions options);
    BackendDevices(const BackendDevices&) = delete;
    BackendDevices& operator=(const BackendDevices&) = delete;

    // Registers the watches and adopts devices already in xenstore (a
    // restarted daemon): dead domains are cleaned up, pending handshakes are
    // completed, and devices a previous daemon had connected are closed so
    // their guests reconnect (the bus state they relied on is gone).
    Result<void> start();
    // Adds slots 0..plan.slotCount-1 for `domid` (what `xl` does to attach a
    // PV device). Existing slots are kept. The domain must be introduced.
    Result<void> provision(DomId domid, SlotPlan plan);
    // Feed every event from store.nextWatchEvent() here. Never fails on bad
    // guest data: that closes the device concerned and is logged.
    Result<void> handleWatchEvent(const WatchEvent& event);
    // A guest process died (its status byte cleared): unmap, free the slot.
    Result<void> releaseDevice(DeviceId device);
    // The domain is gone: unmap all it had, remove its slots.
    Result<void> removeDomain(DomId domid);

    std::vector<DeviceSnapshot> devices() const;

private:
    struct Device {
        uint32_t bus = 0;
        bool connected = false;
    };
    struct Domain {
        std::map<DevId, Device> devices;
    };

    Result<void> reconcile(DeviceId device);
    Result<void> apply(DeviceId device, Device& state, const BackendDecision& decision);
    Result<void> connectDevice(DeviceId device, Device& state);
    Result<void> closeDevice(DeviceId device, Device& state, std::string_view reason);
    Result<void> resetSlot(DeviceId device);
    Result<void> writeSlot(DeviceId device, uint32_t bus);
    Result<void> watchDomain(DomId domid);
    Result<void> adoptDomain(DomId domid);
    Result<void> onIntroduceDomain();
    Result<void> onReleaseDomain();
    Result<void> onSlotsChanged(std::string_view path);
    Result<uint32_t> readSlotBus(DeviceId device);
    Result<void> onFrontendEvent(DomId domid, std::string_view path);
    void log(std::string_view message) const;

    Store& m_store;
    Connector& m_connector;
    BackendOptions m_options;
    std::map<DomId, Domain> m_domains;
    std::set<DomId> m_declined; // policy said no; asked again after the domain dies
    bool m_adopting = false;
};

} // namespace xkbus::xenstore
