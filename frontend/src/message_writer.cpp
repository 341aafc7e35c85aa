// MessageWriter: header, then (entire) name, padding, data, padding and end
// guard, each checked when complete, in the order KBUS checked them.
#include "message_writer.hpp"

#include "caller_memory.hpp"
#include "entire_layout.hpp"
#include "message_name.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace xkbus::frontend {

namespace {

// The protocol cannot carry a bigger message, so nothing bigger is buffered;
// the bus checks its own (settable, smaller) limit at SEND.
constexpr uint64_t LARGEST_MESSAGE = DEFAULT_MAX_MESSAGE_SIZE;

size_t take(uint64_t wanted, size_t available) noexcept {
    return static_cast<size_t>(std::min<uint64_t>(wanted, available));
}

} // namespace

void MessageWriter::reset() noexcept {
    m_part = Part::HEADER;
    m_headerFilled = 0;
    m_header = {};
    m_bodyFilled = 0;
    m_body = {};
}

Result<void> MessageWriter::write(std::span<const std::byte> bytes, const SizeCheck& fits) {
    Result<void> outcome;
    while (outcome && !bytes.empty()) {
        switch (m_part) {
        case Part::HEADER:
            outcome = takeHeaderBytes(bytes, fits);
            break;
        case Part::BODY:
            outcome = takeBodyBytes(bytes);
            break;
        case Part::DONE: // nothing may follow the end guard, or a pointy header
            outcome = fail(Errc::MESSAGE_TOO_BIG);
            break;
        }
    }
    if (!outcome) {
        reset();
    }
    return outcome;
}

Result<void> MessageWriter::takeHeaderBytes(std::span<const std::byte>& bytes,
                                            const SizeCheck& fits) {
    const size_t n = take(m_headerBytes.size() - m_headerFilled, bytes.size());
    std::memcpy(m_headerBytes.data() + m_headerFilled, bytes.data(), n);
    m_headerFilled += n;
    bytes = bytes.subspan(n);
    if (m_headerFilled < m_headerBytes.size()) {
        return {};
    }
    std::memcpy(&m_header, m_headerBytes.data(), sizeof m_header);
    return headerComplete(fits);
}

// KBUS's kbus_check_message_written, in its order.
Result<void> MessageWriter::headerComplete(const SizeCheck& fits) {
    const kbus_message_t& h = m_header;
    if (h.start_guard != KBUS_MSG_START_GUARD || h.end_guard != KBUS_MSG_END_GUARD) {
        return fail(Errc::INVALID);
    }
    if (h.name_len == 0) {
        return fail(Errc::INVALID);
    }
    if (h.name_len > KBUS_MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    const bool pointy = h.name != nullptr;
    if (!pointy && h.data != nullptr) {
        return fail(Errc::INVALID); // name inline, data not
    }
    if (pointy && h.data == nullptr && h.data_len != 0) {
        return fail(Errc::INVALID); // data inline, name not
    }
    if (h.data_len == 0 && h.data != nullptr) {
        return fail(Errc::INVALID);
    }
    if ((h.flags & KBUS_BIT_ALL_OR_WAIT) != 0 && (h.flags & KBUS_BIT_ALL_OR_FAIL) != 0) {
        return fail(Errc::INVALID);
    }
    const uint64_t length = entireLength(h.name_len, h.data_len);
    if (length > LARGEST_MESSAGE || (fits && !fits(length))) {
        return fail(Errc::MESSAGE_TOO_BIG);
    }
    if (pointy) {
        m_part = Part::DONE; // name and data are followed at SEND
        return {};
    }
    // Written straight into the body the message will share: no copy at SEND.
    m_body = MessageBody::allocate(h.name_len, h.data_len);
    m_part = Part::BODY;
    return {};
}

Result<void> MessageWriter::takeBodyBytes(std::span<const std::byte>& bytes) {
    const uint64_t nameEnd = m_header.name_len;
    const uint64_t dataAt = paddedNameLength(m_header.name_len);
    const uint64_t dataEnd = dataAt + m_header.data_len;
    const uint64_t guardAt = dataAt + paddedDataLength(m_header.data_len);
    const uint64_t at = m_bodyFilled;
    size_t n = 0;
    if (at < nameEnd) {
        n = take(nameEnd - at, bytes.size());
        std::memcpy(m_body.name.data() + at, bytes.data(), n);
    } else if (at < dataAt) {
        n = take(dataAt - at, bytes.size()); // name padding: not checked, as KBUS
    } else if (at < dataEnd) {
        n = take(dataEnd - at, bytes.size());
        std::memcpy(m_body.data.data() + (at - dataAt), bytes.data(), n);
    } else if (at < guardAt) {
        n = take(guardAt - at, bytes.size()); // data padding
    } else {
        n = take(guardAt + GUARD_SIZE - at, bytes.size());
        std::memcpy(m_guard.data() + (at - guardAt), bytes.data(), n);
    }
    m_bodyFilled += n;
    bytes = bytes.subspan(n);
    if (at < nameEnd && m_bodyFilled == nameEnd) {
        return nameComplete();
    }
    if (m_bodyFilled == guardAt + GUARD_SIZE) {
        uint32_t guard = 0;
        std::memcpy(&guard, m_guard.data(), sizeof guard);
        if (guard != KBUS_MSG_END_GUARD) {
            return fail(Errc::INVALID);
        }
        m_part = Part::DONE;
    }
    return {};
}

Result<void> MessageWriter::nameComplete() const {
    return checkSendName(m_body.body.name());
}

tl::expected<Message, int> MessageWriter::message() const {
    if (empty()) {
        return tl::unexpected(ENOMSG);
    }
    if (m_part != Part::DONE) {
        return tl::unexpected(EINVAL);
    }
    if (m_header.name != nullptr) {
        return pointyMessage();
    }
    return Message{headerFrom(m_header), m_body.body};
}

tl::expected<Message, int> MessageWriter::pointyMessage() const {
    auto body = MessageBody::allocate(m_header.name_len, m_header.data_len);
    if (copyFromCaller(body.name.data(), m_header.name, body.name.size()) != 0 ||
        copyFromCaller(body.data.data(), m_header.data, body.data.size()) != 0) {
        return tl::unexpected(EFAULT);
    }
    if (auto named = checkSendName(body.body.name()); !named) {
        return tl::unexpected(toErrno(named.error()));
    }
    return Message{headerFrom(m_header), std::move(body.body)};
}

} // namespace xkbus::frontend
