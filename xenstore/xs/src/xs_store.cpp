// XsStore: the Store interface over libxenstore (xenstore.h, Xen 4.17). Each
// call maps libxenstore's NULL/false + errno onto Errc; buffers it returns
// are copied and freed at once.
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <poll.h>
#include <xkbus/xenstore/xs_store.hpp>

// The Xen 4.17 headers have no extern "C" guards of their own.
extern "C" {
#include <xenstore.h>
}

namespace xkbus::xenstore {

namespace {

Errc fromErrno(int error) {
    switch (error) {
    case ENOENT:
        return NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return Errc::PERMISSION_DENIED;
    case EAGAIN:
        return Errc::TRY_AGAIN;
    case EINVAL:
    case EEXIST: // watch already set
    case EISDIR:
    case ENOTDIR:
        return Errc::INVALID;
    case ENOMEM:
    case ENOSPC:
    case E2BIG:
    case EDQUOT:
    case EBUSY: // xenstored's answer to too many transactions
        return Errc::NO_MEMORY;
    case ENOSYS:
        return Errc::NOT_SUPPORTED;
    default:
        return Errc::DISCONNECTED;
    }
}

tl::unexpected<Errc> lastError() {
    return fail(fromErrno(errno));
}

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};
template <class T>
using Malloced = std::unique_ptr<T, FreeDeleter>;

unsigned toXsPerm(Access access) {
    switch (access) {
    case Access::NONE:
        return XS_PERM_NONE;
    case Access::READ:
        return XS_PERM_READ;
    case Access::WRITE:
        return XS_PERM_WRITE;
    case Access::BOTH:
        return XS_PERM_READ | XS_PERM_WRITE;
    }
    return XS_PERM_NONE;
}

Access fromXsPerm(unsigned perms) {
    bool r = (perms & XS_PERM_READ) != 0;
    bool w = (perms & XS_PERM_WRITE) != 0;
    return r && w ? Access::BOTH : r ? Access::READ : w ? Access::WRITE : Access::NONE;
}

class XsStore final : public Store {
public:
    explicit XsStore(xs_handle* handle) : m_handle(handle) {}
    ~XsStore() override { xs_close(m_handle); }
    XsStore(const XsStore&) = delete;
    XsStore& operator=(const XsStore&) = delete;

    Result<std::string> read(TransactionId txn, std::string_view path) override {
        unsigned len = 0;
        Malloced<char> value(static_cast<char*>(xs_read(m_handle, txn, cstr(path), &len)));
        if (!value) {
            return lastError();
        }
        return std::string(value.get(), len);
    }

    Result<void> write(TransactionId txn, std::string_view path, std::string_view value) override {
        if (!xs_write(m_handle, txn, cstr(path), value.data(),
                      static_cast<unsigned>(value.size()))) {
            return lastError();
        }
        return {};
    }

    Result<void> mkdir(TransactionId txn, std::string_view path) override {
        if (!xs_mkdir(m_handle, txn, cstr(path))) {
            return lastError();
        }
        return {};
    }

    Result<void> remove(TransactionId txn, std::string_view path) override {
        if (!xs_rm(m_handle, txn, cstr(path)) && errno != ENOENT) {
            return lastError();
        }
        return {};
    }

    Result<std::vector<std::string>> list(TransactionId txn, std::string_view path) override {
        unsigned count = 0;
        Malloced<char*> names(xs_directory(m_handle, txn, cstr(path), &count));
        if (!names) {
            return lastError();
        }
        return std::vector<std::string>(names.get(), names.get() + count);
    }

    Result<std::vector<Permission>> getPermissions(TransactionId txn,
                                                   std::string_view path) override {
        unsigned count = 0;
        Malloced<xs_permissions> perms(xs_get_permissions(m_handle, txn, cstr(path), &count));
        if (!perms) {
            return lastError();
        }
        std::vector<Permission> out;
        for (unsigned i = 0; i < count; ++i) {
            const xs_permissions& p = perms.get()[i];
            // xenstored marks grants to domains that died since as ignored.
            if (i > 0 && (p.perms & XS_PERM_IGNORE) != 0) {
                continue;
            }
            out.push_back({static_cast<DomId>(p.id), fromXsPerm(p.perms)});
        }
        return out;
    }

    Result<void> setPermissions(TransactionId txn, std::string_view path,
                                const std::vector<Permission>& perms) override {
        std::vector<xs_permissions> xsPerms;
        xsPerms.reserve(perms.size());
        for (const Permission& p : perms) {
            xsPerms.push_back({p.domid, toXsPerm(p.access)});
        }
        if (!xs_set_permissions(m_handle, txn, cstr(path), xsPerms.data(),
                                static_cast<unsigned>(xsPerms.size()))) {
            return lastError();
        }
        return {};
    }

    Result<TransactionId> beginTransaction() override {
        xs_transaction_t txn = xs_transaction_start(m_handle);
        if (txn == XBT_NULL) {
            return lastError();
        }
        return txn;
    }

    Result<void> commit(TransactionId txn) override {
        if (!xs_transaction_end(m_handle, txn, false)) {
            return lastError();
        }
        return {};
    }

    void abort(TransactionId txn) override { (void)xs_transaction_end(m_handle, txn, true); }

    Result<void> watch(std::string_view path, std::string_view token) override {
        if (!xs_watch(m_handle, cstr(path), std::string(token).c_str())) {
            return lastError();
        }
        return {};
    }

    Result<void> unwatch(std::string_view path, std::string_view token) override {
        if (!xs_unwatch(m_handle, cstr(path), std::string(token).c_str())) {
            return lastError();
        }
        return {};
    }

    Result<WatchEvent> nextWatchEvent(std::chrono::milliseconds timeout) override {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            Malloced<char*> event(xs_check_watch(m_handle));
            if (event) {
                return WatchEvent{event.get()[XS_WATCH_PATH], event.get()[XS_WATCH_TOKEN]};
            }
            if (errno != EAGAIN) {
                return lastError();
            }
            auto left = std::chrono::ceil<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return fail(Errc::TIMED_OUT);
            }
            pollfd fd{xs_fileno(m_handle), POLLIN, 0};
            if (poll(&fd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
                return lastError();
            }
        }
    }

    int watchFd() override { return xs_fileno(m_handle); }

    Result<bool> isDomainIntroduced(DomId domid) override {
        // false is also its error return; errno tells the two apart.
        errno = 0;
        bool introduced = xs_is_domain_introduced(m_handle, domid);
        if (!introduced && errno != 0) {
            return lastError();
        }
        return introduced;
    }

private:
    // libxenstore wants NUL-terminated paths; views here are rarely terminated.
    const char* cstr(std::string_view path) {
        m_path.assign(path);
        return m_path.c_str();
    }

    xs_handle* m_handle;
    std::string m_path;
};

} // namespace

bool xsStoreAvailable() {
    return true;
}

Result<std::unique_ptr<Store>> openXsStore() {
    xs_handle* handle = xs_open(0);
    if (!handle) {
        return lastError();
    }
    // Starts libxenstore's reader thread and pipe, so that xs_check_watch
    // never blocks and the fd can go into the daemon's poll set.
    if (xs_fileno(handle) < 0) {
        auto error = lastError();
        xs_close(handle);
        return error;
    }
    return std::unique_ptr<Store>(std::make_unique<XsStore>(handle));
}

} // namespace xkbus::xenstore
