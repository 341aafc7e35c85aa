// The xkbus device protocol in xenstore: node layout, key names, XenbusState
// and the parameters a frontend publishes. docs/xenstore.md is the prose
// version; the values here are what both ends must agree on.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

using DevId = uint32_t;

// The values of io/xenbus.h's enum xenbus_state.
enum class XenbusState : uint8_t {
    UNKNOWN = 0,
    INITIALISING = 1,
    INIT_WAIT = 2,
    INITIALISED = 3,
    CONNECTED = 4,
    CLOSING = 5,
    CLOSED = 6,
    RECONFIGURING = 7,
    RECONFIGURED = 8,
};
std::string_view stateName(XenbusState state);

struct DeviceId {
    DomId domid = 0;
    DevId devid = 0;
    friend auto operator<=>(const DeviceId&, const DeviceId&) = default;
};

// What a frontend publishes before it says Initialised. The grants of the
// ring pages are listed inside the control page (ring/abi.hpp), so xenstore
// carries one grant reference, as libxenvchan does.
struct DeviceParams {
    uint32_t protocolVersion = 0;
    uint32_t controlRef = 0; // grant of page 0 (header, indices, grant list)
    uint32_t eventChannel = 0;
    uint8_t toBackendOrder = 0; // rings are 1 << order bytes
    uint8_t toFrontendOrder = 0;
    friend bool operator==(const DeviceParams&, const DeviceParams&) = default;
};

inline constexpr uint32_t PROTOCOL_VERSION = 1;
inline constexpr DomId BACKEND_DOMID = 0; // xkbusd runs in dom0

// Bounds checked on every value a guest writes. Ring orders mirror
// ring/abi.hpp (MIN_RING_ORDER, MAX_RING_ORDER); the daemon re-checks them
// against the control page header when it maps it.
inline constexpr uint8_t MIN_RING_ORDER = 8;
inline constexpr uint8_t MAX_RING_ORDER = 20;
// Refs 0-7 are reserved (GNTTAB_NR_RESERVED_ENTRIES: console, xenstore).
inline constexpr uint32_t MIN_GRANT_REF = 8;
// 2048 grant frames of 512 v1 entries: above any configured gnttab_max_frames.
inline constexpr uint32_t MAX_GRANT_REF = (1u << 20) - 1;
// FIFO event-channel ABI limit (2-level is lower); port 0 is never valid.
inline constexpr uint32_t MAX_EVENT_CHANNEL = (1u << 17) - 1;
inline constexpr uint32_t MAX_BUS = 255;
inline constexpr DevId MAX_DEVID = 4095;
inline constexpr DomId MAX_DOMID = 0x7FEF; // DOMID_FIRST_RESERVED - 1
// Longest value we accept from a guest node; anything longer is rejected
// before parsing (xenstored would allow 2048 bytes).
inline constexpr size_t MAX_GUEST_VALUE_BYTES = 64;
inline constexpr size_t MAX_CLAIM_TOKEN_BYTES = 48;

namespace key {
// In both directories.
inline constexpr std::string_view STATE = "state";
// Backend directory (dom0 writes, guest reads).
inline constexpr std::string_view FRONTEND = "frontend";
inline constexpr std::string_view FRONTEND_ID = "frontend-id";
inline constexpr std::string_view BUS = "bus";
inline constexpr std::string_view MAX_PROTOCOL_VERSION = "max-protocol-version";
inline constexpr std::string_view MAX_RING_ORDER = "max-ring-order";
inline constexpr std::string_view REASON = "reason"; // why the backend closed
// Frontend directory (dom0 creates, the guest owns and writes).
inline constexpr std::string_view BACKEND = "backend";
inline constexpr std::string_view BACKEND_ID = "backend-id";
inline constexpr std::string_view CLAIMED_BY = "claimed-by";
inline constexpr std::string_view PROTOCOL_VERSION = "protocol-version";
inline constexpr std::string_view CONTROL_REF = "page-ref";
inline constexpr std::string_view EVENT_CHANNEL = "event-channel";
inline constexpr std::string_view TO_BACKEND_ORDER = "to-backend-order";
inline constexpr std::string_view TO_FRONTEND_ORDER = "to-frontend-order";
} // namespace key

// Nodes a frontend writes while it holds a slot; the backend removes them
// when the slot returns to InitWait.
inline constexpr std::string_view FRONTEND_SESSION_KEYS[] = {
    key::CLAIMED_BY,    key::PROTOCOL_VERSION, key::CONTROL_REF,
    key::EVENT_CHANNEL, key::TO_BACKEND_ORDER, key::TO_FRONTEND_ORDER,
};

std::string domainPath(DomId domid);       // /local/domain/<domid>
std::string backendRoot();                 // /local/domain/0/backend/xkbus
std::string backendDomainDir(DomId domid); // <backendRoot>/<domid>
std::string backendDir(DeviceId device);   // <backendRoot>/<domid>/<devid>
std::string frontendRoot(DomId domid);     // /local/domain/<domid>/device/xkbus
std::string frontendDir(DeviceId device);  // <frontendRoot>/<devid>
std::string nodePath(std::string_view dir, std::string_view key);

} // namespace xkbus::xenstore
