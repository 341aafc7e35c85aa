// An in-memory xenstore for fast, deterministic tests: nodes with xenstored's
// permission rules per domid, watches (incl. @introduceDomain/@releaseDomain),
// transactions that fail with TRY_AGAIN on conflict, and per-domain quotas.
#pragma once

#include <cstddef>
#include <memory>
#include <xkbus/xenstore/store.hpp>

namespace xkbus::xenstore {

// xenstored's defaults for unprivileged domains (tools/xenstored/domain.c).
struct MemoryQuotas {
    size_t nodesPerDomain = 1000;
    size_t watchesPerDomain = 128;
    size_t transactionsPerConnection = 10;
};

class MemoryStore {
public:
    explicit MemoryStore(MemoryQuotas quotas = {});
    ~MemoryStore();
    MemoryStore(const MemoryStore&) = delete;
    MemoryStore& operator=(const MemoryStore&) = delete;

    // A connection that acts as `domid` (0 is privileged). Connections are
    // independent, may live on different threads and may outlive this object.
    std::unique_ptr<Store> connect(DomId domid);

    // What xenstored does when the toolstack introduces or a domain dies:
    // fire the special watch; on release also drop the nodes the domain owned.
    void introduceDomain(DomId domid);
    void releaseDomain(DomId domid);

    // Fault hooks.
    void fireEveryWatch();           // a spurious event on every watch
    void failNextCommits(int count); // these commits return TRY_AGAIN

    size_t nodesOwnedBy(DomId domid) const;
    size_t watchesOf(DomId domid) const;

    struct Shared;

private:
    std::shared_ptr<Shared> m_shared;
};

} // namespace xkbus::xenstore
