// Accounting by tenant: everything a charge group makes the bus hold is
// counted against its limits, refused with a clear errno at the limit, and
// released when it goes; buses of one Core share the accounts.
#include "bus_fixture.hpp"

#include <string>
#include <vector>
#include <xkbus/core/core.hpp>

namespace xkbus::core::testing {
namespace {

constexpr uint32_t TENANT = 7;
constexpr uint32_t OTHER = 8;

TenantLimits roomy() {
    return TenantLimits::unlimited();
}

// A bus where only TENANT is limited.
struct LimitedBus {
    explicit LimitedBus(const TenantLimits& tenant, bool events = false)
        : bus(0, BusConfig{.recordQueueEvents = events, .limits = roomy()}) {
        bus.setGroupLimits(TENANT, tenant);
    }
    KsockId open(uint32_t group = TENANT) {
        return bus.open(OpenOptions{.chargeGroup = group}).value();
    }
    TenantUsage used(uint32_t group = TENANT) const { return bus.groupUsage(group).used; }
    Bus bus;
};

TEST(Accounts, KsocksBeyondTheLimitAreEmfile) {
    LimitedBus b(TenantLimits{.ksocks = 2});
    const KsockId first = b.open();
    b.open();
    auto third = b.bus.open(OpenOptions{.chargeGroup = TENANT});
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error(), Errc::TOO_MANY);
    EXPECT_EQ(toErrno(third.error()), EMFILE);
    EXPECT_TRUE(b.bus.open(OpenOptions{.chargeGroup = OTHER})) << "another tenant is not affected";
    ASSERT_TRUE(b.bus.close(first));
    EXPECT_TRUE(b.bus.open(OpenOptions{.chargeGroup = TENANT})) << "closing gave the place back";
    EXPECT_EQ(b.used().ksocks, 2u);
}

TEST(Accounts, BindingsAreChargedWithTheirTrieNodesAndNameBytes) {
    LimitedBus b(TenantLimits{.bindings = 3, .indexNodes = 100, .nameBytes = 400});
    const KsockId k = b.open();
    // A 999-byte name of 499 words would keep 499 trie nodes alive.
    std::string many = "$.a";
    while (many.size() + 2 <= 999) {
        many += ".a";
    }
    auto refused = b.bus.bind(k, many, false);
    ASSERT_FALSE(refused);
    EXPECT_EQ(toErrno(refused.error()), ENOMEM);
    EXPECT_TRUE(b.bus.bindings().empty()) << "nothing of it was bound";
    EXPECT_EQ(b.used().indexNodes, 0u);

    ASSERT_TRUE(b.bus.bind(k, "$.x.y.*", false));
    EXPECT_EQ(b.used().bindings, 1u);
    EXPECT_EQ(b.used().indexNodes, 2u) << "x and y";
    EXPECT_EQ(b.used().nameBytes, 7u);
    ASSERT_TRUE(b.bus.bind(k, "$.*", true));
    ASSERT_TRUE(b.bus.bind(k, "$.z", false));
    EXPECT_EQ(b.bus.bind(k, "$.w", false).error(), Errc::NO_MEMORY) << "a fourth binding";
    ASSERT_TRUE(b.bus.unbind(k, "$.z", false));
    EXPECT_EQ(b.used().bindings, 2u);
    EXPECT_EQ(b.bus.bind(k, "$." + std::string(400, 'n'), false).error(), Errc::NO_MEMORY)
        << "over the name bytes";
    ASSERT_TRUE(b.bus.close(k));
    EXPECT_EQ(b.used(), TenantUsage{}) << "close gives everything back";
}

TEST(Accounts, AGroupsQueuesAreFullTogether) {
    LimitedBus b(TenantLimits{.queuedMessages = 3});
    const KsockId sender = b.open(OTHER);
    const KsockId l1 = b.open();
    const KsockId l2 = b.open();
    const KsockId other = b.open(OTHER);
    for (KsockId l : {l1, l2, other}) {
        ASSERT_TRUE(b.bus.bind(l, "$.x", false));
    }
    ASSERT_TRUE(b.bus.send(sender, makeMessage("$.x")));
    EXPECT_EQ(b.bus.send(sender, makeMessage("$.x", "", FLAG_ALL_OR_FAIL)).error(),
              Errc::QUEUE_FULL)
        << "two more copies do not fit in three";
    ASSERT_TRUE(b.bus.send(sender, makeMessage("$.x"))); // the newest binding's copy fits
    EXPECT_EQ(b.used().queuedMessages, 3u);
    EXPECT_EQ(b.bus.numMessages(l1).value() + b.bus.numMessages(l2).value(), 3u);
    EXPECT_EQ(b.bus.numMessages(other).value(), 2u) << "the other tenant got every message";
}

TEST(Accounts, PlacesHeldForRepliesCountAgainstTheGroup) {
    LimitedBus b(TenantLimits{.queuedMessages = 2});
    const KsockId asker = b.open();
    const KsockId other = b.open();
    const KsockId replier = b.open(OTHER);
    ASSERT_TRUE(b.bus.bind(replier, "$.q", true));
    ASSERT_TRUE(b.bus.send(asker, makeMessage("$.q", "", FLAG_WANT_A_REPLY)));
    ASSERT_TRUE(b.bus.send(other, makeMessage("$.q", "", FLAG_WANT_A_REPLY)));
    EXPECT_EQ(b.bus.send(asker, makeMessage("$.q", "", FLAG_WANT_A_REPLY)).error(),
              Errc::NO_REPLY_SLOT)
        << "its queue has room (1 of 2), its group has none (2 of 2)";
    EXPECT_EQ(b.used().queuedMessages, 2u);
    const auto popped = b.bus.nextMessage(replier);
    ASSERT_TRUE(popped && popped->has_value());
    Message reply = makeMessage("$.q", "r");
    reply.header.inReplyTo = (*popped)->header.id;
    reply.header.to = asker;
    ASSERT_TRUE(b.bus.send(replier, reply));
    EXPECT_EQ(b.used().queuedMessages, 2u) << "the reply took the place held for it";
    ASSERT_TRUE(b.bus.nextMessage(asker).value());
    EXPECT_EQ(b.used().queuedMessages, 1u);
}

TEST(Accounts, MaxMessagesIsHeldToTheGroupsLimit) {
    LimitedBus b(TenantLimits{.queuedMessages = 50});
    const KsockId k = b.open();
    EXPECT_EQ(b.bus.maxMessages(k, 0).value(), 50u) << "the default 100 does not fit";
    EXPECT_EQ(b.bus.maxMessages(k, 1u << 30).value(), 50u);
    EXPECT_EQ(b.bus.maxMessages(k, 10).value(), 10u);
    const KsockId other = b.open(OTHER);
    EXPECT_EQ(b.bus.maxMessages(other, 1000).value(), 1000u);
}

TEST(Accounts, RepliersReportedOnRequestNeedRoomForTheirBytes) {
    LimitedBus b(TenantLimits{.queuedBytes = 300});
    const KsockId limpet = b.open();
    for (int i = 0; i < 3; ++i) {
        const KsockId r = b.open(OTHER);
        ASSERT_TRUE(b.bus.bind(r, "$.service" + std::to_string(i), true));
    }
    auto on = b.bus.reportReplierBinds(limpet, 1);
    ASSERT_FALSE(on);
    EXPECT_EQ(on.error(), Errc::QUEUE_FULL);
    EXPECT_EQ(b.bus.reportReplierBinds(limpet, QUERY).value(), 1u) << "reports stay on, as KBUS";
    EXPECT_LE(b.used().queuedBytes, 300u);
    EXPECT_EQ(b.bus.numMessages(limpet).value(), 2u) << "two events of 140 bytes fit in 300";
}

TEST(Accounts, BlockedSendsPerGroupAreLimited) {
    LimitedBus b(TenantLimits{.pendingSends = 1});
    const KsockId filler = b.open(OTHER);
    const KsockId full = b.open(OTHER);
    ASSERT_TRUE(b.bus.bind(full, "$.x", false));
    ASSERT_TRUE(b.bus.maxMessages(full, 1));
    ASSERT_TRUE(b.bus.send(filler, makeMessage("$.x")));
    const KsockId s1 = b.open();
    const KsockId s2 = b.open();
    EXPECT_EQ(b.bus.send(s1, makeMessage("$.x", "", FLAG_ALL_OR_WAIT)).error(), Errc::TRY_AGAIN);
    auto second = b.bus.send(s2, makeMessage("$.x", "", FLAG_ALL_OR_WAIT));
    EXPECT_EQ(toErrno(second.error()), ENOMEM) << "the bus holds one blocked message for it";
    EXPECT_FALSE(b.bus.inspect(s2)->sending);
    EXPECT_EQ(b.used().pendingSends, 1u);
    ASSERT_TRUE(b.bus.nextMessage(full).value()); // s1's send goes through
    EXPECT_EQ(b.used().pendingSends, 0u);
    EXPECT_EQ(b.bus.send(s2, makeMessage("$.x", "", FLAG_ALL_OR_WAIT)).error(), Errc::TRY_AGAIN);
}

TEST(Accounts, EverythingIsGivenBackWhenATenantLeaves) {
    LimitedBus b(TenantLimits{});
    const KsockId replier = b.open(OTHER);
    ASSERT_TRUE(b.bus.bind(replier, "$.q", true));
    ASSERT_TRUE(b.bus.maxMessages(replier, 1));
    std::vector<KsockId> mine;
    for (int i = 0; i < 4; ++i) {
        const KsockId k = b.open();
        ASSERT_TRUE(b.bus.bind(k, "$.news.*", false));
        ASSERT_TRUE(b.bus.bind(k, "$.news.a.b.c", false));
        mine.push_back(k);
    }
    ASSERT_TRUE(b.bus.send(mine[0], makeMessage("$.news.a.b.c", "hello")));
    ASSERT_TRUE(b.bus.send(mine[1], makeMessage("$.q", "", FLAG_WANT_A_REPLY)));
    ASSERT_EQ(
        b.bus.send(mine[2], makeMessage("$.q", "", FLAG_WANT_A_REPLY | FLAG_ALL_OR_WAIT)).error(),
        Errc::TRY_AGAIN);
    const TenantUsage held = b.used();
    EXPECT_EQ(held.ksocks, 4u);
    EXPECT_EQ(held.bindings, 8u);
    EXPECT_EQ(held.queuedMessages, 8u + 2u) << "eight copies, two places held for replies";
    EXPECT_EQ(held.pendingSends, 1u);
    for (KsockId k : mine) {
        ASSERT_TRUE(b.bus.close(k));
    }
    EXPECT_EQ(b.used(), TenantUsage{});
}

TEST(Accounts, LimitsCanBeChangedForOneGroupAtRunTime) {
    LimitedBus b(TenantLimits{.ksocks = 1});
    EXPECT_EQ(b.bus.groupUsage(TENANT).limits.ksocks, 1u);
    b.open();
    EXPECT_FALSE(b.bus.open(OpenOptions{.chargeGroup = TENANT}));
    b.bus.setGroupLimits(TENANT, TenantLimits{.ksocks = 3});
    EXPECT_TRUE(b.bus.open(OpenOptions{.chargeGroup = TENANT}));
    b.bus.setGroupLimits(TENANT, std::nullopt);
    EXPECT_EQ(b.bus.groupUsage(TENANT).limits, roomy()) << "back to the bus's default";
    EXPECT_EQ(b.used().ksocks, 2u) << "lowering a limit takes nothing away";
}

TEST(Accounts, TheDefaultsFitAKbusProgramWithAThousandListeners) {
    Bus bus{0};
    const KsockId sender = bus.open().value();
    std::vector<KsockId> listeners;
    for (int i = 0; i < 1000; ++i) {
        listeners.push_back(bus.open().value());
        ASSERT_TRUE(bus.bind(listeners.back(), "$.x", false));
    }
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(bus.send(sender, makeMessage("$.x", "", FLAG_ALL_OR_FAIL)));
    }
    EXPECT_EQ(bus.groupUsage(0).used.queuedMessages, 10000u);
}

TEST(Accounts, ABusOfACoreSharesItsAccountsWithTheOthers) {
    Core core(CoreConfig{.initialBuses = 2, .maxBuses = 2, .bus = {.limits = roomy()}});
    core.setGroupLimits(TENANT, TenantLimits{.ksocks = 2});
    ASSERT_TRUE(core.bus(0)->open(OpenOptions{.chargeGroup = TENANT}));
    ASSERT_TRUE(core.bus(1)->open(OpenOptions{.chargeGroup = TENANT}));
    EXPECT_EQ(core.bus(0)->open(OpenOptions{.chargeGroup = TENANT}).error(), Errc::TOO_MANY)
        << "the limit is the tenant's, not each bus's";
    const auto usages = core.groupUsages();
    ASSERT_EQ(usages.size(), 1u);
    EXPECT_EQ(usages[0].group, TENANT);
    EXPECT_EQ(usages[0].used.ksocks, 2u);
}

// A send on bus 1 waits for its tenant's quota, which only a pop on bus 0 can
// free: the pop must let it through, and the host must hear that bus 1 moved.
TEST(Accounts, RoomMadeOnOneBusLetsAWaitingSendThroughOnAnother) {
    CoreConfig config{.initialBuses = 2, .maxBuses = 2, .bus = {.limits = roomy()}};
    config.bus.recordQueueEvents = true;
    Core core(config);
    core.setGroupLimits(TENANT, TenantLimits{.queuedMessages = 1});
    Bus& bus0 = *core.bus(0);
    Bus& bus1 = *core.bus(1);
    const KsockId s0 = bus0.open(OpenOptions{.chargeGroup = OTHER}).value();
    const KsockId l0 = bus0.open(OpenOptions{.chargeGroup = TENANT}).value();
    ASSERT_TRUE(bus0.bind(l0, "$.x", false));
    ASSERT_TRUE(bus0.send(s0, makeMessage("$.x")));
    const KsockId s1 = bus1.open(OpenOptions{.chargeGroup = OTHER}).value();
    const KsockId l1 = bus1.open(OpenOptions{.chargeGroup = TENANT}).value();
    ASSERT_TRUE(bus1.bind(l1, "$.y", false));
    ASSERT_EQ(bus1.send(s1, makeMessage("$.y", "", FLAG_ALL_OR_WAIT)).error(), Errc::TRY_AGAIN);
    (void)bus1.takeQueueEvents();
    EXPECT_TRUE(core.takeTouchedBuses().empty());

    ASSERT_TRUE(bus0.nextMessage(l0).value());
    EXPECT_FALSE(bus1.inspect(s1)->sending) << "the pop on bus 0 made room for it";
    EXPECT_EQ(bus1.numMessages(l1).value(), 1u);
    EXPECT_EQ(core.takeTouchedBuses(), std::vector<uint32_t>{1});
    const auto events = bus1.takeQueueEvents();
    ASSERT_EQ(events.size(), 2u) << "its copy, then the end of the send";
    EXPECT_EQ(events[0].kind, QueueEvent::Kind::PUSHED_TAIL);
    EXPECT_EQ(events[1].kind, QueueEvent::Kind::SEND_FINISHED);
}

TEST(Accounts, AGroupNearItsQuotaIsUnderPressure) {
    LimitedBus b(TenantLimits{.queuedMessages = 4});
    const KsockId sender = b.open(OTHER);
    const KsockId l = b.open();
    const KsockId l2 = b.open();
    ASSERT_TRUE(b.bus.bind(l, "$.x", false));
    ASSERT_TRUE(b.bus.bind(l2, "$.x", false));
    EXPECT_FALSE(b.bus.underPressure(l));
    ASSERT_TRUE(b.bus.send(sender, makeMessage("$.x")));
    EXPECT_TRUE(b.bus.underPressure(l)) << "its queue holds 1 of 4, its group 2 of 4";
}

} // namespace
} // namespace xkbus::core::testing
