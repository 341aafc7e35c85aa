// The frames two Limpets exchange over their link, version 1
// (docs/limpet.md has the byte layout). Decoding trusts nothing: every field
// is checked before a Frame is returned, even from an authenticated peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/message.hpp>
#include <xkbus/common/result.hpp>

namespace xkbus::limpet {

inline constexpr uint16_t WIRE_VERSION = 1;
inline constexpr uint32_t WIRE_MAGIC = 0x584b4c50; // "XKLP"
// A frame's body: type byte, 48-byte header, name and the largest data.
inline constexpr uint32_t MAX_FRAME_BODY = 1 + 48 + MAX_NAME_LEN + DEFAULT_MAX_MESSAGE_SIZE;
inline constexpr uint32_t MIN_HEARTBEAT_MS = 10;
inline constexpr uint32_t MAX_HEARTBEAT_MS = 60000;

enum class FrameType : uint8_t {
    HELLO = 1,     // first frame each way: magic, version, network id, heartbeat
    HEARTBEAT = 2, // nothing else to say
    BIND = 3,      // a replier bound or unbound on the sender's bus
    MESSAGE = 4,   // a message crossing (header.from is the sender's Ksock on its own bus)
    GOODBYE = 5,   // the sender is closing the link, and why
};

struct Hello {
    uint16_t version = WIRE_VERSION;
    uint32_t networkId = 0;
    uint32_t heartbeatMs = 1000;
};

struct Heartbeat {};

struct BindNotice {
    bool isBind = true;
    std::string name;
};

enum class ByeReason : uint8_t {
    SHUTDOWN = 1,
    CYCLE = 2,    // the sender found the Limpets form a cycle
    PROTOCOL = 3, // the receiver broke the protocol
    ID_CLASH = 4, // both ends have the same network id
};

struct Goodbye {
    ByeReason reason = ByeReason::SHUTDOWN;
    std::string text; // at most 200 bytes, printable ASCII
};

// A MESSAGE frame is the shared Message: its body is written once, when it is
// decoded (or read from the bus), and shared by every copy after that.
using Frame = std::variant<Hello, Heartbeat, BindNotice, Message, Goodbye>;

// The whole frame as it goes on the link: a big-endian u32 body length, then
// the body.
std::vector<std::byte> encodeFrame(const Frame& frame);

// One frame's body (without its length word). PROTOCOL_VIOLATION for
// anything malformed.
Result<Frame> decodeFrame(std::span<const std::byte> body);

// Cuts a byte stream into frame bodies. Holds at most one frame's bytes plus
// one read's worth: a length over MAX_FRAME_BODY is refused at once.
class FrameReader {
public:
    // Appends received bytes. PROTOCOL_VIOLATION if a length word is bad.
    Result<void> feed(std::span<const std::byte> bytes);
    // The next complete body, if one is there.
    std::optional<std::vector<std::byte>> next();
    size_t buffered() const noexcept { return m_buffer.size() - m_start; }
    bool failed() const noexcept { return m_bad; }

private:
    std::vector<std::byte> m_buffer;
    size_t m_start = 0;
    bool m_bad = false;
};

} // namespace xkbus::limpet
