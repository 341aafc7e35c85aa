// A guest flooding xenstore (issue 15, docs/security.md "xenstore"): the Xen
// front door over the in-memory xenstore, one guest writing its nodes in a
// loop and a victim guest beside it. The flood's events are handled a few
// per loop pass, the victim's in the first pass, and none is dropped.
#include "xen_frontdoor.hpp"

#include <gtest/gtest.h>
#include <iostream>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <xkbus/xenstore/device_protocol.hpp>
#include <xkbus/xenstore/memory_store.hpp>

namespace xkbus::hostile {
namespace {

using xenstore::DeviceId;
using xenstore::DomId;

constexpr DomId ATTACKER = 5;
constexpr DomId VICTIM = 6;
constexpr xenstore::PacerLimits PACING{.eventsPerDomainPerPass = 8,
                                       .transitionsPerDomainPerPass = 2,
                                       .transitionsPerSecond = 20,
                                       .transitionBurst = 10};

class XenstoreFloodTest : public ::testing::Test {
protected:
    void SetUp() override {
        daemon::PeerSink sink;
        sink.adopt = [](ring::Connection, const daemon::PeerInfo&, std::string, UniqueFd) {
            return daemon::ConnectionId{1};
        };
        sink.drop = [](daemon::ConnectionId, const std::string&) {};
        auto log = std::make_shared<spdlog::logger>(
            "xen", std::make_shared<spdlog::sinks::null_sink_mt>());
        m_loop = daemon::EventLoop::create().value();
        m_door = std::make_unique<daemon::XenFrontdoor>(*m_loop, sink, log, 1,
                                                        ring::BackendOptions{}, PACING);
        ASSERT_TRUE(m_door->start(m_store.connect(0)));
        introduce(ATTACKER);
        introduce(VICTIM);
        drain(); // both guests get their slot
        ASSERT_EQ(m_door->pacer().waiting(), 0u);
    }

    // As libxl: /local/domain/<id> owned by dom0, readable by the guest.
    void introduce(DomId domid) {
        auto dom0 = m_store.connect(0);
        const std::string home = xenstore::domainPath(domid);
        ASSERT_TRUE(dom0->mkdir(0, home));
        ASSERT_TRUE(dom0->setPermissions(
            0, home, {{0, xenstore::Access::NONE}, {domid, xenstore::Access::READ}}));
        m_store.introduceDomain(domid);
    }

    // One loop pass: what the event loop does when the watch fd is readable.
    bool pass() {
        m_door->onWatchReadable();
        return m_door->serveDeferred();
    }

    size_t drain() {
        size_t passes = 1;
        while (pass()) {
            ++passes;
        }
        return passes;
    }

    static std::string stateOf(DomId domid) {
        return xenstore::nodePath(xenstore::frontendDir(DeviceId{domid, 0}), xenstore::key::STATE);
    }

    xenstore::MemoryStore m_store;
    std::unique_ptr<daemon::EventLoop> m_loop;
    std::unique_ptr<daemon::XenFrontdoor> m_door;
};

TEST_F(XenstoreFloodTest, GuestWritingClosedInALoopCannotStarveTheOthers) {
    auto attacker = m_store.connect(ATTACKER);
    auto victim = m_store.connect(VICTIM);
    const std::string slot = xenstore::frontendDir(DeviceId{ATTACKER, 0});
    constexpr int JUNK = 400;
    for (int i = 0; i < JUNK; ++i) {
        ASSERT_TRUE(attacker->write(0, slot + "/junk" + std::to_string(i), "x")) << i;
        ASSERT_TRUE(attacker->write(0, stateOf(ATTACKER), i % 2 == 0 ? "6" : "1")) << i;
    }
    ASSERT_TRUE(victim->write(0, stateOf(VICTIM), "1"));
    const size_t attackerBefore = m_door->pacer().handled(ATTACKER);
    const size_t victimBefore = m_door->pacer().handled(VICTIM);

    EXPECT_TRUE(pass()) << "the flood is not handled in one pass";
    EXPECT_GT(m_door->pacer().handled(VICTIM), victimBefore) << "the victim's turn came first";
    EXPECT_LE(m_door->pacer().handled(ATTACKER) - attackerBefore, PACING.eventsPerDomainPerPass);

    const size_t passes = drain();
    std::cout << "the flood's " << m_door->pacer().handled(ATTACKER) - attackerBefore
              << " events took " << passes + 1 << " loop passes\n";
    EXPECT_EQ(m_door->pacer().waiting(), 0u);
    // Every distinct event was handled (the junk nodes and the state node:
    // repeats of a waiting event are one), over many passes.
    EXPECT_GE(m_door->pacer().handled(ATTACKER) - attackerBefore, size_t{JUNK} + 1);
    EXPECT_GE(passes, size_t{JUNK} / PACING.eventsPerDomainPerPass);
}

// The transition budget, on a clock the test moves: a guest whose every
// event is a device transition (as a guest cycling its device between
// Closed and Connected makes) gets its burst at once, then 20 a second; the
// victim domain is not slowed by it, and nothing is dropped.
TEST(EventPacerTest, DeviceTransitionsAreRateLimitedPerDomain) {
    xenstore::EventPacer pacer(PACING);
    using Clock = xenstore::EventPacer::Clock;
    auto now = Clock::now();
    for (int i = 0; i < 100; ++i) {
        pacer.push({xenstore::frontendDir(DeviceId{ATTACKER, 0}) + "/n" + std::to_string(i), "t"});
    }
    size_t transitions = 0;
    auto handle = [&](const xenstore::WatchEvent& event) {
        if (xenstore::guestOfEvent(event.path) == ATTACKER) {
            pacer.noteTransition(ATTACKER, now);
            ++transitions;
        }
    };
    // Within the same instant: 2 a pass, until the burst of 10 is spent.
    for (int pass = 0; pass < 20; ++pass) {
        pacer.runPass(handle, now);
    }
    EXPECT_EQ(transitions, 10u) << "the burst, then nothing until time passes";
    const auto refill = pacer.nextRefill();
    ASSERT_TRUE(refill);
    EXPECT_LE(*refill - now, std::chrono::milliseconds(51)) << "one more after 1/20 s";
    EXPECT_FALSE(pacer.runPass(handle, now)) << "the loop may sleep until then";

    pacer.push({xenstore::frontendDir(DeviceId{VICTIM, 0}) + "/state", "t"});
    EXPECT_FALSE(pacer.runPass(handle, now)) << "handled at once; the attacker still waits";
    EXPECT_EQ(pacer.handled(VICTIM), 1u) << "another domain is not held back";

    // Over the next second, in steps of 50 ms: 20 more, however many passes
    // run (not 2 a pass).
    for (int step = 0; step < 20; ++step) {
        now += std::chrono::milliseconds(50);
        for (int pass = 0; pass < 5; ++pass) {
            pacer.runPass(handle, now);
        }
    }
    EXPECT_EQ(transitions, 30u);
    // After a long quiet spell, no more than the burst at once.
    now += std::chrono::seconds(10);
    for (int pass = 0; pass < 100; ++pass) {
        pacer.runPass(handle, now);
    }
    EXPECT_EQ(transitions, 40u);
    // Given time, everything is handled.
    while (pacer.waiting() > 0) {
        now += std::chrono::milliseconds(100);
        pacer.runPass(handle, now);
    }
    EXPECT_EQ(transitions, 100u);
}

} // namespace
} // namespace xkbus::hostile
