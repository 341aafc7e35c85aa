// MessageReader: the current message and the read position in its entire form.
#include "message_reader.hpp"

#include "entire_layout.hpp"

#include <algorithm>
#include <cstring>

namespace xkbus::frontend {

uint32_t MessageReader::start(const Message& msg) {
    m_message = msg; // shares the body
    m_header = entireHeaderFor(msg);
    m_length = entireLength(msg.name().size(), msg.data().size());
    m_read = 0;
    return static_cast<uint32_t>(m_length);
}

void MessageReader::clear() noexcept {
    m_message.reset();
    m_length = 0;
    m_read = 0;
}

size_t MessageReader::read(std::span<std::byte> out) noexcept {
    if (!m_message) {
        return 0;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), m_length - m_read));
    copyEntire(*m_message, m_header, m_read, out.first(n));
    m_read += n;
    if (m_read == m_length) {
        clear();
    }
    return n;
}

} // namespace xkbus::frontend
