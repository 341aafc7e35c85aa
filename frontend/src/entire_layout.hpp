// KBUS's "entire" message layout in the C API: the conversions between a
// Message and its entire bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

// The layout's arithmetic is common (kbus_types.hpp): the core limits
// messages by the same length.
inline constexpr uint64_t HEADER_SIZE = sizeof(kbus_message_t);
inline constexpr uint64_t GUARD_SIZE = ENTIRE_GUARD_SIZE;
static_assert(HEADER_SIZE == ENTIRE_HEADER_SIZE);
using xkbus::paddedDataLength;
using xkbus::paddedNameLength;
constexpr uint64_t entireLength(uint64_t nameLen, uint64_t dataLen) noexcept {
    return entireMessageLength(nameLen, dataLen);
}

// The header fields the bus carries, from a C header, and back.
Header headerFrom(const kbus_message_t& c) noexcept;
kbus_message_t entireHeaderFor(const Message& msg) noexcept;

// The message as NEXTMSG hands it to read: an entire message.
std::vector<std::byte> encodeEntire(const Message& msg);
// Copies bytes [at, at + out.size()) of the entire form of `msg` (whose
// header is `header`), without building it: read() serves a message
// straight from its shared body.
void copyEntire(const Message& msg, const kbus_message_t& header, uint64_t at,
                std::span<std::byte> out) noexcept;

} // namespace xkbus::frontend
