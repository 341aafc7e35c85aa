// The pure XenbusState decision tables, every row.
#include <gtest/gtest.h>
#include <xkbus/xenstore/state_machine.hpp>

namespace xkbus::xenstore {
namespace {

using enum XenbusState;

Parsed<XenbusState> bad() {
    return tl::unexpected(Rejection{"not a decimal number"});
}

BackendAction backendAction(Parsed<XenbusState> back, Parsed<XenbusState> front,
                            bool connected = false) {
    return decideBackend({back, front, connected}).action;
}

TEST(BackendMachine, InitWaitWaitsForTheFrontend) {
    EXPECT_EQ(backendAction(INIT_WAIT, INITIALISING), BackendAction::NONE);
    EXPECT_EQ(backendAction(INIT_WAIT, INIT_WAIT), BackendAction::NONE);
    EXPECT_EQ(backendAction(INIT_WAIT, INITIALISED), BackendAction::CONNECT);
    EXPECT_EQ(backendAction(INIT_WAIT, CONNECTED), BackendAction::CONNECT);
    EXPECT_EQ(backendAction(INIT_WAIT, CLOSING), BackendAction::RESET_SLOT);
    EXPECT_EQ(backendAction(INIT_WAIT, CLOSED), BackendAction::RESET_SLOT);
    EXPECT_EQ(backendAction(INIT_WAIT, UNKNOWN), BackendAction::CLOSE);
    EXPECT_EQ(backendAction(INIT_WAIT, RECONFIGURING), BackendAction::CLOSE);
    EXPECT_EQ(backendAction(INIT_WAIT, bad()), BackendAction::CLOSE);
}

TEST(BackendMachine, ConnectedIsIdempotentAndClosesOnAnythingElse) {
    EXPECT_EQ(backendAction(CONNECTED, INITIALISED, true), BackendAction::NONE);
    EXPECT_EQ(backendAction(CONNECTED, CONNECTED, true), BackendAction::NONE);
    for (auto front : {INITIALISING, INIT_WAIT, CLOSING, CLOSED, UNKNOWN, RECONFIGURED}) {
        EXPECT_EQ(backendAction(CONNECTED, front, true), BackendAction::CLOSE);
    }
    EXPECT_EQ(backendAction(CONNECTED, bad(), true), BackendAction::CLOSE);
}

TEST(BackendMachine, ConnectedNodeWithoutAConnectionIsARestart) {
    auto decision = decideBackend({CONNECTED, CONNECTED, false});
    EXPECT_EQ(decision.action, BackendAction::CLOSE);
    EXPECT_NE(decision.reason.find("restarted"), std::string_view::npos);
}

TEST(BackendMachine, ClosedFreesTheSlotOnlyAfterTheFrontendSaysClosed) {
    EXPECT_EQ(backendAction(CLOSED, CLOSED), BackendAction::RESET_SLOT);
    for (auto front : {INITIALISING, INIT_WAIT, INITIALISED, CONNECTED, CLOSING}) {
        EXPECT_EQ(backendAction(CLOSED, front), BackendAction::NONE);
    }
    EXPECT_EQ(backendAction(CLOSED, bad()), BackendAction::NONE);
    EXPECT_EQ(backendAction(CLOSED, CLOSED, true), BackendAction::CLOSE);
}

TEST(BackendMachine, BrokenOwnStateIsRepairedOrClosed) {
    EXPECT_EQ(backendAction(bad(), INITIALISING), BackendAction::PROVISION);
    EXPECT_EQ(backendAction(INITIALISING, INITIALISED), BackendAction::PROVISION);
    EXPECT_EQ(backendAction(bad(), CONNECTED, true), BackendAction::CLOSE);
    EXPECT_EQ(backendAction(CLOSING, CLOSING), BackendAction::CLOSE);
    EXPECT_EQ(backendAction(INITIALISED, INITIALISED), BackendAction::CLOSE);
    EXPECT_EQ(backendAction(INIT_WAIT, INITIALISED, true), BackendAction::CLOSE);
}

TEST(BackendMachine, EveryCloseHasAReason) {
    for (int b = 0; b <= 9; ++b) {
        for (int f = 0; f <= 9; ++f) {
            for (bool connected : {false, true}) {
                auto back = b == 9 ? bad() : Parsed<XenbusState>(static_cast<XenbusState>(b));
                auto front = f == 9 ? bad() : Parsed<XenbusState>(static_cast<XenbusState>(f));
                auto decision = decideBackend({back, front, connected});
                if (decision.action == BackendAction::CLOSE) {
                    EXPECT_FALSE(decision.reason.empty()) << b << " " << f;
                }
                // A connection is never left behind by a decision that ignores it.
                if (connected && back && *back != CONNECTED) {
                    EXPECT_EQ(decision.action, BackendAction::CLOSE) << b << " " << f;
                }
            }
        }
    }
}

FrontendDecision front(FrontendPhase phase, Parsed<XenbusState> backend) {
    return decideFrontend(phase, backend);
}

TEST(FrontendMachine, Handshake) {
    using P = FrontendPhase;
    EXPECT_EQ(front(P::PUBLISHED, INIT_WAIT),
              (FrontendDecision{P::PUBLISHED, FrontendAction::NONE}));
    EXPECT_EQ(front(P::PUBLISHED, CONNECTED),
              (FrontendDecision{P::CONNECTED, FrontendAction::WRITE_CONNECTED}));
    EXPECT_EQ(front(P::PUBLISHED, CLOSED),
              (FrontendDecision{P::CLOSED, FrontendAction::WRITE_CLOSED}));
    EXPECT_EQ(front(P::CONNECTED, CONNECTED),
              (FrontendDecision{P::CONNECTED, FrontendAction::NONE}));
    EXPECT_EQ(front(P::CONNECTED, CLOSING),
              (FrontendDecision{P::CLOSED, FrontendAction::WRITE_CLOSED}));
    EXPECT_EQ(front(P::CONNECTED, bad()),
              (FrontendDecision{P::CLOSED, FrontendAction::WRITE_CLOSED}));
    EXPECT_EQ(front(P::CLOSING, CLOSING), (FrontendDecision{P::CLOSING, FrontendAction::NONE}));
    EXPECT_EQ(front(P::CLOSING, CLOSED),
              (FrontendDecision{P::CLOSED, FrontendAction::WRITE_CLOSED}));
    EXPECT_EQ(front(P::CLOSING, INIT_WAIT), (FrontendDecision{P::CLOSED, FrontendAction::NONE}));
    EXPECT_EQ(front(P::CLAIMED, INIT_WAIT), (FrontendDecision{P::CLAIMED, FrontendAction::NONE}));
    EXPECT_EQ(front(P::CLAIMED, CLOSED), (FrontendDecision{P::CLOSED, FrontendAction::NONE}));
    EXPECT_EQ(front(P::CLOSED, CONNECTED), (FrontendDecision{P::CLOSED, FrontendAction::NONE}));
}

} // namespace
} // namespace xkbus::xenstore
