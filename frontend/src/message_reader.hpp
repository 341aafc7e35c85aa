// The read half of a Ksock: the message NEXTMSG made current, and how much
// of its entire form read() has handed out. The entire form is never built:
// read() copies it piece by piece from the message's shared body, so a
// message reaches the reader's buffer with one copy from the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

class MessageReader {
public:
    // Makes `msg` the current message (dropping any part-read one); returns
    // its entire length.
    uint32_t start(const Message& msg);
    void clear() noexcept;
    // Copies the next bytes; 0 at the end or with no current message, after
    // which there is no current message (as KBUS).
    size_t read(std::span<std::byte> out) noexcept;
    // Bytes of the current message not yet read (LENLEFT), each counted once.
    uint32_t left() const noexcept { return static_cast<uint32_t>(m_length - m_read); }

private:
    std::optional<Message> m_message;
    kbus_message_t m_header{};
    uint64_t m_length = 0;
    uint64_t m_read = 0;
};

} // namespace xkbus::frontend
