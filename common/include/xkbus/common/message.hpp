// The one message vocabulary of every layer: the KBUS header fields, and an
// immutable body (name and data) shared, never copied, by every holder: the
// bus's queued copies, the records that carry it, a client's mirror and the
// application. docs/architecture.md lists where a message's bytes are copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <xkbus/common/api.hpp>
#include <xkbus/common/kbus_types.hpp>

namespace xkbus {

// KBUS's message header, less the lengths (the body knows them).
struct MessageHeader {
    MsgId id;
    MsgId inReplyTo;
    KsockId to = 0;
    KsockId from = 0;
    OrigFrom origFrom;
    OrigFrom finalTo;
    uint32_t extra = 0;
    uint32_t flags = 0;
    friend bool operator==(const MessageHeader&, const MessageHeader&) = default;
};

// Bytes that stay alive as long as anybody holds a reference: a received
// record, a message body.
using SharedBytes = std::shared_ptr<const std::byte[]>;

// A message's name and data. Copying a body copies a reference: the bytes
// are written once, when the body is made, and never change after.
class XKBUS_CLIENT_API MessageBody {
public:
    MessageBody() = default; // empty name, no data

    // Copies name and data into one new allocation.
    static MessageBody copyOf(std::string_view name, std::span<const std::byte> data);
    // A new body of the given lengths, with spans to write its name and data
    // through: once, before the body is handed to anyone else.
    struct Unwritten;
    static Unwritten allocate(size_t nameLength, size_t dataLength);
    // A body over bytes already in a buffer of its own (a record received
    // into private memory): the buffer is adopted, not copied. Offsets must
    // lie within it.
    static MessageBody within(SharedBytes buffer, size_t bufferSize, size_t nameOffset,
                              size_t nameLength, size_t dataOffset, size_t dataLength);

    std::string_view name() const noexcept {
        return {reinterpret_cast<const char*>(m_bytes.get() + m_nameOffset), m_nameLength};
    }
    std::span<const std::byte> data() const noexcept {
        return {m_bytes.get() + m_dataOffset, m_dataLength};
    }

private:
    SharedBytes m_bytes; // null for the empty body
    uint32_t m_nameOffset = 0;
    uint32_t m_nameLength = 0;
    uint32_t m_dataOffset = 0;
    uint32_t m_dataLength = 0;
};

struct MessageBody::Unwritten {
    MessageBody body;
    std::span<std::byte> name;
    std::span<std::byte> data;
};

struct Message {
    MessageHeader header;
    MessageBody body;

    std::string_view name() const noexcept { return body.name(); }
    std::span<const std::byte> data() const noexcept { return body.data(); }
    // The data as characters, for text payloads.
    std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(data().data()), data().size()};
    }
    bool isRequest() const noexcept { return (header.flags & FLAG_WANT_A_REPLY) != 0; }
    bool isReply() const noexcept { return header.inReplyTo.isSet(); }
    bool wantsYouToReply() const noexcept { return (header.flags & FLAG_WANT_YOU_TO_REPLY) != 0; }
    // A status the bus made (GoneAway, Ignored, Unbound...), not a reply.
    bool isStatus() const noexcept { return (header.flags & FLAG_SYNTHETIC) != 0; }
    // KBUS's "entire" length: what MAXMSGSIZE limits.
    uint64_t entireLength() const noexcept {
        return entireMessageLength(name().size(), data().size());
    }
};

XKBUS_CLIENT_API Message makeMessage(std::string_view name, std::span<const std::byte> data = {},
                                     uint32_t flags = 0);
XKBUS_CLIENT_API Message makeMessage(std::string_view name, std::string_view data,
                                     uint32_t flags = 0);

inline std::span<const std::byte> asBytes(std::string_view text) noexcept {
    return std::as_bytes(std::span(text.data(), text.size()));
}

// Data of a $.KBUS.ReplierBindEvent: {is_bind, binder, name_len} as native u32
// words, then the name NUL-padded to a multiple of 4 (KBUS's layout).
XKBUS_CLIENT_API std::vector<std::byte> encodeBindEventData(bool isBind, KsockId binder,
                                                            std::string_view name);

struct BindEvent {
    bool isBind = false;
    KsockId binder = 0;
    std::string name;
};
// Returns false if the data is not a well-formed bind event.
XKBUS_CLIENT_API bool decodeBindEventData(std::span<const std::byte> data, BindEvent& out);

} // namespace xkbus
