// Runs a shell command line for a test and gives back what a person at a
// terminal would see: the exit status, standard output, standard error.
#pragma once

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace xkbus::testing {

struct CommandResult {
    int status = -1; // the exit code, or 128 + signal
    std::string out;
    std::string err;
};

inline std::string readWholeFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Standard error goes through a temporary file, so a command that writes a
// lot on both streams cannot block on a pipe nobody reads.
inline CommandResult runCommand(const std::string& command) {
    char errPath[] = "/tmp/xkbus-test-stderr-XXXXXX";
    const int errFd = ::mkstemp(errPath);
    ::close(errFd);
    CommandResult r;
    FILE* p = ::popen(("(" + command + ") 2>" + errPath).c_str(), "r");
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        r.out.append(buf, n);
    }
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.err = readWholeFile(errPath);
    ::unlink(errPath);
    return r;
}

// Single-quotes `s` for the shell.
inline std::string shellQuote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return q + "'";
}

} // namespace xkbus::testing
