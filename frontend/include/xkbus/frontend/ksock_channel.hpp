// What one Ksock can do, as the client library sees it. The connection to
// xkbusd implements it (local or Xen); tests use an in-process fake over the
// bus core. The C++ and C APIs are written against this interface only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <xkbus/common/api.hpp>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/message.hpp>
#include <xkbus/common/result.hpp>
#include <xkbus/protocol/records.hpp>

namespace xkbus::frontend {

using Header = MessageHeader;
using Message = xkbus::Message;

// The bytes of one batch as it travels (protocol::batchEntrySize each).
inline constexpr size_t MAX_BATCH_BYTES = DEFAULT_MAX_MESSAGE_SIZE;
using Control = protocol::Control;

// Its vtable and sendBatch live in the library (the destructor is the key
// function), so programs never need the library's internals inline.
class XKBUS_CLIENT_API KsockChannel {
public:
    virtual ~KsockChannel();

    // Pollable like a KBUS Ksock: readable iff a message is queued for it,
    // writable iff it is open for writing and no ALL_OR_WAIT send is blocked.
    virtual int fd() const noexcept = 0;
    // The Ksock's id on its bus (KSOCKID).
    virtual KsockId id() const noexcept = 0;

    virtual Result<void> bind(std::string_view name, bool replier) = 0;
    virtual Result<void> unbind(std::string_view name, bool replier) = 0;
    // The replier a request with this name would reach, or 0 (REPLIER).
    virtual Result<KsockId> findReplier(std::string_view name) = 0;
    // SEND. On TRY_AGAIN the message is still being sent; control(LAST_SENT)
    // gives its id.
    virtual Result<MsgId> send(const Message& msg) = 0;
    // As send(), for a request whose reply the caller waits for next: the
    // daemon need not wake the caller to say the send succeeded, because the
    // reply (or any other message for this Ksock) will. Saves a wakeup per
    // request/reply; errors still come at once.
    virtual Result<MsgId> sendRequest(const Message& msg) { return send(msg); }
    // Sends every message, in order, each with its own id or error; no other
    // sender's message lands between them (an xkbus extension: one call,
    // one wakeup of the daemon). The whole batch fails, and nothing is sent,
    // if it is empty, or over MAX_BATCH messages or MAX_BATCH_BYTES.
    // This default, for channels without a daemon, sends one by one.
    virtual Result<std::vector<Result<MsgId>>> sendBatch(std::span<const Message> msgs);
    virtual Result<void> discard() = 0;
    // NEXTMSG: pops the next message, nullopt if there is none. Never blocks.
    virtual Result<std::optional<Message>> nextMessage() = 0;
    // The ioctl-like settings and queries (see protocol::Control): returns the
    // value KBUS's ioctl would put in its out-argument.
    virtual Result<uint64_t> control(Control what, uint64_t arg) = 0;
    // NEWDEVICE: adds a bus, returns its index.
    virtual Result<uint32_t> newBus() = 0;
    // Called before the caller sleeps on fd() for a message: waits a moment
    // without sleeping, where that can help (docs/performance.md, "Wake
    // strategy"), for one about to arrive. True if one may have (nextMessage
    // says); false at once for a channel that cannot tell.
    virtual bool awaitMessageBriefly() { return false; }
};

// EINVAL for an empty batch or one of over MAX_BATCH messages, MESSAGE_TOO_BIG
// for one of over MAX_BATCH_BYTES: the batch must travel as one record.
inline Result<void> checkBatch(std::span<const Message> msgs) {
    if (msgs.empty() || msgs.size() > protocol::MAX_BATCH) {
        return fail(Errc::INVALID);
    }
    size_t bytes = 0;
    for (const Message& m : msgs) {
        bytes += protocol::batchEntrySize(m.name().size(), m.data().size());
    }
    return bytes <= MAX_BATCH_BYTES ? Result<void>{} : fail(Errc::MESSAGE_TOO_BIG);
}

} // namespace xkbus::frontend
