// Randomized model test of the bus core: random opens, binds, sends, pops,
// replies, unbinds and closes over several Ksocks, with the bus's invariants
// checked after every step. XKBUS_MODEL_SEED and XKBUS_MODEL_STEPS override.
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>
#include <xkbus/core/bus.hpp>

namespace xkbus::core {
namespace {

const std::vector<std::string> SEND_NAMES = {"$.a", "$.a.b", "$.b", "$.a.b.c", "$.c"};
const std::vector<std::string> BIND_NAMES = {"$.a",
                                             "$.a.b",
                                             "$.b",
                                             "$.a.*",
                                             "$.%",
                                             "$.*",
                                             "$.a.%",
                                             "$.c",
                                             "$.a.b.c",
                                             "$.KBUS.*",
                                             std::string(NAME_REPLIER_BIND_EVENT)};

unsigned envOr(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v != nullptr ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : fallback;
}

struct KsockModel {
    std::set<MsgId> outstanding; // requests it sent that have not been answered to it yet
    std::vector<Message> owed;   // requests it popped as replier and has not answered
    std::vector<std::pair<std::string, bool>> bindings;
    size_t slotsBefore = 0;
};

class Model {
public:
    explicit Model(unsigned seed) : m_rng(seed) {}

    void step() {
        using Op = void (Model::*)();
        struct Weighted {
            size_t weight;
            Op op;
        };
        static const Weighted OPS[] = {
            {6, &Model::openKsock},         {3, &Model::closeKsock},
            {12, &Model::bindSomething},    {6, &Model::unbindSomething},
            {16, &Model::sendAnnouncement}, {16, &Model::sendRequest},
            {20, &Model::popSomething},     {10, &Model::replySomething},
            {2, &Model::bogusReply},        {2, &Model::discardSomething},
            {3, &Model::changeLimit},       {2, &Model::toggleOnlyOnce},
            {2, &Model::toggleReporting},
        };
        size_t total = 0;
        for (const auto& w : OPS) {
            total += w.weight;
        }
        beforeStep();
        size_t roll = pick(total);
        for (const auto& w : OPS) {
            if (roll < w.weight) {
                (this->*w.op)();
                break;
            }
            roll -= w.weight;
        }
        checkInvariants();
    }

    // Closes all but one Ksock, draining as it goes; the survivor must then
    // have had every request answered exactly once.
    void finish() {
        while (m_open.size() > 1) {
            drainAll();
            close(m_open.front());
            checkInvariants();
        }
        drainAll();
        checkInvariants();
        if (!m_open.empty()) {
            const KsockId last = m_open.front();
            EXPECT_TRUE(m_models[last].outstanding.empty())
                << m_models[last].outstanding.size() << " requests never answered";
            EXPECT_EQ(m_bus.inspect(last)->awaitingReplies.size(), 0u);
        }
        EXPECT_GT(m_answers, 0u) << "the run should have answered some requests";
    }

private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(m_rng); }
    bool any() const { return !m_open.empty(); }
    KsockId randomKsock() { return m_open[pick(m_open.size())]; }

    void openKsock() {
        if (m_open.size() >= 8) {
            return;
        }
        const KsockId id =
            m_bus.open(OpenOptions{.chargeGroup = static_cast<uint32_t>(pick(3))}).value();
        m_open.push_back(id);
        m_models[id];
        if (pick(2) == 0) {
            ASSERT_TRUE(m_bus.maxMessages(id, static_cast<uint32_t>(1 + pick(6))));
        }
    }

    void close(KsockId id) {
        ASSERT_TRUE(m_bus.close(id));
        std::erase(m_open, id);
        m_models.erase(id);
        m_mirrors.erase(id);
    }

    void closeKsock() {
        if (m_open.size() > 2) {
            close(randomKsock());
        }
    }

    void bindSomething() {
        if (!any()) {
            return;
        }
        const KsockId id = randomKsock();
        const std::string& name = BIND_NAMES[pick(BIND_NAMES.size())];
        const bool replier = pick(3) == 0;
        auto r = m_bus.bind(id, name, replier);
        if (r) {
            m_models[id].bindings.emplace_back(name, replier);
            return;
        }
        const bool expected = r.error() == Errc::REPLIER_EXISTS || r.error() == Errc::BAD_NAME ||
                              r.error() == Errc::TRY_AGAIN;
        EXPECT_TRUE(expected) << "bind failed with " << static_cast<int>(r.error());
    }

    void unbindSomething() {
        if (!any()) {
            return;
        }
        const KsockId id = randomKsock();
        auto& bindings = m_models[id].bindings;
        if (bindings.empty()) {
            EXPECT_EQ(m_bus.unbind(id, "$.a", false).error(), Errc::INVALID);
            return;
        }
        const size_t which = pick(bindings.size());
        auto r = m_bus.unbind(id, bindings[which].first, bindings[which].second);
        if (r) {
            // The bus removes the newest identical binding; the model's list
            // holds identical pairs, so dropping any one of them is the same.
            bindings.erase(bindings.begin() + static_cast<long>(which));
        } else {
            EXPECT_EQ(r.error(), Errc::TRY_AGAIN);
        }
    }

    uint32_t randomSendFlags() {
        uint32_t flags = 0;
        if (pick(6) == 0) {
            flags |= FLAG_URGENT;
        }
        switch (pick(8)) {
        case 0:
            flags |= FLAG_ALL_OR_FAIL;
            break;
        case 1:
            flags |= FLAG_ALL_OR_WAIT;
            break;
        default:
            break;
        }
        return flags;
    }

    void noteAssignedId(const MsgId& id) {
        EXPECT_GT(id.serialNum, m_lastSerial) << "ids must ascend";
        m_lastSerial = id.serialNum;
    }

    void sendAnnouncement() {
        if (!any()) {
            return;
        }
        const KsockId id = randomKsock();
        auto r = m_bus.send(
            id, makeMessage(SEND_NAMES[pick(SEND_NAMES.size())], "x", randomSendFlags()));
        if (r) {
            noteAssignedId(*r);
        } else if (r.error() == Errc::TRY_AGAIN) {
            noteAssignedId(m_bus.lastSent(id).value());
        } else {
            EXPECT_TRUE(r.error() == Errc::QUEUE_FULL || r.error() == Errc::STILL_SENDING)
                << static_cast<int>(r.error());
        }
    }

    void sendRequest() {
        if (!any()) {
            return;
        }
        const KsockId id = randomKsock();
        Message m = makeMessage(SEND_NAMES[pick(SEND_NAMES.size())], "q",
                                randomSendFlags() | FLAG_WANT_A_REPLY);
        if (pick(5) == 0) {
            m.header.to = randomKsock(); // stateful: right or wrong replier
        }
        auto r = m_bus.send(id, m);
        if (r) {
            noteAssignedId(*r);
            m_models[id].outstanding.insert(*r);
            return;
        }
        if (r.error() == Errc::TRY_AGAIN) { // pending: it will be answered somehow
            const MsgId pendingId = m_bus.lastSent(id).value();
            noteAssignedId(pendingId);
            m_models[id].outstanding.insert(pendingId);
            return;
        }
        const bool expected = r.error() == Errc::NO_RECIPIENT || r.error() == Errc::QUEUE_FULL ||
                              r.error() == Errc::NO_REPLY_SLOT ||
                              r.error() == Errc::WRONG_REPLIER || r.error() == Errc::STILL_SENDING;
        EXPECT_TRUE(expected) << "request failed with " << static_cast<int>(r.error());
    }

    // Pops one message, classifying it by where it came from before it leaves.
    // Half the time it pops the way a client with a mirror does: the copy at
    // the head of its (possibly stale) mirror, by copy id.
    void popFrom(KsockId id) {
        if (pick(2) == 0) {
            applyQueueEvents();
        }
        const Ksock* state = m_bus.inspect(id);
        if (state->queue.empty()) {
            EXPECT_FALSE(m_bus.nextMessage(id).value().has_value());
            return;
        }
        std::deque<uint64_t>& mirror = m_mirrors[id];
        const bool byCopy = !mirror.empty() && pick(2) == 0;
        const uint64_t copyId = byCopy ? mirror.front() : state->queue.front().copyId;
        auto item = std::find_if(state->queue.begin(), state->queue.end(),
                                 [&](const QueuedMessage& q) { return q.copyId == copyId; });
        ASSERT_NE(item, state->queue.end()) << "the mirror names a copy the bus does not hold";
        const bool answerToUs = item->via == 0 && item->msg.isReply();
        std::optional<Message> m;
        if (byCopy) {
            m = m_bus.popCopy(id, copyId).value();
        } else {
            // The flush path: the daemon pops the head and answers after the
            // events it shipped before, which the client applies first.
            m = m_bus.nextMessage(id).value();
            applyQueueEvents();
        }
        std::erase(m_mirrors[id], copyId);
        ASSERT_TRUE(m.has_value());
        ++m_popped;
        KsockModel& model = m_models[id];
        if (answerToUs) {
            EXPECT_EQ(m->header.to, id);
            EXPECT_EQ(model.outstanding.erase(m->header.inReplyTo), 1u)
                << "an answer for a request that was not outstanding: a second answer?";
            ++m_answers;
        }
        if (m->wantsYouToReply()) {
            model.owed.push_back(*m);
        }
    }

    void popSomething() {
        if (any()) {
            popFrom(randomKsock());
        }
    }

    void drainAll() {
        for (int round = 0; round < 1000; ++round) {
            bool popped = false;
            for (KsockId id : std::vector<KsockId>(m_open)) {
                while (!m_bus.inspect(id)->queue.empty()) {
                    popFrom(id);
                    popped = true;
                }
            }
            if (!popped) {
                return;
            }
        }
        ADD_FAILURE() << "queues never drained";
    }

    void replySomething() {
        if (!any()) {
            return;
        }
        const KsockId id = randomKsock();
        auto& owed = m_models[id].owed;
        if (owed.empty()) {
            return;
        }
        const size_t which = pick(owed.size());
        const Message& req = owed[which];
        Message reply = makeMessage(req.name(), "r", randomSendFlags() & FLAG_URGENT);
        reply.header.inReplyTo = req.header.id;
        reply.header.to = req.header.from;
        auto r = m_bus.send(id, reply);
        if (r) {
            noteAssignedId(*r);
            owed.erase(owed.begin() + static_cast<long>(which));
            return;
        }
        const bool senderGone = !m_bus.isOpen(req.header.from);
        EXPECT_TRUE(r.error() == Errc::STILL_SENDING ||
                    (senderGone && r.error() == Errc::NO_RECIPIENT))
            << "reply failed with " << static_cast<int>(r.error());
        if (r.error() == Errc::NO_RECIPIENT) {
            owed.erase(owed.begin() + static_cast<long>(which)); // nobody to answer
        }
    }

    void bogusReply() {
        if (m_open.size() < 2) {
            return;
        }
        const KsockId id = randomKsock();
        Message reply = makeMessage("$.a", "bogus");
        reply.header.inReplyTo = MsgId{0, static_cast<uint32_t>(1 + pick(m_lastSerial + 1))};
        reply.header.to = randomKsock();
        const bool owedByUs =
            std::any_of(m_models[id].owed.begin(), m_models[id].owed.end(), [&](const Message& m) {
                return m.header.id == reply.header.inReplyTo && m.header.from == reply.header.to;
            });
        if (owedByUs) {
            return;
        }
        auto r = m_bus.send(id, reply);
        ASSERT_FALSE(r) << "a reply nobody owes must be refused";
        EXPECT_TRUE(r.error() == Errc::REPLY_NOT_EXPECTED || r.error() == Errc::STILL_SENDING);
    }

    void discardSomething() {
        if (!any()) {
            return;
        }
        const KsockId id = randomKsock();
        const Ksock* state = m_bus.inspect(id);
        if (state->pending && state->pending->isRequest()) {
            m_models[id].outstanding.erase(state->pending->header.id);
        }
        ASSERT_TRUE(m_bus.discard(id));
    }

    void changeLimit() {
        if (any()) {
            ASSERT_TRUE(m_bus.maxMessages(randomKsock(), static_cast<uint32_t>(1 + pick(8))));
        }
    }

    void toggleOnlyOnce() {
        if (any()) {
            ASSERT_TRUE(m_bus.onlyOnce(randomKsock(), static_cast<uint32_t>(pick(2))));
        }
    }

    void toggleReporting() {
        if (!any()) {
            return;
        }
        auto r = m_bus.reportReplierBinds(randomKsock(), static_cast<uint32_t>(pick(2)));
        EXPECT_TRUE(r || r.error() == Errc::QUEUE_FULL);
    }

    // What a client does with the events the daemon ships it.
    void applyQueueEvents() {
        for (const QueueEvent& e : m_bus.takeQueueEvents()) {
            if (!m_bus.isOpen(e.ksock)) {
                continue;
            }
            std::deque<uint64_t>& mirror = m_mirrors[e.ksock];
            switch (e.kind) {
            case QueueEvent::Kind::PUSHED_TAIL:
                mirror.push_back(e.copyId);
                break;
            case QueueEvent::Kind::PUSHED_HEAD:
                mirror.push_front(e.copyId);
                break;
            case QueueEvent::Kind::REMOVED:
                std::erase(mirror, e.copyId);
                break;
            case QueueEvent::Kind::SEND_FINISHED:
                break;
            }
        }
    }

    void checkMirrors() {
        applyQueueEvents();
        for (KsockId id : m_open) {
            std::deque<uint64_t> core;
            for (const auto& item : m_bus.inspect(id)->queue) {
                core.push_back(item.copyId);
            }
            EXPECT_EQ(m_mirrors[id], core) << "Ksock " << id << ": mirror and queue differ";
        }
    }

    void beforeStep() {
        for (KsockId id : m_open) {
            m_models[id].slotsBefore = m_bus.inspect(id)->slotsUsed();
        }
    }

    void checkInvariants() {
        const BusStats stats = m_bus.stats();
        uint64_t inQueues = 0;
        for (KsockId id : m_open) {
            const Ksock* k = m_bus.inspect(id);
            const KsockModel& model = m_models[id];
            inQueues += k->queue.size();
            // No queue grows past its limit (a lowered limit may leave it over).
            if (k->slotsUsed() > k->maxMessages) {
                EXPECT_LE(k->slotsUsed(), model.slotsBefore) << "Ksock " << id << " overfilled";
            }
            // Every outstanding request is either still awaited by the bus or
            // answered in the queue, never both, never neither.
            size_t answersQueued = 0;
            for (const auto& item : k->queue) {
                if (item.via == 0 && item.msg.isReply()) {
                    ++answersQueued;
                    EXPECT_TRUE(model.outstanding.contains(item.msg.header.inReplyTo));
                }
            }
            EXPECT_EQ(model.outstanding.size(), k->awaitingReplies.size() + answersQueued)
                << "Ksock " << id << ": a request lost its answer or got two";
            EXPECT_EQ(model.owed.size(), k->owedReplies.size()) << "Ksock " << id;
        }
        checkEveryAwaitedRequestIsStillOwed();
        checkMirrors();
        checkCharges();
        // Every copy is accounted for.
        EXPECT_EQ(stats.copiesQueued, stats.copiesPopped + stats.copiesDropped + inQueues);
        EXPECT_EQ(stats.copiesPopped, m_popped);
    }

    // Each group's charge is the size of its members' queued copies, and a
    // group never grows past its quota (replies excepted: their room was
    // reserved when the request was sent).
    void checkCharges() {
        std::map<uint32_t, uint64_t> expected;
        for (KsockId id : m_open) {
            const Ksock* k = m_bus.inspect(id);
            for (const auto& item : k->queue) {
                expected[k->options.chargeGroup] +=
                    entireMessageLength(item.msg.name().size(), item.msg.data().size());
            }
        }
        for (const auto& [group, bytes] : m_bus.stats().queuedBytesByGroup) {
            EXPECT_EQ(bytes, expected[group]) << "group " << group;
        }
    }

    // The reply guarantee itself: a request the bus still awaits an answer to
    // is queued at its replier, popped by a replier that owes it, or still
    // being sent. Otherwise nobody would ever answer it.
    void checkEveryAwaitedRequestIsStillOwed() {
        std::set<std::pair<KsockId, MsgId>> owedBySomeone;
        for (KsockId id : m_open) {
            const Ksock* k = m_bus.inspect(id);
            for (const auto& item : k->queue) {
                if (item.msg.wantsYouToReply()) {
                    owedBySomeone.emplace(item.msg.header.from, item.msg.header.id);
                }
            }
            for (const auto& owed : k->owedReplies) {
                owedBySomeone.emplace(owed.to, owed.request);
            }
            if (k->pending && k->pending->isRequest()) {
                owedBySomeone.emplace(id, k->pending->header.id);
            }
        }
        for (KsockId id : m_open) {
            for (const MsgId& awaited : m_bus.inspect(id)->awaitingReplies) {
                EXPECT_TRUE(owedBySomeone.contains({id, awaited}))
                    << "request {" << awaited.networkId << "," << awaited.serialNum << "} of Ksock "
                    << id << " can never be answered";
            }
        }
    }

    Bus m_bus{0, BusConfig{.recordQueueEvents = true, .maxQueuedBytesPerGroup = 2000}};
    std::map<KsockId, std::deque<uint64_t>> m_mirrors;
    std::mt19937 m_rng;
    std::vector<KsockId> m_open;
    std::map<KsockId, KsockModel> m_models;
    uint32_t m_lastSerial = 0;
    uint64_t m_popped = 0;
    uint64_t m_answers = 0;
};

TEST(BusModel, RandomOperationsKeepEveryInvariant) {
    const unsigned seed = envOr("XKBUS_MODEL_SEED", std::random_device{}());
    const unsigned steps = envOr("XKBUS_MODEL_STEPS", 20000);
    std::printf("bus model: seed %u, %u steps (XKBUS_MODEL_SEED=%u reproduces)\n", seed, steps,
                seed);
    Model model(seed);
    for (unsigned i = 0; i < steps && !::testing::Test::HasFailure(); ++i) {
        model.step();
        if (::testing::Test::HasFailure()) {
            ADD_FAILURE() << "first failure at step " << i << ", seed " << seed;
        }
    }
    model.finish();
}

} // namespace
} // namespace xkbus::core
