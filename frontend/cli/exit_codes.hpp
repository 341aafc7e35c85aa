// What `xkbus` exits with (xkbus(1), EXIT STATUS): scripts branch on these.
#pragma once

namespace xkbus::cli {

enum ExitCode : int {
    EXIT_OK = 0,
    EXIT_FAILED = 1,        // the daemon or the bus refused (the message says why)
    EXIT_TIMED_OUT = 2,     // nothing came within --timeout
    EXIT_STATUS = 3,        // the bus answered a request for a replier that went away
    EXIT_REPLIER_ERROR = 4, // the replier answered with an error (reply --exec failed)
    EXIT_USAGE = 64,        // a bad command line (as sysexits' EX_USAGE)
    EXIT_UNREACHABLE = 69,  // no daemon to talk to (as EX_UNAVAILABLE)
};

} // namespace xkbus::cli
