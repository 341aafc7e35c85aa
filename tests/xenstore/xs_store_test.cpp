// XsStore against the real xenstored (fakexen shim): the Store contract,
// transactions, watches, permissions and the domain life cycle.
#include "xenstored_fixture.hpp"

#include <gtest/gtest.h>

namespace xkbus::xenstore {
namespace {

using namespace std::chrono_literals;
constexpr auto WAIT = 5000ms; // a bound for a failing test, never a delay

class XsStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = testing::RealXenstored::skipReason(); !why.empty()) {
            GTEST_SKIP() << why;
        }
        auto error = m_daemon.start();
        ASSERT_EQ(error, "");
        m_store = m_daemon.connect();
        ASSERT_TRUE(m_store);
    }

    // Waits for an event with `token`, skipping others.
    ::testing::AssertionResult waitFor(Store& store, std::string_view token,
                                       std::string_view path) {
        for (;;) {
            auto event = store.nextWatchEvent(WAIT);
            if (!event) {
                return ::testing::AssertionFailure() << "no event " << token << " " << path;
            }
            if (event->token == token && event->path == path) {
                return ::testing::AssertionSuccess();
            }
        }
    }

    testing::RealXenstored m_daemon;
    std::unique_ptr<Store> m_store;
};

TEST_F(XsStoreTest, ReadWriteListRemove) {
    ASSERT_TRUE(m_store->write(NO_TRANSACTION, "/t/a/b", "v"));
    EXPECT_EQ(m_store->read(NO_TRANSACTION, "/t/a/b").value(), "v");
    EXPECT_EQ(m_store->list(NO_TRANSACTION, "/t").value(), std::vector<std::string>{"a"});
    ASSERT_TRUE(m_store->remove(NO_TRANSACTION, "/t"));
    EXPECT_EQ(m_store->read(NO_TRANSACTION, "/t/a/b").error(), NOT_FOUND);
    EXPECT_TRUE(m_store->remove(NO_TRANSACTION, "/t"));
    EXPECT_TRUE(m_daemon.running());
}

TEST_F(XsStoreTest, PermissionsRoundTrip) {
    ASSERT_TRUE(m_store->mkdir(NO_TRANSACTION, "/p"));
    std::vector<Permission> perms{{5, Access::NONE}, {0, Access::READ}, {6, Access::BOTH}};
    ASSERT_TRUE(m_store->setPermissions(NO_TRANSACTION, "/p", perms));
    EXPECT_EQ(m_store->getPermissions(NO_TRANSACTION, "/p").value(), perms);
}

TEST_F(XsStoreTest, ConflictingTransactionGetsTryAgain) {
    auto other = m_daemon.connect();
    ASSERT_TRUE(m_store->write(NO_TRANSACTION, "/c", "0"));
    auto txn = m_store->beginTransaction();
    ASSERT_TRUE(txn);
    ASSERT_EQ(m_store->read(*txn, "/c").value(), "0");
    ASSERT_TRUE(other->write(NO_TRANSACTION, "/c", "1"));
    ASSERT_TRUE(m_store->write(*txn, "/c", "2"));
    EXPECT_EQ(m_store->commit(*txn).error(), Errc::TRY_AGAIN);
    EXPECT_EQ(m_store->read(NO_TRANSACTION, "/c").value(), "1");
}

TEST_F(XsStoreTest, WatchesFireOnRegistrationAndOnChange) {
    ASSERT_TRUE(m_store->watch("/w", "tok"));
    EXPECT_TRUE(waitFor(*m_store, "tok", "/w"));
    auto other = m_daemon.connect();
    ASSERT_TRUE(other->write(NO_TRANSACTION, "/w/x", "1"));
    EXPECT_TRUE(waitFor(*m_store, "tok", "/w/x"));
    EXPECT_EQ(m_store->nextWatchEvent(0ms).error(), Errc::TIMED_OUT);
}

TEST_F(XsStoreTest, DomainLifeCycle) {
    ASSERT_TRUE(m_store->watch(INTRODUCE_DOMAIN, "in"));
    ASSERT_TRUE(m_store->watch(RELEASE_DOMAIN, "out"));
    ASSERT_TRUE(waitFor(*m_store, "in", INTRODUCE_DOMAIN));
    ASSERT_TRUE(waitFor(*m_store, "out", RELEASE_DOMAIN));
    EXPECT_FALSE(m_store->isDomainIntroduced(5).value());
    ASSERT_TRUE(m_daemon.introduceDomain(5));
    EXPECT_TRUE(waitFor(*m_store, "in", INTRODUCE_DOMAIN));
    EXPECT_TRUE(m_store->isDomainIntroduced(5).value());
    ASSERT_TRUE(m_daemon.releaseDomain(5));
    EXPECT_TRUE(waitFor(*m_store, "out", RELEASE_DOMAIN));
    EXPECT_FALSE(m_store->isDomainIntroduced(5).value());
}

TEST_F(XsStoreTest, DyingDomainIsNoticedThroughTheVirq) {
    ASSERT_TRUE(m_store->watch(RELEASE_DOMAIN, "out"));
    ASSERT_TRUE(waitFor(*m_store, "out", RELEASE_DOMAIN));
    ASSERT_TRUE(m_daemon.introduceDomain(7));
    ASSERT_TRUE(m_daemon.killDomain(7));
    EXPECT_TRUE(waitFor(*m_store, "out", RELEASE_DOMAIN));
    EXPECT_FALSE(m_store->isDomainIntroduced(7).value());
    EXPECT_TRUE(m_daemon.running());
}

} // namespace
} // namespace xkbus::xenstore
