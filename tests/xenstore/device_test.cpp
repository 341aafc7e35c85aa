// The handshake scenarios on the in-memory store (guest permissions enforced),
// plus what only the in-memory store can show: quota budgets and injected
// transaction conflicts.
#include "handshake_scenarios.hpp"

#include <xkbus/xenstore/memory_store.hpp>

namespace xkbus::xenstore::testing {
namespace {

struct MemoryHarness {
    static constexpr bool ENFORCES_GUEST_PERMISSIONS = true;
    static std::string skipReason() { return {}; }
    std::string start() { return {}; }
    std::unique_ptr<Store> connect(DomId domid) { return m_store.connect(domid); }

    // As libxl: /local/domain/<id> owned by dom0, readable by the guest.
    bool introduceDomain(DomId domid) {
        auto dom0 = m_store.connect(0);
        const std::string home = domainPath(domid);
        bool ok = dom0->mkdir(NO_TRANSACTION, home) &&
                  dom0->setPermissions(NO_TRANSACTION, home,
                                       {{0, Access::NONE}, {domid, Access::READ}}) &&
                  dom0->write(NO_TRANSACTION, home + "/domid", std::to_string(domid));
        m_store.introduceDomain(domid);
        return ok;
    }
    bool releaseDomain(DomId domid) {
        m_store.releaseDomain(domid);
        return true;
    }
    bool killDomain(DomId domid) { return releaseDomain(domid); }

    MemoryStore m_store;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, HandshakeScenarios, MemoryHarness);

using MemoryDeviceTest = HandshakeScenarios<MemoryHarness>;

TEST_F(MemoryDeviceTest, ClaimsSurviveTransactionConflicts) {
    ASSERT_TRUE(m_harness.introduceDomain(5));
    ASSERT_TRUE(m_backend->provision(5, {0, 1}));
    m_harness.m_store.failNextCommits(5);
    Guest& guest = newGuest(5);
    ASSERT_TRUE(connectGuest(guest, "patient"));
}

TEST_F(MemoryDeviceTest, ProvisionRefusesUnknownDomainsAndBadPlans) {
    EXPECT_EQ(m_backend->provision(9, {0, 1}).error(), NOT_FOUND);
    ASSERT_TRUE(m_harness.introduceDomain(9));
    EXPECT_EQ(m_backend->provision(9, {0, 0}).error(), Errc::INVALID);
    EXPECT_EQ(m_backend->provision(9, {MAX_BUS + 1, 1}).error(), Errc::INVALID);
    EXPECT_EQ(m_backend->provision(9, {0, 65}).error(), Errc::INVALID);
    EXPECT_EQ(m_backend->provision(0, {0, 1}).error(), Errc::INVALID);
    ASSERT_TRUE(m_backend->provision(9, {0, 2}));
    ASSERT_TRUE(m_backend->provision(9, {0, 2})); // again: nothing new
    EXPECT_EQ(devicesOf(9), 2u);
}

// A guest with the most slots, all connected, stays well inside xenstored's
// per-domain quotas (1000 nodes, 128 watches); docs/xenstore.md has the sums.
TEST_F(MemoryDeviceTest, FullGuestFitsXenstoredQuotas) {
    ASSERT_TRUE(m_harness.introduceDomain(5));
    constexpr DevId SLOTS = 64;
    ASSERT_TRUE(m_backend->provision(5, {0, SLOTS}));
    const size_t provisioned = m_harness.m_store.nodesOwnedBy(5);
    EXPECT_EQ(provisioned, SLOTS * 4); // dir, backend, backend-id, state
    for (DevId i = 0; i < SLOTS; ++i) {
        Guest& guest = newGuest(5);
        ASSERT_TRUE(connectGuest(guest, "p" + std::to_string(i)));
    }
    EXPECT_EQ(m_harness.m_store.nodesOwnedBy(5), SLOTS * 10);
    EXPECT_EQ(m_harness.m_store.watchesOf(5), SLOTS);
    EXPECT_LE(m_harness.m_store.nodesOwnedBy(5), 1000u);
}

TEST_F(MemoryDeviceTest, SpuriousEventsOnEveryWatch) {
    ASSERT_TRUE(m_harness.introduceDomain(5));
    ASSERT_TRUE(m_backend->provision(5, {0, 2}));
    Guest& guest = newGuest(5);
    ASSERT_TRUE(connectGuest(guest, "a"));
    for (int i = 0; i < 100; ++i) {
        m_harness.m_store.fireEveryWatch();
    }
    Guest& marker = newGuest(5);
    ASSERT_TRUE(connectGuest(marker, "b"));
    EXPECT_EQ(m_connector->disconnects, 0);
    EXPECT_EQ(guest.device->phase(), FrontendPhase::CONNECTED);
}

TEST_F(MemoryDeviceTest, StaleFrontendCannotDisturbTheNextOwner) {
    ASSERT_TRUE(m_harness.introduceDomain(5));
    ASSERT_TRUE(m_backend->provision(5, {0, 1}));
    Guest& old = newGuest(5);
    ASSERT_TRUE(connectGuest(old, "old"));
    ASSERT_TRUE(m_backend->releaseDevice({5, 0})); // daemon thought it died
    Guest& next = newGuest(5);
    ASSERT_TRUE(connectGuest(next, "next"));
    // The old process wakes up and tries to close "its" device.
    ASSERT_TRUE(old.device->close());
    EXPECT_EQ(old.device->phase(), FrontendPhase::CLOSED);
    EXPECT_EQ(frontendState({5, 0}), "4");
    EXPECT_EQ(next.device->phase(), FrontendPhase::CONNECTED);
}

} // namespace
} // namespace xkbus::xenstore::testing
