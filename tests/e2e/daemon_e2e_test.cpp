// xkbusd end to end: real daemon, real client processes, real SIGKILLs.
#include "daemon_fixture.hpp"

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sys/resource.h>
#include <sys/socket.h>
#include <xkbus/ring/local/local_transport.hpp>
#include <xkbus/ring/ring_link.hpp>
#include <xkbus/socket/socket_link.hpp>

namespace xkbus::testing {
namespace {

using frontend::openDefaultKsock;

TEST_F(DaemonTest, RequestAndReplyBetweenProcesses) {
    Gate ready;
    const pid_t replier = spawn([&] {
        auto k = openDefaultKsock(0, true);
        if (!k || !(*k)->bind("$.Sensors.*", true)) {
            return 1;
        }
        ready.open();
        if (!waitReadable((*k)->fd())) {
            return 2;
        }
        auto req = (*k)->nextMessage();
        if (!req || !*req || !(*req)->wantsYouToReply()) {
            return 3;
        }
        frontend::Message answer = frontend::textMessage((*req)->name(), "42");
        answer.header.inReplyTo = (*req)->header.id;
        answer.header.to = (*req)->header.from;
        return (*k)->send(answer) ? 0 : 4;
    });
    ASSERT_TRUE(ready.waitOpen());
    auto sender = openDefaultKsock(0, true).value();
    auto id =
        sender->send(frontend::textMessage("$.Sensors.Kitchen", "", FLAG_WANT_A_REPLY)).value();
    ASSERT_TRUE(waitReadable(sender->fd()));
    auto reply = sender->nextMessage().value();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.inReplyTo, id);
    EXPECT_EQ(reply->data().size(), 2u);
    EXPECT_EQ(reap(replier), 0);
}

TEST_F(DaemonTest, KilledReplierGivesGoneAwayForQueuedAndIgnoredForRead) {
    Gate ready;
    Gate popped;
    const pid_t replier = spawn([&] {
        auto k = openDefaultKsock(0, true);
        if (!k || !(*k)->bind("$.q", true)) {
            return 1;
        }
        ready.open();
        if (!waitReadable((*k)->fd()) || !(*k)->nextMessage()) {
            return 2;
        }
        popped.open();
        ::pause(); // never answers
        return 0;
    });
    ASSERT_TRUE(ready.waitOpen());
    auto sender = openDefaultKsock(0, true).value();
    auto first = sender->send(frontend::textMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    ASSERT_TRUE(popped.waitOpen());
    auto second = sender->send(frontend::textMessage("$.q", "", FLAG_WANT_A_REPLY)).value();
    ::kill(replier, SIGKILL);
    EXPECT_EQ(reap(replier), 128 + SIGKILL);
    std::map<std::string, MsgId> got;
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(waitReadable(sender->fd())) << "status " << i << " never came";
        auto m = sender->nextMessage().value();
        ASSERT_TRUE(m);
        EXPECT_EQ(m->header.flags & FLAG_SYNTHETIC, FLAG_SYNTHETIC);
        got[std::string(m->name())] = m->header.inReplyTo;
    }
    EXPECT_EQ(got[std::string(NAME_REPLIER_IGNORED)], first);
    EXPECT_EQ(got[std::string(NAME_REPLIER_GONE_AWAY)], second);
}

TEST_F(DaemonTest, RecipientFdIsReadableWhenSendReturns) {
    Gate ready;
    Gate sent;
    Gate checked;
    const pid_t listener = spawn([&] {
        auto k = openDefaultKsock(0, false);
        if (!k || !(*k)->bind("$.x", false)) {
            return 1;
        }
        if ((pollNow((*k)->fd()) & POLLIN) != 0) {
            return 2; // readable before anything was sent
        }
        ready.open();
        if (!sent.waitOpen()) {
            return 3;
        }
        // No waiting: the sender's send has returned, so the copy is queued.
        if ((pollNow((*k)->fd()) & POLLIN) == 0) {
            return 4;
        }
        if (!(*k)->nextMessage().value()) {
            return 5;
        }
        checked.open();
        return 0;
    });
    ASSERT_TRUE(ready.waitOpen());
    auto sender = openDefaultKsock(0, true).value();
    ASSERT_TRUE(sender->send(frontend::textMessage("$.x")));
    sent.open();
    EXPECT_TRUE(checked.waitOpen());
    EXPECT_EQ(reap(listener), 0);
}

TEST_F(DaemonTest, FdIsUnwritableWhileAnAllOrWaitSendIsBlocked) {
    auto sender = openDefaultKsock(0, true).value();
    auto slow = openDefaultKsock(0, true).value();
    ASSERT_TRUE(slow->bind("$.x", false));
    ASSERT_TRUE(slow->control(frontend::Control::MAX_MESSAGES, 1));
    EXPECT_TRUE(pollNow(sender->fd()) & POLLOUT);
    EXPECT_FALSE(pollNow(slow->fd()) & POLLIN);
    ASSERT_TRUE(sender->send(frontend::textMessage("$.x")));
    EXPECT_TRUE(pollNow(slow->fd()) & POLLIN);
    EXPECT_EQ(sender->send(frontend::textMessage("$.x", "", FLAG_ALL_OR_WAIT)).error(),
              Errc::TRY_AGAIN);
    EXPECT_FALSE(pollNow(sender->fd()) & POLLOUT) << "a blocked sender is not writable";
    ASSERT_TRUE(slow->nextMessage().value());
    // The pop reaches the daemon with the next call; then the send completes.
    EXPECT_EQ(slow->control(frontend::Control::NUM_MESSAGES, 0).value(), 1u);
    EXPECT_TRUE(pollNow(sender->fd()) & POLLOUT);
    ASSERT_TRUE(slow->nextMessage().value());
    EXPECT_EQ(slow->control(frontend::Control::NUM_MESSAGES, 0).value(), 0u);
    EXPECT_FALSE(pollNow(slow->fd()) & POLLIN) << "unreadable once empty";
}

// True once the daemon has closed its end of a client's handshake socket,
// which it does when it drops the client.
bool daemonHungUp(int socketFd) {
    pollfd p{socketFd, POLLIN, 0};
    char buf[64];
    for (;;) {
        if (::poll(&p, 1, 5000) != 1) {
            return false;
        }
        const ssize_t n = ::recv(socketFd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) {
            return true;
        }
        if (n < 0 && errno != EAGAIN) {
            return errno == ECONNRESET;
        }
    }
}

TEST_F(DaemonTest, HostileClientsAreDroppedAndOthersCarryOn) {
    auto listener = openDefaultKsock(0, true).value();
    ASSERT_TRUE(listener->bind("$.x", false));
    {
        SCOPED_TRACE("garbage instead of a ring handshake");
        auto raw = socket::connectUnix(m_socket).value();
        std::vector<char> junk(64, 'Z');
        ASSERT_EQ(::send(raw.get(), junk.data(), junk.size(), MSG_NOSIGNAL), 64);
        EXPECT_TRUE(daemonHungUp(raw.get()));
    }
    {
        SCOPED_TRACE("a record far over the size limit");
        auto raw = socket::connectUnix(m_socket).value();
        ring::FrontendOptions options;
        options.maxRecordBytes = 8u << 20;
        auto ring = ring::local::connectFrontend(raw.get(), options).value();
        std::vector<std::byte> huge(1u << 20, std::byte{1});
        (void)ring.trySend(huge); // the daemon gives up on the ring mid-stream
        EXPECT_TRUE(daemonHungUp(raw.get()));
    }
    {
        SCOPED_TRACE("garbage in a well-framed record");
        auto raw = socket::connectUnix(m_socket).value();
        auto ring = ring::local::connectFrontend(raw.get()).value();
        std::vector<std::byte> junk(64, std::byte{0x5A});
        ASSERT_TRUE(ring.send(junk, std::chrono::seconds(5)));
        EXPECT_TRUE(daemonHungUp(raw.get()));
    }
    {
        SCOPED_TRACE("bytes on the socket after the handshake");
        auto raw = socket::connectUnix(m_socket).value();
        auto ring = ring::local::connectFrontend(raw.get()).value();
        ASSERT_EQ(::send(raw.get(), "x", 1, MSG_NOSIGNAL), 1);
        EXPECT_TRUE(daemonHungUp(raw.get()));
    }
    auto sender = openDefaultKsock(0, true).value();
    ASSERT_TRUE(sender->send(frontend::textMessage("$.x")));
    EXPECT_TRUE(listener->nextMessage().value()) << "the bus lost nothing";
}

TEST_F(DaemonTest, OnlyClientsOfTheTrustedSocketMaySendSyntheticMessages) {
    auto listener = openDefaultKsock(0, false).value();
    ASSERT_TRUE(listener->bind("$.status", false));
    auto limpet = frontend::connectLocal(m_dir + "/limpet.sock").value()->openKsock(0, true);
    ASSERT_TRUE(limpet);
    auto client = openDefaultKsock(0, true).value();
    ASSERT_TRUE((*limpet)->send(frontend::textMessage("$.status", "", FLAG_SYNTHETIC)));
    ASSERT_TRUE(client->send(frontend::textMessage("$.status", "", FLAG_SYNTHETIC)));
    auto fromLimpet = listener->nextMessage().value();
    auto fromClient = listener->nextMessage().value();
    ASSERT_TRUE(fromLimpet && fromClient);
    EXPECT_NE(fromLimpet->header.flags & FLAG_SYNTHETIC, 0u) << "a Limpet's status is kept";
    EXPECT_EQ(fromClient->header.flags & FLAG_SYNTHETIC, 0u) << "a client cannot forge one";
}

TEST_F(DaemonTest, NeverReadingClientCannotHoldMoreThanItsQuota) {
    // A listener that never reads, on a bus flooded by a sender: the sender
    // keeps going, and the daemon survives.
    auto hog = openDefaultKsock(0, false).value();
    ASSERT_TRUE(hog->bind("$.flood", false));
    ASSERT_TRUE(hog->control(frontend::Control::MAX_MESSAGES, 1000000));
    auto sender = openDefaultKsock(0, true).value();
    const frontend::Message big =
        makeMessage("$.flood", std::vector<std::byte>(60000, std::byte{1}));
    for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(sender->send(big)) << i;
    }
    auto queued = hog->control(frontend::Control::NUM_MESSAGES, 0).value();
    EXPECT_LT(queued, 2000u);
    EXPECT_LE(queued * entireMessageLength(7, 60000), 64ull << 20) << "64 MiB quota per peer";
}

// The ring without the daemon's fds: the way a Xen guest's library runs
// (dom0 cannot pass descriptors), tried out on the local ring.
class NoDescriptorsLink final : public protocol::RecordLink {
public:
    explicit NoDescriptorsLink(std::unique_ptr<protocol::RecordLink> inner)
        : m_inner(std::move(inner)) {}
    Result<void> send(const protocol::Record& r, bool lazy) override {
        return m_inner->send(r, lazy);
    }
    Result<size_t> receive(const std::function<void(protocol::Record&&)>& deliver,
                           const protocol::Limits& limits) override {
        return m_inner->receive(deliver, limits);
    }
    Result<bool> wait(int timeoutMs, int extraFd) override {
        return m_inner->wait(timeoutMs, extraFd);
    }
    bool backlogged() override { return m_inner->backlogged(); }
    int takeReceivedFd() override {
        const int fd = m_inner->takeReceivedFd();
        if (fd >= 0) {
            ::close(fd);
        }
        return -1;
    }
    std::vector<int> wakeFds() const override { return m_inner->wakeFds(); }
    Result<void> acknowledgeWakeup() override { return m_inner->acknowledgeWakeup(); }
    Result<bool> armWakeup() override { return m_inner->armWakeup(); }

private:
    std::unique_ptr<protocol::RecordLink> m_inner;
};

std::shared_ptr<frontend::Connection> connectWithoutDaemonFds(const std::string& path) {
    auto socket = socket::connectUnix(path).value();
    auto ring = ring::local::connectFrontend(socket.get()).value();
    auto link =
        std::make_unique<NoDescriptorsLink>(std::make_unique<ring::RingLink>(std::move(ring)));
    return frontend::Connection::start(std::move(link), 1, frontend::pollSignals()).value();
}

TEST_F(DaemonTest, LibraryKeptFdsTurnReadableWithoutTheApplicationCallingIn) {
    auto connection = connectWithoutDaemonFds(m_socket);
    auto guest = connection->openKsock(0, true).value();
    ASSERT_GE(guest->fd(), 0);
    ASSERT_TRUE(guest->bind("$.w", false));
    auto sender = openDefaultKsock(0, true).value();
    for (int round = 0; round < 50; ++round) {
        ASSERT_TRUE(sender->send(frontend::textMessage("$.w", std::to_string(round))));
        // Nothing calls into `connection` here: its watcher must notice.
        ASSERT_TRUE(waitReadable(guest->fd(), 5000)) << "round " << round;
        auto got = guest->nextMessage().value();
        ASSERT_TRUE(got);
        EXPECT_EQ(frontend::dataText(*got), std::to_string(round));
        EXPECT_FALSE(pollNow(guest->fd()) & POLLIN) << "unreadable once empty";
    }
    EXPECT_EQ(stopDaemon(SIGKILL), -SIGKILL);
    ASSERT_TRUE(waitReadable(guest->fd(), 5000)) << "a dead daemon wakes the poller";
    auto failed = guest->nextMessage();
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error(), Errc::DISCONNECTED);
    guest.reset();
    connection.reset();
    startDaemon(); // for TearDown
}

TEST_F(DaemonTest, ThousandKsocksInOneProcessThroughTheDaemon) {
    rlimit lim{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4096);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
    ASSERT_GE(lim.rlim_cur, 1100u) << "descriptor limit too low for 1000 Ksocks";
    auto sender = openDefaultKsock(0, true).value();
    std::vector<std::unique_ptr<frontend::KsockChannel>> listeners;
    for (int i = 0; i < 1000; ++i) {
        auto k = openDefaultKsock(0, false);
        ASSERT_TRUE(k) << "Ksock " << i << ": " << describe(k.error());
        ASSERT_TRUE((*k)->bind("$.All", false));
        listeners.push_back(std::move(*k));
    }
    ASSERT_TRUE(sender->send(frontend::textMessage("$.All", "everyone")));
    std::vector<pollfd> fds;
    for (const auto& k : listeners) {
        fds.push_back(pollfd{k->fd(), POLLIN, 0});
    }
    EXPECT_EQ(::poll(fds.data(), fds.size(), 0), 1000) << "all readable when send returned";
    for (const auto& k : listeners) {
        auto m = k->nextMessage().value();
        ASSERT_TRUE(m);
        EXPECT_EQ(frontend::dataText(*m), "everyone");
    }
}

TEST_F(DaemonTest, DaemonDeathIsAClearErrorAndClientsReconnect) {
    auto k = openDefaultKsock(0, true).value();
    ASSERT_TRUE(k->bind("$.x", false));
    EXPECT_EQ(stopDaemon(SIGKILL), -SIGKILL);
    auto failed = k->bind("$.y", false);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error(), Errc::DISCONNECTED);
    EXPECT_FALSE(openDefaultKsock(0, true)) << "no daemon, no Ksock";
    startDaemon();
    auto again = openDefaultKsock(0, true);
    ASSERT_TRUE(again) << "reconnected after the restart";
    EXPECT_TRUE((*again)->bind("$.x", false));
}

TEST_F(DaemonTest, StopsCleanlyOnSigterm) {
    auto k = openDefaultKsock(0, true).value();
    EXPECT_EQ(stopDaemon(SIGTERM), 0);
    EXPECT_FALSE(std::filesystem::exists(m_socket)) << "the socket is removed";
}

// Repliers and senders killed at random moments: every request a surviving
// sender made gets exactly one answer, and the daemon's books balance.
TEST_F(DaemonTest, RandomKillsOfRepliersAndSendersNeverLoseOrDuplicateAnAnswer) {
    const unsigned seed = std::random_device{}();
    std::printf("random kills seed %u\n", seed);
    std::mt19937 rng(seed);
    auto sender = openDefaultKsock(0, true).value();
    const int iterations = 200;
    for (int i = 0; i < iterations; ++i) {
        Gate ready;
        const pid_t replier = spawn([&] {
            auto k = openDefaultKsock(0, true);
            if (!k || !(*k)->bind("$.work", true)) {
                return 1;
            }
            ready.open();
            for (;;) { // answer some, read some, leave some queued
                if (!waitReadable((*k)->fd(), 1000)) {
                    continue;
                }
                auto req = (*k)->nextMessage();
                if (!req || !*req) {
                    continue;
                }
                if ((*req)->header.id.serialNum % 3 == 0) {
                    frontend::Message a = frontend::textMessage((*req)->name());
                    a.header.inReplyTo = (*req)->header.id;
                    a.header.to = (*req)->header.from;
                    (void)(*k)->send(a);
                }
            }
        });
        ASSERT_TRUE(ready.waitOpen());
        // A second sender, killed at a random moment too: mid-send, waiting
        // for answers, or after some arrived. What was owed to it must go.
        Gate sent;
        const pid_t doomedSender = spawn([&] {
            auto k = openDefaultKsock(0, true);
            if (!k) {
                return 1;
            }
            sent.open();
            for (;;) {
                (void)(*k)->send(frontend::textMessage("$.work", "doomed", FLAG_WANT_A_REPLY));
                if (waitReadable((*k)->fd(), 1)) {
                    (void)(*k)->nextMessage();
                }
            }
        });
        ASSERT_TRUE(sent.waitOpen());
        std::set<MsgId> outstanding;
        const int requests = 1 + static_cast<int>(rng() % 5);
        for (int r = 0; r < requests; ++r) {
            auto id = sender->send(frontend::textMessage("$.work", "", FLAG_WANT_A_REPLY));
            ASSERT_TRUE(id);
            outstanding.insert(*id);
        }
        // Kill both, in a random order, at random moments.
        const bool senderFirst = rng() % 2 == 0;
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        ::kill(senderFirst ? doomedSender : replier, SIGKILL);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));
        ::kill(senderFirst ? replier : doomedSender, SIGKILL);
        reap(replier);
        reap(doomedSender);
        while (!outstanding.empty()) {
            ASSERT_TRUE(waitReadable(sender->fd())) << "iteration " << i << " seed " << seed;
            auto m = sender->nextMessage().value();
            if (!m) {
                continue; // the fd can lag the pop that emptied the queue (docs/c-api.md)
            }
            ASSERT_EQ(outstanding.erase(m->header.inReplyTo), 1u)
                << "an answer to nothing outstanding (duplicate?), iteration " << i;
        }
        EXPECT_EQ(sender->control(frontend::Control::NUM_MESSAGES, 0).value(), 0u)
            << "no extra answers";
    }
    // Nothing leaked in the daemon: only the sender's Ksock is left, with
    // nothing queued, awaited or owed, and no binding.
    auto connection = frontend::connectLocal(m_socket).value();
    auto stats =
        nlohmann::json::parse(connection->introspect(0, protocol::Introspect::STATS).value());
    ASSERT_EQ(stats["ksocks"].size(), 1u) << stats.dump();
    EXPECT_EQ(stats["ksocks"][0]["queued"], 0);
    EXPECT_EQ(stats["ksocks"][0]["awaiting_replies"], 0);
    EXPECT_EQ(stats["ksocks"][0]["bindings"], 0);
    EXPECT_EQ(stats["copies_queued"].get<uint64_t>(),
              stats["copies_popped"].get<uint64_t>() + stats["copies_dropped"].get<uint64_t>());
    EXPECT_EQ(connection->introspect(0, protocol::Introspect::BINDINGS).value(), "[]");
}

} // namespace
} // namespace xkbus::testing
