// Helpers the end-to-end fixtures share for the processes they fork: a gate
// between parent and child, the exit code of a reaped child, and dropping a
// child to an unprivileged user (the hostile-tenant tests' attacker).
#pragma once

#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace xkbus::testing::support {

// A pipe for a child to say it reached a point, or for the parent to let it go on.
struct Gate {
    int fds[2] = {-1, -1};
    Gate() { EXPECT_EQ(::pipe(fds), 0); }
    ~Gate() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    void open() const { (void)!::write(fds[1], "x", 1); }
    bool waitOpen(int timeoutMs = 10000) const {
        pollfd p{fds[0], POLLIN, 0};
        char c = 0;
        return ::poll(&p, 1, timeoutMs) == 1 && ::read(fds[0], &c, 1) == 1;
    }
};

// Waits for `pid`: its exit code, or 128 + the signal that ended it.
inline int reapExitCode(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Becomes `uid`:`gid` for good, supplementary groups dropped first so that
// nothing of root's is left. False if any step failed.
inline bool becomeUser(uid_t uid, gid_t gid) {
    return ::setgroups(0, nullptr) == 0 && ::setresgid(gid, gid, gid) == 0 &&
           ::setresuid(uid, uid, uid) == 0;
}

} // namespace xkbus::testing::support
