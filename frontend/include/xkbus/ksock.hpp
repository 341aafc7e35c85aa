// The C++ API: one Ksock, with RAII, blocking receive with a timeout, and
// request/reply in one call. Written over KsockChannel, so it runs wherever
// the C API does (the local daemon, a Xen guest, or a test's fake bus).
//
//   auto k = xkbus::Ksock::open(0).value();
//   auto answer = k.request("$.Sensors.Kitchen", "temperature?", 1s);
//   if (answer && answer->isStatus()) { /* the bus answered: replier gone */ }
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string_view>
#include <xkbus/frontend/ksock_channel.hpp>

namespace xkbus {

class XKBUS_CLIENT_API Ksock {
public:
    // Opens a Ksock on bus `bus` (kbus_ksock_open's rules for reaching it).
    static Result<Ksock> open(uint32_t bus = 0, bool writable = true);
    explicit Ksock(std::unique_ptr<frontend::KsockChannel> channel);
    Ksock(Ksock&&) noexcept = default;
    Ksock& operator=(Ksock&&) noexcept = default;
    ~Ksock() = default; // closing replies to what it owed, as KBUS does

    // Readable while a message waits; for poll/select/epoll.
    int fd() const noexcept { return m_channel->fd(); }
    KsockId id() const noexcept { return m_channel->id(); }

    Result<void> listen(std::string_view name) { return m_channel->bind(name, false); }
    Result<void> serve(std::string_view name) { return m_channel->bind(name, true); }
    Result<void> unbind(std::string_view name, bool replier = false) {
        return m_channel->unbind(name, replier);
    }

    Result<MsgId> send(const Message& message) { return m_channel->send(message); }
    Result<MsgId> announce(std::string_view name, std::string_view data = {}, uint32_t flags = 0);
    // Sends every message in one call (an xkbus extension): in order, with
    // no other sender's message between them, each with its own id or error.
    // The outer error (nothing sent) is for an empty batch, or one over
    // protocol::MAX_BATCH messages or frontend::MAX_BATCH_BYTES.
    Result<std::vector<Result<MsgId>>> sendBatch(std::span<const Message> messages) {
        return m_channel->sendBatch(messages);
    }
    // Sends a request and waits up to `timeout` for its answer: the reply,
    // or the status the bus sends if the replier goes away or ignores it.
    // Other messages that arrive meanwhile wait, in order, for receive().
    Result<Message> request(std::string_view name, std::string_view data,
                            std::chrono::milliseconds timeout);
    // Answers a request this Ksock received (and must reply to).
    Result<MsgId> reply(const Message& request, std::string_view data);

    // The next message, waiting up to `timeout` (negative: forever);
    // TIMED_OUT if none came.
    Result<Message> receive(std::chrono::milliseconds timeout);
    // The next message if one is there, without waiting.
    Result<std::optional<Message>> tryReceive();

    frontend::KsockChannel& channel() noexcept { return *m_channel; }

private:
    std::unique_ptr<frontend::KsockChannel> m_channel;
    std::deque<Message> m_held; // arrived while request() waited
};

} // namespace xkbus
