// The Limpet rules on in-memory buses (limpet_harness.hpp): every topology and
// failure of docs/limpet.md, deterministic, with the codec on every frame.
#include "limpet_harness.hpp"

#include <algorithm>
#include <set>
#include <xkbus/common/message.hpp>
#include <xkbus/limpet/rate_limit.hpp>

namespace xkbus::limpet::testing {
namespace {

// A client Ksock on one in-memory bus.
class Client {
public:
    explicit Client(core::Bus& bus, bool trusted = false)
        : m_bus(bus), m_id(bus.open(core::OpenOptions{.mayMarkSynthetic = trusted}).value()) {}
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
    // KBUS lets any sender choose a non-zero network id.
    Result<MsgId> forge(std::string_view name, MsgId id, uint32_t flags = 0,
                        std::string_view data = "forged") {
        Message m = makeMessage(name, data, flags);
        m.header.id = id;
        return m_bus.send(m_id, m);
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
    EXPECT_NE(why.find("probe"), std::string::npos) << "only a returning probe proves it: " << why;
    EXPECT_LE(listener.drain().size(), 2u);
}

// Lines a Limpet logged, and whether any of them is fatal.
struct Collected {
    std::vector<std::string> lines;
    Config config() {
        Config c;
        c.log = [this](std::string_view line) { lines.emplace_back(line); };
        return c;
    }
    size_t containing(std::string_view what) const {
        return static_cast<size_t>(std::count_if(lines.begin(), lines.end(), [&](const auto& l) {
            return l.find(what) != std::string::npos;
        }));
    }
};

void expectAlive(std::initializer_list<Pair*> pairs) {
    for (Pair* p : pairs) {
        for (Side* s : {&p->a, &p->b}) {
            EXPECT_EQ(s->limpet->fatalError(), "");
            EXPECT_TRUE(s->limpet->isLinkUp());
        }
    }
}

TEST(Limpet, IdsForgedOnTheBusAreDroppedAndTheBridgeCarriesOn) {
    World w(2);
    Collected log;
    Pair& p = w.join(0, 1, 10, 11, log.config());
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    Client far(w.bus(1));
    far.listen("$.News");
    w.pump();
    Client attacker(w.bus(0));
    // Issue 15, item 6: two announcements with one id took the bridge down.
    ASSERT_TRUE(attacker.forge("$.News", {7, 1}));
    ASSERT_TRUE(attacker.forge("$.News", {7, 1}));
    ASSERT_TRUE(attacker.forge("$.News", {10, 5})); // this side's network id
    ASSERT_TRUE(attacker.forge("$.News", {11, 5})); // the far side's
    // A request the Limpet holds as proxy replier is answered, not dropped.
    const MsgId dup = attacker.forge("$.Svc", {7, 1}, FLAG_WANT_A_REPLY).value();
    w.pump();

    expectAlive({&p});
    auto got = far.drain();
    ASSERT_EQ(got.size(), 1u) << "only the first {7,1} crosses";
    EXPECT_EQ(got[0].header.id, (MsgId{7, 1}));
    EXPECT_TRUE(replier.drain().empty()) << "the forged request stays home";
    auto status = attacker.drain();
    ASSERT_EQ(status.size(), 1u);
    EXPECT_EQ(status[0].header.inReplyTo, dup);
    EXPECT_EQ(status[0].name(), remoteErrorName(Errc::INVALID));
    EXPECT_EQ(p.a.limpet->stats().refused, 4u);
    EXPECT_EQ(log.containing("refused"), 4u);
    EXPECT_EQ(log.containing("network id"), 2u);
    EXPECT_EQ(log.containing("repeats"), 2u);

    Client sender(w.bus(0));
    sender.request("$.Svc", "after");
    sender.announce("$.News", "fine");
    w.pump();
    answerOne(replier, "served");
    w.pump();
    auto reply = sender.drain();
    ASSERT_EQ(reply.size(), 1u);
    EXPECT_EQ(text(reply[0]), "served");
    got = far.drain();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(text(got[0]), "fine");
}

TEST(Limpet, IdsForgedOnEveryBusOfAChainStopNoLimpet) {
    World w(3);
    Collected log;
    Pair& ab = w.join(0, 1, 10, 11, log.config());
    Pair& cd = w.join(1, 2, 12, 13, log.config());
    Client far(w.bus(2));
    far.listen("$.News");
    w.pump();
    Client left(w.bus(0));
    Client right(w.bus(2));
    // Every Limpet's network id, from both ends, and one id sent on both
    // ends at once (it meets itself in the middle).
    constexpr uint32_t SERIAL = 1;
    for (uint32_t network : {10u, 11u, 12u, 13u, 7u}) {
        ASSERT_TRUE(left.forge("$.News", {network, SERIAL}));
        ASSERT_TRUE(right.forge("$.News", {network, SERIAL}));
    }
    w.pump();
    expectAlive({&ab, &cd});
    uint64_t refused = 0;
    for (Side* s : {&ab.a, &ab.b, &cd.a, &cd.b}) {
        refused += s->limpet->stats().refused;
    }
    EXPECT_GE(refused, 9u) << "each forgery is refused somewhere on the chain";
    EXPECT_EQ(log.containing("refused"), refused);

    left.announce("$.News", "through");
    w.pump();
    bool through = false;
    for (const auto& m : far.drain()) {
        through |= text(m) == "through";
    }
    EXPECT_TRUE(through) << "the chain still carries announcements";
}

TEST(Limpet, IdsRepeatedOrClaimedOverTheLinkAreDroppedNotFatal) {
    World w(2);
    Collected log;
    Pair& p = w.join(0, 1, 10, 11, log.config());
    Client listener(w.bus(0));
    listener.listen("$.News");
    w.pump();
    auto message = [](MsgId id, uint32_t flags = 0) {
        Message m = makeMessage("$.News", "", flags);
        m.header.id = id;
        return Frame{m};
    };
    // What the far side passes on from its bus clients, or a real cycle.
    ASSERT_TRUE(p.a.limpet->fromLink(message({7, 7})));
    ASSERT_TRUE(p.a.limpet->fromLink(message({7, 7})));
    ASSERT_TRUE(p.a.limpet->fromLink(message({10, 3})));
    ASSERT_TRUE(p.a.limpet->fromLink(message({10, 4}, FLAG_WANT_A_REPLY)));
    EXPECT_EQ(listener.drain().size(), 1u);
    EXPECT_EQ(p.a.limpet->stats().refused, 3u);
    EXPECT_EQ(log.containing("over its link"), 3u);
    // The refused request gets an answer, so the far side does not wait.
    ASSERT_EQ(p.a.out.frames.size(), 1u);
    const auto* status = std::get_if<Message>(&p.a.out.frames.front());
    ASSERT_NE(status, nullptr);
    EXPECT_EQ(status->header.inReplyTo, (MsgId{10, 4}));
    EXPECT_EQ(status->name(), remoteErrorName(Errc::INVALID));
    expectAlive({&p});
}

TEST(Limpet, ProbesNotSentByTheLimpetCannotStopIt) {
    World w(2);
    Collected log;
    Pair& p = w.join(0, 1, 10, 11, log.config());
    w.pump();
    auto probe = [&](Client& from, MsgId id) {
        std::string token(PROBE_TOKEN_SIZE, 'x');
        return from.forge(NAME_PROBE, id, FLAG_SYNTHETIC, token);
    };
    // A bus client: the bus clears its SYNTHETIC flag, so no Limpet passes it on.
    Client untrusted(w.bus(1));
    ASSERT_TRUE(probe(untrusted, {10, 1}));
    // A trusted Ksock can make one up, but cannot know side a's token.
    Client trusted(w.bus(1), true);
    ASSERT_TRUE(probe(trusted, {10, 2}));
    ASSERT_TRUE(probe(trusted, {11, 3})); // b's own id, on b's bus
    w.pump();
    expectAlive({&p});
    EXPECT_EQ(p.b.limpet->stats().refused, 2u);
    EXPECT_EQ(p.a.limpet->stats().refused, 1u);
    EXPECT_EQ(log.containing("does not trust"), 1u);
    EXPECT_EQ(log.containing("not one it sent"), 1u);

    // Nor can the far side's word: its GOODBYE(CYCLE) only ends the link.
    EXPECT_EQ(p.a.limpet->fromLink(Frame{Goodbye{ByeReason::CYCLE, "says who"}}).error(),
              Errc::DISCONNECTED);
    EXPECT_EQ(p.a.limpet->fatalError(), "");
    EXPECT_EQ(log.containing("says who"), 1u);
}

// A bus counts its serials up. Had the Limpet kept them, a forger at one
// end of a chain could send the ids of the other end's coming messages
// first, and the Limpets between would drop the real ones as seen.
TEST(Limpet, AForgerWhoGuessesComingIdsCannotHaveThemDropped) {
    World w(3);
    Pair& ab = w.join(0, 1, 10, 11);
    Pair& cd = w.join(1, 2, 12, 13);
    Client far(w.bus(2));
    far.listen("$.News");
    w.pump();
    Client forger(w.bus(2));
    for (uint32_t serial = 0; serial < 200; ++serial) {
        ASSERT_TRUE(forger.forge("$.News", {10, serial}, 0, "forged"));
    }
    w.pump();
    far.drain();
    Client sender(w.bus(0));
    for (int i = 0; i < 20; ++i) {
        sender.announce("$.News", "real");
    }
    w.pump();
    size_t real = 0;
    for (const auto& m : far.drain()) {
        real += text(m) == "real" ? 1 : 0;
    }
    EXPECT_EQ(real, 20u) << "every real message crossed the chain";
    expectAlive({&ab, &cd});
}

TEST(IdMint, GivesDistinctSerialsThatDoNotCountUp) {
    IdMint a(1);
    IdMint b(2);
    std::set<uint32_t> seen;
    int consecutive = 0;
    uint32_t last = a.next();
    seen.insert(last);
    for (int i = 1; i < 100000; ++i) {
        const uint32_t s = a.next();
        consecutive += s == last + 1 ? 1 : 0;
        last = s;
        seen.insert(s);
    }
    EXPECT_EQ(seen.size(), 100000u) << "a bijection of the count";
    EXPECT_LT(consecutive, 10);
    EXPECT_NE(IdMint(1).scramble(5), b.scramble(5)) << "the key decides";
    EXPECT_EQ(IdMint(1).scramble(5), IdMint(1).scramble(5));
}

TEST(RateLimitedLog, WritesAFewLinesPerIntervalAndCountsTheRest) {
    std::vector<std::string> out;
    RateLimitedLog log([&](std::string_view l) { out.emplace_back(l); }, std::chrono::seconds(1),
                       3);
    const auto t0 = RateLimitedLog::Clock::time_point{} + std::chrono::hours(1);
    for (int i = 0; i < 10; ++i) {
        log.note("line " + std::to_string(i), t0 + std::chrono::milliseconds(i));
    }
    EXPECT_EQ(out, (std::vector<std::string>{"line 0", "line 1", "line 2"}));
    EXPECT_EQ(log.suppressed(), 7u);
    log.note("later", t0 + std::chrono::milliseconds(1500));
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out[3], "later (7 similar lines left out before this one)");
    log.note("again", t0 + std::chrono::milliseconds(1600));
    EXPECT_EQ(out.back(), "again") << "the count is told once";
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
    Message forged = makeMessage("$.News", "", FLAG_SYNTHETIC);
    forged.header.id = {11, 7};
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

// KBUS: an unbind fails with EAGAIN while a listener of bind events has no
// room. A Limpet whose link dropped must still withdraw its proxies once
// there is room, or one stays bound for good (seen with a Limpet whose own
// Ksock was full behind a peer that never read).
TEST(Limpet, AProxyWhoseUnbindMeetsAFullListenerIsWithdrawnOnceThereIsRoom) {
    World w(2);
    Client watcher(w.bus(0));
    watcher.listen(NAME_REPLIER_BIND_EVENT);
    ASSERT_TRUE(w.bus(0).maxMessages(watcher.id(), 1));
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    Pair& p = w.join(0, 1, 10, 11);
    w.pump();
    ASSERT_NE(w.bus(0).findReplier("$.Svc").value_or(0), 0u) << "proxied";

    w.disconnect(p); // the watcher still holds the proxy's bind event
    EXPECT_NE(w.bus(0).findReplier("$.Svc").value_or(0), 0u) << "the unbind met the full watcher";
    EXPECT_EQ(p.a.limpet->stats().unbindsWaiting, 1u);

    ASSERT_TRUE(watcher.next().has_value()); // room
    Client sender(w.bus(0));
    sender.announce("$.News"); // anything the Limpet reads
    w.pump();
    EXPECT_EQ(w.bus(0).findReplier("$.Svc").value_or(0), 0u) << "withdrawn once there was room";
    EXPECT_EQ(p.a.limpet->stats().unbindsWaiting, 0u);

    watcher.drain();
    w.connect(p);
    w.pump();
    EXPECT_NE(w.bus(0).findReplier("$.Svc").value_or(0), 0u) << "back with the link";
}

// Issue 15, item 9: a congested link (a peer that reads slowly or not at
// all) must not keep the Limpet off its bus. It sheds what only adds to the
// backlog and still carries what the reply guarantee and the proxies need.
TEST(Limpet, ACongestedLinkShedsAnnouncementsAndAnswersRequestsAtOnce) {
    World w(2);
    Client replier(w.bus(1));
    replier.serve("$.Svc");
    Client far(w.bus(1));
    far.listen("$.News");
    Pair& p = w.join(0, 1, 10, 11);
    w.pump();
    Client sender(w.bus(0));
    const MsgId forwarded = sender.request("$.Svc", "before");
    w.pump();

    p.a.limpet->setLinkCongested(true);
    p.b.limpet->setLinkCongested(true);
    sender.announce("$.News", "shed");
    const MsgId refusedRequest = sender.request("$.Svc", "shed");
    Client lateReplier(w.bus(1));
    lateReplier.serve("$.Late"); // its bind notice still crosses
    answerOne(replier, "answered while congested");
    w.pump();

    EXPECT_TRUE(far.drain().empty()) << "the announcement is shed";
    EXPECT_TRUE(replier.drain().empty()) << "the request is not forwarded";
    auto answers = sender.drain();
    ASSERT_EQ(answers.size(), 2u);
    const auto answerTo = [&](MsgId request) -> std::string {
        for (const auto& m : answers) {
            if (m.header.inReplyTo == request) {
                return std::string(m.name()) + ":" + text(m);
            }
        }
        return "no answer";
    };
    EXPECT_EQ(answerTo(forwarded), "$.Svc:answered while congested") << "replies still cross";
    EXPECT_EQ(answerTo(refusedRequest), remoteErrorName(Errc::QUEUE_FULL) + ":");
    EXPECT_NE(w.bus(0).findReplier("$.Late").value_or(0), 0u) << "the proxy was bound";
    EXPECT_EQ(p.a.limpet->stats().shed, 2u);
    expectAlive({&p});

    p.a.limpet->setLinkCongested(false);
    p.b.limpet->setLinkCongested(false);
    sender.announce("$.News", "flows again");
    w.pump();
    auto got = far.drain();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(text(got[0]), "flows again");
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
