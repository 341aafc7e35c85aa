// Framing, wrap-around, streaming of records larger than the ring, kick
// suppression and the hostile-peer checks, single-threaded on heap pages.
#include "heap_ring.hpp"

#include <gtest/gtest.h>
#include <xkbus/ring/ordering.hpp>

namespace xkbus::ring {
namespace {

using test::makeHeapRing;
using test::patterned;
using test::toVector;

// Moves bytes until `from` has nothing pending, collecting what `to` receives.
std::vector<std::vector<std::byte>> pump(Endpoint& from, Endpoint& to, size_t maxRounds = 1000000) {
    std::vector<std::vector<std::byte>> got;
    for (size_t round = 0; round < maxRounds; ++round) {
        auto flushed = from.flush();
        EXPECT_TRUE(flushed.has_value());
        auto record = to.tryReceive();
        EXPECT_TRUE(record.has_value()) << to.brokenReason();
        if (!record) {
            break;
        }
        if (*record) {
            got.push_back(toVector(**record));
        } else if (*flushed) {
            break;
        }
    }
    return got;
}

TEST(Endpoint, CarriesRecordsBothWays) {
    auto ring = makeHeapRing(10, 10);
    const auto a = patterned(100, 1);
    const auto b = patterned(7, 2);
    ASSERT_TRUE(ring->frontend->trySend(a));
    ASSERT_TRUE(ring->backend->trySend(b));
    auto atBackend = pump(*ring->frontend, *ring->backend);
    auto atFrontend = pump(*ring->backend, *ring->frontend);
    ASSERT_EQ(atBackend.size(), 1u);
    ASSERT_EQ(atFrontend.size(), 1u);
    EXPECT_EQ(atBackend[0], a);
    EXPECT_EQ(atFrontend[0], b);
}

TEST(Endpoint, EmptyRecordIsARecord) {
    auto ring = makeHeapRing(8, 8);
    ASSERT_TRUE(ring->frontend->trySend(std::span<const std::byte>()));
    auto got = pump(*ring->frontend, *ring->backend);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].empty());
}

TEST(Endpoint, NothingToReceiveIsNotAnError) {
    auto ring = makeHeapRing(8, 8);
    auto record = ring->backend->tryReceive();
    ASSERT_TRUE(record);
    EXPECT_FALSE(record->has_value());
}

TEST(Endpoint, WrapsAroundManyTimesWithMixedSizes) {
    auto ring = makeHeapRing(8, 8); // 256-byte rings: most records wrap or stream
    std::vector<std::vector<std::byte>> sent;
    std::vector<std::vector<std::byte>> received;
    for (uint32_t i = 0; i < 3000; ++i) {
        sent.push_back(patterned((i * 37) % 700, i));
        ASSERT_TRUE(ring->frontend->trySend(sent.back()));
        for (auto& r : pump(*ring->frontend, *ring->backend)) {
            received.push_back(std::move(r));
        }
    }
    EXPECT_EQ(received, sent);
}

TEST(Endpoint, LargestMessageStreamsThroughTheSmallestRing) {
    auto ring = makeHeapRing(8, 8);
    const auto big = patterned(409600, 9);
    ASSERT_TRUE(ring->frontend->trySend(big));
    EXPECT_TRUE(ring->frontend->sendPending());
    EXPECT_EQ(ring->frontend->trySend(big).error(), Errc::TRY_AGAIN);
    auto got = pump(*ring->frontend, *ring->backend);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], big);
    EXPECT_FALSE(ring->frontend->sendPending());
}

TEST(Endpoint, SenderRefusesRecordsOverTheLimit) {
    auto ring = makeHeapRing(10, 10, 1000);
    EXPECT_EQ(ring->frontend->trySend(patterned(1001, 1)).error(), Errc::MESSAGE_TOO_BIG);
    EXPECT_TRUE(ring->frontend->trySend(patterned(1000, 1)));
}

TEST(Endpoint, ReceiverBreaksOnARecordOverItsLimit) {
    auto ring = makeHeapRing(10, 10);
    std::string_view why;
    auto backend =
        Endpoint::attach(ring->memory(), *readHeader(ring->memory().controlPage, &why), 64);
    ASSERT_TRUE(backend);
    ASSERT_TRUE(ring->frontend->trySend(patterned(65, 3)));
    EXPECT_EQ(backend->tryReceive().error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_NE(backend->brokenReason().find("maximum record size"), std::string_view::npos);
    // Broken stays broken, whatever the ring says later.
    EXPECT_EQ(backend->tryReceive().error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_EQ(backend->trySend(patterned(1, 1)).error(), Errc::PROTOCOL_VIOLATION);
}

TEST(Endpoint, ProducerRunningAheadBreaksTheConsumer) {
    auto ring = makeHeapRing(10, 10);
    storeRelease(ring->block().toBackend.producer.prod, uint32_t{1025});
    EXPECT_EQ(ring->backend->tryReceive().error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_NE(ring->backend->brokenReason().find("producer index"), std::string_view::npos);
}

TEST(Endpoint, ProducerIndexGoingBackwardsBreaksTheConsumer) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 1)));
    ASSERT_TRUE(ring->backend->tryReceive());
    storeRelease(ring->block().toBackend.producer.prod, uint32_t{3});
    EXPECT_EQ(ring->backend->tryReceive().error(), Errc::PROTOCOL_VIOLATION);
}

TEST(Endpoint, ConsumerIndexBeyondProducerBreaksTheProducer) {
    auto ring = makeHeapRing(10, 10);
    storeRelease(ring->block().toFrontend.consumer.cons, uint32_t{5});
    EXPECT_EQ(ring->backend->trySend(patterned(1, 1)).error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_NE(ring->backend->brokenReason().find("consumer index"), std::string_view::npos);
}

TEST(Endpoint, ImpossibleStatusByteBreaksTheRing) {
    auto ring = makeHeapRing(10, 10);
    storeRelease(ring->block().frontendStatus.status, uint8_t{0x77});
    EXPECT_EQ(ring->backend->tryReceive().error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_NE(ring->backend->brokenReason().find("status byte"), std::string_view::npos);
}

TEST(Endpoint, FrontendMaySendBeforeTheBackendAttaches) {
    auto layout = *computeLayout(10, 10);
    auto control = test::allocatePages(1);
    RingMemory memory{{control.get(), abi::PAGE_SIZE}, {}};
    auto frontend = Endpoint::format(memory, layout, {});
    ASSERT_TRUE(frontend);
    EXPECT_TRUE(frontend->trySend(patterned(10, 1)));
    auto backend = Endpoint::attach(memory, *readHeader(memory.controlPage));
    ASSERT_TRUE(backend);
    auto got = backend->tryReceive();
    ASSERT_TRUE(got && *got);
    EXPECT_EQ(toVector(**got), patterned(10, 1));
}

TEST(Endpoint, ReceiverDrainsThenReportsTheDeadPeer) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 1)));
    ring->frontend->close();
    EXPECT_FALSE(ring->backend->peerAlive());
    auto first = ring->backend->tryReceive();
    ASSERT_TRUE(first && *first);
    EXPECT_EQ(ring->backend->tryReceive().error(), Errc::DISCONNECTED);
    EXPECT_EQ(ring->backend->trySend(patterned(1, 1)).error(), Errc::DISCONNECTED);
}

TEST(Endpoint, MarkPeerGoneClearsThePeerStatusByte) {
    auto ring = makeHeapRing(10, 10);
    ring->frontend->markPeerGone();
    EXPECT_EQ(ring->block().backendStatus.status, abi::STATUS_GONE);
    EXPECT_EQ(ring->frontend->trySend(patterned(1, 1)).error(), Errc::DISCONNECTED);
    auto armed = ring->frontend->armForWakeup();
    ASSERT_TRUE(armed);
    EXPECT_TRUE(*armed) << "a dead peer must never be slept on";
}

// --- notification suppression

TEST(Kicks, FirstRecordKicksThenAnUnarmedConsumerIsNotKicked) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 1)));
    EXPECT_TRUE(ring->frontend->takeKick()) << "a fresh consumer asks for the first byte";
    EXPECT_FALSE(ring->frontend->takeKick()) << "takeKick reports once";
    ASSERT_TRUE(ring->backend->tryReceive());
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 2)));
    EXPECT_FALSE(ring->frontend->takeKick()) << "consumer is busy, not asleep";
}

TEST(Kicks, ArmedConsumerIsKickedExactlyOnce) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 1)));
    (void)ring->frontend->takeKick();
    ASSERT_TRUE(ring->backend->tryReceive());
    auto armed = ring->backend->armForWakeup();
    ASSERT_TRUE(armed);
    EXPECT_FALSE(*armed) << "nothing to do: safe to sleep";
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 2)));
    EXPECT_TRUE(ring->frontend->takeKick());
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 3)));
    EXPECT_FALSE(ring->frontend->takeKick()) << "one kick per sleep, not per record";
}

TEST(Kicks, ArmingWithDataWaitingSaysDoNotSleep) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(10, 1)));
    auto armed = ring->backend->armForWakeup();
    ASSERT_TRUE(armed);
    EXPECT_TRUE(*armed);
}

TEST(Kicks, BlockedProducerIsKickedWhenHalfTheRingFrees) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(5000, 1)));
    (void)ring->frontend->takeKick();
    ASSERT_TRUE(ring->frontend->flush());
    auto armed = ring->frontend->armForWakeup();
    ASSERT_TRUE(armed);
    ASSERT_FALSE(*armed) << "ring is full";
    // The consumer reads; once half the ring is free the producer gets a kick.
    ASSERT_TRUE(ring->backend->tryReceive());
    EXPECT_TRUE(ring->backend->takeKick());
}

TEST(Kicks, ConsumerWaitingForALargeRecordIsKickedPerHalfRing) {
    auto ring = makeHeapRing(10, 10);
    ASSERT_TRUE(ring->frontend->trySend(patterned(5000, 1)));
    ASSERT_TRUE(ring->backend->tryReceive()); // takes the first ring-full
    (void)ring->backend->takeKick();
    (void)ring->frontend->takeKick();
    auto armed = ring->backend->armForWakeup();
    ASSERT_TRUE(armed);
    ASSERT_FALSE(*armed);
    auto space = ring->frontend->flush();
    ASSERT_TRUE(space);
    EXPECT_TRUE(ring->frontend->takeKick()) << "a full ring's worth was published";
}

} // namespace
} // namespace xkbus::ring
