// Bounded work: no operation's cost grows with what other Ksocks hold beyond
// the bounds docs/semantics.md states. Each test counts the steps the bus
// took (Bus::work(), BindingIndex::work()) rather than timing them.
#include "bus_fixture.hpp"

#include <deque>
#include <random>
#include <string>
#include <vector>
#include <xkbus/core/binding_index.hpp>

namespace xkbus::core::testing {
namespace {

// These tests measure work, not limits: no charge group runs out.
BusConfig unlimited(bool recordQueueEvents = false) {
    return BusConfig{.recordQueueEvents = recordQueueEvents, .limits = TenantLimits::unlimited()};
}

uint64_t total(const BusWork& w) {
    return w.nodesVisited + w.listenersRouted + w.mergeComparisons + w.ownerScans + w.queueSteps +
           w.setAsideSteps + w.retries;
}

BusWork since(const BusWork& before, const BusWork& after) {
    return BusWork{
        .nodesVisited = after.nodesVisited - before.nodesVisited,
        .listenersRouted = after.listenersRouted - before.listenersRouted,
        .mergeComparisons = after.mergeComparisons - before.mergeComparisons,
        .ownerScans = after.ownerScans - before.ownerScans,
        .queueSteps = after.queueSteps - before.queueSteps,
        .setAsideSteps = after.setAsideSteps - before.setAsideSteps,
        .retries = after.retries - before.retries,
    };
}

// The work of closing a Ksock that holds n "$.*" listener bindings, next to
// another Ksock holding as many.
uint64_t closeWork(size_t n) {
    Bus bus{0, unlimited()};
    const KsockId other = bus.open().value();
    const KsockId k = bus.open().value();
    for (size_t i = 0; i < n; ++i) {
        EXPECT_TRUE(bus.bind(other, "$.*", false));
        EXPECT_TRUE(bus.bind(k, "$.*", false));
    }
    const BusWork before = bus.work();
    EXPECT_TRUE(bus.close(k));
    const BusWork done = since(before, bus.work());
    EXPECT_LE(done.ownerScans, n) << "each binding finds itself at once";
    return total(done);
}

TEST(BoundedWork, ClosingAKsockCostsItsBindingsNotTheirSquare) {
    const uint64_t small = closeWork(2000);
    const uint64_t large = closeWork(8000);
    EXPECT_GT(small, 0u);
    // Four times the bindings: four times the work (quadratic would be 16).
    EXPECT_LE(large, 4 * small + 100) << small << " steps for 2000, " << large << " for 8000";
}

TEST(BoundedWork, UnbindDoesNotLookAtOtherKsocksBindingsToTheSameName) {
    Bus bus{0, unlimited()};
    const KsockId crowd = bus.open().value();
    for (int i = 0; i < 5000; ++i) {
        ASSERT_TRUE(bus.bind(crowd, "$.*", false));
    }
    const KsockId victim = bus.open().value();
    ASSERT_TRUE(bus.bind(victim, "$.*", false));
    ASSERT_TRUE(bus.bind(victim, "$.*", false));
    const BusWork before = bus.work();
    ASSERT_TRUE(bus.unbind(victim, "$.*", false));
    const BusWork done = since(before, bus.work());
    EXPECT_LE(done.ownerScans, 2u);
    EXPECT_LE(done.nodesVisited, 4u);
    EXPECT_LE(total(done), 8u);
    EXPECT_EQ(bus.inspect(victim)->bindings, 1u) << "one of its two bindings went";
}

TEST(BoundedWork, OneListenerListIsRoutedAsItIsWithNoComparisons) {
    BindingIndex index;
    for (KsockId owner = 1; owner <= 3000; ++owner) {
        index.add(owner, "$.*", false);
    }
    Route r;
    index.route("$.a.b", r);
    ASSERT_EQ(r.listeners.size(), 3000u);
    EXPECT_EQ(r.listeners.front()->owner, 3000u) << "newest first";
    EXPECT_EQ(index.work().mergeComparisons, 0u);
}

TEST(BoundedWork, SeveralListsAreMergedNotSorted) {
    BindingIndex index;
    const char* names[] = {"$.*", "$.a.*", "$.a.%"};
    const size_t n = 3000;
    for (size_t i = 0; i < n; ++i) {
        index.add(static_cast<KsockId>(i + 1), names[i % 3], false);
    }
    Route r;
    index.route("$.a.b", r);
    ASSERT_EQ(r.listeners.size(), n);
    for (size_t i = 1; i < n; ++i) {
        ASSERT_GT(r.listeners[i - 1]->seq, r.listeners[i]->seq) << "newest binding first";
    }
    // A heap of three heads needs at most three comparisons per binding; a
    // sort of the 3000 would need about n log2 n = 34,000.
    EXPECT_LE(index.work().mergeComparisons, 3 * n);
    EXPECT_EQ(index.work().listenersRouted, n);
}

TEST(BoundedWork, PopCopyFindsTheCopyWithoutScanningTheQueue) {
    Bus bus{0, unlimited(true)};
    const KsockId sender = bus.open().value();
    const KsockId l = bus.open().value();
    ASSERT_TRUE(bus.bind(l, "$.q", false));
    ASSERT_TRUE(bus.maxMessages(l, 3000));
    for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(bus.send(sender, makeMessage("$.q")));
    }
    const uint64_t last = bus.takeQueueEvents().back().copyId;
    BusWork before = bus.work();
    ASSERT_TRUE(bus.popCopy(l, last));
    EXPECT_LE(since(before, bus.work()).queueSteps, 1u);
    before = bus.work();
    EXPECT_EQ(bus.popCopy(l, last).error(), Errc::INVALID) << "already popped";
    EXPECT_LE(since(before, bus.work()).queueSteps, 1u);
    before = bus.work();
    ASSERT_TRUE(bus.nextMessage(l).value());
    EXPECT_LE(since(before, bus.work()).queueSteps, 1u);
    EXPECT_EQ(bus.numMessages(l).value(), 1998u);
}

// The queue finds copies by binary search over its two sorted runs (urgent
// at the head, the rest at the tail) and leaves gaps where copies were taken:
// popping any copy, in any order, must keep the others in queue order.
TEST(BoundedWork, PoppingCopiesAnywhereKeepsTheRestInOrder) {
    std::mt19937 rng(12345);
    Bus bus{0, unlimited(true)};
    const KsockId sender = bus.open().value();
    const KsockId l = bus.open().value();
    ASSERT_TRUE(bus.bind(l, "$.q", false));
    ASSERT_TRUE(bus.maxMessages(l, 1000));
    std::deque<uint64_t> expected;
    for (int step = 0; step < 5000; ++step) {
        if (expected.empty() || (expected.size() < 900 && rng() % 3 != 0)) {
            const bool urgent = rng() % 4 == 0;
            ASSERT_TRUE(bus.send(sender, makeMessage("$.q", "", urgent ? FLAG_URGENT : 0)));
            const auto events = bus.takeQueueEvents();
            ASSERT_EQ(events.size(), 1u);
            const uint64_t copy = events.back().copyId;
            urgent ? expected.push_front(copy) : expected.push_back(copy);
        } else {
            const size_t at = rng() % expected.size();
            ASSERT_TRUE(bus.popCopy(l, expected[at]));
            expected.erase(expected.begin() + static_cast<std::ptrdiff_t>(at));
        }
        if (step % 50 == 0) {
            std::deque<uint64_t> got;
            const auto contents = bus.contents(l);
            for (const auto& item : contents->queue) {
                got.push_back(item.copyId);
            }
            ASSERT_EQ(got, expected) << "step " << step;
            ASSERT_EQ(bus.inspect(l)->headCopyId, expected.empty() ? 0 : expected.front());
        }
    }
}

// Opens a Ksock that listens to `name` with room for one message, and fills it.
KsockId fullListener(Bus& bus, KsockId filler, const std::string& name) {
    const KsockId l = bus.open().value();
    EXPECT_TRUE(bus.bind(l, name, false));
    EXPECT_TRUE(bus.maxMessages(l, 1));
    EXPECT_TRUE(bus.send(filler, makeMessage(name, "fill")));
    return l;
}

KsockId blockedSender(Bus& bus, const std::string& name, const std::string& data) {
    const KsockId s = bus.open().value();
    EXPECT_EQ(bus.send(s, makeMessage(name, data, FLAG_ALL_OR_WAIT)).error(), Errc::TRY_AGAIN);
    return s;
}

TEST(BoundedWork, RoomOnOneQueueRetriesOnlyTheSendsWaitingOnIt) {
    Bus bus{0, unlimited()};
    const KsockId filler = bus.open().value();
    const KsockId busy = fullListener(bus, filler, "$.busy");
    const KsockId quiet = fullListener(bus, filler, "$.quiet");
    std::vector<KsockId> crowd;
    for (int i = 0; i < 200; ++i) {
        crowd.push_back(blockedSender(bus, "$.busy", "crowd" + std::to_string(i)));
    }
    const KsockId waiting = blockedSender(bus, "$.quiet", "waited");

    BusWork before = bus.work();
    ASSERT_TRUE(bus.nextMessage(quiet).value());
    EXPECT_EQ(since(before, bus.work()).retries, 1u) << "only the send waiting on $.quiet";
    EXPECT_FALSE(bus.inspect(waiting)->sending);
    EXPECT_EQ(bus.nextMessage(quiet).value()->text(), "waited");

    before = bus.work();
    ASSERT_TRUE(bus.nextMessage(busy).value());
    EXPECT_EQ(since(before, bus.work()).retries, 1u)
        << "the oldest got through and filled the queue again: the rest wait on";
    EXPECT_FALSE(bus.inspect(crowd[0])->sending);
    EXPECT_TRUE(bus.inspect(crowd[1])->sending);
    EXPECT_EQ(bus.nextMessage(busy).value()->text(), "crowd0") << "oldest first";
    EXPECT_EQ(bus.nextMessage(busy).value()->text(), "crowd1");
}

TEST(BoundedWork, AnUnbindRetriesItsWaitersEvenIfItsQueueStaysFull) {
    Bus bus{0, unlimited()};
    const KsockId filler = bus.open().value();
    const KsockId l = fullListener(bus, filler, "$.other");
    ASSERT_TRUE(bus.bind(l, "$.x", false));
    const KsockId s = blockedSender(bus, "$.x", "");
    ASSERT_TRUE(bus.unbind(l, "$.x", false));
    EXPECT_FALSE(bus.inspect(s)->sending) << "$.x reaches nobody now: the send is done";
    EXPECT_EQ(bus.numMessages(l).value(), 1u);
}

TEST(BoundedWork, ARequestBlockedOnAListenerHearsAtOnceThatItsReplierLeft) {
    Bus bus{0, unlimited()};
    const KsockId filler = bus.open().value();
    const KsockId replier = bus.open().value();
    ASSERT_TRUE(bus.bind(replier, "$.q", true));
    const KsockId l = fullListener(bus, filler, "$.q");
    const KsockId asker = bus.open().value();
    ASSERT_EQ(bus.send(asker, makeMessage("$.q", "", FLAG_WANT_A_REPLY | FLAG_ALL_OR_WAIT)).error(),
              Errc::TRY_AGAIN);
    ASSERT_TRUE(bus.close(replier));
    EXPECT_FALSE(bus.inspect(asker)->sending);
    auto status = bus.nextMessage(asker).value();
    ASSERT_TRUE(status);
    EXPECT_EQ(status->name(), NAME_REPLIER_DISAPPEARED);
    EXPECT_EQ(bus.numMessages(l).value(), 1u);
}

TEST(BoundedWork, SetAsideEventsAreFoundWithoutWalkingOtherKsocks) {
    Bus bus{0, unlimited()};
    const KsockId a = bus.open().value();
    const KsockId b = bus.open().value();
    const KsockId filler = bus.open().value();
    for (KsockId w : {a, b}) {
        ASSERT_TRUE(bus.bind(w, NAME_REPLIER_BIND_EVENT, false));
        ASSERT_TRUE(bus.maxMessages(w, 2000));
    }
    ASSERT_TRUE(bus.reportReplierBinds(a, 1));
    std::vector<KsockId> repliers;
    for (int i = 0; i < 901; ++i) {
        repliers.push_back(bus.open().value());
        ASSERT_TRUE(bus.bind(repliers.back(), "$.r" + std::to_string(i), true));
    }
    for (KsockId w : {a, b}) {
        while (bus.nextMessage(w).value()) {
        }
    }
    // a is full while 900 repliers close: their events wait for it.
    ASSERT_TRUE(bus.bind(a, "$.fill.a", false));
    ASSERT_TRUE(bus.send(filler, makeMessage("$.fill.a")));
    ASSERT_TRUE(bus.maxMessages(a, 1));
    for (int i = 0; i < 900; ++i) {
        ASSERT_TRUE(bus.close(repliers[static_cast<size_t>(i)]));
    }
    while (bus.nextMessage(b).value()) {
    }
    // Then b is full too, and the last one closes: one event waits for b,
    // behind a's 900.
    ASSERT_TRUE(bus.bind(b, "$.fill.b", false));
    ASSERT_TRUE(bus.send(filler, makeMessage("$.fill.b")));
    ASSERT_TRUE(bus.maxMessages(b, 1));
    ASSERT_TRUE(bus.close(repliers.back()));
    ASSERT_EQ(bus.stats().unsentUnbindEvents, 902u);

    const BusWork before = bus.work();
    ASSERT_EQ(bus.nextMessage(b).value()->name(), "$.fill.b");
    EXPECT_LE(since(before, bus.work()).setAsideSteps, 1u) << "b's event is found directly";
    EXPECT_EQ(bus.nextMessage(b).value()->name(), NAME_REPLIER_BIND_EVENT);
    EXPECT_EQ(bus.numMessages(a).value(), 1u + 901u)
        << "a's events still wait behind its full queue";
}

} // namespace
} // namespace xkbus::core::testing
