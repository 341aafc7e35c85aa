// Rights: what a Ksock may do beyond its own queue and bindings. By default
// every Ksock has every right (KBUS); without one, the call is EPERM, or, for
// blockBinds, a full bind-event listener holds nobody back.
#include "bus_fixture.hpp"

#include <string>
#include <vector>

namespace xkbus::core::testing {
namespace {

class RightsTest : public BusTest {
protected:
    KsockId openWithout(Rights rights) { return bus.open(OpenOptions{.may = rights}).value(); }
    // A listener of bind events with room for one message, and it is used.
    KsockId fullEventListener(Rights rights) {
        const KsockId l = openWithout(rights);
        bind(l, NAME_REPLIER_BIND_EVENT);
        bind(l, "$.fill");
        EXPECT_TRUE(bus.maxMessages(l, 1));
        EXPECT_TRUE(announce(filler, "$.fill"));
        return l;
    }
    void reportBinds() {
        const KsockId switcher = open();
        ASSERT_TRUE(bus.reportReplierBinds(switcher, 1));
    }

    KsockId filler = open();
};

TEST_F(RightsTest, ByDefaultEveryKsockMayDoEverythingKbusAllows) {
    const KsockId k = open();
    EXPECT_EQ(bus.maxMessageSize(k, 2000).value(), 2000u);
    EXPECT_EQ(bus.verbose(k, 1).value(), 0u);
    EXPECT_EQ(bus.reportReplierBinds(k, 1).value(), 0u);
    Message remote = makeMessage("$.x");
    remote.header.id = MsgId{7, 1};
    EXPECT_EQ(bus.send(k, remote).value(), (MsgId{7, 1}));
}

TEST_F(RightsTest, WithoutBusSettingsTheBusWideSwitchesCanOnlyBeRead) {
    const KsockId k = openWithout(Rights{.busSettings = false});
    EXPECT_EQ(bus.maxMessageSize(k, 2000).error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(toErrno(bus.verbose(k, 1).error()), EPERM);
    EXPECT_EQ(bus.reportReplierBinds(k, 0).error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(bus.reportReplierBinds(k, 1).error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(bus.maxMessageSize(k, QUERY_CURRENT_SIZE).value(), DEFAULT_MAX_MESSAGE_SIZE);
    EXPECT_EQ(bus.maxMessageSize(k, QUERY_ABSOLUTE_SIZE).value(), DEFAULT_MAX_MESSAGE_SIZE);
    EXPECT_EQ(bus.verbose(k, QUERY).value(), 0u);
    EXPECT_EQ(bus.reportReplierBinds(k, QUERY).value(), 0u);
    EXPECT_EQ(bus.maxMessageSize(filler, QUERY_CURRENT_SIZE).value(), DEFAULT_MAX_MESSAGE_SIZE)
        << "nothing changed for anyone";
}

TEST_F(RightsTest, WithoutNetworkIdsASendThatCarriesOneIsRefused) {
    const KsockId k = openWithout(Rights{.networkIds = false});
    const KsockId l = open();
    bind(l, "$.x");
    Message forged = makeMessage("$.x");
    forged.header.id = MsgId{7, 1};
    EXPECT_EQ(bus.send(k, forged).error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(bus.lastSent(k).value(), MsgId{}) << "no id was taken";
    EXPECT_EQ(queued(l), 0u);
    EXPECT_TRUE(announce(k, "$.x")) << "a local id is fine";
}

// Issue 15: one Ksock with MAX_MESSAGES=1 on $.KBUS.ReplierBindEvent made
// every replier bind on the bus fail with EAGAIN.
TEST_F(RightsTest, AFullEventListenerWithoutBlockBindsHoldsNoBindBack) {
    reportBinds();
    const KsockId parked = fullEventListener(Rights{.blockBinds = false});
    const KsockId watcher = open();
    bind(watcher, NAME_REPLIER_BIND_EVENT);
    std::vector<KsockId> repliers;
    for (int i = 0; i < 3; ++i) {
        repliers.push_back(open());
        bind(repliers.back(), "$.service" + std::to_string(i), true);
    }
    ASSERT_TRUE(bus.unbind(repliers[0], "$.service0", true));
    EXPECT_EQ(queued(watcher), 4u) << "listeners with room get every event";
    EXPECT_EQ(queued(parked), 2u) << "its message, and one lost marker owed";
    EXPECT_EQ(bus.stats().unsentUnbindEvents, 0u) << "nothing on the bus's set-aside list";
    EXPECT_EQ(pop(parked)->name(), "$.fill");
    EXPECT_EQ(pop(parked)->name(), NAME_UNBIND_EVENTS_LOST) << "once it has room";
    EXPECT_FALSE(pop(parked));
    ASSERT_TRUE(bus.maxMessages(parked, 10));
    bind(repliers[1], "$.again", true);
    auto event = pop(parked);
    ASSERT_TRUE(event);
    EXPECT_EQ(event->name(), NAME_REPLIER_BIND_EVENT) << "with room it hears binds again";
}

TEST_F(RightsTest, AFullEventListenerWithBlockBindsRefusesBindsAsKbus) {
    reportBinds();
    fullEventListener(Rights{});
    const KsockId replier = open();
    EXPECT_EQ(errOf(bus.bind(replier, "$.service", true)), Errc::TRY_AGAIN);
    EXPECT_EQ(bus.findReplier("$.service").value(), 0u) << "nothing changed";
}

TEST_F(RightsTest, ClosesDoNotFillTheSetAsideListForListenersWithoutBlockBinds) {
    reportBinds();
    std::vector<KsockId> repliers;
    for (int i = 0; i < 50; ++i) {
        repliers.push_back(open());
        bind(repliers.back(), "$.r" + std::to_string(i), true);
    }
    const KsockId parked = fullEventListener(Rights{.blockBinds = false});
    const KsockId kbus = fullEventListener(Rights{});
    for (KsockId r : repliers) {
        ASSERT_TRUE(bus.close(r));
    }
    EXPECT_EQ(bus.stats().unsentUnbindEvents, 50u) << "the KBUS listener's, none of parked's";
    EXPECT_EQ(bus.numMessages(parked).value(), 2u) << "its message and one marker";
    EXPECT_EQ(bus.numMessages(kbus).value(), 51u) << "its message and 50 set-aside events";
}

} // namespace
} // namespace xkbus::core::testing
