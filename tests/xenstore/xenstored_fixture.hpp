// Runs Debian's real C xenstored for one test: private temp dir (socket,
// pid file, log), the fakexen shim preloaded, readiness signalled by the
// shim, SIGKILL at the end. Also plays the toolstack (introduce/release).
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>
#include <xkbus/xenstore/store.hpp>

struct xs_handle;

namespace xkbus::xenstore::testing {

class RealXenstored {
public:
    RealXenstored() = default;
    ~RealXenstored();
    RealXenstored(const RealXenstored&) = delete;
    RealXenstored& operator=(const RealXenstored&) = delete;

    // Empty if it runs; otherwise why not (binary missing: see skipReason).
    std::string start();
    // Non-empty if the xenstored binary is not installed (tests then skip).
    static std::string skipReason();

    const std::string& socketPath() const { return m_socket; }
    std::string log() const;
    bool running() const;

    // A new libxenstore connection (a socket client: always dom0).
    std::unique_ptr<Store> connect() const;

    // Toolstack steps, as libxl does them: create /local/domain/<id>, then
    // XS_INTRODUCE; XS_RELEASE when the domain is destroyed.
    bool introduceDomain(DomId domid);
    bool releaseDomain(DomId domid);
    // The hypervisor path instead: the domain turns "dying" and VIRQ_DOM_EXC
    // fires, so xenstored finds out by itself (check_domains()).
    bool killDomain(DomId domid);

private:
    std::string m_dir;
    std::string m_socket;
    std::string m_fifo;
    pid_t m_pid = -1;
    xs_handle* m_toolstack = nullptr;
};

} // namespace xkbus::xenstore::testing
