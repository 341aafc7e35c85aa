// Replier bind events, the set-aside list, and introspection.
#include "bus_fixture.hpp"

#include <xkbus/core/core.hpp>

namespace xkbus::core::testing {
namespace {

class BindEventTest : public BusTest {
protected:
    BindEvent eventOf(const Message& m) {
        BindEvent e;
        EXPECT_EQ(m.name(), NAME_REPLIER_BIND_EVENT);
        EXPECT_TRUE(decodeBindEventData(m.data(), e));
        return e;
    }
};

TEST_F(BindEventTest, BindAndUnbindAreReportedWhenAskedFor) {
    auto watcher = open();
    auto replier = open();
    bind(watcher, NAME_REPLIER_BIND_EVENT);
    EXPECT_EQ(bus.reportReplierBinds(watcher, 1).value(), 0u);
    bind(replier, "$.q", true);
    bind(replier, "$.listen", false); // listener binds are not reported
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    auto bound = pop(watcher);
    auto unbound = pop(watcher);
    ASSERT_TRUE(bound && unbound);
    EXPECT_FALSE(pop(watcher));
    auto e1 = eventOf(*bound);
    EXPECT_TRUE(e1.isBind);
    EXPECT_EQ(e1.binder, replier);
    EXPECT_EQ(e1.name, "$.q");
    EXPECT_FALSE(eventOf(*unbound).isBind);
    EXPECT_EQ(bound->header.flags, FLAG_SYNTHETIC | FLAG_ALL_OR_FAIL);
    EXPECT_EQ(bound->header.from, 0u);
    EXPECT_EQ(bound->header.to, 0u);
    EXPECT_EQ(bus.reportReplierBinds(watcher, QUERY).value(), 1u);
}

TEST_F(BindEventTest, NoEventsWhenReportingIsOff) {
    auto watcher = open();
    auto replier = open();
    bind(watcher, NAME_REPLIER_BIND_EVENT);
    bind(replier, "$.q", true);
    EXPECT_FALSE(pop(watcher));
}

TEST_F(BindEventTest, BinderListeningToEventsSeesItsOwnEvent) {
    auto self = open();
    bind(self, "$.KBUS.*");
    ASSERT_TRUE(bus.reportReplierBinds(self, 1));
    bind(self, "$.q", true);
    auto e = pop(self);
    ASSERT_TRUE(e);
    EXPECT_EQ(eventOf(*e).binder, self);
}

TEST_F(BindEventTest, FullListenerRefusesTheBindAndNothingChanges) {
    auto watcher = open();
    auto replier = open();
    auto filler = open();
    bind(watcher, NAME_REPLIER_BIND_EVENT);
    bind(watcher, "$.fill");
    ASSERT_TRUE(bus.reportReplierBinds(watcher, 1));
    ASSERT_TRUE(bus.maxMessages(watcher, 1));
    ASSERT_TRUE(announce(filler, "$.fill"));
    EXPECT_EQ(errOf(bus.bind(replier, "$.q", true)), Errc::TRY_AGAIN);
    EXPECT_EQ(bus.findReplier("$.q").value(), 0u) << "the bind did not happen";
    pop(watcher);
    bind(replier, "$.q", true);
    ASSERT_TRUE(announce(filler, "$.fill")); // watcher misses it: its queue is full again
    EXPECT_EQ(errOf(bus.unbind(replier, "$.q", true)), Errc::TRY_AGAIN);
    EXPECT_EQ(bus.findReplier("$.q").value(), replier) << "the unbind did not happen";
}

TEST_F(BindEventTest, TurningReportingOnListsExistingRepliersToTheCallerOnly) {
    auto a = open();
    auto b = open();
    auto limpet = open();
    auto other = open();
    bind(other, NAME_REPLIER_BIND_EVENT);
    bind(a, "$.one", true);
    bind(b, "$.two.*", true);
    EXPECT_EQ(bus.reportReplierBinds(limpet, 1).value(), 0u);
    auto first = pop(limpet);
    auto second = pop(limpet);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(eventOf(*first).name, "$.two.*") << "newest binding first, as KBUS";
    EXPECT_EQ(eventOf(*second).name, "$.one");
    EXPECT_FALSE(pop(other));
}

TEST_F(BindEventTest, ExistingRepliersThatDoNotFitGiveBusyButReportingStaysOn) {
    auto limpet = open();
    for (int i = 0; i < 3; ++i) {
        auto r = open();
        bind(r, "$.r" + std::to_string(i), true);
    }
    ASSERT_TRUE(bus.maxMessages(limpet, 2));
    auto result = bus.reportReplierBinds(limpet, 1);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error(), Errc::QUEUE_FULL);
    EXPECT_EQ(bus.reportReplierBinds(limpet, QUERY).value(), 1u);
    EXPECT_EQ(queued(limpet), 2u);
}

TEST_F(BindEventTest, CloseSetsAsideEventsForFullListenersAndDeliversToOthers) {
    auto full = open();
    auto roomy = open();
    auto replier = open();
    auto filler = open();
    bind(full, NAME_REPLIER_BIND_EVENT);
    bind(full, "$.fill");
    bind(roomy, NAME_REPLIER_BIND_EVENT);
    ASSERT_TRUE(bus.reportReplierBinds(full, 1));
    bind(replier, "$.q", true);
    pop(full);
    pop(roomy);
    ASSERT_TRUE(bus.maxMessages(full, 1));
    ASSERT_TRUE(announce(filler, "$.fill"));
    ASSERT_TRUE(bus.close(replier)); // cannot be refused
    EXPECT_EQ(queued(roomy), 1u) << "a listener with room gets it at once";
    EXPECT_EQ(bus.numMessages(full).value(), 2u) << "NUMMSGS counts the set-aside event";
    EXPECT_EQ(bus.stats().unsentUnbindEvents, 1u);
    EXPECT_EQ(pop(full)->name(), "$.fill");
    auto event = pop(full);
    ASSERT_TRUE(event);
    EXPECT_FALSE(eventOf(*event).isBind);
    EXPECT_EQ(bus.stats().unsentUnbindEvents, 0u);
}

TEST_F(BindEventTest, OverflowingTheSetAsideListGivesOneUnbindEventsLost) {
    Bus small{0, BusConfig{.maxUnsentUnbindEvents = 2}};
    auto watcher = small.open().value();
    ASSERT_TRUE(small.bind(watcher, NAME_REPLIER_BIND_EVENT, false));
    ASSERT_TRUE(small.reportReplierBinds(watcher, 1));
    std::vector<KsockId> repliers;
    for (int i = 0; i < 5; ++i) {
        auto r = small.open().value();
        ASSERT_TRUE(small.bind(r, "$.r" + std::to_string(i), true));
        repliers.push_back(r);
    }
    ASSERT_TRUE(small.maxMessages(watcher, 5));
    for (KsockId r : repliers) {
        ASSERT_TRUE(small.close(r));
    }
    auto stats = small.stats();
    EXPECT_TRUE(stats.unbindEventsLost);
    EXPECT_EQ(stats.unsentUnbindEvents, 3u) << "two events, then one lost marker";
    std::vector<std::string> names;
    while (auto m = small.nextMessage(watcher).value()) {
        names.emplace_back(m->name());
    }
    EXPECT_EQ(names.size(), 5u + 3u);
    EXPECT_EQ(names.back(), NAME_UNBIND_EVENTS_LOST);
    EXPECT_FALSE(small.stats().unbindEventsLost) << "cleared once the list drains";
}

TEST_F(BindEventTest, UnbindingTheEventBindingDropsItsSetAsideEvents) {
    auto watcher = open();
    auto replier = open();
    bind(watcher, NAME_REPLIER_BIND_EVENT);
    ASSERT_TRUE(bus.reportReplierBinds(watcher, 1));
    bind(replier, "$.q", true);
    ASSERT_TRUE(bus.maxMessages(watcher, 1)); // the bind event fills it
    ASSERT_TRUE(bus.close(replier));
    EXPECT_EQ(bus.numMessages(watcher).value(), 2u);
    ASSERT_TRUE(bus.unbind(watcher, NAME_REPLIER_BIND_EVENT, false));
    EXPECT_EQ(bus.numMessages(watcher).value(), 0u);
    EXPECT_EQ(bus.stats().unsentUnbindEvents, 0u);
}

TEST_F(BindEventTest, BindingsAndStatsAreAvailableAsData) {
    auto a = bus.open(OpenOptions{.ownerTag = 4242}).value();
    auto b = open();
    bind(a, "$.Sensors.*", true);
    bind(b, "$.Jim");
    ASSERT_TRUE(request(b, "$.Sensors.x"));
    auto bindings = bus.bindings();
    ASSERT_EQ(bindings.size(), 2u);
    EXPECT_EQ(bindings[0].ksock, a);
    EXPECT_EQ(bindings[0].ownerTag, 4242u);
    EXPECT_TRUE(bindings[0].replier);
    EXPECT_EQ(bindings[0].name, "$.Sensors.*");
    EXPECT_FALSE(bindings[1].replier);
    auto stats = bus.stats();
    EXPECT_EQ(stats.nextKsockId, 3u);
    EXPECT_EQ(stats.nextSerial, 2u);
    ASSERT_EQ(stats.ksocks.size(), 2u);
    EXPECT_EQ(stats.ksocks[0].queued, 1u);
    EXPECT_EQ(stats.ksocks[0].maxMessages, 100u);
    EXPECT_EQ(stats.ksocks[1].awaitingReplies, 1u);
    EXPECT_EQ(stats.ksocks[1].lastSent, (MsgId{0, 1}));
    EXPECT_EQ(stats.copiesQueued, 1u);
}

TEST_F(BindEventTest, VerboseIsAPerBusSwitch) {
    EXPECT_EQ(bus.verbose(QUERY).value(), 0u);
    EXPECT_EQ(bus.verbose(1).value(), 0u);
    EXPECT_EQ(bus.verbose(QUERY).value(), 1u);
    EXPECT_FALSE(bus.verbose(7));
}

TEST(CoreBuses, NewDeviceAddsIndependentBusesUpToTheLimit) {
    Core core(CoreConfig{.initialBuses = 1, .maxBuses = 3, .bus = {}});
    EXPECT_EQ(core.busCount(), 1u);
    EXPECT_EQ(core.newBus().value(), 1u);
    EXPECT_EQ(core.newBus().value(), 2u);
    ASSERT_FALSE(core.newBus());
    EXPECT_EQ(core.newBus().error(), Errc::TOO_MANY);
    EXPECT_EQ(core.bus(3), nullptr);
    // Buses share nothing: the same name on two buses reaches only its own.
    auto* b0 = core.bus(0);
    auto* b1 = core.bus(1);
    auto l0 = b0->open().value();
    auto s1 = b1->open().value();
    ASSERT_TRUE(b0->bind(l0, "$.x", false));
    ASSERT_TRUE(b1->send(s1, makeMessage("$.x")));
    EXPECT_EQ(b0->numMessages(l0).value(), 0u);
}

} // namespace
} // namespace xkbus::core::testing
