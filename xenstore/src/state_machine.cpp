// The XenbusState decision tables for both ends. docs/xenstore.md draws them.
#include <xkbus/xenstore/state_machine.hpp>

namespace xkbus::xenstore {

namespace {

using enum XenbusState;

BackendDecision closeBecause(std::string_view reason) {
    return {BackendAction::CLOSE, reason};
}

BackendDecision decideInitWait(const Parsed<XenbusState>& frontend) {
    if (!frontend) {
        return closeBecause("frontend state unreadable");
    }
    switch (*frontend) {
    case INITIALISING:
    case INIT_WAIT:
        return {}; // free or claimed: waiting for the frontend
    case INITIALISED:
    case CONNECTED: // skipped Initialised: tolerated, as io/xenbus.h asks
        return {BackendAction::CONNECT, {}};
    case CLOSING:
    case CLOSED:
        return {BackendAction::RESET_SLOT, {}}; // gave up before connecting
    case UNKNOWN:
    case RECONFIGURING:
    case RECONFIGURED:
        break;
    }
    return closeBecause("unexpected frontend state");
}

BackendDecision decideConnected(const Parsed<XenbusState>& frontend, bool connectedHere) {
    if (!connectedHere) {
        return closeBecause("backend restarted: connection lost");
    }
    if (!frontend) {
        return closeBecause("frontend state unreadable");
    }
    switch (*frontend) {
    case INITIALISED:
    case CONNECTED:
        return {};
    case CLOSING:
    case CLOSED:
        return closeBecause("frontend closed");
    default:
        return closeBecause("frontend left the connected states");
    }
}

BackendDecision decideClosed(const Parsed<XenbusState>& frontend, bool connectedHere) {
    if (connectedHere) {
        return closeBecause("closed while connected");
    }
    // The slot is freed once the frontend acknowledges with Closed; until
    // then whatever it writes only concerns its own closed device.
    if (frontend && *frontend == CLOSED) {
        return {BackendAction::RESET_SLOT, {}};
    }
    return {};
}

} // namespace

BackendDecision decideBackend(const BackendInputs& in) {
    if (!in.backendState) {
        return in.connectedHere ? closeBecause("backend state unreadable")
                                : BackendDecision{BackendAction::PROVISION, {}};
    }
    switch (*in.backendState) {
    case UNKNOWN:
    case INITIALISING: // a previous daemon stopped half-way through provisioning
        return in.connectedHere ? closeBecause("backend state reset")
                                : BackendDecision{BackendAction::PROVISION, {}};
    case INIT_WAIT:
        return in.connectedHere ? closeBecause("backend state reset")
                                : decideInitWait(in.frontendState);
    case CONNECTED:
        return decideConnected(in.frontendState, in.connectedHere);
    case CLOSING: // stopped between writing Closing and Closed: finish
        return closeBecause("close interrupted");
    case CLOSED:
        return decideClosed(in.frontendState, in.connectedHere);
    case INITIALISED:
    case RECONFIGURING:
    case RECONFIGURED:
        break;
    }
    return closeBecause("backend state corrupt");
}

std::string_view phaseName(FrontendPhase phase) {
    switch (phase) {
    case FrontendPhase::CLAIMED:
        return "claimed";
    case FrontendPhase::PUBLISHED:
        return "published";
    case FrontendPhase::CONNECTED:
        return "connected";
    case FrontendPhase::CLOSING:
        return "closing";
    case FrontendPhase::CLOSED:
        return "closed";
    }
    return "?";
}

FrontendDecision decideFrontend(FrontendPhase phase, const Parsed<XenbusState>& backend) {
    auto backendIs = [&](XenbusState s) { return backend && *backend == s; };
    switch (phase) {
    case FrontendPhase::CLAIMED:
        if (backendIs(INIT_WAIT)) {
            return {phase, FrontendAction::NONE};
        }
        return {FrontendPhase::CLOSED, FrontendAction::NONE}; // slot taken away
    case FrontendPhase::PUBLISHED:
        if (backendIs(CONNECTED)) {
            return {FrontendPhase::CONNECTED, FrontendAction::WRITE_CONNECTED};
        }
        if (backendIs(INIT_WAIT)) {
            return {phase, FrontendAction::NONE};
        }
        return {FrontendPhase::CLOSED, FrontendAction::WRITE_CLOSED}; // refused
    case FrontendPhase::CONNECTED:
        if (backendIs(CONNECTED)) {
            return {phase, FrontendAction::NONE};
        }
        return {FrontendPhase::CLOSED, FrontendAction::WRITE_CLOSED}; // dropped
    case FrontendPhase::CLOSING:
        if (backendIs(CLOSED)) {
            return {FrontendPhase::CLOSED, FrontendAction::WRITE_CLOSED};
        }
        if (!backend || backendIs(INIT_WAIT)) {
            return {FrontendPhase::CLOSED, FrontendAction::NONE}; // already freed
        }
        return {phase, FrontendAction::NONE};
    case FrontendPhase::CLOSED:
        break;
    }
    return {FrontendPhase::CLOSED, FrontendAction::NONE};
}

} // namespace xkbus::xenstore
