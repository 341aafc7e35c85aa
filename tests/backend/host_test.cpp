// The daemon's parts composed in-process, as main.cpp composes them: an
// EventLoop, a PeerHub over a real Dispatcher and Core, and the local front
// door on a private socket. The loop runs on a thread of the test; clients
// connect over real local rings from the test's own thread.
#include <filesystem>
#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <thread>
#include <xkbus/core/core.hpp>
#include <xkbus/daemon/dispatcher.hpp>
#include <xkbus/daemon/event_loop.hpp>
#include <xkbus/daemon/local_frontdoor.hpp>
#include <xkbus/daemon/peer_hub.hpp>
#include <xkbus/frontend/message_text.hpp>
#include <xkbus/frontend/open.hpp>

namespace xkbus::daemon {
namespace {

using frontend::textMessage;

core::CoreConfig withEvents() {
    core::CoreConfig c;
    c.bus.recordQueueEvents = true;
    return c;
}

class SimulatedHost : public ::testing::Test {
protected:
    void SetUp() override {
        char dir[] = "/tmp/xkbus-host-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_socket = m_dir + "/xkbusd.sock";
        m_loop = EventLoop::create().value();
        m_hub.emplace(*m_loop, m_dispatcher, HubOptions{}, m_log);
        LocalDoorOptions door;
        door.socketPath = m_socket;
        m_door.emplace(*m_loop, m_hub->sink(), door, m_log);
        ASSERT_TRUE(m_door->start());
        m_stop = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        ASSERT_TRUE(m_loop->watch(m_stop.get(), [this] { m_loop->stop(); }));
        m_mark = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        ASSERT_TRUE(m_loop->watch(m_mark.get(), [this] {
            uint64_t drained = 0;
            (void)!::read(m_mark.get(), &drained, sizeof drained);
            m_marks.push_back(m_loop->passes()); // on the loop's thread; read after the join
        }));
        m_thread = std::thread([this] { m_ran = static_cast<bool>(m_loop->run()); });
    }

    void TearDown() override {
        stopLoop();
        EXPECT_TRUE(m_ran);
        m_hub->dropAll("the test is over");
        m_door->stop();
        std::filesystem::remove_all(m_dir);
    }

    static void kick(const UniqueFd& fd) {
        const uint64_t one = 1;
        (void)!::write(fd.get(), &one, sizeof one);
    }

    void stopLoop() {
        if (m_thread.joinable()) {
            kick(m_stop);
            m_thread.join();
        }
    }

    std::shared_ptr<frontend::Connection> connect() {
        return frontend::connectLocal(m_socket).value();
    }

    std::string m_dir;
    std::string m_socket;
    std::shared_ptr<spdlog::logger> m_log =
        std::make_shared<spdlog::logger>("host", std::make_shared<spdlog::sinks::null_sink_mt>());
    core::Core m_core{withEvents()};
    Dispatcher m_dispatcher{m_core};
    std::unique_ptr<EventLoop> m_loop;
    std::optional<PeerHub> m_hub;
    std::optional<LocalFrontdoor> m_door;
    UniqueFd m_stop;
    UniqueFd m_mark;
    std::vector<uint64_t> m_marks;
    std::thread m_thread;
    bool m_ran = false;
};

TEST_F(SimulatedHost, ARequestCrossesTwoConnectionsAndIsAnswered) {
    auto a = connect();
    auto b = connect();
    auto replier = b->openKsock(0, true).value();
    ASSERT_TRUE(replier->bind("$.q", true));
    auto sender = a->openKsock(0, true).value();
    auto id = sender->send(textMessage("$.q", "ask", FLAG_WANT_A_REPLY)).value();
    auto request = replier->nextMessage().value();
    ASSERT_TRUE(request);
    EXPECT_EQ(request->text(), "ask");
    Message answer = textMessage("$.q", "42");
    answer.header.inReplyTo = request->header.id;
    answer.header.to = request->header.from;
    ASSERT_TRUE(replier->send(answer));
    auto reply = sender->nextMessage().value();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->header.inReplyTo, id);
    EXPECT_EQ(reply->text(), "42");
}

TEST_F(SimulatedHost, AProcessThatDiesLeavesStatusesForWhatItOwed) {
    auto a = connect();
    auto sender = a->openKsock(0, true).value();
    int toChild[2];
    int fromChild[2];
    ASSERT_EQ(::pipe(toChild), 0);
    ASSERT_EQ(::pipe(fromChild), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        // A replier in a process of its own, on a connection of its own: it
        // binds, takes one request and dies without a word.
        char go = 0;
        auto b = frontend::connectLocal(m_socket);
        auto replier = b ? (*b)->openKsock(0, true) : fail(b.error());
        if (!replier || !(*replier)->bind("$.q", true) || ::write(fromChild[1], "b", 1) != 1 ||
            ::read(toChild[0], &go, 1) != 1 || !(*replier)->nextMessage().value()) {
            ::_exit(1);
        }
        ::_exit(0);
    }
    char bound = 0;
    ASSERT_EQ(::read(fromChild[0], &bound, 1), 1);
    ASSERT_TRUE(sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)));
    ASSERT_TRUE(sender->send(textMessage("$.q", "", FLAG_WANT_A_REPLY)));
    ASSERT_EQ(::write(toChild[1], "g", 1), 1);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    std::vector<std::string> names;
    while (names.size() < 2) {
        pollfd p{sender->fd(), POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 5000), 1);
        while (auto m = sender->nextMessage().value()) {
            names.emplace_back(m->name());
        }
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{std::string(NAME_REPLIER_GONE_AWAY),
                                               std::string(NAME_REPLIER_IGNORED)}));
    for (int fd : {toChild[0], toChild[1], fromChild[0], fromChild[1]}) {
        ::close(fd);
    }
}

// A loop with nothing to do sleeps: no wakeups while clients sit idle.
TEST_F(SimulatedHost, AnIdleLoopDoesNotWakeUp) {
    {
        auto a = connect();
        auto k = a->openKsock(0, true).value();
        ASSERT_TRUE(k->bind("$.idle", false));
        ASSERT_TRUE(k->send(textMessage("$.idle")));
        ASSERT_TRUE(k->nextMessage().value());
        // Mark the loop's pass count before and after a quiet second: only
        // the marks' own wakeups may show between them.
        kick(m_mark);
        std::this_thread::sleep_for(std::chrono::seconds(1));
        kick(m_mark);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stopLoop();
    ASSERT_GE(m_marks.size(), 2u);
    EXPECT_LE(m_marks[1] - m_marks[0], 1u);
}

TEST(EventLoopTest, AnEdgeTriggeredFdIsReportedOncePerChangeWithoutBeingRead) {
    auto loop = EventLoop::create().value();
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    int calls = 0;
    ASSERT_TRUE(loop->watch(
        fd.get(), [&] { ++calls; }, Trigger::EDGE));
    const uint64_t one = 1;
    ASSERT_EQ(::write(fd.get(), &one, sizeof one), 8);
    ASSERT_TRUE(loop->runOnce(1000));
    EXPECT_EQ(calls, 1);
    ASSERT_TRUE(loop->runOnce(0)); // never read, yet not reported again
    EXPECT_EQ(calls, 1);
    ASSERT_EQ(::write(fd.get(), &one, sizeof one), 8);
    ASSERT_TRUE(loop->runOnce(1000));
    EXPECT_EQ(calls, 2) << "each new kick is reported";
}

TEST(EventLoopTest, AnFdUnwatchedByAnEarlierHandlerIsNotReported) {
    auto loop = EventLoop::create().value();
    UniqueFd a(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK));
    UniqueFd b(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK));
    int calls = 0;
    ASSERT_TRUE(loop->watch(a.get(), [&] {
        ++calls;
        loop->unwatch(b.get());
    }));
    ASSERT_TRUE(loop->watch(b.get(), [&] {
        ++calls;
        loop->unwatch(a.get());
    }));
    ASSERT_TRUE(loop->runOnce(1000)); // both were ready; the first handler unwatches the other
    EXPECT_EQ(calls, 1);
}

TEST(EventLoopTest, LeftoverWorkKeepsTheLoopFromSleeping) {
    auto loop = EventLoop::create().value();
    int leftover = 3;
    int looks = 0;
    loop->setHooks([&] { return --leftover > 0; },
                   [&] {
                       ++looks;
                       loop->stop(); // with nothing watched, sleeping would never end
                       return false;
                   });
    ASSERT_TRUE(loop->run());
    EXPECT_EQ(leftover, 0) << "a pass each until the leftover work is done";
    EXPECT_EQ(looks, 1) << "then one look before sleeping, which stops it";
}

} // namespace
} // namespace xkbus::daemon
