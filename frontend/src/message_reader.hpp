// The read half of a Ksock: the message NEXTMSG made current, in entire form,
// and how much of it read() has handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>
#include <xkbus/frontend/ksock_channel.hpp>

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
    uint32_t left() const noexcept { return static_cast<uint32_t>(m_bytes.size() - m_read); }

private:
    std::vector<std::byte> m_bytes;
    size_t m_read = 0;
};

} // namespace xkbus::frontend
