// The transport seam: what the ring needs from Xen (grants, event channels)
// or from the local host (memfd pages, eventfds, a Unix socket). Small
// interfaces; ring/xen and ring/local implement them, tests may fake them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>
#include <xkbus/common/result.hpp>

namespace xkbus::ring {

using GrantRef = uint32_t;
using EventPort = uint32_t;

// Mapped shared pages; unmapping them is the destructor's job.
class Mapping {
public:
    virtual ~Mapping() = default;
    virtual std::span<std::byte> bytes() noexcept = 0;
};

// "When this process dies, zero the byte at statusOffset in page 0 and kick
// port": gntalloc/gntdev unmap notify. Only page 0 of a mapping carries it.
struct UnmapNotify {
    uint32_t statusOffset = 0;
    EventPort port = 0;
};

struct SharedPages {
    std::unique_ptr<Mapping> mapping;
    std::vector<GrantRef> refs; // one per page, for the peer to map
};

// Frontend side: allocates zeroed pages and grants them to the peer.
class PageSharer {
public:
    virtual ~PageSharer() = default;
    virtual Result<SharedPages> share(uint32_t pageCount, const UnmapNotify* notify) = 0;
};

// Backend side: maps pages the peer granted, as one contiguous range. The
// refs come from the peer: a bad one must fail cleanly, not crash.
class PageMapper {
public:
    virtual ~PageMapper() = default;
    virtual Result<std::unique_ptr<Mapping>> map(std::span<const GrantRef> refs,
                                                 const UnmapNotify* notify) = 0;
};

// One bidirectional doorbell. Kicks coalesce and carry no data: after any
// wakeup the owner re-scans the ring, and spurious wakeups are allowed.
class EventChannel {
public:
    virtual ~EventChannel() = default;
    virtual EventPort localPort() const noexcept = 0;
    virtual Result<void> notify() = 0;
    // Blocks until a kick arrives, extraFd (if >= 0) becomes readable, or
    // the timeout passes (negative: no timeout). Consumes the kick. True if
    // extraFd is readable (so the caller looks at it only then).
    virtual Result<bool> wait(std::chrono::milliseconds timeout, int extraFd) = 0;
    // Readable while a kick is pending, for epoll; then call acknowledge().
    virtual int pollFd() const noexcept = 0;
    // Consumes a pending kick (if any) and re-enables delivery. Never blocks.
    virtual Result<void> acknowledge() = 0;
    // True if pollFd() reports each kick once when watched edge-triggered
    // (EPOLLET), so an event loop need not acknowledge() at all.
    virtual bool edgeTriggered() const noexcept { return false; }
};

// Peer-death signal for transports whose kernel does not apply the
// unmap-notify contract for us. Xen needs none (the status byte and event
// channel are the signal); the local transport watches its Unix socket.
class Liveness {
public:
    virtual ~Liveness() = default;
    // Readable when the peer may have died; -1 if there is nothing to watch.
    virtual int pollFd() const noexcept = 0;
    // Never blocks. True once the peer is known to be gone.
    virtual Result<bool> peerDied() = 0;
    // A descriptor the peer handed over, oldest first, now the caller's; -1
    // if none (Xen never carries any).
    virtual int takeDescriptor() { return -1; }
};

} // namespace xkbus::ring
