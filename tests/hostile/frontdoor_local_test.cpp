// Hostile local users at xkbusd's front door (issue 15, docs/security.md
// "Front doors"): each test runs a real daemon, an attacker as nobody and a
// victim request/reply pair as root, and checks the refusal and that the
// victim is still served.
#include "frontdoor_fixture.hpp"

#include <fcntl.h>
#include <iostream>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <xkbus/protocol/records.hpp>
#include <xkbus/ring/local/local_transport.hpp>

// What the next local handshake of this process sends instead of a plain
// eventfd. The ring library calls eventfd(); this definition in the test
// executable takes its place.
namespace {
enum class KickFd { PLAIN, SEMAPHORE, PIPE };
KickFd g_kickFd = KickFd::PLAIN;
} // namespace

extern "C" int eventfd(unsigned int initval, int flags) {
    switch (g_kickFd) {
    case KickFd::SEMAPHORE:
        return static_cast<int>(::syscall(SYS_eventfd2, initval, flags | EFD_SEMAPHORE));
    case KickFd::PIPE: {
        int fds[2];
        return ::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0 ? fds[0] : -1;
    }
    case KickFd::PLAIN:
        break;
    }
    return static_cast<int>(::syscall(SYS_eventfd2, initval, flags));
}

namespace xkbus::hostile {
namespace {

constexpr const char* VICTIM_NAME = "$.victim.service";

// Hands the daemon a ring whose kick descriptor is `kind`; 0 if the daemon
// closed the connection (refused it), 1 if it kept it.
int handshakeWith(KickFd kind, const std::string& socketPath) {
    g_kickFd = kind;
    auto raw = socket::connectUnix(socketPath);
    if (!raw) {
        return 2;
    }
    auto ring = ring::local::connectFrontend(raw->get());
    if (!ring) {
        return 3;
    }
    // A kick byte means the daemon took the ring; EOF that it refused it.
    pollfd p{raw->get(), POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) {
        return 1;
    }
    char byte = 0;
    return ::recv(raw->get(), &byte, 1, MSG_DONTWAIT) == 0 ? 0 : 1;
}

TEST_F(FrontdoorTest, SemaphoreEventfdInTheHandshakeIsRefused) {
    startDaemon();
    startVictimReplier(VICTIM_NAME);
    const pid_t attacker =
        spawnAttacker([&] { return handshakeWith(KickFd::SEMAPHORE, m_socket); });
    EXPECT_EQ(reap(attacker), 0) << "the daemon closed the connection";
    auto sender = frontend::openDefaultKsock(0, true).value();
    EXPECT_TRUE(victimRoundTrip(*sender, VICTIM_NAME));
}

TEST_F(FrontdoorTest, NonEventfdInTheHandshakeIsRefused) {
    startDaemon();
    const pid_t attacker = spawnAttacker([&] { return handshakeWith(KickFd::PIPE, m_socket); });
    EXPECT_EQ(reap(attacker), 0) << "the daemon closed the connection";
    // The same handshake with a plain eventfd is kept: the refusal was the fd's.
    const pid_t honest = spawnAttacker([&] { return handshakeWith(KickFd::PLAIN, m_socket); });
    EXPECT_EQ(reap(honest), 1);
}

TEST_F(FrontdoorTest, StuckPeerCostsTheDaemonNoCpu) {
    startDaemon();
    startVictimReplier(VICTIM_NAME);
    Gate stuck;
    spawnAttacker([&] {
        auto k = frontend::openDefaultKsock(0, false);
        if (!k || !(*k)->bind("$.flood", false) ||
            !(*k)->control(frontend::Control::MAX_MESSAGES, 100000)) {
            return 1;
        }
        stuck.open();
        ::pause(); // never reads again
        return 0;
    });
    ASSERT_TRUE(stuck.waitOpen());
    auto sender = frontend::openDefaultKsock(0, true).value();
    // Far more than its ring holds: the rest waits in the daemon.
    const auto body = std::vector<std::byte>(2000, std::byte{7});
    for (int i = 0; i < 500; ++i) {
        ASSERT_TRUE(sender->send(makeMessage("$.flood", body))) << i;
    }
    std::this_thread::sleep_for(100ms); // let the daemon settle
    const auto cpu = daemonCpuOver(1000ms);
    std::cout << "daemon CPU over 1 s beside a stuck peer: " << cpu.count() << " ms\n";
    EXPECT_LE(cpu, 50ms) << "the daemon kept working for a peer that does not read";
    EXPECT_TRUE(victimRoundTrip(*sender, VICTIM_NAME));
}

TEST_F(FrontdoorTest, HandshakeThatNeverArrivesIsClosedAtTheDeadline) {
    startDaemon({.args = {"--handshake-timeout-ms", "300"}});
    const pid_t attacker = spawnAttacker([&] {
        auto raw = socket::connectUnix(m_socket);
        if (!raw) {
            return 2;
        }
        const auto start = Clock::now();
        if (!hungUpWithin(raw->get(), 5000ms)) {
            return 1;
        }
        return Clock::now() - start >= 250ms ? 0 : 3; // not before its deadline
    });
    EXPECT_EQ(reap(attacker), 0);
}

TEST_F(FrontdoorTest, PendingHandshakesAreBoundedPerUser) {
    startDaemon({.args = {"--max-pending-per-user", "4", "--max-pending-handshakes", "64",
                          "--handshake-timeout-ms", "20000"}});
    startVictimReplier(VICTIM_NAME);
    Gate hogging;
    spawnAttacker([&] {
        std::vector<UniqueFd> kept;
        int refused = 0;
        for (int i = 0; i < 10; ++i) {
            auto raw = socket::connectUnix(m_socket);
            if (!raw) {
                return 2;
            }
            // The daemon accepts in order: the fifth on is closed at once.
            if (hungUpWithin(raw->get(), i < 4 ? 200ms : 3000ms)) {
                ++refused;
            } else {
                kept.push_back(std::move(*raw));
            }
        }
        if (refused != 6 || kept.size() != 4) {
            return 10 + refused;
        }
        hogging.open();
        ::pause();
        return 0;
    });
    ASSERT_TRUE(hogging.waitOpen(20000)) << "four pending handshakes kept, six refused";
    // Another user (the victim, root) still connects and is served.
    auto sender = frontend::openDefaultKsock(0, true).value();
    EXPECT_TRUE(victimRoundTrip(*sender, VICTIM_NAME));
}

TEST_F(FrontdoorTest, LimpetConnectsWhileClientsHogTheClientSocket) {
    startDaemon({.args = {"--max-pending-per-user", "8", "--max-pending-handshakes", "8",
                          "--handshake-timeout-ms", "20000"}});
    Gate hogging;
    holdRawConnections(8, hogging, true);
    ASSERT_TRUE(hogging.waitOpen());
    std::this_thread::sleep_for(200ms); // the daemon has taken all eight
    {
        SCOPED_TRACE("the client socket is full, even for root");
        auto raw = socket::connectUnix(m_socket).value();
        EXPECT_TRUE(hungUpWithin(raw.get(), 3000ms));
    }
    auto limpet = frontend::connectLocal(m_trusted);
    ASSERT_TRUE(limpet) << describe(limpet.error());
    auto ksock = (*limpet)->openKsock(0, true);
    ASSERT_TRUE(ksock);
    EXPECT_TRUE((*ksock)->bind("$.limpet.mirror", true));
}

TEST_F(FrontdoorTest, SocketModesKeepOthersOffTheTrustedSocket) {
    startDaemon();
    struct stat client {};
    struct stat trusted {};
    ASSERT_EQ(::stat(m_socket.c_str(), &client), 0);
    ASSERT_EQ(::stat(m_trusted.c_str(), &trusted), 0);
    EXPECT_EQ(client.st_mode & 07777, 0660u);
    EXPECT_EQ(client.st_gid, m_nobodyGid) << "--socket-group";
    EXPECT_EQ(trusted.st_mode & 07777, 0600u);
    const pid_t attacker = spawnAttacker([&] {
        auto limpet = socket::connectUnix(m_trusted);
        if (limpet || limpet.error() != Errc::INVALID) {
            return 1; // EACCES: connectUnix has no name for it
        }
        return errno == EACCES && socket::connectUnix(m_socket) ? 0 : 2;
    });
    EXPECT_EQ(reap(attacker), 0) << "nobody reaches the client socket through the group only";
}

TEST_F(FrontdoorTest, AcceptWithoutDescriptorsBacksOffInsteadOfSpinning) {
    startDaemon({.args = {"--max-pending-per-user", "1000", "--max-pending-handshakes", "1000",
                          "--handshake-timeout-ms", "30000"},
                 .fileLimit = 40});
    startVictimReplier(VICTIM_NAME);
    auto sender = frontend::openDefaultKsock(0, true).value();
    Gate flooding;
    holdRawConnections(60, flooding, false);
    ASSERT_TRUE(flooding.waitOpen());
    std::this_thread::sleep_for(200ms); // the daemon ran out of descriptors
    const auto cpu = daemonCpuOver(1000ms);
    std::cout << "daemon CPU over 1 s out of descriptors: " << cpu.count() << " ms\n";
    EXPECT_LE(cpu, 100ms) << "the daemon spun on a listener it cannot accept from";
    EXPECT_TRUE(victimRoundTrip(*sender, VICTIM_NAME));
}

// Fan-out: each SEND_BATCH record the attacker writes reaches 32 listeners
// 32 times over, so one record is a thousand deliveries. The daemon's turn
// per peer counts that work, not records: the victim is served in between.
int fanOutFlood(std::chrono::milliseconds duration) {
    std::vector<std::unique_ptr<frontend::KsockChannel>> listeners;
    for (int i = 0; i < 32; ++i) {
        auto k = frontend::openDefaultKsock(0, false);
        if (!k || !(*k)->bind("$.fan.out", false)) {
            return 1;
        }
        listeners.push_back(std::move(*k));
    }
    auto sender = frontend::openDefaultKsock(0, true);
    if (!sender) {
        return 2;
    }
    const std::vector<frontend::Message> batch(
        32, makeMessage("$.fan.out", std::vector<std::byte>(1024, std::byte{3})));
    const auto end = Clock::now() + duration;
    while (Clock::now() < end) {
        if (!(*sender)->sendBatch(batch)) {
            return 3;
        }
        for (auto& listener : listeners) {
            (void)listener->discard();
        }
    }
    return 0;
}

TEST_F(FrontdoorTest, SendBatchFanOutLeavesTheVictimServed) {
    startDaemon();
    startVictimReplier(VICTIM_NAME);
    auto sender = frontend::openDefaultKsock(0, true).value();
    ASSERT_TRUE(victimRoundTrip(*sender, VICTIM_NAME));
    const pid_t attacker = spawnAttacker([] { return fanOutFlood(2000ms); });
    std::this_thread::sleep_for(200ms); // the flood is on
    const auto slowest = slowestVictimRoundTrip(*sender, VICTIM_NAME, 100);
    ASSERT_TRUE(slowest);
    std::cout << "slowest victim round trip during the fan-out flood: " << slowest->count()
              << " us\n";
    EXPECT_LT(*slowest, 1000ms) << "one record's fan-out stalled the victim";
    EXPECT_EQ(reap(attacker), 0);
}

TEST_F(FrontdoorTest, ConnectFloodLeavesTheVictimServed) {
    startDaemon();
    startVictimReplier(VICTIM_NAME);
    auto sender = frontend::openDefaultKsock(0, true).value();
    const pid_t attacker = spawnAttacker([&] {
        const auto end = Clock::now() + 2000ms;
        int connects = 0;
        while (Clock::now() < end) {
            connects += socket::connectUnix(m_socket) ? 1 : 0; // and closed at once
        }
        return connects > 100 ? 0 : 1;
    });
    std::this_thread::sleep_for(200ms);
    const auto slowest = slowestVictimRoundTrip(*sender, VICTIM_NAME, 100);
    ASSERT_TRUE(slowest);
    std::cout << "slowest victim round trip during the connect flood: " << slowest->count()
              << " us\n";
    EXPECT_LT(*slowest, 1000ms);
    EXPECT_EQ(reap(attacker), 0);
}

std::vector<std::byte> encoded(const protocol::Record& r) {
    std::vector<std::byte> out;
    protocol::encode(r, out);
    return out;
}

protocol::Record callRecord(protocol::RecordType type, uint32_t callId) {
    protocol::Record r;
    r.type = type;
    r.callId = callId;
    r.handle = 1;
    return r;
}

protocol::Record sendRecord(uint32_t callId, std::string_view name) {
    protocol::Record r = callRecord(protocol::RecordType::SEND, callId);
    const Message m = makeMessage(name, std::string_view("x"));
    r.header = m.header;
    r.body = m.body;
    return r;
}

// Speaks the protocol by hand: HELLO, OPEN, a SEND the victim sees; then,
// once `go` opens, a record the daemon refuses and right behind it in the
// ring a SEND and an INTROSPECT, which must never be handled.
int breakProtocolAfterOneSend(const std::string& socketPath, const FrontdoorTest::Gate& go) {
    auto raw = socket::connectUnix(socketPath);
    if (!raw) {
        return 2;
    }
    auto ring = ring::local::connectFrontend(raw->get());
    if (!ring) {
        return 3;
    }
    protocol::Record hello = callRecord(protocol::RecordType::HELLO, 1);
    hello.arg = protocol::PROTOCOL_VERSION;
    protocol::Record open = callRecord(protocol::RecordType::OPEN, 2);
    open.value = protocol::OPEN_WRITABLE;
    for (const auto& r : {hello, open, sendRecord(3, "$.doomed.before")}) {
        if (!ring->send(encoded(r), 2000ms)) {
            return 4;
        }
    }
    if (!go.waitOpen()) {
        return 5;
    }
    protocol::Record introspect = callRecord(protocol::RecordType::INTROSPECT, 5);
    introspect.arg = static_cast<uint32_t>(protocol::Introspect::BINDINGS);
    const std::vector<std::byte> garbage(16, std::byte{0x5A});
    (void)ring->send(garbage, 2000ms);
    (void)ring->send(encoded(sendRecord(4, "$.doomed.after")), 2000ms);
    (void)ring->send(encoded(introspect), 2000ms);
    // Kicks and descriptors come first on the socket; EOF says it was dropped.
    const auto end = Clock::now() + 3000ms;
    while (Clock::now() < end) {
        pollfd p{raw->get(), POLLIN, 0};
        char bytes[64];
        if (::poll(&p, 1, 100) == 1 && ::recv(raw->get(), bytes, sizeof bytes, 0) == 0) {
            return 0;
        }
    }
    return 6;
}

TEST_F(FrontdoorTest, DoomedPeerGetsNoMoreService) {
    startDaemon();
    auto victim = frontend::openDefaultKsock(0, false).value();
    ASSERT_TRUE(victim->bind("$.doomed.*", false));
    Gate go;
    const pid_t attacker = spawnAttacker([&] { return breakProtocolAfterOneSend(m_socket, go); });
    ASSERT_TRUE(waitReadable(victim->fd()));
    auto before = victim->nextMessage().value();
    ASSERT_TRUE(before);
    EXPECT_EQ(before->name(), "$.doomed.before") << "its records were served until then";
    go.open();
    EXPECT_EQ(reap(attacker), 0) << "the daemon dropped it for the refused record";
    EXPECT_FALSE(waitReadable(victim->fd(), 300)) << "nothing it sent after it was handled";
}

} // namespace
} // namespace xkbus::hostile
