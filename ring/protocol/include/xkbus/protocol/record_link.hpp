// A connection that carries whole records both ways: what the client library
// and the daemon need from a transport. The shared ring (local or Xen)
// implements it; tests use an in-memory pair.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>
#include <xkbus/common/result.hpp>

namespace xkbus::protocol {

class RecordLink {
public:
    virtual ~RecordLink() = default;

    // Queues one record for the peer, whole. DISCONNECTED if the peer is gone.
    virtual Result<void> send(std::span<const std::byte> record) = 0;
    // Calls `deliver` for each record that has arrived, in order, without
    // waiting; returns how many. The span is only valid during the call.
    virtual Result<size_t>
    receive(const std::function<void(std::span<const std::byte>)>& deliver) = 0;
    // Waits until a record may have arrived or the peer died (timeoutMs < 0:
    // forever). Spurious returns are allowed.
    virtual Result<void> wait(int timeoutMs) = 0;
    // A descriptor that arrived with a record, oldest first, now owned by the
    // caller; -1 if none (or the transport cannot carry descriptors).
    virtual int takeReceivedFd() { return -1; }

    // For a thread that watches the link while nobody calls wait(): the
    // descriptors to poll, consuming a wakeup, and asking for the next one
    // (true: records may already be waiting, so receive before sleeping).
    virtual std::vector<int> wakeFds() const { return {}; }
    virtual Result<void> acknowledgeWakeup() { return {}; }
    virtual Result<bool> armWakeup() { return true; }
};

} // namespace xkbus::protocol
