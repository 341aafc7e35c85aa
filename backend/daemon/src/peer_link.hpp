// One connected client process (local, or a Xen guest's), as the daemon sees
// it: its ring, the records that wait for room in it, and for a local client
// the handshake socket and its Ksocks' pollable fds. It never blocks: what
// the ring cannot take now waits here, up to a bound.
#pragma once

#include "ksock_fd.hpp"

#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/ring/connection.hpp>

namespace xkbus::daemon {

class PeerLink {
public:
    PeerLink(ConnectionId id, ring::Connection ring, UniqueFd socket, std::string label,
             size_t maxBuffered);

    ConnectionId id() const noexcept { return m_id; }
    const std::string& label() const noexcept { return m_label; }
    // A local client: its Ksocks get fds the daemon keeps.
    bool keepsFds() const noexcept { return m_socket.valid(); }
    // Woken by its ring alone (HELLO_RING_WOKEN, or no fds of ours at all).
    bool ringWoken() const noexcept { return m_ringWoken || !keepsFds(); }
    void setRingWoken(bool woken) noexcept { m_ringWoken = woken; }
    ring::Connection& ring() noexcept { return m_ring; }

    // Writes `record` into the ring, or keeps it, in order, until there is
    // room. Fails if the ring broke or the peer stopped reading (over the
    // bound of bytes waiting): the caller drops it. A copy pushed to a Ksock
    // whose fd the client emptied makes that fd readable, once the copy is
    // in the ring (or at once if it has to wait: KBUS's "readable when the
    // send returns", and NEXT finds the copy).
    Result<void> deliver(const protocol::Record& record, ring::Kick kick = ring::Kick::IF_ASKED);
    // Moves waiting records into the ring while it has room.
    Result<void> flush();
    // The next record from the peer, decoded; nullopt if none is complete.
    Result<std::optional<protocol::Record>> receive();
    size_t bytesWaiting() const noexcept { return m_waitingBytes; }
    bool hasBacklog() const noexcept { return m_backlogShown; }

    // --- The fds of a local client's Ksocks.
    Result<void> openFd(uint32_t handle, bool writable);
    // Hands the fd to the client (before the OPEN's RESULT goes).
    Result<void> handOverFd(uint32_t handle);
    // True if the client emptied the fd and nothing made it readable since:
    // a message for it will wake a client that polls it.
    bool fdEmptied(uint32_t handle);
    void showSending(uint32_t handle, bool blocked);
    void closeFd(uint32_t handle) { m_fds.erase(handle); }
    bool hasFd(uint32_t handle) const { return m_fds.contains(handle); }

private:
    struct FdState {
        KsockFd fd;
        uint16_t pushes = 0; // copies published to its ring: the count readiness notes hold
    };

    void updateBacklog();
    void pushWritten(uint32_t handle);
    void pushPublished(uint32_t handle);
    void pushHeldBack(uint32_t handle);

    ConnectionId m_id;
    ring::Connection m_ring;
    UniqueFd m_socket;
    std::string m_label;
    size_t m_maxBuffered;
    std::deque<protocol::Record> m_waiting; // records the ring has no room for yet
    size_t m_waitingBytes = 0;
    bool m_backlogShown = false;
    bool m_ringWoken = false;
    std::unordered_map<uint32_t, FdState> m_fds; // by handle
    std::optional<uint32_t> m_streamingPush;     // a copy only partly in the ring yet
};

} // namespace xkbus::daemon
