// Replies, stateful requests, and the guaranteed reply when a replier unbinds
// or closes.
#include "bus_fixture.hpp"

namespace xkbus::core::testing {
namespace {

using ReplyTest = BusTest;

TEST_F(ReplyTest, RequestWithNoReplierIsAddrNotAvailAndQueuesNothing) {
    auto sender = open();
    auto listener = open();
    bind(listener, "$.q");
    EXPECT_EQ(errOf(request(sender, "$.q")), Errc::NO_RECIPIENT);
    EXPECT_EQ(queued(listener), 0u);
}

TEST_F(ReplyTest, ReplyGoesToSenderFirstThenListenersNotTheReplier) {
    auto sender = open();
    auto replier = open();
    auto listener = open();
    bind(replier, "$.q", true);
    bind(listener, "$.q");
    auto id = request(sender, "$.q").value();
    auto req = pop(replier);
    ASSERT_TRUE(req);
    EXPECT_EQ(req->header.id, id);
    pop(listener);
    (void)bus.takeWakeups();
    auto replyId = reply(replier, *req, "answer").value();
    EXPECT_EQ(bus.takeWakeups(), (std::vector<KsockId>{sender, listener}));
    auto got = pop(sender);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->header.inReplyTo, id);
    EXPECT_EQ(got->header.id, replyId);
    EXPECT_EQ(got->header.from, replier);
    EXPECT_TRUE(pop(listener));
    EXPECT_FALSE(pop(replier)) << "repliers only receive requests";
    EXPECT_EQ(bus.numUnrepliedTo(replier).value(), 0u);
}

TEST_F(ReplyTest, OnlyTheSendersCopyForgetsTheOutstandingRequest) {
    // KBUS issue 69: a listener's copy of a reply must not settle the request.
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    bind(sender, "$.q"); // the sender also listens: it gets two copies of the reply
    request(sender, "$.q").value();
    pop(sender); // its listener copy of the request
    auto req = pop(replier);
    ASSERT_TRUE(reply(replier, *req));
    EXPECT_EQ(queued(sender), 2u);
    EXPECT_EQ(bus.stats().ksocks[0].awaitingReplies, 0u);
}

TEST_F(ReplyTest, ReplyToAnUnknownIdOrTwiceIsConnRefused) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    request(sender, "$.q").value();
    auto req = pop(replier);
    Message wrong = *req;
    wrong.header.id.serialNum += 100;
    EXPECT_EQ(errOf(reply(replier, wrong)), Errc::REPLY_NOT_EXPECTED);
    ASSERT_TRUE(reply(replier, *req));
    EXPECT_EQ(errOf(reply(replier, *req)), Errc::REPLY_NOT_EXPECTED) << "second reply";
}

TEST_F(ReplyTest, OnlyTheKsockThatPoppedTheRequestMayReply) {
    auto sender = open();
    auto replier = open();
    auto intruder = open();
    bind(replier, "$.q", true);
    bind(intruder, "$.q");
    request(sender, "$.q").value();
    auto copy = pop(intruder);
    EXPECT_EQ(errOf(reply(intruder, *copy)), Errc::REPLY_NOT_EXPECTED);
    auto req = pop(replier);
    EXPECT_TRUE(reply(replier, *req)) << "the real replier's answer is not refused";
}

TEST_F(ReplyTest, ReplyToAClosedSenderIsAddrNotAvailAndVoidsTheDebt) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    request(sender, "$.q").value();
    auto req = pop(replier);
    ASSERT_TRUE(bus.close(sender));
    EXPECT_EQ(errOf(reply(replier, *req)), Errc::NO_RECIPIENT);
    EXPECT_EQ(bus.numUnrepliedTo(replier).value(), 0u) << "nobody is left to answer";
}

TEST_F(ReplyTest, StatefulRequestToTheWrongReplierIsEpipe) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    EXPECT_EQ(errOf(request(sender, "$.q", 0, replier + 100)), Errc::WRONG_REPLIER);
    EXPECT_TRUE(request(sender, "$.q", 0, replier));
    EXPECT_EQ(errOf(request(sender, "$.none", 0, replier)), Errc::NO_RECIPIENT);
}

TEST_F(ReplyTest, UnbindRemovesQueuedRequestsWithUnbound) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    auto id = request(sender, "$.q").value();
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    EXPECT_EQ(queued(replier), 0u);
    auto status = pop(sender);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->name(), NAME_REPLIER_UNBOUND);
    EXPECT_EQ(status->header.inReplyTo, id);
    EXPECT_EQ(status->header.from, replier);
    EXPECT_EQ(status->header.to, sender);
    EXPECT_EQ(status->header.flags, FLAG_SYNTHETIC);
    EXPECT_TRUE(status->data().empty());
}

TEST_F(ReplyTest, UnbindLeavesPoppedRequestsToBeAnswered) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    request(sender, "$.q").value();
    auto req = pop(replier);
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    EXPECT_FALSE(pop(sender));
    EXPECT_TRUE(reply(replier, *req));
}

TEST_F(ReplyTest, UnbindRemovesOnlyWhatThatBindingQueuedNewestFirst) {
    auto sender = open();
    auto l = open();
    bind(l, "$.x");
    ASSERT_TRUE(announce(sender, "$.x", 0, "one"));
    bind(l, "$.x");
    ASSERT_TRUE(announce(sender, "$.x", 0, "two")); // two copies, one per binding
    ASSERT_TRUE(bus.unbind(l, "$.x", false));       // the newer binding goes
    std::vector<std::string> data;
    while (auto m = pop(l)) {
        data.emplace_back(reinterpret_cast<const char*>(m->data().data()), m->data().size());
    }
    EXPECT_EQ(data, (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(errOf(bus.unbind(l, "$.x", true)), Errc::INVALID) << "must match exactly";
    ASSERT_TRUE(bus.unbind(l, "$.x", false));
    EXPECT_EQ(errOf(bus.unbind(l, "$.x", false)), Errc::INVALID);
}

TEST_F(ReplyTest, StatefulRequestsGetUnboundAndGoneAwayToo) {
    // KBUS suppressed both for requests addressed `to` the replier.
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    request(sender, "$.q", 0, replier).value();
    ASSERT_TRUE(bus.unbind(replier, "$.q", true));
    EXPECT_EQ(pop(sender)->name(), NAME_REPLIER_UNBOUND);
    bind(replier, "$.q", true);
    request(sender, "$.q", 0, replier).value();
    ASSERT_TRUE(bus.close(replier));
    EXPECT_EQ(pop(sender)->name(), NAME_REPLIER_GONE_AWAY);
}

TEST_F(ReplyTest, RequestToSelfGetsUnboundOnUnbind) {
    auto self = open();
    bind(self, "$.q", true);
    auto id = request(self, "$.q").value();
    ASSERT_TRUE(bus.unbind(self, "$.q", true));
    auto status = pop(self);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->name(), NAME_REPLIER_UNBOUND);
    EXPECT_EQ(status->header.inReplyTo, id);
}

TEST_F(ReplyTest, CloseSendsGoneAwayForQueuedAndIgnoredForPopped) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    auto first = request(sender, "$.q").value();
    auto second = request(sender, "$.q").value();
    auto third = request(sender, "$.q").value();
    ASSERT_TRUE(pop(replier)); // first: popped, never answered
    EXPECT_EQ(bus.numUnrepliedTo(replier).value(), 1u);
    ASSERT_TRUE(bus.close(replier));
    std::vector<std::pair<std::string, MsgId>> got;
    while (auto m = pop(sender)) {
        got.emplace_back(std::string(m->name()), m->header.inReplyTo);
        EXPECT_EQ(m->header.from, replier);
        EXPECT_EQ(m->header.flags, FLAG_SYNTHETIC);
    }
    const std::vector<std::pair<std::string, MsgId>> want = {
        {std::string(NAME_REPLIER_GONE_AWAY), second},
        {std::string(NAME_REPLIER_GONE_AWAY), third},
        {std::string(NAME_REPLIER_IGNORED), first},
    };
    EXPECT_EQ(got, want);
    EXPECT_EQ(bus.stats().ksocks[0].awaitingReplies, 0u);
}

TEST_F(ReplyTest, StatusIdsComeFromTheBusSerial) {
    auto sender = open();
    auto replier = open();
    bind(replier, "$.q", true);
    auto id = request(sender, "$.q").value();
    ASSERT_TRUE(bus.close(replier));
    auto status = pop(sender);
    EXPECT_EQ(status->header.id, (MsgId{0, id.serialNum + 1}));
}

TEST_F(ReplyTest, FindReplierResolvesWildcardsLikeASend) {
    // KBUS's REPLIER ioctl compared exact strings, so a name served by a
    // wildcard replier looked unserved.
    auto star = open();
    auto exact = open();
    bind(star, "$.a.*", true);
    bind(exact, "$.a.b", true);
    EXPECT_EQ(bus.findReplier("$.a.b").value(), exact);
    EXPECT_EQ(bus.findReplier("$.a.c.d").value(), star);
    EXPECT_EQ(bus.findReplier("$.zzz").value(), 0u);
    EXPECT_EQ(bus.findReplier("$.a.*").value(), 0u) << "no request can carry a wildcard name";
    ASSERT_FALSE(bus.findReplier(""));
    EXPECT_EQ(bus.findReplier("").error(), Errc::NAME_TOO_LONG);
}

TEST_F(ReplyTest, OneReplierPerExactNameButWildcardsMayCoexist) {
    auto a = open();
    auto b = open();
    bind(a, "$.Fred.*", true);
    bind(a, "$.Fred.Jim", true);
    EXPECT_EQ(errOf(bus.bind(b, "$.Fred.Jim", true)), Errc::REPLIER_EXISTS);
    EXPECT_TRUE(bus.bind(b, "$.Fred.Jim", false)) << "listeners are unlimited";
}

TEST_F(ReplyTest, ReplierBindEventNameCannotBeBoundAsReplier) {
    auto a = open();
    EXPECT_EQ(errOf(bus.bind(a, NAME_REPLIER_BIND_EVENT, true)), Errc::BAD_NAME);
    EXPECT_TRUE(bus.bind(a, NAME_REPLIER_BIND_EVENT, false));
}

} // namespace
} // namespace xkbus::core::testing
