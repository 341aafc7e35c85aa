// One descriptor whose poll() readability and writability this library sets
// independently: a KBUS Ksock's select semantics for a Ksock that is not a
// kernel device. Contract and mechanism: docs/c-api.md, "The pollable fd".
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <xkbus/common/result.hpp>

namespace xkbus::frontend {

// The application polls fd(): POLLIN while queued() > 0, POLLOUT while the
// Ksock is writable and not sending. Inside, a datagram socketpair: one
// datagram waiting on the application's end makes it readable; the peer's
// receive queue filled from the application's end makes it unwritable (a
// connected AF_UNIX datagram socket is writable while the bytes it has queued
// at its peer stay under a quarter of its send buffer).
class PollSignal {
public:
    // A read-only Ksock's signal is never writable.
    static Result<std::unique_ptr<PollSignal>> create(bool writable = true);

    PollSignal(const PollSignal&) = delete;
    PollSignal& operator=(const PollSignal&) = delete;
    ~PollSignal();

    // The application's end: the descriptor to hand out and poll.
    int fd() const noexcept { return m_app; }

    void messageQueued();           // one more message in the queue
    void messageTaken();            // one fewer (never below zero)
    void setQueued(uint32_t count); // the count, when known outright
    void setSending(bool blocked);  // unwritable while a send is blocked
    uint32_t queued() const;
    bool sending() const;

private:
    PollSignal(int app, int peer, bool writable) noexcept;
    void showReadable(bool readable);
    void showWritable(bool writable);

    mutable std::mutex m_mutex;
    int m_app = -1;
    int m_peer = -1;
    bool m_openForWrite = true;
    uint32_t m_queued = 0;
    bool m_sending = false;
    bool m_readableShown = false;
    bool m_writableShown = true;
};

} // namespace xkbus::frontend
