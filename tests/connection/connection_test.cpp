// The client connection against the real dispatcher and core, in-process:
// mirrors, one-way pops, the flush path, and what a dying peer leaves behind.
#include "../support/loopback_daemon.hpp"

#include <gtest/gtest.h>
#include <xkbus/frontend/connection.hpp>
#include <xkbus/frontend/message_text.hpp>

namespace xkbus::frontend {
namespace {

using testing::LoopbackDaemon;

class ConnectionTest : public ::testing::Test {
protected:
    std::shared_ptr<Connection> process(LoopbackDaemon::Link** linkOut = nullptr) {
        auto link = daemon.connect();
        if (linkOut != nullptr) {
            *linkOut = link.get();
        }
        return Connection::start(std::move(link), 1234).value();
    }

    LoopbackDaemon daemon;
};

TEST_F(ConnectionTest, AnnouncementReachesAnotherProcess) {
    auto a = process();
    auto b = process();
    auto sender = a->openKsock(0, true).value();
    auto listener = b->openKsock(0, false).value();
    ASSERT_TRUE(listener->bind("$.x.*", false));
    auto id = sender->send(textMessage("$.x.y", "hi", 0));
    ASSERT_TRUE(id);
    auto got = listener->nextMessage().value();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->name(), "$.x.y");
    EXPECT_EQ(got->header.id, *id);
    EXPECT_EQ(got->header.from, sender->id());
    EXPECT_EQ(got->data().size(), 2u);
    EXPECT_FALSE(listener->nextMessage().value());
    EXPECT_EQ(listener->send(textMessage("$.x.y")).error(), Errc::NOT_OPEN_FOR_WRITE);
}

TEST_F(ConnectionTest, RequestAndReplyAcrossProcesses) {
    auto a = process();
    auto b = process();
    auto sender = a->openKsock(0, true).value();
    auto replier = b->openKsock(0, true).value();
    ASSERT_TRUE(replier->bind("$.q", true));
    EXPECT_EQ(sender->findReplier("$.q").value(), replier->id());
    auto id = sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    auto req = replier->nextMessage().value();
    ASSERT_TRUE(req && req->wantsYouToReply());
    EXPECT_EQ(replier->control(Control::NUM_UNREPLIED_TO, 0).value(), 1u);
    Message answer = textMessage("$.q", "42", 0);
    answer.header.inReplyTo = req->header.id;
    answer.header.to = req->header.from;
    ASSERT_TRUE(replier->send(answer));
    auto got = sender->nextMessage().value();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->header.inReplyTo, id);
}

TEST_F(ConnectionTest, PopIsReportedSoADeadReaderOwesIgnoredNotGoneAway) {
    auto a = process();
    LoopbackDaemon::Link* replierLink = nullptr;
    auto b = process(&replierLink);
    auto sender = a->openKsock(0, true).value();
    auto replier = b->openKsock(0, true).value();
    ASSERT_TRUE(replier->bind("$.q", true));
    sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    ASSERT_TRUE(replier->nextMessage().value()); // popped locally, POP written
    EXPECT_EQ(replierLink->lazyWaiting(), 1u) << "the pop waits for the daemon to look";
    daemon.kill(*replierLink); // the process dies; the daemon reads what it wrote
    auto first = sender->nextMessage().value();
    auto second = sender->nextMessage().value();
    ASSERT_TRUE(first && second);
    EXPECT_EQ(first->name(), NAME_REPLIER_GONE_AWAY);
    EXPECT_EQ(second->name(), NAME_REPLIER_IGNORED);
    EXPECT_EQ(replier->bind("$.r", false).error(), Errc::DISCONNECTED);
}

TEST_F(ConnectionTest, ClosingAKsockSendsItsStatuses) {
    auto a = process();
    auto b = process();
    auto sender = a->openKsock(0, true).value();
    auto replier = b->openKsock(0, true).value();
    ASSERT_TRUE(replier->bind("$.q", true));
    sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    replier.reset(); // KsockChannel's destructor closes it
    EXPECT_EQ(sender->nextMessage().value()->name(), NAME_REPLIER_GONE_AWAY);
}

TEST_F(ConnectionTest, UnbindRemovesMirroredCopies) {
    auto a = process();
    auto k = a->openKsock(0, true).value();
    ASSERT_TRUE(k->bind("$.x", false));
    ASSERT_TRUE(k->send(textMessage("$.x")));
    ASSERT_TRUE(k->unbind("$.x", false));
    EXPECT_FALSE(k->nextMessage().value());
    EXPECT_EQ(k->control(Control::NUM_MESSAGES, 0).value(), 0u);
}

TEST_F(ConnectionTest, UrgentOrderSurvivesTheMirror) {
    auto a = process();
    auto b = process();
    auto sender = a->openKsock(0, true).value();
    auto l = b->openKsock(0, true).value();
    ASSERT_TRUE(l->bind("$.*", false));
    ASSERT_TRUE(sender->send(textMessage("$.one")));
    ASSERT_TRUE(sender->send(textMessage("$.two", "", FLAG_URGENT)));
    ASSERT_TRUE(sender->send(textMessage("$.three", "", FLAG_URGENT)));
    std::vector<std::string> names;
    while (auto m = l->nextMessage().value()) {
        names.emplace_back(m->name());
    }
    EXPECT_EQ(names, (std::vector<std::string>{"$.three", "$.two", "$.one"}));
}

TEST_F(ConnectionTest, LaggingMirrorFallsBackToTheDaemon) {
    auto a = process();
    LoopbackDaemon::Link* slowLink = nullptr;
    auto b = process(&slowLink);
    auto sender = a->openKsock(0, true).value();
    auto l = b->openKsock(0, true).value();
    ASSERT_TRUE(l->bind("$.x", false));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(sender->send(textMessage("$.x", std::to_string(i), 0)));
    }
    // The copies are queued in the core, but none has reached b's mirror yet,
    // and the rest trickle in one record per look.
    slowLink->holdUntilNextSend = true;
    slowLink->maxPerReceive = 1;
    std::string order;
    while (auto m = l->nextMessage().value()) {
        order.append(reinterpret_cast<const char*>(m->data().data()), m->data().size());
    }
    EXPECT_EQ(order, "01234");
    EXPECT_NE(std::find(daemon.received.begin(), daemon.received.end(), protocol::RecordType::NEXT),
              daemon.received.end())
        << "the empty mirror asked the daemon";
    EXPECT_EQ(l->control(Control::NUM_MESSAGES, 0).value(), 0u);
}

TEST_F(ConnectionTest, BlockedSendFinishesWhenRoomAppears) {
    auto a = process();
    auto b = process();
    auto sender = a->openKsock(0, true).value();
    auto slow = b->openKsock(0, true).value();
    ASSERT_TRUE(slow->bind("$.x", false));
    ASSERT_EQ(slow->control(Control::MAX_MESSAGES, 1).value(), 1u);
    ASSERT_TRUE(sender->send(textMessage("$.x")));
    EXPECT_EQ(sender->send(textMessage("$.x", "", FLAG_ALL_OR_WAIT)).error(), Errc::TRY_AGAIN);
    EXPECT_EQ(sender->send(textMessage("$.y")).error(), Errc::STILL_SENDING);
    ASSERT_TRUE(slow->nextMessage().value());
    EXPECT_TRUE(slow->nextMessage().value()) << "the blocked send arrived";
    EXPECT_TRUE(sender->send(textMessage("$.y"))) << "and the sender may send again";
}

TEST_F(ConnectionTest, ManyKsocksShareOneConnection) {
    auto a = process();
    auto sender = a->openKsock(0, true).value();
    std::vector<std::unique_ptr<KsockChannel>> listeners;
    for (int i = 0; i < 1000; ++i) {
        listeners.push_back(a->openKsock(0, false).value());
        ASSERT_TRUE(listeners.back()->bind("$.all", false));
    }
    ASSERT_TRUE(sender->send(textMessage("$.all")));
    for (auto& l : listeners) {
        ASSERT_TRUE(l->nextMessage().value());
    }
}

// A pop is reported lazily; an URGENT copy queued at the head before the
// daemon reads the report must not be mistaken for the popped one.
TEST_F(ConnectionTest, AnUrgentCopyArrivingBeforeAPopIsReportedIsNotPoppedForIt) {
    auto a = process();
    LoopbackDaemon::Link* readerLink = nullptr;
    auto b = process(&readerLink);
    auto sender = a->openKsock(0, true).value();
    auto reader = b->openKsock(0, true).value();
    ASSERT_TRUE(reader->bind("$.*", false));
    ASSERT_TRUE(sender->send(textMessage("$.one")));
    ASSERT_TRUE(sender->send(textMessage("$.two")));
    EXPECT_EQ(reader->nextMessage().value()->name(), "$.one");
    ASSERT_EQ(readerLink->lazyWaiting(), 1u) << "the daemon has not read the pop yet";
    ASSERT_TRUE(sender->send(textMessage("$.urgent", "", FLAG_URGENT)));
    EXPECT_EQ(reader->nextMessage().value()->name(), "$.urgent");
    // The next call carries both pops: the daemon must pop exactly those two.
    EXPECT_EQ(reader->control(Control::NUM_MESSAGES, 0).value(), 1u);
    EXPECT_EQ(reader->nextMessage().value()->name(), "$.two");
    EXPECT_FALSE(reader->nextMessage().value());
    EXPECT_EQ(reader->control(Control::NUM_MESSAGES, 0).value(), 0u);
}

// A queue at half its limit asks for prompt pop reports, so a sender never
// finds it full for room its reader has already made.
TEST_F(ConnectionTest, AFillingQueueGetsItsPopsReportedAtOnce) {
    auto a = process();
    LoopbackDaemon::Link* readerLink = nullptr;
    auto b = process(&readerLink);
    auto sender = a->openKsock(0, true).value();
    auto reader = b->openKsock(0, true).value();
    ASSERT_TRUE(reader->bind("$.x", false));
    ASSERT_EQ(reader->control(Control::MAX_MESSAGES, 4).value(), 4u);
    ASSERT_TRUE(sender->send(textMessage("$.x")));
    ASSERT_TRUE(reader->nextMessage().value());
    EXPECT_EQ(readerLink->lazyWaiting(), 1u) << "a quarter full: the pop may wait";
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(sender->send(textMessage("$.x")));
    }
    // The daemon sees 4 queued (the first pop unread): every send fails...
    EXPECT_EQ(sender->send(textMessage("$.x", "", FLAG_ALL_OR_FAIL)).error(), Errc::QUEUE_FULL);
    ASSERT_TRUE(reader->nextMessage().value());
    EXPECT_EQ(readerLink->lazyWaiting(), 0u) << "over half full: pops go at once";
    EXPECT_TRUE(sender->send(textMessage("$.x", "", FLAG_ALL_OR_FAIL)))
        << "room the reader made is room the sender finds";
}

TEST_F(ConnectionTest, NewBusAndUnknownBus) {
    auto a = process();
    auto k = a->openKsock(0, true).value();
    EXPECT_EQ(k->newBus().value(), 1u);
    EXPECT_TRUE(a->openKsock(1, true));
    EXPECT_EQ(a->openKsock(7, true).error(), Errc::NO_SUCH_DEVICE);
}

} // namespace
} // namespace xkbus::frontend
