// The write half of a Ksock: KBUS's write() state machine. Bytes arrive in any
// number of writes; they are copied first and checked as each part completes,
// with KBUS's errno for each fault. Any error forgets the whole message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/frontend/ksock_channel.hpp>
#include <xkbus/kbus.h>

namespace xkbus::frontend {

class MessageWriter {
public:
    // Whether a message of this entire length is within the bus's current
    // MAXMSGSIZE (KBUS checked it when the header was written).
    using SizeCheck = std::function<bool(uint64_t entireLength)>;

    // Takes every byte or none: on error the message written so far is gone.
    // Without `fits`, only the protocol's own limit (409600) applies.
    Result<void> write(std::span<const std::byte> bytes, const SizeCheck& fits = {});
    // SEND: the complete message (a pointy one's name and data are copied
    // now), or a positive errno: ENOMSG if nothing was written, EINVAL if
    // incomplete, EFAULT for a pointy message's bad pointer, EBADMSG for its
    // bad name. Does not forget the message: the caller resets after the send.
    tl::expected<Message, int> message() const;
    void reset() noexcept;
    bool empty() const noexcept { return m_headerFilled == 0; }

private:
    enum class Part : uint8_t { HEADER, BODY, DONE };

    Result<void> takeHeaderBytes(std::span<const std::byte>& bytes, const SizeCheck& fits);
    Result<void> takeBodyBytes(std::span<const std::byte>& bytes);
    Result<void> headerComplete(const SizeCheck& fits);
    Result<void> nameComplete() const;
    tl::expected<Message, int> pointyMessage() const;

    Part m_part = Part::HEADER;
    std::array<std::byte, sizeof(kbus_message_t)> m_headerBytes{};
    size_t m_headerFilled = 0;
    kbus_message_t m_header{};
    // The entire body: name, its padding, data, its padding, end guard.
    uint64_t m_bodyFilled = 0;
    MessageBody::Unwritten m_body; // name and data, written as they arrive
    std::array<std::byte, 4> m_guard{};
};

} // namespace xkbus::frontend
