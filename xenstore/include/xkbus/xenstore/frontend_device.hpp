// The guest side of device setup: a process claims a free slot, publishes its
// grant and port, and follows the backend's state to Connected and back.
// One FrontendDevice per claimed slot; single-threaded.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <xkbus/xenstore/state_machine.hpp>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

struct FrontendOptions {
    DomId domid = 0;             // our own domain (read "domid" in a real guest)
    std::optional<uint32_t> bus; // nullopt: any bus
    std::string claimToken;      // who holds the slot, e.g. "<pid>.<start time>"
    // True if the process named by a token is gone, so its unfinished claim
    // can be taken over. Empty: claims are never taken over.
    std::function<bool(std::string_view token)> isClaimAbandoned;
};

class FrontendDevice {
public:
    // Claims the lowest free slot in one transaction (retried on conflict):
    // Errc::TOO_MANY if every slot is taken, NOT_FOUND if there are none.
    static Result<FrontendDevice> claim(Store& store, FrontendOptions options);

    // Writes the params and state Initialised in one transaction, and
    // watches the backend's state node.
    Result<void> publish(const DeviceParams& params);
    // Re-reads the backend state and follows it; call on every watch event
    // (it ignores the event's content) and when starting.
    Result<FrontendPhase> update();
    // Starts an orderly close; update() finishes it.
    Result<void> close();

    FrontendPhase phase() const { return m_phase; }
    DeviceId device() const { return m_device; }
    uint32_t bus() const { return m_bus; }
    // The backend's reason node after it refused or dropped us ("" if none).
    std::string backendReason() const;
    std::string watchToken() const;

    FrontendDevice(FrontendDevice&& other) noexcept;
    FrontendDevice& operator=(FrontendDevice&&) = delete;
    ~FrontendDevice();

private:
    FrontendDevice(Store& store, DeviceId device, uint32_t bus, std::string token);
    // Writes our state only while the slot is still ours (claimed-by matches):
    // a process that lost its slot must not disturb the next owner.
    Result<void> writeState(XenbusState state);

    Store* m_store;
    DeviceId m_device;
    uint32_t m_bus;
    std::string m_token;
    FrontendPhase m_phase = FrontendPhase::CLAIMED;
    bool m_watching = false;
};

} // namespace xkbus::xenstore
