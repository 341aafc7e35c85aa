// KBUS's "entire" message layout, computed in 64 bits so that no length the
// application writes can overflow, and the conversions between a Message and
// its entire bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

inline constexpr uint64_t HEADER_SIZE = sizeof(kbus_message_t);
inline constexpr uint64_t GUARD_SIZE = 4;

constexpr uint64_t paddedNameLength(uint64_t nameLen) noexcept {
    return 4 * ((nameLen + 1 + 3) / 4);
}
constexpr uint64_t paddedDataLength(uint64_t dataLen) noexcept {
    return 4 * ((dataLen + 3) / 4);
}
// What follows the header: padded name, padded data, end guard.
constexpr uint64_t bodyLength(uint64_t nameLen, uint64_t dataLen) noexcept {
    return paddedNameLength(nameLen) + paddedDataLength(dataLen) + GUARD_SIZE;
}
constexpr uint64_t entireLength(uint64_t nameLen, uint64_t dataLen) noexcept {
    return HEADER_SIZE + bodyLength(nameLen, dataLen);
}
static_assert(entireLength(6, 0) == 100 && entireLength(6, 7) == 108);

// The header fields the bus carries, from a C header, and back.
Header headerFrom(const kbus_message_t& c) noexcept;
kbus_message_t entireHeaderFor(const Message& msg) noexcept;

// The message as NEXTMSG hands it to read: an entire message.
std::vector<std::byte> encodeEntire(const Message& msg);

} // namespace xkbus::frontend
