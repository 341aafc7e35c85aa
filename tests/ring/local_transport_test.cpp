// The local transport in one process: handshake, record exchange, refusal of
// bad handshakes, timeouts, and a closed peer seen as DISCONNECTED.
#include "heap_ring.hpp"
#include "local_pair.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <thread>

namespace xkbus::ring {
namespace {

using namespace std::chrono_literals;
using test::patterned;
using test::toVector;

TEST(LocalTransport, ExchangesRecordsBothWays) {
    test::SocketPair sockets;
    auto frontend = local::connectFrontend(sockets.frontend);
    ASSERT_TRUE(frontend);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    const auto hello = patterned(300, 1);
    ASSERT_TRUE(frontend->send(hello, 1000ms));
    auto got = backend->receive(1000ms);
    ASSERT_TRUE(got);
    EXPECT_EQ(toVector(*got), hello);
    const auto big = patterned(409600, 2); // streams through a 4 KiB ring
    std::thread sender([&] { EXPECT_TRUE(backend->send(big, 5000ms)); });
    auto reply = frontend->receive(5000ms);
    sender.join();
    ASSERT_TRUE(reply) << describe(reply.error());
    EXPECT_EQ(toVector(*reply), big);
}

TEST(LocalTransport, OneSmallPageCarriesTheLargestMessage) {
    test::SocketPair sockets;
    FrontendOptions options;
    options.toBackendOrder = 10;
    options.toFrontendOrder = 10;
    auto frontend = local::connectFrontend(sockets.frontend, options);
    ASSERT_TRUE(frontend);
    EXPECT_EQ(frontend->endpoint().layout().pageCount, 1u);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    const auto big = patterned(409600, 3);
    std::thread sender([&] { EXPECT_TRUE(frontend->send(big, 5000ms)); });
    auto got = backend->receive(5000ms);
    sender.join();
    ASSERT_TRUE(got) << describe(got.error());
    EXPECT_EQ(toVector(*got), big);
}

TEST(LocalTransport, AcceptWithNothingSentSaysTryAgain) {
    test::SocketPair sockets;
    EXPECT_EQ(local::acceptBackend(sockets.backend).error(), Errc::TRY_AGAIN);
}

TEST(LocalTransport, AcceptRefusesGarbage) {
    test::SocketPair sockets;
    const char junk[16] = "not a handshake";
    ASSERT_EQ(::write(sockets.frontend, junk, sizeof junk), 16);
    std::string_view why;
    auto backend = local::acceptBackend(sockets.backend, {}, &why);
    ASSERT_FALSE(backend);
    EXPECT_EQ(backend.error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_NE(why.find("handshake"), std::string_view::npos);
}

TEST(LocalTransport, AcceptSeesAFrontendThatHungUp) {
    test::SocketPair sockets;
    sockets.closeFrontend();
    EXPECT_EQ(local::acceptBackend(sockets.backend).error(), Errc::DISCONNECTED);
}

TEST(LocalTransport, BackendRefusesRingsOverItsLimit) {
    test::SocketPair sockets;
    FrontendOptions big;
    big.toBackendOrder = 16;
    ASSERT_TRUE(local::connectFrontend(sockets.frontend, big));
    BackendOptions limits;
    limits.maxRingOrder = 14;
    std::string_view why;
    auto backend = test::acceptWithin(sockets.backend, 1000, limits, &why);
    ASSERT_FALSE(backend);
    EXPECT_EQ(backend.error(), Errc::PROTOCOL_VIOLATION);
    EXPECT_NE(why.find("larger"), std::string_view::npos);
}

TEST(LocalTransport, ReceiveTimesOut) {
    test::SocketPair sockets;
    auto frontend = local::connectFrontend(sockets.frontend);
    ASSERT_TRUE(frontend);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(backend->receive(30ms).error(), Errc::TIMED_OUT);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST(LocalTransport, ClosedFrontendIsDisconnected) {
    test::SocketPair sockets;
    auto frontend = local::connectFrontend(sockets.frontend);
    ASSERT_TRUE(frontend);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    ASSERT_TRUE(frontend->send(patterned(10, 1), 1000ms));
    frontend = fail(Errc::DISCONNECTED); // destroys the connection: a clean close
    auto first = backend->receive(1000ms);
    ASSERT_TRUE(first) << "records sent before the close still arrive";
    EXPECT_EQ(backend->receive(1000ms).error(), Errc::DISCONNECTED);
}

TEST(LocalTransport, PollFdsBecomeReadableOnAKick) {
    test::SocketPair sockets;
    auto frontend = local::connectFrontend(sockets.frontend);
    ASSERT_TRUE(frontend);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    ASSERT_TRUE(backend->onWakeup()); // the attach kick
    ASSERT_TRUE(frontend->trySend(patterned(10, 1)));
    pollfd p{backend->pollFds()[0], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    ASSERT_TRUE(backend->onWakeup());
    auto got = backend->tryReceive();
    ASSERT_TRUE(got && *got);
}

} // namespace
} // namespace xkbus::ring
