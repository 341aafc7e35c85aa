// Two processes over the local transport; the child is SIGKILLed at a random
// moment (during the handshake, mid-record, while asleep). Whichever side
// survives must see the death: DISCONNECTED (never a timeout or a hang) and
// the dead side's status byte zero, as gntalloc's unmap notify leaves it.
#include "heap_ring.hpp"
#include "local_pair.hpp"

#include <chrono>
#include <csignal>
#include <gtest/gtest.h>
#include <random>
#include <sys/wait.h>
#include <thread>

namespace xkbus::ring {
namespace {

using namespace std::chrono_literals;
using test::patterned;
using test::toVector;

constexpr int ROUNDS = 12;
constexpr auto WATCHDOG = 5000ms;

// The child: connects in its role, then echoes until the ring fails.
[[noreturn]] void runEchoChild(Role role, int socketFd) {
    auto connection = role == Role::FRONTEND ? local::connectFrontend(socketFd)
                                             : test::acceptWithin(socketFd, 5000);
    if (!connection) {
        ::_exit(3);
    }
    for (;;) {
        auto record = connection->receive(-1ms);
        if (!record) {
            ::_exit(4);
        }
        const auto copy = toVector(*record);
        if (!connection->send(copy, -1ms)) {
            ::_exit(5);
        }
    }
}

// The parent's side of one round: ping-pong until the ring reports an error.
Errc pingPongUntilFailure(Connection& connection, std::mt19937& random) {
    for (uint32_t i = 0;; ++i) {
        const auto ping = patterned(random() % 9000, i);
        if (auto sent = connection.send(ping, WATCHDOG); !sent) {
            return sent.error();
        }
        auto pong = connection.receive(WATCHDOG);
        if (!pong) {
            return pong.error();
        }
        EXPECT_EQ(toVector(*pong), ping);
    }
}

void killChildAtRandomMoments(Role childRole) {
    std::mt19937 random(static_cast<uint32_t>(childRole == Role::FRONTEND ? 11 : 22));
    int handshakesLost = 0;
    for (int round = 0; round < ROUNDS; ++round) {
        test::SocketPair sockets;
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            runEchoChild(childRole,
                         childRole == Role::FRONTEND ? sockets.frontend : sockets.backend);
        }
        // Anywhere from "before it connects" to "deep in the exchange".
        const auto delay = std::chrono::microseconds(random() % 30000);
        std::thread killer([child, delay] {
            std::this_thread::sleep_for(delay);
            ::kill(child, SIGKILL);
        });
        // Close our copy of the child's socket end first, so only the child
        // holds it: a child killed before its handshake then reads as EOF.
        childRole == Role::FRONTEND ? sockets.closeFrontend() : sockets.closeBackend();
        auto connection = childRole == Role::FRONTEND ? test::acceptWithin(sockets.backend, 5000)
                                                      : local::connectFrontend(sockets.frontend);
        Errc outcome = Errc::DISCONNECTED;
        if (connection) {
            outcome = pingPongUntilFailure(*connection, random);
            EXPECT_FALSE(connection->peerAlive()) << "status byte must read gone";
        } else {
            outcome = connection.error(); // killed before the handshake completed
            ++handshakesLost;
        }
        killer.join();
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            << "child exited by itself with " << WEXITSTATUS(status);
        EXPECT_EQ(outcome, Errc::DISCONNECTED) << "round " << round << ", kill after "
                                               << delay.count() << " us: " << describe(outcome);
    }
    ::testing::Test::RecordProperty("handshakes_lost", handshakesLost);
}

TEST(SigKill, BackendSeesFrontendDeath) {
    killChildAtRandomMoments(Role::FRONTEND);
}

TEST(SigKill, FrontendSeesBackendDeath) {
    killChildAtRandomMoments(Role::BACKEND);
}

} // namespace
} // namespace xkbus::ring
