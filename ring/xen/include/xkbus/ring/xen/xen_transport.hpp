// The Xen transport: the ring over grant tables and an event channel, using
// libxengnttab (gntshr to share, gnttab to map, both with unmap notify on the
// status bytes) and libxenevtchn. Built against the real libraries when
// XKBUS_WITH_XEN finds them; otherwise every call returns NOT_SUPPORTED.
#pragma once

#include <cstdint>
#include <string_view>
#include <xkbus/common/result.hpp>
#include <xkbus/ring/connection.hpp>

namespace xkbus::ring::xen {

using DomId = uint32_t;

// True if this build contains the Xen implementation (not the stub).
bool builtWithXen() noexcept;

// Guest frontend: binds an unbound event-channel port for the backend's
// domain, shares page 0 with unmap notify on our status byte and that port,
// shares the ring pages, formats them. Publish controlRef() and localPort()
// for the backend (xenstore, not done here). Without /dev/xen/* this fails
// with NOT_SUPPORTED (no Xen here) and the reason in *why; no crash.
Result<Connection> connectFrontend(DomId backendDomain, const FrontendOptions& options = {},
                                   std::string_view* why = nullptr);

// dom0 backend: binds to the frontend's port, maps page 0 with unmap notify
// on our status byte, checks the header, maps the ring pages it lists.
Result<Connection> acceptBackend(DomId frontendDomain, GrantRef controlRef, EventPort remotePort,
                                 const BackendOptions& options = {},
                                 std::string_view* why = nullptr);

} // namespace xkbus::ring::xen
