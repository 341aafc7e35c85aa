// The bus's view of a message: the KBUS header fields plus a name and data
// shared (never copied) between every recipient's copy.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xkbus::core {

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

// The immutable part of a message. One allocation, shared by every queued copy,
// so a 64 KiB announcement to eight listeners is stored once.
struct MessageBody {
    std::string name;
    std::vector<std::byte> data;
};

struct Message {
    MsgId id;
    MsgId inReplyTo;
    KsockId to = 0;
    KsockId from = 0;
    OrigFrom origFrom;
    OrigFrom finalTo;
    uint32_t extra = 0;
    uint32_t flags = 0;
    std::shared_ptr<const MessageBody> body;

    std::string_view name() const noexcept { return body ? std::string_view(body->name) : ""; }
    std::span<const std::byte> data() const noexcept {
        return body ? std::span<const std::byte>(body->data) : std::span<const std::byte>();
    }
    bool isRequest() const noexcept { return (flags & FLAG_WANT_A_REPLY) != 0; }
    bool isReply() const noexcept { return inReplyTo.isSet(); }
    bool wantsYouToReply() const noexcept { return (flags & FLAG_WANT_YOU_TO_REPLY) != 0; }
};

Message makeMessage(std::string_view name, std::span<const std::byte> data = {},
                    uint32_t flags = 0);
Message makeMessage(std::string_view name, std::string_view data, uint32_t flags = 0);

// Length of the message in KBUS's "entire" form on a 64-bit host: the 88-byte
// header, the name NUL-padded to 4, the data padded to 4, and the end guard.
// This is the size MAXMSGSIZE limits, as in KBUS.
constexpr uint64_t entireMessageLength(uint64_t nameLen, uint64_t dataLen) noexcept {
    constexpr uint64_t HEADER = 88;
    return HEADER + 4 * ((nameLen + 1 + 3) / 4) + 4 * ((dataLen + 3) / 4) + 4;
}

// Data of a $.KBUS.ReplierBindEvent: {is_bind, binder, name_len} as native u32
// words, then the name NUL-padded to a multiple of 4 (KBUS's layout).
std::vector<std::byte> encodeBindEventData(bool isBind, KsockId binder, std::string_view name);

struct BindEvent {
    bool isBind = false;
    KsockId binder = 0;
    std::string name;
};
// Returns false if the data is not a well-formed bind event.
bool decodeBindEventData(std::span<const std::byte> data, BindEvent& out);

} // namespace xkbus::core
