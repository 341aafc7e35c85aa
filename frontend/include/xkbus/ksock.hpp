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
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <xkbus/frontend/backoff.hpp>
#include <xkbus/frontend/ksock_channel.hpp>

namespace xkbus {

// What reopen() did: how many attempts it took, and the Ksock's id on the
// dead daemon and on the new one.
struct Reopened {
    int attempts = 0;
    KsockId oldId = 0;
    KsockId newId = 0;
};

// Reopening by itself after the daemon went away (Ksock::setReconnect).
struct Reconnect {
    Backoff backoff;
    // Called after each reopen, so that the program can say so (and send
    // again what it had sent but not seen answered). May be empty.
    std::function<void(const Reopened&)> onReopened;
};

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

    // Bindings and settings made here (not through channel()) are what
    // reopen() restores.
    Result<void> listen(std::string_view name) { return bind(name, false); }
    Result<void> serve(std::string_view name) { return bind(name, true); }
    Result<void> unbind(std::string_view name, bool replier = false);
    // The ioctl-like settings and queries (KsockChannel::control). The
    // settings MAX_MESSAGES, ONLY_ONCE, VERBOSE and REPORT_REPLIER_BINDS are
    // remembered for reopen().
    Result<uint64_t> control(frontend::Control what, uint64_t arg);

    Result<MsgId> send(const Message& message) { return lostIf(m_channel->send(message)); }
    Result<MsgId> announce(std::string_view name, std::string_view data = {}, uint32_t flags = 0);
    // Sends every message in one call (an xkbus extension): in order, with
    // no other sender's message between them, each with its own id or error.
    // The outer error (nothing sent) is for an empty batch, or one over
    // protocol::MAX_BATCH messages or frontend::MAX_BATCH_BYTES.
    Result<std::vector<Result<MsgId>>> sendBatch(std::span<const Message> messages) {
        return lostIf(m_channel->sendBatch(messages));
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

    // After the daemon went away (an error for which isConnectionLost() is
    // true), waits for it with `backoff`, opens a new Ksock on the same bus
    // and makes the bindings and settings this Ksock made through this API
    // again. What the dead daemon held is lost: messages queued for this
    // Ksock, and the answers to requests in flight (nobody will answer them;
    // send them again). Fails with the last error once the backoff is spent,
    // with NOT_SUPPORTED for a Ksock made from a channel (its bus is not
    // known), or with the error of a binding that cannot be made again (say,
    // REPLIER_EXISTS: another replier took the name first); the Ksock then
    // keeps its dead connection.
    Result<Reopened> reopen(const Backoff& backoff = {});
    // Opt in to reopening by itself: a call that finds the daemon gone
    // reopens the Ksock before it returns. receive() then goes on waiting;
    // every other call still returns its error (DISCONNECTED), because what
    // it did may be lost, and can be made again at once.
    void setReconnect(Reconnect reconnect) { m_reconnect = std::move(reconnect); }

    frontend::KsockChannel& channel() noexcept { return *m_channel; }

private:
    Result<void> bind(std::string_view name, bool replier);
    Result<void> restoreOn(frontend::KsockChannel& channel) const;
    // With setReconnect, reopens the Ksock when `e` says the daemon went
    // away; true if it did. Otherwise, or if reopening failed, false.
    bool reopenedAfter(Errc e, Errc& reported);
    // receive and tryReceive without reopening: request() must see the
    // daemon go, as its answer goes with it.
    Result<std::optional<Message>> tryReceiveHere();
    // DISCONNECTED if poll()'s `revents` for fd() say the daemon went away.
    Result<void> checkHangUp(short revents);
    Result<Message> receiveHere(std::optional<std::chrono::steady_clock::time_point> deadline);
    // Every call's error passes here, so that with setReconnect the Ksock
    // is back whichever call met the daemon's death first.
    template <class T>
    Result<T> lostIf(Result<T> result) {
        if (!result) {
            Errc reported = result.error();
            (void)reopenedAfter(result.error(), reported);
            return fail(reported);
        }
        return result;
    }

    std::unique_ptr<frontend::KsockChannel> m_channel;
    std::deque<Message> m_held; // arrived while request() waited
    // What reopen() needs: the bus (unknown for a Ksock made from a
    // channel), and what was bound and set, in order.
    std::optional<uint32_t> m_bus;
    bool m_writable = true;
    std::vector<std::pair<std::string, bool>> m_binds; // name, replier
    std::map<frontend::Control, uint64_t> m_settings;
    std::optional<Reconnect> m_reconnect;
};

} // namespace xkbus
