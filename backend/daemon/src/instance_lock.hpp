// One xkbusd per socket path. A second daemon started on the same path used
// to unlink the first one's socket and strand its clients; now each daemon
// holds an flock on "<socket>.lock" for as long as it runs. The kernel drops
// the lock when the holder dies, however it dies, so a socket file found
// while we hold the lock is a dead daemon's and may be replaced.
#pragma once

#include <string>
#include <sys/types.h>
#include <xkbus/common/result.hpp>
#include <xkbus/common/unique_fd.hpp>

namespace xkbus::daemon {

inline std::string lockPathFor(const std::string& socketPath) {
    return socketPath + ".lock";
}

// Takes the lock for `socketPath`, creating its directory if needed, and
// writes our pid into the lock file for the next one to name. The lock is
// held while the returned descriptor is open. TRY_AGAIN if another process
// holds it (`holder` says which, 0 if it has not written its pid yet);
// another Errc if the lock file cannot be made.
Result<UniqueFd> lockInstance(const std::string& socketPath, pid_t& holder);

} // namespace xkbus::daemon
