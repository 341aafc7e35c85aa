// MessageReader: the current message's entire bytes and the read position.
#include "message_reader.hpp"

#include "entire_layout.hpp"

#include <algorithm>
#include <cstring>

namespace xkbus::frontend {

uint32_t MessageReader::start(const Message& msg) {
    m_bytes = encodeEntire(msg);
    m_read = 0;
    return static_cast<uint32_t>(m_bytes.size());
}

void MessageReader::clear() noexcept {
    m_bytes.clear();
    m_bytes.shrink_to_fit();
    m_read = 0;
}

size_t MessageReader::read(std::span<std::byte> out) noexcept {
    const size_t n = std::min(out.size(), m_bytes.size() - m_read);
    if (n > 0) {
        std::memcpy(out.data(), m_bytes.data() + m_read, n);
    }
    m_read += n;
    if (m_read == m_bytes.size()) {
        clear();
    }
    return n;
}

} // namespace xkbus::frontend
