// A hostile local tenant at its limits against a real xkbusd: each limit
// gives its errno, exactly at the number the policy set; what it makes the
// daemon hold stays within its byte quota (the daemon's resident memory
// grows by at most the quota plus a fixed margin); a victim tenant beside it
// is still served. Tenancy is by Unix user: limits hold across all its
// connections.
#include "tenant_fixture.hpp"

#include <nlohmann/json.hpp>
#include <xkbus/ksock.hpp>

namespace xkbus::testing {
namespace {

// AddressSanitizer keeps freed memory in quarantine (256 MiB by default), so
// the daemon's resident size says nothing about what it holds under ASan;
// the quota itself (the EBUSY count) is still checked there.
constexpr bool underAddressSanitizer() {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

using protocol::Control;

constexpr uint32_t KSOCKS = 8;
constexpr uint32_t BINDINGS = 16;
constexpr uint32_t CONNECTIONS = 3;
constexpr long QUEUED_KIB = 256;
// What a daemon may grow by beyond the attacker's quota: its rings, its
// bookkeeping and malloc's slack. Far below what the flood would make it
// hold without the quota (tens of MiB).
constexpr long MARGIN_KIB = 16 * 1024;

class TenantLimitsE2eTest : public TenantDaemonTest {
protected:
    void SetUp() override {
        TenantDaemonTest::SetUp();
        if (IsSkipped()) {
            return;
        }
        writePolicy("[tenant attacker]\nmatch = user:nobody\nksocks = " + std::to_string(KSOCKS) +
                    "\nbindings = " + std::to_string(BINDINGS) +
                    "\nconnections = " + std::to_string(CONNECTIONS) +
                    "\nqueued_bytes = " + std::to_string(QUEUED_KIB) + "K\n");
        startDaemon();
    }
};

TEST_F(TenantLimitsE2eTest, KsocksBeyondTheLimitAreEmfileAcrossConnections) {
    const int attacker = runAs(NOBODY, [&] {
        // Two connections of one user are one tenant: the limit is shared.
        auto a = connect();
        auto b = connect();
        if (!a || !b) {
            return 30;
        }
        std::vector<std::unique_ptr<frontend::KsockChannel>> held;
        for (uint32_t i = 0; i < KSOCKS; ++i) {
            auto k = (*(i % 2 == 0 ? a : b))->openKsock(0, true);
            if (!k) {
                return 31;
            }
            held.push_back(std::move(*k));
        }
        if (errnoOf((*a)->openKsock(0, true)) != EMFILE ||
            errnoOf((*b)->openKsock(1, true)) != EMFILE) {
            return 32;
        }
        held.pop_back(); // closing one gives its place back
        return (*b)->openKsock(0, true) ? 0 : 33;
    });
    EXPECT_EQ(attacker, 0) << logText();
    // Another tenant is not charged for it.
    EXPECT_EQ(runAs(DAEMON_USER,
                    [&] {
                        auto c = connect();
                        for (uint32_t i = 0; i <= KSOCKS; ++i) {
                            if (!openOn(c, 0)) {
                                return 40;
                            }
                        }
                        return 0;
                    }),
              0);
}

TEST_F(TenantLimitsE2eTest, BindingsBeyondTheLimitAreEnomem) {
    const int attacker = runAs(NOBODY, [&] {
        auto c = connect();
        auto k = openOn(c, 0);
        if (!k) {
            return 30;
        }
        for (uint32_t i = 0; i < BINDINGS; ++i) {
            if (!(*k)->bind("$.Spam." + std::to_string(i), false)) {
                return 31;
            }
        }
        if (errnoOf((*k)->bind("$.Spam.last", false)) != ENOMEM) {
            return 32;
        }
        // The connection is still served: unbinding makes room again.
        return (*k)->unbind("$.Spam.0", false) && (*k)->bind("$.Spam.last", false) ? 0 : 33;
    });
    EXPECT_EQ(attacker, 0) << logText();
}

TEST_F(TenantLimitsE2eTest, ConnectionsBeyondTheLimitAreEmfile) {
    const int attacker = runAs(NOBODY, [&] {
        std::vector<std::shared_ptr<frontend::Connection>> held;
        for (uint32_t i = 0; i < CONNECTIONS; ++i) {
            auto c = connect();
            if (!c) {
                return 30;
            }
            held.push_back(*c);
        }
        return errnoOf(connect()) == EMFILE ? 0 : 31;
    });
    EXPECT_EQ(attacker, 0) << logText();
    EXPECT_GE(logCount("refused uid 65534 (nobody): a connection beyond its limit of 3"), 1u)
        << logText();
}

// The attacker floods a listener of its own that never reads, with the
// listener's queue raised as far as it may go: ALL_OR_FAIL sends meet EBUSY
// once its tenant holds its quota, and the daemon does not hold more.
TEST_F(TenantLimitsE2eTest, AFloodStopsAtTheByteQuotaAndTheDaemonStaysSmall) {
    auto c = connect();
    ASSERT_TRUE(c);
    auto victimReplier = openOn(c, 0);
    ASSERT_TRUE(victimReplier);
    ASSERT_TRUE((*victimReplier)->bind("$.Victim.Ping", true));
    const long before = daemonRssKiB();
    ASSERT_GT(before, 0);

    Gate flooded;
    Gate measured;
    const pid_t attacker = spawnAs(NOBODY, [&] {
        auto mine = connect();
        auto listener = openOn(mine, 0);
        auto sender = openOn(mine, 0);
        if (!listener || !sender || !(*listener)->bind("$.Flood.*", false) ||
            !(*listener)->control(Control::MAX_MESSAGES, 1000000)) {
            return 30;
        }
        const std::string chunk(32 * 1024, 'x');
        int busy = 0;
        for (int i = 0; i < 2000; ++i) {
            auto sent = (*sender)->send(makeMessage("$.Flood.x", chunk, FLAG_ALL_OR_FAIL));
            busy += !sent && toErrno(sent.error()) == EBUSY ? 1 : 0;
        }
        for (int i = 0; i < 2000; ++i) { // the listener misses these: no error for the sender
            if (!(*sender)->send(makeMessage("$.Flood.y", chunk))) {
                return 31;
            }
        }
        // A round trip, so every send above has been handled.
        if (!(*sender)->control(Control::KSOCK_ID, 0)) {
            return 32;
        }
        flooded.open();
        (void)measured.waitOpen(); // keep the queue full while the parent looks
        return busy > 1900 ? 0 : 33;
    });
    ASSERT_TRUE(flooded.waitOpen(60000)) << logText();
    const long after = daemonRssKiB();
    // The victim is still served while the attacker sits at its quota.
    auto asker = openOn(c, 0);
    ASSERT_TRUE(asker);
    Ksock k(std::move(*asker));
    ASSERT_TRUE(k.send(makeMessage("$.Victim.Ping", "", FLAG_WANT_A_REPLY)));
    auto stats = (*c)->introspect(0, protocol::Introspect::STATS);
    measured.open();
    EXPECT_EQ(reap(attacker), 0) << "too few EBUSY: the quota did not hold";
    if (!underAddressSanitizer()) {
        EXPECT_LT(after - before, QUEUED_KIB + MARGIN_KIB)
            << "the daemon grew from " << before << " to " << after << " KiB";
    }
    // `xkbus stats` data: dom0 sees the attacker at its quota.
    ASSERT_TRUE(stats);
    bool seen = false;
    const auto parsed = nlohmann::json::parse(*stats);
    for (const auto& t : parsed["tenants"]) {
        if (t["tenant"] == "uid 65534 (nobody)") {
            seen = true;
            EXPECT_EQ(t["queued_bytes"]["limit"], QUEUED_KIB * 1024);
            EXPECT_GT(t["queued_bytes"]["used"].get<long>(), QUEUED_KIB * 1024 - 64 * 1024);
            EXPECT_EQ(t["ksocks"]["limit"], KSOCKS);
        }
    }
    EXPECT_TRUE(seen) << *stats;
}

} // namespace
} // namespace xkbus::testing
