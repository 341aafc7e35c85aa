// The xenstore seam: the few operations device setup needs, implemented over
// libxenstore (xenstore/xs) and in memory for tests (xenstore/memory).
// Failures come back as Errc; a transaction conflict is Errc::TRY_AGAIN.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <xkbus/common/result.hpp>

namespace xkbus::xenstore {

using DomId = uint16_t;
using TransactionId = uint32_t;
inline constexpr TransactionId NO_TRANSACTION = 0;

// ENOENT shares its value with NO_SUCH_DEVICE; this name says what it means here.
inline constexpr Errc NOT_FOUND = Errc::NO_SUCH_DEVICE;

// xenstored's special watch paths: a domain was introduced / died or was released.
inline constexpr std::string_view INTRODUCE_DOMAIN = "@introduceDomain";
inline constexpr std::string_view RELEASE_DOMAIN = "@releaseDomain";

enum class Access : uint8_t { NONE = 0, READ = 1, WRITE = 2, BOTH = 3 };

// xenstored's rule: the first entry names the owner (who may do anything) and
// the access every unlisted domain gets; later entries grant named domains.
struct Permission {
    DomId domid = 0;
    Access access = Access::NONE;
    friend bool operator==(const Permission&, const Permission&) = default;
};

struct WatchEvent {
    std::string path;
    std::string token;
};

// One connection to a store. Not thread-safe: use one per thread. Paths are
// absolute ("/local/...") or special ("@introduceDomain", "@releaseDomain").
class Store {
public:
    virtual ~Store() = default;

    virtual Result<std::string> read(TransactionId txn, std::string_view path) = 0;
    // Creates missing parents, as xenstored does.
    virtual Result<void> write(TransactionId txn, std::string_view path,
                               std::string_view value) = 0;
    virtual Result<void> mkdir(TransactionId txn, std::string_view path) = 0;
    // Removes the subtree. A node that is already gone counts as removed.
    virtual Result<void> remove(TransactionId txn, std::string_view path) = 0;
    virtual Result<std::vector<std::string>> list(TransactionId txn, std::string_view path) = 0;
    virtual Result<std::vector<Permission>> getPermissions(TransactionId txn,
                                                           std::string_view path) = 0;
    virtual Result<void> setPermissions(TransactionId txn, std::string_view path,
                                        const std::vector<Permission>& perms) = 0;

    virtual Result<TransactionId> beginTransaction() = 0;
    // Errc::TRY_AGAIN when another write conflicted: run the whole body again.
    virtual Result<void> commit(TransactionId txn) = 0;
    virtual void abort(TransactionId txn) = 0;

    // A new watch fires once at once (with the watched path), and may fire
    // spuriously at any time: handlers must re-read, never trust the event.
    virtual Result<void> watch(std::string_view path, std::string_view token) = 0;
    virtual Result<void> unwatch(std::string_view path, std::string_view token) = 0;
    // The next queued event; Errc::TIMED_OUT when none came within `timeout`
    // (zero: just poll).
    virtual Result<WatchEvent> nextWatchEvent(std::chrono::milliseconds timeout) = 0;
    // A descriptor that polls readable while events may be queued, for the
    // daemon's event loop; -1 if the implementation has none.
    virtual int watchFd() = 0;

    // False once xenstored has forgotten the domain (it died or was released).
    virtual Result<bool> isDomainIntroduced(DomId domid) = 0;
};

// Runs `body(txn)` in a transaction and commits, starting again on
// Errc::TRY_AGAIN up to `maxAttempts` times. The body must be safe to re-run:
// only store calls with `txn`, no side effects elsewhere.
inline constexpr int DEFAULT_TRANSACTION_ATTEMPTS = 16;

template <class Body>
auto withTransaction(Store& store, Body&& body, int maxAttempts = DEFAULT_TRANSACTION_ATTEMPTS)
    -> decltype(body(TransactionId{})) {
    for (int attempt = 1;; ++attempt) {
        auto txn = store.beginTransaction();
        if (!txn) {
            return fail(txn.error());
        }
        auto result = body(*txn);
        if (!result) {
            store.abort(*txn);
            if (result.error() == Errc::TRY_AGAIN && attempt < maxAttempts) {
                continue;
            }
            return result;
        }
        auto committed = store.commit(*txn);
        if (committed) {
            return result;
        }
        if (committed.error() != Errc::TRY_AGAIN || attempt >= maxAttempts) {
            return fail(committed.error());
        }
    }
}

// "/a/b/c" -> "/a/b"; "/" and special paths -> "".
std::string_view parentPath(std::string_view path);
// True if `path` is `ancestor` or lies below it.
bool isWithin(std::string_view path, std::string_view ancestor);

} // namespace xkbus::xenstore
