// Unix stream sockets, as the daemon's front door and a client use them:
// listening, connecting and accepting, non-blocking and close-on-exec.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>
#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>

namespace xkbus::socket {

using xkbus::UniqueFd;

// Listens on a Unix socket path (removing a stale socket file first).
Result<UniqueFd> listenOn(const std::string& path);
// Connects to a listening Unix socket (non-blocking, close-on-exec);
// NO_SUCH_DEVICE if nothing listens there.
Result<UniqueFd> connectUnix(const std::string& path);
// Accepts one connection, non-blocking, close-on-exec; also reports the
// peer's pid from SO_PEERCRED.
Result<UniqueFd> acceptFrom(int listener, uint32_t& peerPid);

} // namespace xkbus::socket
