// The handshake scenarios against Debian's real xenstored under the fakexen
// shim. Socket clients are all dom0 to xenstored, so guest permissions are
// checked as values here and enforced only in device_test.cpp.
#include "handshake_scenarios.hpp"
#include "xenstored_fixture.hpp"

namespace xkbus::xenstore::testing {
namespace {

struct XenstoredHarness {
    static constexpr bool ENFORCES_GUEST_PERMISSIONS = false;
    static std::string skipReason() { return RealXenstored::skipReason(); }
    std::string start() { return m_daemon.start(); }
    std::unique_ptr<Store> connect(DomId) { return m_daemon.connect(); }
    bool introduceDomain(DomId domid) { return m_daemon.introduceDomain(domid); }
    bool releaseDomain(DomId domid) { return m_daemon.releaseDomain(domid); }
    bool killDomain(DomId domid) { return m_daemon.killDomain(domid); }

    RealXenstored m_daemon;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Xenstored, HandshakeScenarios, XenstoredHarness);

} // namespace
} // namespace xkbus::xenstore::testing
