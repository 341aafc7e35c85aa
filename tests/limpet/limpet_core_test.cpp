// The Limpet rules on in-memory buses (limpet_harness.hpp): every topology and
// failure of docs/limpet.md, deterministic, with the codec on every frame.
#include "limpet_harness.hpp"

#include <xkbus/common/message.hpp>

namespace xkbus::limpet::testing {
namespace {

// A client Ksock on one in-memory bus.
class Client {
public:
    explicit Client(core::Bus& bus) : m_bus(bus), m_id(bus.open().value()) {}
    KsockId id() const { return m_id; }
    void listen(std::string_view name) { ASSERT_TRUE(m_bus.bind(m_id, name, false)); }
    void serve(std::string_view name) { ASSERT_TRUE(m_bus.bind(m_id, name, true)); }
    void unserve(std::string_view name) { ASSERT_TRUE(m_bus.unbind(m_id, name, true)); }
    MsgId announce(std::string_view name, std::string_view data = "x") {
        return m_bus.send(m_id, makeMessage(name, data)).value();
    }
    MsgId request(std::string_view name, std::string_view data = "q") {
        return m_bus.send(m_id, makeMessage(name, data, FLAG_WANT_A_REPLY)).value();
    }
    Result<MsgId> reply(const Message& request, std::string_view data) {
        Message r = makeMessage(request.name(), data);
        r.header.inReplyTo = request.header.id;
        r.header.to = request.header.from;
        return m_bus.send(m_id, r);
    }
    std::optional<Message> next() { return m_bus.nextMessage(m_id).value(); }
    std::vector<Message> drain() {
        std::vector<Message> out;
        while (auto m = next()) {
            out.push_back(std::move(*m));
        }
        return out;
    }
    void close() { ASSERT_TRUE(m_bus.close(m_id)); }

private:
    core::Bus& m_bus;
    KsockId m_id;
};

std::string text(const Message& m) {
    return {reinterpret_cast<const char*>(m.data().data()), m.data().size()};
}

// Serves one request waiting at `replier` with `answer`.
void answerOne(Client& replier, std::string_view answer) {
    auto request = replier.next();
    ASSERT_TRUE(request.has_value());
    ASSERT_TRUE(request->wantsYouToReply());
    ASSERT_TRUE(replier.reply(*request, answer));
}

TEST(Limpet, RequestAndReplyCrossTwoBuses) {
    World w(2);
    Client replier(w.bus(1));
    replier.serve("$.Svc.Echo"); // bound before the Limpet starts
    w.join(0, 1, 10, 11);
    w.pump();
    Client sender(w.bus(0));
    const MsgId sent = sender.request("$.Svc.Echo", "ping");
    w.pump();
    auto request = replier.next();
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ(text(*request), "ping");
    EXPECT_EQ(request->header.origFrom.networkId, 10u) << "orig_from names the sender's side";
    EXPECT_EQ(request->header.origFrom.localId, sender.id());
    ASSERT_TRUE(replier.reply(*request, "pong"));
    w.pump();
    auto reply = sender.next();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(text(*reply), "pong");
    EXPECT_EQ(reply->header.inReplyTo, sent);
    EXPECT_EQ(reply->header.flags & FLAG_SYNTHETIC, 0u);
    EXPECT_EQ(reply->header.origFrom, (OrigFrom{11, replier.id()}))
        << "orig_from names the replier";
    EXPECT_FALSE(sender.next().has_value()) << "exactly one answer";
}

TEST(Limpet, AWildcardReplierOnTheFarBusIsReachable) {
    World w(2);
    w.join(0, 1, 10, 11);
    Client replier(w.bus(1));
    replier.serve("$.Svc.*");
    w.pump();
    Client sender(w.bus(0));
    sender.request("$.Svc.Anything.Deep");
    w.pump();
    answerOne(replier, "ok");
    w.pump();
    auto reply = sender.next();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(text(*reply), "ok");
}

TEST(Limpet, AChainOfFourBusesCarriesRequestsAndAnnouncementsEachOnce) {
    World w(4);
    w.join(0, 1, 10, 11);
    w.join(1, 2, 12, 13);
    w.join(2, 3, 14, 15);
    Client replier(w.bus(3));
    replier.serve("$.Far.Svc");
    std::vector<std::unique_ptr<Client>> listeners;
    for (size_t b = 0; b < 4; ++b) {
        listeners.push_back(std::make_unique<Client>(w.bus(b)));
        listeners.back()->listen(b % 2 == 0 ? "$.Sensors.*" : "$.Sensors.%");
    }
    w.pump();
    Client sender(w.bus(0));
    sender.announce("$.Sensors.Kitchen", "21C");
    sender.request("$.Far.Svc", "hello");
    w.pump();
    for (auto& l : listeners) {
        auto got = l->drain();
        ASSERT_EQ(got.size(), 1u) << "one copy on every bus of the chain";
        EXPECT_EQ(text(got[0]), "21C");
    }
    answerOne(replier, "from bus 3");
    w.pump();
    auto reply = sender.drain();
    ASSERT_EQ(reply.size(), 1u);
    EXPECT_EQ(text(reply[0]), "from bus 3");
    EXPECT_EQ(reply[0].header.origFrom, (OrigFrom{15, replier.id()}));
}

TEST(Limpet, AStatefulRequestReachesTheSameReplierOrGetsAStatus) {
    World w(3);
    w.join(0, 1, 10, 11);
    w.join(1, 2, 12, 13);
    auto replier = std::make_unique<Client>(w.bus(2));
    replier->serve("$.Session");
    w.pump();
    Client sender(w.bus(0));
    sender.request("$.Session", "open");
    w.pump();
    answerOne(*replier, "opened");
    w.pump();
    auto first = sender.next();
    ASSERT_TRUE(first.has_value());

    // KBUS's stateful request: to = who replied here, final_to = who really did.
    auto stateful = [&] {
        Message m = makeMessage("$.Session", "again", FLAG_WANT_A_REPLY);
        m.header.to = first->header.from;
        m.header.finalTo = first->header.origFrom;
        return w.bus(0).send(sender.id(), m);
    };
    ASSERT_TRUE(stateful());
    w.pump();
    answerOne(*replier, "same one");
    w.pump();
    auto second = sender.next();
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(text(*second), "same one");

    // Another Ksock takes the name over on the far bus: the stateful request
    // must not reach it.
    replier->unserve("$.Session");
    Client usurper(w.bus(2));
    usurper.serve("$.Session");
    w.pump();
    ASSERT_TRUE(stateful());
    w.pump();
    EXPECT_FALSE(usurper.next().has_value());
    auto status = sender.next();
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->name(), NAME_NOT_SAME_KSOCK);
    EXPECT_NE(status->header.flags & FLAG_SYNTHETIC, 0u);
}

TEST(Limpet, ALinkDropAnswersEveryRequestInFlightOnceAndBindingsComeBack) {
    World w(2);
    Pair& link = w.join(0, 1, 10, 11);
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    w.pump();
    Client sender(w.bus(0));
    for (int i = 0; i < 3; ++i) {
        sender.request("$.Svc");
    }
    w.pump();
    auto held = replier.drain(); // read, never answered before the drop
    ASSERT_EQ(held.size(), 3u);

    w.disconnect(link);
    w.pump();
    auto statuses = sender.drain();
    ASSERT_EQ(statuses.size(), 3u);
    for (const auto& s : statuses) {
        EXPECT_EQ(s.name(), NAME_REPLIER_GONE_AWAY);
        EXPECT_NE(s.header.flags & FLAG_SYNTHETIC, 0u);
    }
    EXPECT_EQ(w.bus(0).findReplier("$.Svc").value(), 0u) << "the proxy binding is withdrawn";

    w.connect(link);
    w.pump();
    EXPECT_NE(w.bus(0).findReplier("$.Svc").value(), 0u) << "announced again";
    // Late answers to the old requests must not be delivered after the status.
    for (const auto& r : held) {
        (void)replier.reply(r, "late");
    }
    w.pump();
    EXPECT_TRUE(sender.drain().empty());
    sender.request("$.Svc", "after");
    w.pump();
    answerOne(replier, "resumed");
    w.pump();
    auto reply = sender.drain();
    ASSERT_EQ(reply.size(), 1u);
    EXPECT_EQ(text(reply[0]), "resumed");
}

TEST(Limpet, AKilledLimpetLeavesTheSenderExactlyOneStatus) {
    World w(2);
    Pair& link = w.join(0, 1, 10, 11);
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    w.pump();
    Client sender(w.bus(0));
    sender.request("$.Svc");
    w.pump();
    ASSERT_TRUE(replier.next().has_value());
    w.kill(link.a); // the sender's side: its Ksock had read the request
    w.disconnect(link);
    w.pump();
    auto answers = sender.drain();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_NE(answers[0].header.flags & FLAG_SYNTHETIC, 0u);
}

TEST(Limpet, AReplierKilledOnTheFarBusSendsGoneAwayBack) {
    World w(2);
    w.join(0, 1, 10, 11);
    auto replier = std::make_unique<Client>(w.bus(1));
    replier->serve("$.Svc");
    w.pump();
    Client sender(w.bus(0));
    sender.request("$.Svc");
    w.pump();
    replier->close(); // with the request still queued
    w.pump();
    auto answers = sender.drain();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].name(), NAME_REPLIER_GONE_AWAY);
    EXPECT_NE(answers[0].header.flags & FLAG_SYNTHETIC, 0u);
    EXPECT_EQ(w.bus(0).findReplier("$.Svc").value(), 0u) << "the unbind crossed too";
}

TEST(Limpet, ARequestThatFindsNoReplierOnArrivalGetsGoneAway) {
    World w(2);
    w.join(0, 1, 10, 11);
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    w.pump();
    Client sender(w.bus(0));
    sender.request("$.Svc");
    replier.unserve("$.Svc"); // before the request crosses
    w.pump();
    auto answers = sender.drain();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].name(), NAME_REPLIER_GONE_AWAY);
}

TEST(Limpet, ACycleIsRefusedInsteadOfStorming) {
    World w(3);
    std::vector<Pair*> pairs{&w.join(0, 1, 10, 11), &w.join(1, 2, 12, 13), &w.join(2, 0, 14, 15)};
    Client listener(w.bus(1));
    listener.listen("$.Sensors.*");
    Client sender(w.bus(0));
    sender.announce("$.Sensors.Kitchen");
    EXPECT_LT(w.pump(10000), 10000) << "no message storm";
    std::string why;
    for (Pair* p : pairs) {
        for (Side* s : {&p->a, &p->b}) {
            why += s->limpet->fatalError();
        }
    }
    EXPECT_NE(why.find("cycle detected"), std::string::npos) << why;
    EXPECT_LE(listener.drain().size(), 2u);
}

TEST(Limpet, EqualNetworkIdsAreRefused) {
    World w(2);
    Pair& p = w.join(0, 1, 10, 11);
    Hello same = p.a.limpet->hello();
    w.disconnect(p);
    EXPECT_EQ(p.a.limpet->linkUp(same).error(), Errc::PERMISSION_DENIED);
    EXPECT_EQ(p.a.limpet->goodbye().reason, ByeReason::ID_CLASH);
}

TEST(Limpet, MessagesFromTheFarSideCannotClaimToBeStatuses) {
    World w(2);
    Pair& p = w.join(0, 1, 10, 11);
    Client listener(w.bus(0));
    listener.listen("$.News");
    Msg forged;
    forged.name = "$.News";
    forged.id = {11, 7};
    forged.flags = FLAG_SYNTHETIC;
    ASSERT_TRUE(p.a.limpet->fromLink(Frame{forged}));
    auto got = listener.drain();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].header.flags & FLAG_SYNTHETIC, 0u);
}

TEST(Limpet, RequestsInFlightAreBoundedAndTheRestAnsweredAtOnce) {
    World w(2);
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    Config tight;
    tight.maxInFlight = 2;
    Pair& p = w.join(0, 1, 10, 11, tight);
    w.pump();
    Client sender(w.bus(0));
    for (int i = 0; i < 3; ++i) {
        sender.request("$.Svc");
    }
    w.pump();
    auto early = sender.drain();
    ASSERT_EQ(early.size(), 1u) << "the third request is answered at once";
    EXPECT_EQ(early[0].name(), remoteErrorName(Errc::QUEUE_FULL));
    EXPECT_EQ(p.a.limpet->stats().inFlight, 2u);
}

TEST(Limpet, TheBusOwnMessagesAndNamesOutsideTheFilterStayHome) {
    World w(2);
    Config publicOnly;
    publicOnly.filter = "$.Public.*";
    w.join(0, 1, 10, 11, publicOnly);
    Client far(w.bus(1));
    far.listen("$.*");
    Client sender(w.bus(0));
    sender.announce("$.Private.Thing");
    sender.announce("$.Public.Thing");
    w.pump();
    auto got = far.drain();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].name(), "$.Public.Thing");
}

} // namespace
} // namespace xkbus::limpet::testing
