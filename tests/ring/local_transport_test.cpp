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

TEST(LocalTransport, BackendHandsDescriptorsToTheFrontendInOrder) {
    test::SocketPair sockets;
    auto frontend = local::connectFrontend(sockets.frontend);
    ASSERT_TRUE(frontend);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    EXPECT_EQ(frontend->takeDescriptor(), -1) << "none sent yet";
    int first[2];
    int second[2];
    ASSERT_EQ(::pipe(first), 0);
    ASSERT_EQ(::pipe(second), 0);
    ASSERT_TRUE(local::sendDescriptor(sockets.backend, first[1]));
    ASSERT_TRUE(local::sendDescriptor(sockets.backend, second[1]));
    const int a = frontend->takeDescriptor();
    const int b = frontend->takeDescriptor();
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    ASSERT_EQ(::write(a, "1", 1), 1); // a is a duplicate of first[1]
    ASSERT_EQ(::write(b, "2", 1), 1);
    char got = 0;
    ASSERT_EQ(::read(first[0], &got, 1), 1);
    EXPECT_EQ(got, '1');
    ASSERT_EQ(::read(second[0], &got, 1), 1);
    EXPECT_EQ(got, '2');
    EXPECT_TRUE(frontend->peerAlive()) << "descriptors are not a sign of death";
    for (int fd : {a, b, first[0], first[1], second[0], second[1]}) {
        ::close(fd);
    }
}

TEST(LocalTransport, BackendTakesNoDescriptorsAndSeesThemAsDeath) {
    test::SocketPair sockets;
    auto frontend = local::connectFrontend(sockets.frontend);
    ASSERT_TRUE(frontend);
    auto backend = test::acceptWithin(sockets.backend, 1000);
    ASSERT_TRUE(backend);
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    // A hostile frontend must not be able to fill the daemon's descriptor table.
    ASSERT_TRUE(local::sendDescriptor(sockets.frontend, p[1]));
    EXPECT_EQ(backend->takeDescriptor(), -1);
    ASSERT_TRUE(backend->onWakeup());
    EXPECT_FALSE(backend->peerAlive());
    ::close(p[0]);
    ::close(p[1]);
}

} // namespace
} // namespace xkbus::ring
