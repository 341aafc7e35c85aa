// Unix stream sockets, as the daemon's front door and a client use them:
// listening, connecting and accepting, non-blocking and close-on-exec.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>

namespace xkbus::socket {

using xkbus::UniqueFd;

// Listens on a Unix socket path (removing a stale socket file first).
Result<UniqueFd> listenOn(const std::string& path);

// Who may connect to a socket: its file's mode and, if set, group.
struct SocketAccess {
    unsigned mode = 0600;
    std::optional<uint32_t> group;
};
// As listenOn(path), with the file given `access` before anyone can
// connect: it is bound under a strict umask, changed, and only then listened
// on. PERMISSION_DENIED if the mode or group cannot be set.
Result<UniqueFd> listenOn(const std::string& path, const SocketAccess& access);
// Connects to a listening Unix socket (non-blocking, close-on-exec);
// NO_SUCH_DEVICE if nothing listens there.
Result<UniqueFd> connectUnix(const std::string& path);
// Accepts one connection, non-blocking, close-on-exec; also reports the
// peer's pid from SO_PEERCRED.
Result<UniqueFd> acceptFrom(int listener, uint32_t& peerPid);

// Who is at the other end of an accepted socket, as the kernel says
// (SO_PEERCRED). uid is UINT32_MAX when the kernel would not say.
struct PeerCredentials {
    uint32_t pid = 0;
    uint32_t uid = UINT32_MAX;
};
// Accepts one connection as acceptFrom does, with the peer's pid and uid.
// TOO_MANY when the process or the system is out of descriptors.
Result<UniqueFd> acceptPeer(int listener, PeerCredentials& who);

} // namespace xkbus::socket
