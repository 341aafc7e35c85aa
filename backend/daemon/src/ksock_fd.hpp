// The pollable fd of one local Ksock, which the daemon hands to its client:
// a seqpacket socketpair whose application end the client polls. Readable
// while one readiness packet waits on it: the daemon adds the packet when a
// message is queued for an fd the client emptied (it left a readiness note,
// docs/ring.md), and the client takes it when its mirror of the queue
// empties. Unwritable while the application end's own packets fill the
// peer end: while an ALL_OR_WAIT send is blocked, and always for a Ksock
// opened read-only. If the daemon dies the peer end closes and the client's
// end reports POLLHUP.
#pragma once

#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>

namespace xkbus::daemon {

class KsockFd {
public:
    static Result<KsockFd> create(bool writable);

    int appFd() const noexcept { return m_app.get(); }
    // Adds the readiness packet.
    void makeReadable() noexcept;
    // Unwritable while `blocked` (a read-only Ksock stays unwritable).
    void showSending(bool blocked) noexcept;

private:
    void fill() noexcept;
    void drain() noexcept;

    UniqueFd m_app;
    UniqueFd m_peer;
    bool m_writable = true;
    bool m_blocked = false;
};

} // namespace xkbus::daemon
