// Queue limits: MAXMSGS, the reply slot, ENOLCK, EBUSY, ALL_OR_FAIL and
// ALL_OR_WAIT with its sending state.
#include "bus_fixture.hpp"

namespace xkbus::core::testing {
namespace {

using QueueTest = BusTest;

TEST_F(QueueTest, MaxMessagesDefaultsToOneHundredAndZeroQueries) {
    auto a = open();
    EXPECT_EQ(bus.maxMessages(a, 0).value(), 100u);
    EXPECT_EQ(bus.maxMessages(a, 3).value(), 3u);
    EXPECT_EQ(bus.maxMessages(a, 0).value(), 3u);
}

TEST_F(QueueTest, FullListenerSilentlyMissesByDefault) {
    auto sender = open();
    auto full = open();
    auto roomy = open();
    bind(full, "$.x");
    bind(roomy, "$.x");
    ASSERT_TRUE(bus.maxMessages(full, 1));
    ASSERT_TRUE(announce(sender, "$.x"));
    ASSERT_TRUE(announce(sender, "$.x"));
    EXPECT_EQ(queued(full), 1u);
    EXPECT_EQ(queued(roomy), 2u);
}

TEST_F(QueueTest, AllOrFailDeliversNothingWhenAnyListenerIsFull) {
    auto sender = open();
    auto full = open();
    auto roomy = open();
    bind(roomy, "$.x");
    bind(full, "$.x");
    ASSERT_TRUE(bus.maxMessages(full, 1));
    ASSERT_TRUE(announce(sender, "$.x"));
    EXPECT_EQ(errOf(announce(sender, "$.x", FLAG_ALL_OR_FAIL)), Errc::QUEUE_FULL);
    EXPECT_EQ(queued(roomy), 1u) << "nothing partial delivered";
    EXPECT_FALSE(sending(sender)) << "ALL_OR_FAIL never leaves a send pending";
}

TEST_F(QueueTest, ListenerBoundTwiceNeedsRoomForBothCopies) {
    auto sender = open();
    auto twice = open();
    bind(twice, "$.x");
    bind(twice, "$.x");
    ASSERT_TRUE(bus.maxMessages(twice, 1));
    EXPECT_EQ(errOf(announce(sender, "$.x", FLAG_ALL_OR_FAIL)), Errc::QUEUE_FULL);
    ASSERT_TRUE(announce(sender, "$.x"));
    EXPECT_EQ(queued(twice), 1u) << "the limit is never exceeded";
}

TEST_F(QueueTest, FullReplierIsBusyButTheIdIsAssigned) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    ASSERT_TRUE(bus.maxMessages(replier, 1));
    ASSERT_TRUE(request(sender, "$.q"));
    auto second = request(sender, "$.q");
    EXPECT_EQ(errOf(second), Errc::QUEUE_FULL);
    EXPECT_EQ(bus.lastSent(sender).value(), (MsgId{0, 2}));
    EXPECT_EQ(bus.stats().ksocks[0].awaitingReplies, 1u) << "only the delivered request waits";
}

TEST_F(QueueTest, RequestReservesAReplySlotAndNoRoomIsEnolck) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    ASSERT_TRUE(bus.maxMessages(sender, 2));
    ASSERT_TRUE(request(sender, "$.q"));
    ASSERT_TRUE(request(sender, "$.q"));
    const MsgId before = bus.lastSent(sender).value();
    EXPECT_EQ(errOf(request(sender, "$.q")), Errc::NO_REPLY_SLOT);
    EXPECT_EQ(bus.lastSent(sender).value(), before) << "no id assigned";
    EXPECT_FALSE(sending(sender)) << "not left sending";
    // Announcements need no reply slot.
    EXPECT_TRUE(announce(sender, "$.other"));
}

TEST_F(QueueTest, ReservedSlotsKeepListenersOut) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    bind(sender, "$.news");
    ASSERT_TRUE(bus.maxMessages(sender, 1));
    ASSERT_TRUE(request(sender, "$.q"));
    ASSERT_TRUE(announce(replier, "$.news"));
    EXPECT_EQ(queued(sender), 0u) << "the only slot is held for the reply";
    auto req = pop(replier);
    ASSERT_TRUE(reply(replier, *req));
    EXPECT_EQ(queued(sender), 1u) << "the reply always fits";
}

TEST_F(QueueTest, ReplyFitsEvenAfterTheSenderLowersItsLimit) {
    auto sender = open();
    auto replier = open();
    auto chatter = open();
    bind(replier, "$.q", true);
    bind(sender, "$.news");
    ASSERT_TRUE(request(sender, "$.q"));
    ASSERT_TRUE(announce(chatter, "$.news"));
    ASSERT_TRUE(announce(chatter, "$.news"));
    ASSERT_TRUE(bus.maxMessages(sender, 1)); // now over its limit
    auto req = pop(replier);
    EXPECT_TRUE(reply(replier, *req)) << "the reserved slot is honoured";
    EXPECT_EQ(queued(sender), 3u);
}

TEST_F(QueueTest, AllOrWaitReturnsTryAgainAndStaysSending) {
    auto sender = open();
    auto full = open();
    bind(full, "$.x");
    ASSERT_TRUE(bus.maxMessages(full, 1));
    ASSERT_TRUE(announce(sender, "$.x"));
    auto r = announce(sender, "$.x", FLAG_ALL_OR_WAIT);
    EXPECT_EQ(errOf(r), Errc::TRY_AGAIN);
    EXPECT_EQ(bus.lastSent(sender).value(), (MsgId{0, 2})) << "the id is assigned";
    EXPECT_TRUE(sending(sender));
    EXPECT_EQ(errOf(announce(sender, "$.y")), Errc::STILL_SENDING);
    EXPECT_TRUE(bus.stats().ksocks[0].sending) << "the pending message survives EALREADY";
}

TEST_F(QueueTest, AllOrWaitCompletesWhenRoomAppears) {
    auto sender = open();
    auto full = open();
    bind(full, "$.x");
    ASSERT_TRUE(bus.maxMessages(full, 1));
    ASSERT_TRUE(announce(sender, "$.x", 0, "first"));
    ASSERT_EQ(errOf(announce(sender, "$.x", FLAG_ALL_OR_WAIT, "second")), Errc::TRY_AGAIN);
    (void)bus.takeQueueEvents();
    auto first = pop(full);
    ASSERT_TRUE(first);
    EXPECT_FALSE(sending(sender)) << "the retry ran when room appeared";
    auto events = bus.takeQueueEvents();
    EXPECT_NE(std::find_if(events.begin(), events.end(),
                           [&](const QueueEvent& e) {
                               return e.kind == QueueEvent::Kind::SEND_FINISHED &&
                                      e.ksock == sender;
                           }),
              events.end())
        << "the sender is told";
    auto second = pop(full);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->header.id, (MsgId{0, 2}));
    EXPECT_TRUE(announce(sender, "$.y"));
}

TEST_F(QueueTest, DiscardDropsThePendingSend) {
    auto sender = open();
    auto full = open();
    bind(full, "$.x");
    ASSERT_TRUE(bus.maxMessages(full, 1));
    ASSERT_TRUE(announce(sender, "$.x"));
    ASSERT_EQ(errOf(announce(sender, "$.x", FLAG_ALL_OR_WAIT)), Errc::TRY_AGAIN);
    ASSERT_TRUE(bus.discard(sender));
    EXPECT_FALSE(sending(sender));
    pop(full);
    EXPECT_FALSE(pop(full)) << "the discarded message never arrives";
}

TEST_F(QueueTest, PendingRequestWhoseReplierLeavesGetsDisappeared) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    ASSERT_TRUE(bus.maxMessages(replier, 1));
    ASSERT_TRUE(request(sender, "$.q"));
    auto blocked = request(sender, "$.q", FLAG_ALL_OR_WAIT);
    ASSERT_EQ(errOf(blocked), Errc::TRY_AGAIN);
    const MsgId blockedId = bus.lastSent(sender).value();
    ASSERT_TRUE(bus.close(replier));
    EXPECT_FALSE(sending(sender));
    auto first = pop(sender);
    auto second = pop(sender);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(first->name(), NAME_REPLIER_GONE_AWAY);
    EXPECT_EQ(second->name(), NAME_REPLIER_DISAPPEARED);
    EXPECT_EQ(second->header.inReplyTo, blockedId);
    EXPECT_EQ(second->header.from, 0u);
    EXPECT_EQ(second->header.flags, FLAG_SYNTHETIC);
}

TEST_F(QueueTest, PendingStatefulRequestToAReplacedReplierGetsErrorSending) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    ASSERT_TRUE(bus.maxMessages(replier, 1));
    ASSERT_TRUE(request(sender, "$.q"));
    ASSERT_EQ(errOf(request(sender, "$.q", FLAG_ALL_OR_WAIT, replier)), Errc::TRY_AGAIN);
    const MsgId blockedId = bus.lastSent(sender).value();
    // A wildcard replier stands behind; when the specific one unbinds (its
    // queued request gets Unbound), the retry finds the wrong replier.
    auto other = open();
    bind(other, "$.*", true);
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    std::vector<std::string> names;
    std::vector<MsgId> about;
    while (auto m = pop(sender)) {
        names.emplace_back(m->name());
        about.push_back(m->header.inReplyTo);
    }
    ASSERT_EQ(names.size(), 2u);
    EXPECT_EQ(names[0], NAME_REPLIER_UNBOUND);
    EXPECT_EQ(names[1], NAME_ERROR_SENDING);
    EXPECT_EQ(about[1], blockedId);
}

// Issue 16: the replier of a blocked stateful request unbinds and another
// Ksock binds the name before room appears. The retry finds a different
// replier (EPIPE): ErrorSending, as KBUS; Disappeared is for no replier at all.
TEST_F(QueueTest, BlockedStatefulRequestWhoseReplierIsReplacedGetsErrorSending) {
    auto sender = open();
    auto replier = open();
    auto listener = open();
    bind(replier, "$.q", true);
    bind(listener, "$.q");
    ASSERT_TRUE(bus.maxMessages(listener, 1));
    ASSERT_TRUE(announce(sender, "$.q"));
    ASSERT_EQ(errOf(request(sender, "$.q", FLAG_ALL_OR_WAIT, replier)), Errc::TRY_AGAIN);
    const MsgId blockedId = bus.lastSent(sender).value();
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    auto successor = open();
    bind(successor, "$.q", true);
    EXPECT_TRUE(sending(sender)) << "still blocked on the full listener";
    ASSERT_TRUE(pop(listener));
    EXPECT_FALSE(sending(sender));
    auto status = pop(sender);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->name(), NAME_ERROR_SENDING);
    EXPECT_EQ(status->header.inReplyTo, blockedId);
    EXPECT_EQ(status->header.from, 0u);
    EXPECT_FALSE(pop(successor)) << "the request went nowhere";
}

// With no replier at all when the retry runs, it is Disappeared.
TEST_F(QueueTest, BlockedStatefulRequestWhoseReplierUnbindsGetsDisappeared) {
    auto sender = open();
    auto replier = open();
    auto listener = open();
    bind(replier, "$.q", true);
    bind(listener, "$.q");
    ASSERT_TRUE(bus.maxMessages(listener, 1));
    ASSERT_TRUE(announce(sender, "$.q"));
    ASSERT_EQ(errOf(request(sender, "$.q", FLAG_ALL_OR_WAIT, replier)), Errc::TRY_AGAIN);
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    ASSERT_TRUE(pop(listener));
    auto status = pop(sender);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->name(), NAME_REPLIER_DISAPPEARED);
}

TEST_F(QueueTest, MaxMessageSizeDefaultsTo409600AndIsEnforced) {
    auto sender = open();
    EXPECT_EQ(bus.maxMessageSize(QUERY_CURRENT_SIZE).value(), 409600u);
    EXPECT_EQ(bus.maxMessageSize(QUERY_ABSOLUTE_SIZE).value(), 409600u);
    const std::string name = "$.big";
    const size_t fits = 409600 - entireMessageLength(name.size(), 0) - 4;
    EXPECT_TRUE(announce(sender, name, 0, std::string(fits, 'x')));
    EXPECT_EQ(errOf(announce(sender, name, 0, std::string(fits + 5, 'x'))), Errc::MESSAGE_TOO_BIG);
    ASSERT_FALSE(bus.maxMessageSize(99));
    EXPECT_EQ(bus.maxMessageSize(99).error(), Errc::INVALID);
    ASSERT_FALSE(bus.maxMessageSize(409601));
    EXPECT_EQ(bus.maxMessageSize(200).value(), 200u);
    EXPECT_EQ(errOf(announce(sender, name, 0, std::string(200, 'x'))), Errc::MESSAGE_TOO_BIG);
}

} // namespace
} // namespace xkbus::core::testing

namespace xkbus::core::testing {
namespace {

TEST(ChargeGroups, AGroupOverItsByteQuotaIsFullForEveryMember) {
    const uint64_t one = entireMessageLength(4, 100); // "$.x" + 100 bytes: 196
    Bus bus{0, BusConfig{.limits = {.queuedBytes = 2 * one}}};
    auto sender = bus.open().value();
    auto a = bus.open(OpenOptions{.chargeGroup = 7}).value();
    auto b = bus.open(OpenOptions{.chargeGroup = 7}).value();
    auto other = bus.open(OpenOptions{.chargeGroup = 8}).value();
    for (auto k : {a, b, other}) {
        ASSERT_TRUE(bus.bind(k, "$.xy", false));
    }
    const std::string data(100, 'd');
    ASSERT_TRUE(bus.send(sender, makeMessage("$.xy", data)));
    // Group 7 now holds two copies: it is at its quota. Group 8 holds one.
    EXPECT_EQ(bus.send(sender, makeMessage("$.xy", data, FLAG_ALL_OR_FAIL)).error(),
              Errc::QUEUE_FULL);
    ASSERT_TRUE(bus.send(sender, makeMessage("$.xy", data))); // default: group 7 misses it
    EXPECT_EQ(bus.numMessages(a).value(), 1u);
    EXPECT_EQ(bus.numMessages(other).value(), 2u);
    ASSERT_TRUE(bus.nextMessage(a).value()); // popping gives the group room again
    ASSERT_TRUE(bus.send(sender, makeMessage("$.xy", data)));
    // Room for one copy in group 7: the newest binding (b's) takes it.
    EXPECT_EQ(bus.numMessages(b).value(), 2u);
    EXPECT_EQ(bus.numMessages(a).value(), 0u) << "a is full as a member of group 7";
    auto stats = bus.stats();
    ASSERT_EQ(stats.queuedBytesByGroup.size(), 3u); // groups 0 (sender), 7 and 8
    EXPECT_EQ(stats.queuedBytesByGroup[1], (std::pair<uint32_t, uint64_t>{7, 2 * one}));
    EXPECT_EQ(stats.queuedBytesByGroup[2], (std::pair<uint32_t, uint64_t>{8, 2 * one}))
        << "at quota too";
}

// The place for a reply is held from the request on, but its bytes are not
// known until it comes: they need room in the asker's group like any copy.
TEST(ChargeGroups, AReplyNeedsRoomForItsBytesInTheAskersGroup) {
    Bus bus{0, BusConfig{.limits = {.queuedBytes = 300}}};
    auto sender = bus.open(OpenOptions{.chargeGroup = 1}).value();
    auto replier = bus.open(OpenOptions{.chargeGroup = 2}).value();
    ASSERT_TRUE(bus.bind(replier, "$.q", true));
    auto id = bus.send(sender, makeMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    auto req = bus.nextMessage(replier).value();
    Message big = makeMessage("$.q", std::string(1000, 'r'));
    big.header.inReplyTo = id;
    big.header.to = sender;
    EXPECT_EQ(bus.send(replier, big).error(), Errc::QUEUE_FULL);
    EXPECT_EQ(bus.numUnrepliedTo(replier).value(), 1u) << "still owed: it may answer again";
    EXPECT_EQ(bus.inspect(sender)->awaitingReplies, 1u);
    Message small = makeMessage("$.q", "r");
    small.header.inReplyTo = id;
    small.header.to = sender;
    EXPECT_TRUE(bus.send(replier, small));
    EXPECT_EQ(bus.nextMessage(sender).value()->text(), "r");
}

} // namespace
} // namespace xkbus::core::testing
