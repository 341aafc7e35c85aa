// Message ids, the fields KBUS changes on send, and delivery order.
#include "bus_fixture.hpp"

namespace xkbus::core::testing {
namespace {

using DeliveryTest = BusTest;

TEST_F(DeliveryTest, SerialsArePerBusStartAtOneAndAscend) {
    auto a = open();
    bind(a, "$.x");
    EXPECT_EQ(announce(a, "$.x").value(), (MsgId{0, 1}));
    EXPECT_EQ(announce(a, "$.x").value(), (MsgId{0, 2}));
    Bus other{1};
    auto b = other.open().value();
    EXPECT_EQ(other.send(b, makeMessage("$.x")).value(), (MsgId{0, 1}));
}

TEST_F(DeliveryTest, NetworkIdsAreKeptUntouched) {
    auto a = open();
    bind(a, "$.x");
    Message m = makeMessage("$.x");
    m.header.id = MsgId{7, 42};
    EXPECT_EQ(bus.send(a, m).value(), (MsgId{7, 42}));
    EXPECT_EQ(pop(a)->header.id, (MsgId{7, 42}));
    EXPECT_EQ(bus.lastSent(a).value(), (MsgId{7, 42}));
}

TEST_F(DeliveryTest, FromIsSetExtraZeroedSyntheticClearedLinkageKept) {
    auto sender = open();
    auto listener = open();
    bind(listener, "$.x");
    Message m = makeMessage("$.x", "payload", FLAG_SYNTHETIC | 0x10000);
    m.header.from = 999;
    m.header.extra = 5;
    m.header.origFrom = OrigFrom{3, 4};
    m.header.finalTo = OrigFrom{5, 6};
    ASSERT_TRUE(bus.send(sender, m));
    auto got = pop(listener);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->header.from, sender);
    EXPECT_EQ(got->header.extra, 0u);
    EXPECT_EQ(got->header.flags & FLAG_SYNTHETIC, 0u);
    EXPECT_EQ(got->header.flags & 0x10000, 0x10000u) << "user flag bits are untouched";
    EXPECT_EQ(got->header.origFrom, (OrigFrom{3, 4}));
    EXPECT_EQ(got->header.finalTo, (OrigFrom{5, 6}));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(got->data().data()), got->data().size()),
              "payload");
}

TEST_F(DeliveryTest, TrustedKsockMayKeepSyntheticFlag) {
    auto limpet = bus.open(OpenOptions{.mayMarkSynthetic = true}).value();
    auto listener = open();
    bind(listener, "$.x");
    ASSERT_TRUE(announce(limpet, "$.x", FLAG_SYNTHETIC));
    EXPECT_EQ(pop(listener)->header.flags & FLAG_SYNTHETIC, FLAG_SYNTHETIC);
}

TEST_F(DeliveryTest, WantYouToReplyOnlyOnTheRepliersCopy) {
    auto sender = open();
    auto replier = open();
    auto listener = open();
    bind(replier, "$.q", true);
    bind(replier, "$.q");
    bind(listener, "$.q");
    Message m = makeMessage("$.q", "", FLAG_WANT_A_REPLY | FLAG_WANT_YOU_TO_REPLY);
    ASSERT_TRUE(bus.send(sender, m));
    auto first = pop(replier);
    auto second = pop(replier);
    ASSERT_TRUE(first && second);
    EXPECT_TRUE(first->wantsYouToReply()) << "the replier copy is pushed first";
    EXPECT_FALSE(second->wantsYouToReply());
    EXPECT_FALSE(pop(listener)->wantsYouToReply());
    EXPECT_TRUE(first->isRequest() && second->isRequest());
}

TEST_F(DeliveryTest, OneCopyPerMatchingBindingNewestBindingFirst) {
    auto sender = open();
    auto older = open();
    auto newer = open();
    bind(older, "$.a.b");
    bind(older, "$.a.b"); // a second identical binding gives a second copy
    bind(newer, "$.a.*");
    bind(newer, "$.a.%");
    (void)bus.takeWakeups();
    ASSERT_TRUE(announce(sender, "$.a.b"));
    EXPECT_EQ(queued(older), 2u);
    EXPECT_EQ(queued(newer), 2u);
    // Wakeups list Ksocks in the order their first copy landed.
    EXPECT_EQ(bus.takeWakeups(), (std::vector<KsockId>{newer, older}));
}

TEST_F(DeliveryTest, AnnouncementWithNoListenersSucceeds) {
    auto sender = open();
    EXPECT_TRUE(announce(sender, "$.nobody.listens"));
}

TEST_F(DeliveryTest, OnlyOnceGivesOneCopyAndKeepsTheRepliersOne) {
    auto sender = open();
    auto both = open();
    bind(both, "$.q", true);
    bind(both, "$.q");
    bind(both, "$.*");
    EXPECT_EQ(bus.onlyOnce(both, 1).value(), 0u);
    EXPECT_EQ(bus.onlyOnce(both, QUERY).value(), 1u);
    ASSERT_TRUE(request(sender, "$.q"));
    EXPECT_EQ(queued(both), 1u);
    EXPECT_TRUE(pop(both)->wantsYouToReply());
    ASSERT_TRUE(announce(sender, "$.q"));
    EXPECT_EQ(queued(both), 1u) << "two listener bindings, one copy";
    ASSERT_FALSE(bus.onlyOnce(both, 2));
    EXPECT_EQ(bus.onlyOnce(both, 2).error(), Errc::INVALID);
}

TEST_F(DeliveryTest, OnlyOnceAppliesPerSendNotAcrossSends) {
    auto sender = open();
    auto l = open();
    bind(l, "$.x");
    ASSERT_TRUE(bus.onlyOnce(l, 1));
    Message m = makeMessage("$.x");
    m.header.id = MsgId{9, 9}; // same network id twice: still two distinct sends
    ASSERT_TRUE(bus.send(sender, m));
    ASSERT_TRUE(bus.send(sender, m));
    EXPECT_EQ(queued(l), 2u);
}

TEST_F(DeliveryTest, UrgentMessagesGoToTheHeadInLifoOrder) {
    auto sender = open();
    auto l = open();
    bind(l, "$.*");
    ASSERT_TRUE(announce(sender, "$.normal1"));
    ASSERT_TRUE(announce(sender, "$.urgent1", FLAG_URGENT));
    ASSERT_TRUE(announce(sender, "$.normal2"));
    ASSERT_TRUE(announce(sender, "$.urgent2", FLAG_URGENT));
    EXPECT_EQ(drainNames(l),
              (std::vector<std::string>{"$.urgent2", "$.urgent1", "$.normal1", "$.normal2"}));
}

TEST_F(DeliveryTest, SendingToAWildcardNameIsBadMessage) {
    auto sender = open();
    EXPECT_EQ(errOf(announce(sender, "$.a.*")), Errc::BAD_NAME);
    EXPECT_EQ(errOf(announce(sender, "")), Errc::INVALID);
}

TEST_F(DeliveryTest, BothSendFlagsAreInvalid) {
    auto sender = open();
    EXPECT_EQ(errOf(announce(sender, "$.x", FLAG_ALL_OR_WAIT | FLAG_ALL_OR_FAIL)), Errc::INVALID);
}

TEST_F(DeliveryTest, RequestThatIsAlsoAReplyIsInvalid) {
    auto sender = open();
    Message m = makeMessage("$.x", "", FLAG_WANT_A_REPLY);
    m.header.inReplyTo = MsgId{0, 1};
    EXPECT_EQ(errOf(bus.send(sender, m)), Errc::INVALID);
}

TEST_F(DeliveryTest, ReadOnlyKsockListensButCannotSend) {
    auto sender = open();
    auto reader = open(false);
    bind(reader, "$.x");
    ASSERT_TRUE(announce(sender, "$.x"));
    EXPECT_TRUE(pop(reader));
    EXPECT_EQ(errOf(announce(reader, "$.x")), Errc::NOT_OPEN_FOR_WRITE);
    EXPECT_FALSE(bus.poll(reader)->writable);
}

TEST_F(DeliveryTest, PollReportsReadableAndWakeupsNameNewlyReadableKsocks) {
    auto sender = open();
    auto l = open();
    bind(l, "$.x");
    EXPECT_FALSE(bus.poll(l)->readable);
    (void)bus.takeWakeups();
    ASSERT_TRUE(announce(sender, "$.x"));
    EXPECT_TRUE(bus.poll(l)->readable);
    EXPECT_EQ(bus.takeWakeups(), std::vector<KsockId>{l});
    EXPECT_TRUE(bus.takeWakeups().empty());
}

TEST_F(DeliveryTest, NextMessageOnEmptyQueueReturnsNothing) {
    auto l = open();
    EXPECT_FALSE(pop(l));
}

TEST_F(DeliveryTest, UnknownKsockIsInvalid) {
    EXPECT_EQ(errOf(announce(12345, "$.x")), Errc::INVALID);
}

TEST_F(DeliveryTest, KsockIdsStartAtOneAndAreNotReused) {
    auto a = open();
    EXPECT_EQ(a, 1u);
    ASSERT_TRUE(bus.close(a));
    EXPECT_EQ(open(), 2u);
}

} // namespace
} // namespace xkbus::core::testing
