// See exec_command.hpp.
//
// Three processes: the CLI; a watchdog it forks, which the kernel signals
// when the CLI dies (PR_SET_PDEATHSIG), however it dies; and the shell,
// leader of its own process group. The watchdog kills that whole group when
// the CLI dies, when the shell exits (background jobs would otherwise keep
// the reply's pipe open), or when the CLI gives up on it.
#include "exec_command.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xkbus/common/unique_fd.hpp>

namespace xkbus::cli {

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_commandGroup = 0;

void killCommandGroup(int) {
    if (g_commandGroup > 0) {
        ::kill(-g_commandGroup, SIGKILL);
    }
    ::_exit(128 + SIGKILL);
}

struct Pipe {
    UniqueFd read;
    UniqueFd write;
    static Result<Pipe> make() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            return fail(Errc::NO_MEMORY);
        }
        return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
    }
};

int encodeStatus(int waitStatus) {
    return WIFEXITED(waitStatus) ? WEXITSTATUS(waitStatus) : 128 + WTERMSIG(waitStatus);
}

[[noreturn]] void execShell(const std::string& command, Pipe& in, Pipe& out, Pipe& err) {
    ::setpgid(0, 0);
    ::dup2(in.read.get(), STDIN_FILENO);
    ::dup2(out.write.get(), STDOUT_FILENO);
    ::dup2(err.write.get(), STDERR_FILENO);
    // Dispositions set to "ignore" and the signal mask survive exec: give
    // the command the defaults a shell expects.
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
}

// The watchdog's whole life; it never returns.
[[noreturn]] void watchdog(pid_t cli, const std::string& command, Pipe& in, Pipe& out, Pipe& err) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &term, nullptr); // until the group is known
    ::signal(SIGTERM, killCommandGroup);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::prctl(PR_SET_NAME, "xkbus-guard"); // what ps shows an administrator
    if (::getppid() != cli) {
        ::_exit(128 + SIGKILL); // the CLI died before the line above
    }
    const pid_t shell = ::fork();
    if (shell == 0) {
        execShell(command, in, out, err);
    }
    if (shell < 0) {
        ::_exit(127);
    }
    // Only the shell may hold the pipes, or the CLI would never see them close.
    for (Pipe* p : {&in, &out, &err}) {
        p->read.reset();
        p->write.reset();
    }
    ::setpgid(shell, shell); // as the shell does: whichever runs first
    g_commandGroup = shell;
    ::sigprocmask(SIG_UNBLOCK, &term, nullptr);
    int status = 0;
    while (::waitpid(shell, &status, 0) < 0 && errno == EINTR) {
    }
    ::kill(-shell, SIGKILL);
    ::_exit(encodeStatus(status));
}

void appendTail(std::string& tail, const char* data, size_t n, size_t keep) {
    tail.append(data, n);
    if (tail.size() > keep) {
        tail.erase(0, tail.size() - keep);
    }
}

// Feeds the input and drains both outputs until the command closes them,
// or `deadline` passes, or the output grows past its limit.
class Exchange {
public:
    Exchange(UniqueFd in, UniqueFd out, UniqueFd err, std::string_view input,
             const CommandLimits& limits)
        : m_in(std::move(in)), m_out(std::move(out)), m_err(std::move(err)), m_input(input),
          m_limits(limits) {
        ::fcntl(m_in.get(), F_SETFL, O_NONBLOCK);
        if (m_input.empty()) {
            m_in.reset();
        }
    }

    // False if the command must be stopped (timeout or too much output).
    bool run(CommandOutcome& outcome) {
        const auto deadline = Clock::now() + m_limits.timeout;
        while (m_out || m_err) {
            const int wait = waitMs(deadline);
            if (wait == 0) {
                outcome.timedOut = true;
                return false;
            }
            if (!pollOnce(wait, outcome)) {
                return false;
            }
        }
        return true;
    }

private:
    int waitMs(Clock::time_point deadline) const {
        if (m_limits.timeout.count() < 0) {
            return -1;
        }
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        return static_cast<int>(std::max<int64_t>(0, left.count()));
    }

    bool pollOnce(int wait, CommandOutcome& outcome) {
        std::array<pollfd, 3> fds{
            {{m_in.get(), POLLOUT, 0}, {m_out.get(), POLLIN, 0}, {m_err.get(), POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), wait) < 0) {
            return errno == EINTR;
        }
        if (fds[0].revents != 0) {
            feed();
        }
        if (fds[1].revents != 0 && !drain(m_out, outcome.output, false)) {
            outcome.tooMuchOutput = true;
            return false;
        }
        if (fds[2].revents != 0) {
            drain(m_err, outcome.errorTail, true);
        }
        return true;
    }

    void feed() {
        const ssize_t n = ::write(m_in.get(), m_input.data(), m_input.size());
        if (n > 0) {
            m_input.remove_prefix(static_cast<size_t>(n));
        }
        // A command that does not read its input closes the pipe: not an error.
        if (m_input.empty() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            m_in.reset();
        }
    }

    // One read; false if standard output outgrew its limit.
    bool drain(UniqueFd& fd, std::string& into, bool isErr) {
        char buf[65536];
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) {
            if (n == 0 || errno != EINTR) {
                fd.reset();
            }
            return true;
        }
        const auto got = static_cast<size_t>(n);
        if (isErr) {
            (void)!::write(STDERR_FILENO, buf, got);
            appendTail(into, buf, got, m_limits.errorTail);
            return true;
        }
        into.append(buf, got);
        return m_limits.maxOutput == 0 || into.size() <= m_limits.maxOutput;
    }

    UniqueFd m_in;
    UniqueFd m_out;
    UniqueFd m_err;
    std::string_view m_input;
    const CommandLimits& m_limits;
};

} // namespace

Result<CommandOutcome> runCommand(const std::string& command, std::string_view input,
                                  const CommandLimits& limits) {
    auto in = Pipe::make();
    auto out = Pipe::make();
    auto err = Pipe::make();
    if (!in || !out || !err) {
        return fail(Errc::NO_MEMORY);
    }
    // Writing to a command that stopped reading must be EPIPE, not death.
    ::signal(SIGPIPE, SIG_IGN);
    const pid_t cli = ::getpid();
    const pid_t guard = ::fork();
    if (guard < 0) {
        return fail(Errc::NO_MEMORY);
    }
    if (guard == 0) {
        watchdog(cli, command, *in, *out, *err);
    }
    in->read.reset();
    out->write.reset();
    err->write.reset();
    CommandOutcome outcome;
    Exchange exchange(std::move(in->write), std::move(out->read), std::move(err->read), input,
                      limits);
    if (!exchange.run(outcome)) {
        ::kill(guard, SIGTERM); // the watchdog takes the command's group with it
    }
    int status = 0;
    while (::waitpid(guard, &status, 0) < 0 && errno == EINTR) {
    }
    outcome.status = encodeStatus(status);
    return outcome;
}

} // namespace xkbus::cli
