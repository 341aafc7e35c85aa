// A connection that carries whole records both ways: what the client library
// needs from a transport. The shared ring (local or Xen) implements it; tests
// use an in-memory pair.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/protocol/records.hpp>

namespace xkbus::protocol {

class RecordLink {
public:
    virtual ~RecordLink() = default;

    // Queues one record for the peer, whole. DISCONNECTED if the peer is gone.
    // `lazy`: the peer need not wake for it now; it reads it with the next
    // record that is not lazy (a pop report, ring::Kick::LAZY).
    virtual Result<void> send(const Record& record, bool lazy = false) = 0;
    // Calls `deliver` for each record that has arrived, in order, without
    // waiting; returns how many. Records are decode()d under `limits`;
    // PROTOCOL_VIOLATION (and nothing more delivered) if one does not decode.
    virtual Result<size_t> receive(const std::function<void(Record&&)>& deliver,
                                   const Limits& limits) = 0;
    // Waits until a record may have arrived, the peer died, or `extraFd`
    // (if >= 0) is readable (timeoutMs < 0: forever). Spurious returns are
    // allowed. True if extraFd is readable.
    virtual Result<bool> wait(int timeoutMs, int extraFd = -1) = 0;
    // A descriptor that arrived with a record, oldest first, now owned by the
    // caller; -1 if none (or the transport cannot carry descriptors).
    virtual int takeReceivedFd() { return -1; }

    // Readiness notes for the Ksock fds a local daemon keeps (ring::Endpoint):
    // "I emptied handle's fd, having seen `pushesSeen` copies pushed to it"
    // (true if the fd holds its readiness packet for us to take), and taking
    // such a note back (false if the daemon took it first). Links without
    // them (a Xen guest's, test links) have no notes.
    virtual bool noteEmptied(uint32_t /*handle*/, uint16_t /*pushesSeen*/) { return true; }
    virtual bool retractNote(uint32_t /*handle*/, uint16_t /*pushesSeen*/) { return true; }
    // True if records may be waiting that receive() has not delivered. A
    // full barrier before it: the second half of noteEmptied()'s handshake.
    virtual bool recordsWaiting() { return true; }
    // True while the peer holds records back that are not in the link yet
    // (so an empty link does not mean it has nothing for us).
    virtual bool backlogged() { return false; }

    // For a thread that watches the link while nobody calls wait(): the
    // descriptors to poll, consuming a wakeup, and asking for the next one
    // (true: records may already be waiting, so receive before sleeping).
    virtual std::vector<int> wakeFds() const { return {}; }
    virtual Result<void> acknowledgeWakeup() { return {}; }
    virtual Result<bool> armWakeup() { return true; }
};

} // namespace xkbus::protocol
