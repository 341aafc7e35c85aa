// The Limpet's I/O: thin loops around the pure Limpet state machine.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <xkbus/frontend/backoff.hpp>
#include <xkbus/limpet/limpet.hpp>
#include <xkbus/limpet/stream.hpp>

namespace xkbus::limpet {

struct BusEnd {
    std::string socketPath; // the daemon's trusted (Limpet) socket
    uint32_t bus = 0;
    Config config; // networkId at least
    // --reconnect: when the daemon goes away, wait for it with this backoff
    // and join the bus again (see docs/limpet.md); without it the Limpet
    // stops with DISCONNECTED.
    std::optional<Backoff> reconnect;
};

// How --reconnect waits: from 100 ms up to 5 s between attempts, for as long
// as it takes (a signal still stops the Limpet).
inline constexpr Backoff RECONNECT_BACKOFF{
    .first = std::chrono::milliseconds(100), .max = std::chrono::milliseconds(5000), .attempts = 0};

// A line for the operator, on stderr.
void stderrLine(std::string_view line);

// Keeps running while it returns true (checked at least every 100 ms).
using KeepGoing = std::function<bool()>;

// Joins two buses from one process: one Ksock on each, the link a pair of
// in-memory queues. Returns when keepGoing() says stop (success) or on a
// fatal error (its text in `error`). With x.reconnect, a daemon that goes
// away takes the link down; both Ksocks are opened again once it is back,
// and the link comes up again (each side announces its repliers anew).
Result<void> runLocal(const BusEnd& x, const BusEnd& y, const KeepGoing& keepGoing,
                      std::string& error);

struct NetOptions {
    BusEnd end;
    bool listen = false;  // listen (else connect)
    std::string address;  // "unix:/path" or "tcp:host:port"
    bool tls = true;      // false only over a Unix socket
    TlsFiles tlsFiles;    // tlsFiles.peerName is required unless anyPeer
    bool anyPeer = false; // any certificate the CA signed will do
    std::chrono::milliseconds heartbeat{1000};
    std::chrono::milliseconds deadAfter{3000};  // no frame for this long: dead peer
    std::chrono::milliseconds retry{500};       // connector: wait between attempts
    std::chrono::milliseconds handshake{2000};  // a connection's TLS and HELLO, at most
    size_t maxPending = 8;                      // listener: connections before HELLO
    std::chrono::milliseconds stallAfter{3000}; // the peer takes nothing for this long
    size_t maxOutBytes = 8u << 20;              // link send buffer limit
};

// The rules a set of options must keep: TLS unless the address is a Unix
// socket, and a peer name unless any peer is asked for. The text says which.
Result<void> checkNetOptions(const NetOptions& options, std::string& error);

// One side of a network pair. Reconnects (connector) or accepts again
// (listener) whenever the link drops. With end.reconnect, a daemon that goes
// away drops the link (GOODBYE(SHUTDOWN), so the far side withdraws its
// proxies at once); once the daemon is back the Ksock is opened again and the
// link re-established, which announces this side's repliers anew.
Result<void> runNet(const NetOptions& options, const KeepGoing& keepGoing, std::string& error);

} // namespace xkbus::limpet
