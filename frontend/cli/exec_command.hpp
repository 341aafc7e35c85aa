// Runs the command of `xkbus reply --exec` for one request: the request's
// data on its standard input, its standard output the reply. Nothing is
// left behind, even if the CLI is killed with SIGKILL mid-request: no
// temporary file, and no process of the command's (see exec_command.cpp).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <xkbus/common/result.hpp>

namespace xkbus::cli {

struct CommandOutcome {
    std::string output;         // standard output: the reply's data
    std::string errorTail;      // the end of standard error, for an error reply
    int status = 0;             // the exit code, or 128 + the signal that ended it
    bool timedOut = false;      // killed after the time it was given
    bool tooMuchOutput = false; // killed for writing more than a message can carry
    bool succeeded() const noexcept { return status == 0 && !timedOut && !tooMuchOutput; }
};

struct CommandLimits {
    std::chrono::milliseconds timeout{-1}; // negative: no limit
    size_t maxOutput = 0;                  // bytes of standard output kept (0: no limit)
    size_t errorTail = 1024;               // bytes of standard error kept
};

// Runs `command` with /bin/sh. Its standard error also goes to ours, so an
// administrator sees it. Fails only if the command could not be started.
Result<CommandOutcome> runCommand(const std::string& command, std::string_view input,
                                  const CommandLimits& limits);

} // namespace xkbus::cli
