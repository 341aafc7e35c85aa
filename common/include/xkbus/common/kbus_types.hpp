// The KBUS vocabulary shared by every layer: ids, flags, predefined names,
// limits and the "entire" message length. Plain data, no behaviour.
#pragma once

#include <compare>
#include <cstdint>
#include <string_view>

namespace xkbus {

using KsockId = uint32_t; // per bus, from 1; 0 means "the bus itself"

struct MsgId {
    uint32_t networkId = 0;
    uint32_t serialNum = 0;
    bool isSet() const noexcept { return networkId != 0 || serialNum != 0; }
    friend auto operator<=>(const MsgId&, const MsgId&) = default;
};

struct OrigFrom {
    uint32_t networkId = 0;
    uint32_t localId = 0;
    friend auto operator<=>(const OrigFrom&, const OrigFrom&) = default;
};

// Flag bits, as in KBUS's kbus_defns.h. The top 16 bits belong to the user.
inline constexpr uint32_t FLAG_WANT_A_REPLY = 1u << 0;
inline constexpr uint32_t FLAG_WANT_YOU_TO_REPLY = 1u << 1;
inline constexpr uint32_t FLAG_SYNTHETIC = 1u << 2;
inline constexpr uint32_t FLAG_URGENT = 1u << 3;
inline constexpr uint32_t FLAG_ALL_OR_WAIT = 1u << 8;
inline constexpr uint32_t FLAG_ALL_OR_FAIL = 1u << 9;

// Names the bus itself sends.
inline constexpr std::string_view NAME_REPLIER_GONE_AWAY = "$.KBUS.Replier.GoneAway";
inline constexpr std::string_view NAME_REPLIER_IGNORED = "$.KBUS.Replier.Ignored";
inline constexpr std::string_view NAME_REPLIER_UNBOUND = "$.KBUS.Replier.Unbound";
inline constexpr std::string_view NAME_REPLIER_DISAPPEARED = "$.KBUS.Replier.Disappeared";
inline constexpr std::string_view NAME_ERROR_SENDING = "$.KBUS.ErrorSending";
inline constexpr std::string_view NAME_UNBIND_EVENTS_LOST = "$.KBUS.UnbindEventsLost";
inline constexpr std::string_view NAME_REPLIER_BIND_EVENT = "$.KBUS.ReplierBindEvent";

inline constexpr uint32_t MAX_NAME_LEN = 1000;
inline constexpr uint32_t DEFAULT_MAX_MESSAGE_SIZE = 409600;
inline constexpr uint32_t MIN_MAX_MESSAGE_SIZE = 100;

// KBUS's "entire" form on a 64-bit host, computed in 64 bits so that no
// length an application writes can overflow: the 88-byte header, the name
// NUL-padded to 4, the data padded to 4, and the end guard.
inline constexpr uint64_t ENTIRE_HEADER_SIZE = 88;
inline constexpr uint64_t ENTIRE_GUARD_SIZE = 4;
constexpr uint64_t paddedNameLength(uint64_t nameLen) noexcept {
    return 4 * ((nameLen + 1 + 3) / 4);
}
constexpr uint64_t paddedDataLength(uint64_t dataLen) noexcept {
    return 4 * ((dataLen + 3) / 4);
}
// This is the size MAXMSGSIZE limits, as in KBUS.
constexpr uint64_t entireMessageLength(uint64_t nameLen, uint64_t dataLen) noexcept {
    return ENTIRE_HEADER_SIZE + paddedNameLength(nameLen) + paddedDataLength(dataLen) +
           ENTIRE_GUARD_SIZE;
}
static_assert(entireMessageLength(6, 0) == 100 && entireMessageLength(6, 7) == 108);

} // namespace xkbus
