// The in-memory store keeps xenstored's rules: permissions per domid,
// watches, transaction conflicts and quotas.
#include <gtest/gtest.h>
#include <xkbus/xenstore/memory_store.hpp>

namespace xkbus::xenstore {
namespace {

using namespace std::chrono_literals;

class MemoryStoreTest : public ::testing::Test {
protected:
    MemoryStore m_store;
    std::unique_ptr<Store> m_dom0 = m_store.connect(0);
    std::unique_ptr<Store> m_dom5 = m_store.connect(5);
    std::unique_ptr<Store> m_dom6 = m_store.connect(6);

    void giveDomainItsHome(DomId domid) {
        auto home = "/local/domain/" + std::to_string(domid);
        ASSERT_TRUE(m_dom0->mkdir(NO_TRANSACTION, home));
        ASSERT_TRUE(m_dom0->setPermissions(NO_TRANSACTION, home, {{domid, Access::NONE}}));
    }
};

TEST_F(MemoryStoreTest, ReadWriteListRemove) {
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/a/b/c", "v"));
    EXPECT_EQ(m_dom0->read(NO_TRANSACTION, "/a/b/c").value(), "v");
    EXPECT_EQ(m_dom0->read(NO_TRANSACTION, "/a/b").value(), "");
    EXPECT_EQ(m_dom0->list(NO_TRANSACTION, "/a").value(), std::vector<std::string>{"b"});
    ASSERT_TRUE(m_dom0->remove(NO_TRANSACTION, "/a"));
    EXPECT_EQ(m_dom0->read(NO_TRANSACTION, "/a/b/c").error(), NOT_FOUND);
    EXPECT_TRUE(m_dom0->remove(NO_TRANSACTION, "/a")); // already gone: fine
    EXPECT_EQ(m_dom0->write(NO_TRANSACTION, "/bad path", "v").error(), Errc::INVALID);
}

TEST_F(MemoryStoreTest, GuestsFollowPermissions) {
    giveDomainItsHome(5);
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/shared/x", "1"));
    EXPECT_EQ(m_dom5->read(NO_TRANSACTION, "/shared/x").error(), Errc::PERMISSION_DENIED);
    ASSERT_TRUE(m_dom0->setPermissions(NO_TRANSACTION, "/shared/x",
                                       {{0, Access::NONE}, {5, Access::READ}}));
    EXPECT_EQ(m_dom5->read(NO_TRANSACTION, "/shared/x").value(), "1");
    EXPECT_EQ(m_dom6->read(NO_TRANSACTION, "/shared/x").error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(m_dom5->write(NO_TRANSACTION, "/shared/x", "2").error(), Errc::PERMISSION_DENIED);
    // In its home a guest creates nodes it owns; relative paths resolve there.
    ASSERT_TRUE(m_dom5->write(NO_TRANSACTION, "data/y", "3"));
    EXPECT_EQ(m_dom0->getPermissions(NO_TRANSACTION, "/local/domain/5/data/y").value()[0].domid, 5);
    EXPECT_EQ(m_dom6->read(NO_TRANSACTION, "/local/domain/5/data/y").error(),
              Errc::PERMISSION_DENIED);
    EXPECT_EQ(m_dom6->setPermissions(NO_TRANSACTION, "/local/domain/5/data/y", {{6, Access::NONE}})
                  .error(),
              Errc::PERMISSION_DENIED);
}

TEST_F(MemoryStoreTest, WatchesFireOnRegistrationAndForChildren) {
    ASSERT_TRUE(m_dom0->watch("/w", "tok"));
    auto first = m_dom0->nextWatchEvent(0ms);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->path, "/w");
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/w/child", "1"));
    EXPECT_EQ(m_dom0->nextWatchEvent(0ms)->path, "/w"); // parent created on the way
    EXPECT_EQ(m_dom0->nextWatchEvent(0ms)->path, "/w/child");
    EXPECT_EQ(m_dom0->nextWatchEvent(0ms).error(), Errc::TIMED_OUT);
    EXPECT_EQ(m_dom0->watch("/w", "tok").error(), Errc::INVALID);
    ASSERT_TRUE(m_dom0->unwatch("/w", "tok"));
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/w/child", "2"));
    EXPECT_EQ(m_dom0->nextWatchEvent(0ms).error(), Errc::TIMED_OUT);
}

TEST_F(MemoryStoreTest, GuestsHearOnlyAboutNodesTheyMayRead) {
    ASSERT_TRUE(m_dom5->watch("/secret", "t"));
    ASSERT_TRUE(m_dom5->nextWatchEvent(0ms));
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/secret", "x"));
    EXPECT_EQ(m_dom5->nextWatchEvent(0ms).error(), Errc::TIMED_OUT);
}

TEST_F(MemoryStoreTest, SpecialWatchesAreDom0s) {
    ASSERT_TRUE(m_dom0->watch(RELEASE_DOMAIN, "r"));
    ASSERT_TRUE(m_dom5->watch(RELEASE_DOMAIN, "r"));
    ASSERT_TRUE(m_dom0->nextWatchEvent(0ms));
    ASSERT_TRUE(m_dom5->nextWatchEvent(0ms));
    m_store.introduceDomain(7);
    EXPECT_TRUE(m_dom0->isDomainIntroduced(7).value());
    m_store.releaseDomain(7);
    EXPECT_FALSE(m_dom0->isDomainIntroduced(7).value());
    EXPECT_EQ(m_dom0->nextWatchEvent(0ms)->path, RELEASE_DOMAIN);
    EXPECT_EQ(m_dom5->nextWatchEvent(0ms).error(), Errc::TIMED_OUT);
}

TEST_F(MemoryStoreTest, ReleaseDropsWhatTheDomainOwned) {
    giveDomainItsHome(5);
    m_store.introduceDomain(5);
    ASSERT_TRUE(m_dom5->write(NO_TRANSACTION, "data/x", "1"));
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/other", "1"));
    ASSERT_TRUE(
        m_dom0->setPermissions(NO_TRANSACTION, "/other", {{0, Access::NONE}, {5, Access::READ}}));
    m_store.releaseDomain(5);
    EXPECT_EQ(m_dom0->read(NO_TRANSACTION, "/local/domain/5").error(), NOT_FOUND);
    EXPECT_EQ(m_dom0->getPermissions(NO_TRANSACTION, "/other").value().size(), 1u);
}

TEST_F(MemoryStoreTest, ConflictingTransactionGetsTryAgain) {
    giveDomainItsHome(5);
    auto txn = m_dom5->beginTransaction();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(m_dom0->write(NO_TRANSACTION, "/n", "0"));      // someone else commits
    EXPECT_EQ(m_dom0->read(*txn, "/n").error(), Errc::INVALID); // not dom0's transaction
    ASSERT_TRUE(m_dom5->write(*txn, "/local/domain/5/x", "1"));
    EXPECT_EQ(m_dom5->commit(*txn).error(), Errc::TRY_AGAIN);
    EXPECT_EQ(m_dom0->read(NO_TRANSACTION, "/local/domain/5/x").error(), NOT_FOUND);
}

TEST_F(MemoryStoreTest, WithTransactionRetriesTryAgain) {
    m_store.failNextCommits(3);
    int runs = 0;
    auto r = withTransaction(*m_dom0, [&](TransactionId txn) -> Result<void> {
        ++runs;
        return m_dom0->write(txn, "/t", "1");
    });
    ASSERT_TRUE(r);
    EXPECT_EQ(runs, 4);
    EXPECT_EQ(m_dom0->read(NO_TRANSACTION, "/t").value(), "1");
    m_store.failNextCommits(100);
    EXPECT_EQ(
        withTransaction(*m_dom0, [&](TransactionId txn) { return m_dom0->write(txn, "/t", "2"); })
            .error(),
        Errc::TRY_AGAIN);
}

TEST(MemoryStoreQuotas, GuestQuotasAreEnforced) {
    MemoryStore store({.nodesPerDomain = 3, .watchesPerDomain = 2, .transactionsPerConnection = 1});
    auto dom0 = store.connect(0);
    auto guest = store.connect(5);
    ASSERT_TRUE(dom0->mkdir(NO_TRANSACTION, "/local/domain/5"));
    ASSERT_TRUE(dom0->setPermissions(NO_TRANSACTION, "/local/domain/5", {{5, Access::NONE}}));
    ASSERT_TRUE(guest->write(NO_TRANSACTION, "a", "1")); // home + a
    ASSERT_TRUE(guest->write(NO_TRANSACTION, "b", "1"));
    EXPECT_EQ(guest->write(NO_TRANSACTION, "c", "1").error(), Errc::NO_MEMORY);
    ASSERT_TRUE(guest->watch("a", "1"));
    ASSERT_TRUE(guest->watch("b", "2"));
    EXPECT_EQ(guest->watch("a", "3").error(), Errc::NO_MEMORY);
    auto txn = guest->beginTransaction();
    ASSERT_TRUE(txn);
    EXPECT_EQ(guest->beginTransaction().error(), Errc::NO_MEMORY);
    guest->abort(*txn);
    EXPECT_TRUE(dom0->write(NO_TRANSACTION, "/local/domain/5/d", "dom0 is not limited"));
}

} // namespace
} // namespace xkbus::xenstore
