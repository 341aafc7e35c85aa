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
#include <xkbus/common/kbus_types.hpp>

namespace xkbus::core {

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
