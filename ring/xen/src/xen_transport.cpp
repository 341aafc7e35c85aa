// Xen implementations of the transport seam over libxengnttab and
// libxenevtchn, following the pattern of Xen's tools/libs/vchan/init.c (share
// page 0 with notify on our live byte, map with notify on the peer's) but
// with our own layout and checks. Handles are shared by the mappings that
// need them to unmap, so teardown order cannot go wrong.
#include <cerrno>
#include <memory>
#include <poll.h>
#include <sys/mman.h>
#include <vector>
#include <xkbus/ring/xen/xen_transport.hpp>

// Xen 4.17's headers have no extern "C" guards of their own.
extern "C" {
#include <xenevtchn.h>
#include <xengnttab.h>
}

namespace xkbus::ring::xen {
namespace {

using GnttabHandle = std::shared_ptr<xengnttab_handle>;
using GntshrHandle = std::shared_ptr<xengntshr_handle>;

tl::unexpected<Errc> refuse(std::string_view* why, std::string_view reason, Errc code) {
    if (why != nullptr) {
        *why = reason;
    }
    return fail(code);
}

// Opening fails with ENOENT when /dev/xen/* is absent: not a Xen host.
tl::unexpected<Errc> openFailure(std::string_view* why, std::string_view reason) {
    const Errc code = (errno == ENOENT || errno == ENODEV || errno == ENXIO) ? Errc::NOT_SUPPORTED
                      : errno == EACCES || errno == EPERM ? Errc::PERMISSION_DENIED
                                                          : Errc::NO_MEMORY;
    return refuse(why, reason, code);
}

class SharedMapping final : public Mapping {
public:
    SharedMapping(GntshrHandle handle, void* address, uint32_t pages)
        : m_handle(std::move(handle)), m_address(address), m_pages(pages) {}
    ~SharedMapping() override {
        // Unsharing page 0 triggers the unmap notify (clears our byte, kicks).
        xengntshr_unshare(m_handle.get(), m_address, m_pages);
    }
    SharedMapping(const SharedMapping&) = delete;
    SharedMapping& operator=(const SharedMapping&) = delete;
    std::span<std::byte> bytes() noexcept override {
        return {static_cast<std::byte*>(m_address), size_t{m_pages} * abi::PAGE_SIZE};
    }

private:
    GntshrHandle m_handle;
    void* m_address;
    uint32_t m_pages;
};

class ForeignMapping final : public Mapping {
public:
    ForeignMapping(GnttabHandle handle, void* address, uint32_t pages)
        : m_handle(std::move(handle)), m_address(address), m_pages(pages) {}
    ~ForeignMapping() override { xengnttab_unmap(m_handle.get(), m_address, m_pages); }
    ForeignMapping(const ForeignMapping&) = delete;
    ForeignMapping& operator=(const ForeignMapping&) = delete;
    std::span<std::byte> bytes() noexcept override {
        return {static_cast<std::byte*>(m_address), size_t{m_pages} * abi::PAGE_SIZE};
    }

private:
    GnttabHandle m_handle;
    void* m_address;
    uint32_t m_pages;
};

class GrantSharer final : public PageSharer {
public:
    GrantSharer(GntshrHandle handle, DomId peer) : m_handle(std::move(handle)), m_peer(peer) {}

    Result<SharedPages> share(uint32_t pageCount, const UnmapNotify* notify) override {
        SharedPages shared;
        shared.refs.resize(pageCount);
        void* address = nullptr;
        if (notify != nullptr) {
            if (pageCount != 1) {
                return fail(Errc::INVALID); // the driver notifies for single pages only
            }
            address = xengntshr_share_page_notify(m_handle.get(), m_peer, shared.refs.data(), 1,
                                                  notify->statusOffset, notify->port);
        } else {
            address = xengntshr_share_pages(m_handle.get(), m_peer, static_cast<int>(pageCount),
                                            shared.refs.data(), 1);
        }
        if (address == nullptr) {
            return fail(errno == ENOSPC ? Errc::TOO_MANY : Errc::NO_MEMORY); // gntalloc limit
        }
        shared.mapping = std::make_unique<SharedMapping>(m_handle, address, pageCount);
        return shared;
    }

private:
    GntshrHandle m_handle;
    DomId m_peer;
};

class GrantMapper final : public PageMapper {
public:
    GrantMapper(GnttabHandle handle, DomId peer) : m_handle(std::move(handle)), m_peer(peer) {}

    Result<std::unique_ptr<Mapping>> map(std::span<const GrantRef> refs,
                                         const UnmapNotify* notify) override {
        void* address = nullptr;
        if (notify != nullptr) {
            if (refs.size() != 1) {
                return fail(Errc::INVALID);
            }
            address = xengnttab_map_grant_ref_notify(m_handle.get(), m_peer, refs[0],
                                                     PROT_READ | PROT_WRITE, notify->statusOffset,
                                                     notify->port);
        } else {
            // The refs came from the peer's page; a bad one makes the hypercall
            // fail and the library undo the partial mapping.
            std::vector<uint32_t> copy(refs.begin(), refs.end());
            address =
                xengnttab_map_domain_grant_refs(m_handle.get(), static_cast<uint32_t>(copy.size()),
                                                m_peer, copy.data(), PROT_READ | PROT_WRITE);
        }
        if (address == nullptr) {
            return fail(Errc::PROTOCOL_VIOLATION);
        }
        return std::make_unique<ForeignMapping>(m_handle, address,
                                                static_cast<uint32_t>(refs.size()));
    }

private:
    GnttabHandle m_handle;
    DomId m_peer;
};

class XenEventChannel final : public EventChannel {
public:
    XenEventChannel(xenevtchn_handle* handle, evtchn_port_t port)
        : m_handle(handle), m_port(port) {}
    ~XenEventChannel() override {
        xenevtchn_unbind(m_handle, m_port);
        xenevtchn_close(m_handle);
    }
    XenEventChannel(const XenEventChannel&) = delete;
    XenEventChannel& operator=(const XenEventChannel&) = delete;

    EventPort localPort() const noexcept override { return m_port; }
    int pollFd() const noexcept override { return xenevtchn_fd(m_handle); }

    Result<void> notify() override {
        return xenevtchn_notify(m_handle, m_port) == 0 ? Result<void>() : fail(Errc::DISCONNECTED);
    }

    Result<bool> wait(std::chrono::milliseconds timeout, int extraFd) override {
        pollfd fds[2] = {{pollFd(), POLLIN, 0}, {extraFd, POLLIN, 0}};
        const int count = ::poll(fds, extraFd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
        if (count < 0 && errno != EINTR) {
            return fail(Errc::INVALID);
        }
        return acknowledge().map([&] { return count > 0 && fds[1].revents != 0; });
    }

    Result<void> acknowledge() override {
        // xenevtchn_pending() reads the port and would block if none is
        // pending, so look first. Then unmask, or no further kick arrives.
        pollfd fd{pollFd(), POLLIN, 0};
        if (::poll(&fd, 1, 0) <= 0) {
            return {};
        }
        const xenevtchn_port_or_error_t port = xenevtchn_pending(m_handle);
        if (port < 0) {
            return fail(Errc::INVALID);
        }
        if (xenevtchn_unmask(m_handle, static_cast<evtchn_port_t>(port)) != 0) {
            return fail(Errc::INVALID);
        }
        return {};
    }

private:
    xenevtchn_handle* m_handle;
    evtchn_port_t m_port;
};

// Opens an event-channel handle and binds it one way or the other.
template <class Bind>
Result<std::unique_ptr<EventChannel>> openEventChannel(Bind bind, std::string_view* why) {
    xenevtchn_handle* handle = xenevtchn_open(nullptr, 0);
    if (handle == nullptr) {
        return openFailure(why, "cannot open /dev/xen/evtchn (not running on Xen?)");
    }
    const xenevtchn_port_or_error_t port = bind(handle);
    if (port < 0) {
        xenevtchn_close(handle);
        return refuse(why, "cannot bind the event channel", Errc::NO_SUCH_DEVICE);
    }
    return std::make_unique<XenEventChannel>(handle, static_cast<evtchn_port_t>(port));
}

} // namespace

bool builtWithXen() noexcept {
    return true;
}

Result<Connection> connectFrontend(DomId backendDomain, const FrontendOptions& options,
                                   std::string_view* why) {
    auto events = openEventChannel(
        [&](xenevtchn_handle* h) { return xenevtchn_bind_unbound_port(h, backendDomain); }, why);
    if (!events) {
        return fail(events.error());
    }
    GntshrHandle gntshr(xengntshr_open(nullptr, 0), [](xengntshr_handle* h) {
        if (h != nullptr) {
            xengntshr_close(h);
        }
    });
    if (!gntshr) {
        return openFailure(why, "cannot open /dev/xen/gntalloc (not running on Xen?)");
    }
    GrantSharer sharer(gntshr, backendDomain);
    return openFrontend(sharer, Transport{std::move(*events), nullptr}, options);
}

Result<Connection> acceptBackend(DomId frontendDomain, GrantRef controlRef, EventPort remotePort,
                                 const BackendOptions& options, std::string_view* why) {
    auto events = openEventChannel(
        [&](xenevtchn_handle* h) {
            return xenevtchn_bind_interdomain(h, frontendDomain, remotePort);
        },
        why);
    if (!events) {
        return fail(events.error());
    }
    GnttabHandle gnttab(xengnttab_open(nullptr, 0), [](xengnttab_handle* h) {
        if (h != nullptr) {
            xengnttab_close(h);
        }
    });
    if (!gnttab) {
        return openFailure(why, "cannot open /dev/xen/gntdev (not running on Xen?)");
    }
    GrantMapper mapper(gnttab, frontendDomain);
    return openBackend(mapper, Transport{std::move(*events), nullptr}, controlRef, options, why);
}

} // namespace xkbus::ring::xen
