// MemoryStore: a std::map of paths under one mutex. Transactions work on a
// copy of the tree and commit only if nothing committed since they began
// (coarser than xenstored, which compares the nodes touched: more TRY_AGAIN,
// never fewer, which is what callers must handle anyway).
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xkbus/xenstore/memory_store.hpp>

namespace xkbus::xenstore {

namespace {

struct Node {
    std::string value;
    std::vector<Permission> perms;
};
using Tree = std::map<std::string, Node, std::less<>>;

// One node change, kept until the watches have been told.
struct Change {
    std::string path;
    std::vector<Permission> perms; // of the node as it was (removal) or is now
    bool removal = false;
};

constexpr size_t MAX_PATH_BYTES = 3072; // XENSTORE_ABS_PATH_MAX

bool isPrivileged(DomId domid) {
    return domid == 0;
}

Access accessFor(const std::vector<Permission>& perms, DomId who) {
    if (isPrivileged(who)) {
        return Access::BOTH;
    }
    if (perms.empty()) {
        return Access::NONE;
    }
    if (perms[0].domid == who) {
        return Access::BOTH;
    }
    for (size_t i = 1; i < perms.size(); ++i) {
        if (perms[i].domid == who) {
            return perms[i].access;
        }
    }
    return perms[0].access;
}

bool allows(Access have, Access want) {
    return (static_cast<unsigned>(have) & static_cast<unsigned>(want)) ==
           static_cast<unsigned>(want);
}

bool isSpecial(std::string_view path) {
    return path == INTRODUCE_DOMAIN || path == RELEASE_DOMAIN;
}

// Absolute form of `path` for `domid`, or "" if xenstored would refuse it.
std::string canonical(std::string_view path, DomId domid) {
    std::string full;
    if (path.starts_with('/')) {
        full = path;
    } else {
        full = "/local/domain/" + std::to_string(domid) + "/" + std::string(path);
    }
    if (full.size() > MAX_PATH_BYTES || (full.size() > 1 && full.back() == '/') ||
        full.find("//") != std::string::npos) {
        return {};
    }
    for (char c : full) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '/' || c == '_' || c == '@';
        if (!ok) {
            return {};
        }
    }
    return full;
}

std::vector<std::string> childrenOf(const Tree& tree, std::string_view path) {
    std::vector<std::string> names;
    std::string prefix(path);
    if (prefix != "/") {
        prefix += '/';
    }
    for (auto it = tree.lower_bound(prefix); it != tree.end() && it->first.starts_with(prefix);
         ++it) {
        std::string_view rest = std::string_view(it->first).substr(prefix.size());
        if (!rest.empty() && rest.find('/') == std::string_view::npos) {
            names.emplace_back(rest);
        }
    }
    return names;
}

} // namespace

class MemoryConnection;

struct MemoryStore::Shared {
    mutable std::mutex mutex;
    Tree tree;
    uint64_t generation = 0;
    std::set<DomId> introduced;
    MemoryQuotas quotas;
    int failCommits = 0;
    std::vector<MemoryConnection*> connections;
    TransactionId nextTransaction = 1;

    size_t nodesOwnedBy(const Tree& t, DomId domid) const {
        return static_cast<size_t>(std::count_if(t.begin(), t.end(), [&](const auto& entry) {
            return !entry.second.perms.empty() && entry.second.perms[0].domid == domid;
        }));
    }
    void fire(const std::vector<Change>& changes);
    void fireSpecial(std::string_view path);
    size_t watchesOf(DomId domid) const;
};

class MemoryConnection final : public Store {
public:
    MemoryConnection(std::shared_ptr<MemoryStore::Shared> shared, DomId domid)
        : m_shared(std::move(shared)), m_domid(domid),
          m_eventFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) {
        std::lock_guard lock(m_shared->mutex);
        m_shared->connections.push_back(this);
    }
    ~MemoryConnection() override {
        {
            std::lock_guard lock(m_shared->mutex);
            std::erase(m_shared->connections, this);
        }
        if (m_eventFd >= 0) {
            ::close(m_eventFd);
        }
    }
    MemoryConnection(const MemoryConnection&) = delete;
    MemoryConnection& operator=(const MemoryConnection&) = delete;

    Result<std::string> read(TransactionId txn, std::string_view path) override;
    Result<void> write(TransactionId txn, std::string_view path, std::string_view value) override;
    Result<void> mkdir(TransactionId txn, std::string_view path) override;
    Result<void> remove(TransactionId txn, std::string_view path) override;
    Result<std::vector<std::string>> list(TransactionId txn, std::string_view path) override;
    Result<std::vector<Permission>> getPermissions(TransactionId txn,
                                                   std::string_view path) override;
    Result<void> setPermissions(TransactionId txn, std::string_view path,
                                const std::vector<Permission>& perms) override;
    Result<TransactionId> beginTransaction() override;
    Result<void> commit(TransactionId txn) override;
    void abort(TransactionId txn) override;
    Result<void> watch(std::string_view path, std::string_view token) override;
    Result<void> unwatch(std::string_view path, std::string_view token) override;
    Result<WatchEvent> nextWatchEvent(std::chrono::milliseconds timeout) override;
    int watchFd() override { return m_eventFd; }
    Result<bool> isDomainIntroduced(DomId domid) override;

    // Called with the shared mutex held.
    void queueEvent(WatchEvent event);
    DomId domid() const { return m_domid; }
    std::vector<std::pair<std::string, std::string>> m_watches;

private:
    struct Transaction {
        Tree tree;
        uint64_t generation = 0;
        std::vector<Change> changes;
    };
    using Lock = std::unique_lock<std::mutex>;

    // The tree an operation works on and where its changes go, or null if
    // the transaction id is not ours.
    Tree* treeFor(TransactionId txn, std::vector<Change>*& changes);
    struct Located {
        Tree* tree;
        Tree::iterator node;
        std::string full;
    };
    // The node at `path` if this connection may read it; the caller holds the lock.
    Result<Located> locateReadable(TransactionId txn, std::string_view path);
    Result<void> createPath(Tree& tree, const std::string& path, std::string_view value,
                            std::vector<Change>& changes);
    void publish(TransactionId txn, std::vector<Change>& direct);

    std::shared_ptr<MemoryStore::Shared> m_shared;
    DomId m_domid;
    int m_eventFd;
    std::map<TransactionId, Transaction> m_transactions;
    std::deque<WatchEvent> m_events;
    std::condition_variable m_eventAdded;
};

Tree* MemoryConnection::treeFor(TransactionId txn, std::vector<Change>*& changes) {
    if (txn == NO_TRANSACTION) {
        changes = nullptr;
        return &m_shared->tree;
    }
    auto it = m_transactions.find(txn);
    if (it == m_transactions.end()) {
        return nullptr;
    }
    changes = &it->second.changes;
    return &it->second.tree;
}

// Direct changes take effect and fire now; transaction changes wait for commit.
void MemoryConnection::publish(TransactionId txn, std::vector<Change>& direct) {
    if (txn == NO_TRANSACTION && !direct.empty()) {
        ++m_shared->generation;
        m_shared->fire(direct);
    }
}

Result<MemoryConnection::Located> MemoryConnection::locateReadable(TransactionId txn,
                                                                   std::string_view path) {
    std::vector<Change>* changes = nullptr;
    Tree* tree = treeFor(txn, changes);
    auto full = canonical(path, m_domid);
    if (!tree || full.empty()) {
        return fail(Errc::INVALID);
    }
    auto node = tree->find(full);
    if (node == tree->end()) {
        return fail(NOT_FOUND);
    }
    if (!allows(accessFor(node->second.perms, m_domid), Access::READ)) {
        return fail(Errc::PERMISSION_DENIED);
    }
    return Located{tree, node, std::move(full)};
}

Result<std::string> MemoryConnection::read(TransactionId txn, std::string_view path) {
    Lock lock(m_shared->mutex);
    auto at = locateReadable(txn, path);
    if (!at) {
        return fail(at.error());
    }
    return at->node->second.value;
}

Result<void> MemoryConnection::createPath(Tree& tree, const std::string& path,
                                          std::string_view value, std::vector<Change>& changes) {
    // Find the nearest existing ancestor: it must be writable, and the new
    // nodes inherit its permissions, owned by the creator if unprivileged.
    std::vector<std::string> missing{path};
    std::string ancestor(parentPath(path));
    while (!ancestor.empty() && !tree.contains(ancestor)) {
        missing.push_back(ancestor);
        ancestor = std::string(parentPath(ancestor));
    }
    if (ancestor.empty()) {
        return fail(NOT_FOUND);
    }
    const Node& parent = tree.at(ancestor);
    if (!allows(accessFor(parent.perms, m_domid), Access::WRITE)) {
        return fail(Errc::PERMISSION_DENIED);
    }
    std::vector<Permission> perms = parent.perms;
    if (!isPrivileged(m_domid)) {
        perms.at(0).domid = m_domid;
        if (m_shared->nodesOwnedBy(tree, m_domid) + missing.size() >
            m_shared->quotas.nodesPerDomain) {
            return fail(Errc::NO_MEMORY);
        }
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        tree[*it] = Node{*it == path ? std::string(value) : std::string(), perms};
        changes.push_back({*it, perms, false});
    }
    return {};
}

Result<void> MemoryConnection::write(TransactionId txn, std::string_view path,
                                     std::string_view value) {
    Lock lock(m_shared->mutex);
    std::vector<Change>* changes = nullptr;
    Tree* tree = treeFor(txn, changes);
    auto full = canonical(path, m_domid);
    if (!tree || full.empty() || full == "/") {
        return fail(Errc::INVALID);
    }
    std::vector<Change> direct;
    std::vector<Change>& out = changes ? *changes : direct;
    auto node = tree->find(full);
    if (node != tree->end()) {
        if (!allows(accessFor(node->second.perms, m_domid), Access::WRITE)) {
            return fail(Errc::PERMISSION_DENIED);
        }
        node->second.value = value;
        out.push_back({full, node->second.perms, false});
    } else if (auto r = createPath(*tree, full, value, out); !r) {
        return r;
    }
    publish(txn, direct);
    return {};
}

Result<void> MemoryConnection::mkdir(TransactionId txn, std::string_view path) {
    {
        Lock lock(m_shared->mutex);
        std::vector<Change>* changes = nullptr;
        Tree* tree = treeFor(txn, changes);
        auto full = canonical(path, m_domid);
        if (!tree || full.empty()) {
            return fail(Errc::INVALID);
        }
        if (tree->contains(full)) {
            return {}; // as xenstored: mkdir of an existing node succeeds
        }
    }
    return write(txn, path, "");
}

Result<void> MemoryConnection::remove(TransactionId txn, std::string_view path) {
    Lock lock(m_shared->mutex);
    std::vector<Change>* changes = nullptr;
    Tree* tree = treeFor(txn, changes);
    auto full = canonical(path, m_domid);
    if (!tree || full.empty() || full == "/") {
        return fail(Errc::INVALID);
    }
    auto node = tree->find(full);
    if (node == tree->end()) {
        return {};
    }
    if (!allows(accessFor(node->second.perms, m_domid), Access::WRITE)) {
        return fail(Errc::PERMISSION_DENIED);
    }
    std::vector<Change> direct;
    std::vector<Change>& out = changes ? *changes : direct;
    for (auto it = node; it != tree->end() && isWithin(it->first, full);) {
        out.push_back({it->first, it->second.perms, true});
        it = tree->erase(it);
    }
    publish(txn, direct);
    return {};
}

Result<std::vector<std::string>> MemoryConnection::list(TransactionId txn, std::string_view path) {
    Lock lock(m_shared->mutex);
    auto at = locateReadable(txn, path);
    if (!at) {
        return fail(at.error());
    }
    return childrenOf(*at->tree, at->full);
}

Result<std::vector<Permission>> MemoryConnection::getPermissions(TransactionId txn,
                                                                 std::string_view path) {
    Lock lock(m_shared->mutex);
    auto at = locateReadable(txn, path);
    if (!at) {
        return fail(at.error());
    }
    return at->node->second.perms;
}

Result<void> MemoryConnection::setPermissions(TransactionId txn, std::string_view path,
                                              const std::vector<Permission>& perms) {
    Lock lock(m_shared->mutex);
    std::vector<Change>* changes = nullptr;
    Tree* tree = treeFor(txn, changes);
    auto full = canonical(path, m_domid);
    if (!tree || full.empty() || perms.empty()) {
        return fail(Errc::INVALID);
    }
    auto node = tree->find(full);
    if (node == tree->end()) {
        return fail(NOT_FOUND);
    }
    // Only the owner (or dom0) may change permissions.
    if (!isPrivileged(m_domid) && node->second.perms.at(0).domid != m_domid) {
        return fail(Errc::PERMISSION_DENIED);
    }
    node->second.perms = perms;
    std::vector<Change> direct;
    (changes ? *changes : direct).push_back({full, perms, false});
    publish(txn, direct);
    return {};
}

Result<TransactionId> MemoryConnection::beginTransaction() {
    Lock lock(m_shared->mutex);
    if (!isPrivileged(m_domid) &&
        m_transactions.size() >= m_shared->quotas.transactionsPerConnection) {
        return fail(Errc::NO_MEMORY);
    }
    TransactionId id = m_shared->nextTransaction++;
    m_transactions[id] = Transaction{m_shared->tree, m_shared->generation, {}};
    return id;
}

Result<void> MemoryConnection::commit(TransactionId txn) {
    Lock lock(m_shared->mutex);
    auto it = m_transactions.find(txn);
    if (it == m_transactions.end()) {
        return fail(Errc::INVALID);
    }
    Transaction transaction = std::move(it->second);
    m_transactions.erase(it);
    if (m_shared->failCommits > 0) {
        --m_shared->failCommits;
        return fail(Errc::TRY_AGAIN);
    }
    if (transaction.generation != m_shared->generation) {
        return fail(Errc::TRY_AGAIN);
    }
    if (!transaction.changes.empty()) {
        m_shared->tree = std::move(transaction.tree);
        ++m_shared->generation;
        m_shared->fire(transaction.changes);
    }
    return {};
}

void MemoryConnection::abort(TransactionId txn) {
    Lock lock(m_shared->mutex);
    m_transactions.erase(txn);
}

Result<void> MemoryConnection::watch(std::string_view path, std::string_view token) {
    Lock lock(m_shared->mutex);
    std::string full = isSpecial(path) ? std::string(path) : canonical(path, m_domid);
    if (full.empty() || token.empty()) {
        return fail(Errc::INVALID);
    }
    for (const auto& [watched, existing] : m_watches) {
        if (watched == full && existing == token) {
            return fail(Errc::INVALID); // xenstored: EEXIST
        }
    }
    if (!isPrivileged(m_domid) &&
        m_shared->watchesOf(m_domid) >= m_shared->quotas.watchesPerDomain) {
        return fail(Errc::NO_MEMORY);
    }
    m_watches.emplace_back(full, token);
    queueEvent({full, std::string(token)}); // every new watch fires once
    return {};
}

Result<void> MemoryConnection::unwatch(std::string_view path, std::string_view token) {
    Lock lock(m_shared->mutex);
    std::string full = isSpecial(path) ? std::string(path) : canonical(path, m_domid);
    auto erased = std::erase_if(
        m_watches, [&](const auto& entry) { return entry.first == full && entry.second == token; });
    return erased ? Result<void>() : fail(NOT_FOUND);
}

void MemoryConnection::queueEvent(WatchEvent event) {
    m_events.push_back(std::move(event));
    uint64_t one = 1;
    (void)!::write(m_eventFd, &one, sizeof one);
    m_eventAdded.notify_all();
}

Result<WatchEvent> MemoryConnection::nextWatchEvent(std::chrono::milliseconds timeout) {
    Lock lock(m_shared->mutex);
    if (!m_eventAdded.wait_for(lock, timeout, [&] { return !m_events.empty(); })) {
        return fail(Errc::TIMED_OUT);
    }
    WatchEvent event = std::move(m_events.front());
    m_events.pop_front();
    uint64_t count = 0;
    (void)!::read(m_eventFd, &count, sizeof count);
    return event;
}

Result<bool> MemoryConnection::isDomainIntroduced(DomId domid) {
    Lock lock(m_shared->mutex);
    return isPrivileged(domid) || m_shared->introduced.contains(domid);
}

// Like xenstored: a change at P fires watches on P and its ancestors (with
// P) and, for a removal, watches below P (with their own path). A watcher
// only hears about nodes it may read.
void MemoryStore::Shared::fire(const std::vector<Change>& changes) {
    for (MemoryConnection* connection : connections) {
        for (const auto& [watched, token] : connection->m_watches) {
            for (const Change& change : changes) {
                if (!allows(accessFor(change.perms, connection->domid()), Access::READ)) {
                    continue;
                }
                if (isWithin(change.path, watched)) {
                    connection->queueEvent({change.path, token});
                } else if (change.removal && isWithin(watched, change.path)) {
                    connection->queueEvent({watched, token});
                }
            }
        }
    }
}

// Special watches are dom0's by default (xenstored's dom_*_perms).
void MemoryStore::Shared::fireSpecial(std::string_view path) {
    for (MemoryConnection* connection : connections) {
        if (!isPrivileged(connection->domid())) {
            continue;
        }
        for (const auto& [watched, token] : connection->m_watches) {
            if (watched == path) {
                connection->queueEvent({std::string(path), token});
            }
        }
    }
}

size_t MemoryStore::Shared::watchesOf(DomId domid) const {
    size_t count = 0;
    for (const MemoryConnection* connection : connections) {
        if (connection->domid() == domid) {
            count += connection->m_watches.size();
        }
    }
    return count;
}

MemoryStore::MemoryStore(MemoryQuotas quotas) : m_shared(std::make_shared<Shared>()) {
    m_shared->quotas = quotas;
    const std::vector<Permission> dom0Only{{0, Access::NONE}};
    for (const char* path : {"/", "/local", "/local/domain", "/local/domain/0", "/tool"}) {
        m_shared->tree[path] = Node{"", dom0Only};
    }
}

MemoryStore::~MemoryStore() = default;

std::unique_ptr<Store> MemoryStore::connect(DomId domid) {
    return std::make_unique<MemoryConnection>(m_shared, domid);
}

void MemoryStore::introduceDomain(DomId domid) {
    std::lock_guard lock(m_shared->mutex);
    m_shared->introduced.insert(domid);
    m_shared->fireSpecial(INTRODUCE_DOMAIN);
}

void MemoryStore::releaseDomain(DomId domid) {
    std::lock_guard lock(m_shared->mutex);
    m_shared->introduced.erase(domid);
    // xenstored (without -K) deletes what the dead domain owned, and forgets
    // its grants on other nodes so a reused domid inherits nothing.
    std::vector<Change> changes;
    Tree& tree = m_shared->tree;
    for (auto it = tree.begin(); it != tree.end();) {
        auto& perms = it->second.perms;
        if (perms.empty() || perms[0].domid != domid) {
            for (size_t i = perms.size(); i-- > 1;) {
                if (perms[i].domid == domid) {
                    perms.erase(perms.begin() + static_cast<std::ptrdiff_t>(i));
                }
            }
            ++it;
            continue;
        }
        const std::string top = it->first; // its subtree goes too
        while (it != tree.end() && isWithin(it->first, top)) {
            changes.push_back({it->first, it->second.perms, true});
            it = tree.erase(it);
        }
    }
    if (!changes.empty()) {
        ++m_shared->generation;
        m_shared->fire(changes);
    }
    m_shared->fireSpecial(RELEASE_DOMAIN);
}

void MemoryStore::fireEveryWatch() {
    std::lock_guard lock(m_shared->mutex);
    for (MemoryConnection* connection : m_shared->connections) {
        for (const auto& [watched, token] : connection->m_watches) {
            connection->queueEvent({watched, token});
        }
    }
}

void MemoryStore::failNextCommits(int count) {
    std::lock_guard lock(m_shared->mutex);
    m_shared->failCommits = count;
}

size_t MemoryStore::nodesOwnedBy(DomId domid) const {
    std::lock_guard lock(m_shared->mutex);
    return m_shared->nodesOwnedBy(m_shared->tree, domid);
}

size_t MemoryStore::watchesOf(DomId domid) const {
    std::lock_guard lock(m_shared->mutex);
    return m_shared->watchesOf(domid);
}

} // namespace xkbus::xenstore
