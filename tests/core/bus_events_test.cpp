// The queue-event stream a daemon ships to keep client mirrors, and popping
// a named copy.
#include "bus_fixture.hpp"

namespace xkbus::core::testing {
namespace {

class QueueEventTest : public ::testing::Test {
protected:
    Bus bus{0, BusConfig{.recordQueueEvents = true}};
};

TEST_F(QueueEventTest, PushesRemovalsAndSendCompletionAreRecordedInOrder) {
    auto sender = bus.open().value();
    auto l = bus.open().value();
    ASSERT_TRUE(bus.bind(l, "$.x", false));
    ASSERT_TRUE(bus.send(sender, makeMessage("$.x", "tail")));
    ASSERT_TRUE(bus.send(sender, makeMessage("$.x", "head", FLAG_URGENT)));
    auto events = bus.takeQueueEvents();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, QueueEvent::Kind::PUSHED_TAIL);
    EXPECT_EQ(events[1].kind, QueueEvent::Kind::PUSHED_HEAD);
    EXPECT_EQ(events[0].ksock, l);
    EXPECT_NE(events[0].copyId, events[1].copyId);
    EXPECT_EQ(events[1].msg.name(), "$.x");
    ASSERT_TRUE(bus.unbind(l, "$.x", false));
    events = bus.takeQueueEvents();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, QueueEvent::Kind::REMOVED);
    EXPECT_TRUE(bus.takeQueueEvents().empty());
}

TEST_F(QueueEventTest, BlockedSendReportsWhenItFinishes) {
    auto sender = bus.open().value();
    auto l = bus.open().value();
    ASSERT_TRUE(bus.bind(l, "$.x", false));
    ASSERT_TRUE(bus.maxMessages(l, 1));
    ASSERT_TRUE(bus.send(sender, makeMessage("$.x")));
    ASSERT_FALSE(bus.send(sender, makeMessage("$.x", "", FLAG_ALL_OR_WAIT)));
    (void)bus.takeQueueEvents();
    ASSERT_TRUE(bus.nextMessage(l).value());
    auto events = bus.takeQueueEvents();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, QueueEvent::Kind::PUSHED_TAIL);
    EXPECT_EQ(events[1].kind, QueueEvent::Kind::SEND_FINISHED);
    EXPECT_EQ(events[1].ksock, sender);
}

TEST_F(QueueEventTest, PopCopyTakesThatCopyWhereverItIs) {
    auto sender = bus.open().value();
    auto l = bus.open().value();
    ASSERT_TRUE(bus.bind(l, "$.x", false));
    ASSERT_TRUE(bus.send(sender, makeMessage("$.x", "one")));
    ASSERT_TRUE(bus.send(sender, makeMessage("$.x", "two")));
    auto events = bus.takeQueueEvents();
    auto second = bus.popCopy(l, events[1].copyId);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->header.id, (MsgId{0, 2}));
    EXPECT_EQ(bus.numMessages(l).value(), 1u);
    ASSERT_FALSE(bus.popCopy(l, events[1].copyId)) << "a copy is popped once";
    EXPECT_EQ(bus.popCopy(l, 999999).error(), Errc::INVALID);
}

TEST_F(QueueEventTest, PoppedRequestIsOwedWhicheverWayItWasPopped) {
    auto sender = bus.open().value();
    auto replier = bus.open().value();
    ASSERT_TRUE(bus.bind(replier, "$.q", true));
    ASSERT_TRUE(bus.send(sender, makeMessage("$.q", "", FLAG_WANT_A_REPLY)));
    auto events = bus.takeQueueEvents();
    ASSERT_TRUE(bus.popCopy(replier, events[0].copyId));
    EXPECT_EQ(bus.numUnrepliedTo(replier).value(), 1u);
    ASSERT_TRUE(bus.close(replier));
    EXPECT_EQ(bus.nextMessage(sender).value()->name(), NAME_REPLIER_IGNORED);
}

TEST(QueueEventsOff, NothingIsRecordedByDefault) {
    Bus bus{0};
    auto a = bus.open().value();
    ASSERT_TRUE(bus.bind(a, "$.x", false));
    ASSERT_TRUE(bus.send(a, makeMessage("$.x")));
    EXPECT_TRUE(bus.takeQueueEvents().empty());
}

} // namespace
} // namespace xkbus::core::testing
