// The daemon's peers and the traffic between them: takes each client's ring
// from a front door, reads its records, hands them to the Dispatcher, and
// writes what the Dispatcher produced to the rings it names, keeping the
// Ksock fds of local clients in step. Runs on an EventLoop, which it asks to
// watch each peer's wakeup descriptors.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <xkbus/common/unique_fd.hpp>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/daemon/event_loop.hpp>
#include <xkbus/ring/connection.hpp>

namespace spdlog {
class logger;
}

namespace xkbus::daemon {

struct HubOptions {
    // Records waiting for a client whose ring is full; past this it is not
    // reading, and it is disconnected rather than buffered without bound.
    size_t maxBufferedPerPeer = 64u << 20;
    // A peer's turn on a pass, so one busy peer cannot starve the rest: at
    // most this many records, and it ends once they cost workPerWakeup,
    // counted as the bytes received and delivered plus workPerRecord for
    // each record delivered (a recipient reached).
    size_t maxRecordsPerWakeup = 256;
    size_t workPerWakeup = 1u << 20;
    size_t workPerRecord = 256;
    // How long the loop keeps looking at the rings it just served before it
    // sleeps: a record that arrives meanwhile costs no kick and no wakeup.
    // Never spins where it runs on one CPU only (ring::spinWhereUseful).
    std::chrono::microseconds spin{20};
};

// What a front door needs from the hub.
struct PeerSink {
    // Takes a connected ring as a new peer; returns its id. `socket` is a
    // local client's handshake socket, over which its Ksocks' fds go; empty
    // for a Xen guest (the guest library keeps its own).
    std::function<ConnectionId(ring::Connection, const PeerInfo&, std::string label,
                               UniqueFd socket)>
        adopt;
    // Drops a peer (no-op if it is already gone).
    std::function<void(ConnectionId, const std::string& reason)> drop;
};

class PeerHub {
public:
    PeerHub(EventLoop& loop, Dispatcher& dispatcher, HubOptions options,
            std::shared_ptr<spdlog::logger> log);
    ~PeerHub();
    PeerHub(const PeerHub&) = delete;
    PeerHub& operator=(const PeerHub&) = delete;

    PeerSink sink();
    ConnectionId adopt(ring::Connection ring, const PeerInfo& info, std::string label,
                       UniqueFd socket);
    void drop(ConnectionId id, const std::string& reason);
    void dropAll(const std::string& reason);
    size_t peerCount() const noexcept;
    // Called after a peer is dropped (the Xen front door frees its slot).
    std::function<void(ConnectionId)> onDropped;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace xkbus::daemon
