// The XenbusState handshake as pure functions: given what each side's
// `state` node says, what to do next. No I/O, so every transition is unit
// tested on its own; backend_device and frontend_device apply the decisions.
#pragma once

#include <optional>
#include <string_view>
#include <xkbus/xenstore/values.hpp>

namespace xkbus::xenstore {

// ---- backend (dom0) ----

enum class BackendAction : uint8_t {
    NONE,
    PROVISION,  // our own nodes are missing or half-written: (re)write them, state InitWait
    CONNECT,    // read and check the frontend's params, connect, state Connected
    CLOSE,      // disconnect if connected, state Closing then Closed, record the reason
    RESET_SLOT, // clear the frontend's session nodes; both states back to a free slot
};

struct BackendInputs {
    Parsed<XenbusState> backendState;  // our node (dom0-owned, still parsed strictly)
    Parsed<XenbusState> frontendState; // the guest's node: hostile
    bool connectedHere = false;        // this process called connect() and not disconnect()
};

struct BackendDecision {
    BackendAction action = BackendAction::NONE;
    std::string_view reason; // for CLOSE: logged and written to the `reason` node
    friend bool operator==(const BackendDecision&, const BackendDecision&) = default;
};

BackendDecision decideBackend(const BackendInputs& in);

// ---- frontend (guest process) ----

enum class FrontendPhase : uint8_t {
    CLAIMED,   // holds a slot, nothing published yet
    PUBLISHED, // params written, state Initialised, waiting for the backend
    CONNECTED,
    CLOSING, // we asked to close, waiting for the backend's Closed
    CLOSED,  // finished (closed by us, refused or dropped by the backend)
};
std::string_view phaseName(FrontendPhase phase);

enum class FrontendAction : uint8_t {
    NONE,
    WRITE_CONNECTED,
    WRITE_CLOSED,
};

struct FrontendDecision {
    FrontendPhase next = FrontendPhase::CLAIMED;
    FrontendAction action = FrontendAction::NONE;
    friend bool operator==(const FrontendDecision&, const FrontendDecision&) = default;
};

FrontendDecision decideFrontend(FrontendPhase phase, const Parsed<XenbusState>& backendState);

} // namespace xkbus::xenstore
