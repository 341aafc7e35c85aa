// The one place a client process picks how to reach xkbusd: in a Xen guest,
// a xenstore device and a ring shared with dom0; elsewhere a ring in local
// shared memory, handed to the daemon listening on XKBUS_SOCKET (else the
// default path). XKBUS_TRANSPORT=local|xen overrides the detection.
#pragma once

#include <memory>
#include <string>
#include <xkbus/frontend/connection.hpp>

namespace xkbus::frontend {

inline constexpr const char* DEFAULT_SOCKET_PATH = "/run/xkbus/xkbusd.sock";

// $XKBUS_SOCKET if set and not empty, else DEFAULT_SOCKET_PATH.
std::string defaultSocketPath();

// A new connection to the local daemon listening at `path`. When nobody
// answers there, the error says why: NO_DAEMON (nothing at the path, or a
// socket no daemon listens on), ACCESS_DENIED, NOT_A_SOCKET, NAME_TOO_LONG.
Result<std::shared_ptr<Connection>> connectLocal(const std::string& path);
// Ksock fds this library keeps itself (PollSignal), for a daemon that cannot
// hand over its own: a Xen guest's.
SignalFactory pollSignals();

// A new connection, chosen as above.
Result<std::shared_ptr<Connection>> connectDefault();

// Opens a Ksock on bus `bus` over this process's shared connection, making
// it on first use (and again after a fork, or after the daemon went away).
// NO_SUCH_DEVICE if the daemon has no such bus.
Result<std::unique_ptr<KsockChannel>> openDefaultKsock(uint32_t bus, bool writable);

// Why reaching the daemon at `socketPath` failed with `error`, for a person:
// what is (or is not) at the path, the owner and mode that refused us, and
// what to do next. Other errors get describe(error).
std::string explainOpenError(Errc error, const std::string& socketPath);

} // namespace xkbus::frontend
