// xkbus run: LD_PRELOAD libkbus-device.so, then exec the program. See
// run_command.hpp and docs/c-api.md.
#include "run_command.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/core.h>
#include <unistd.h>

namespace xkbus::cli {

namespace {

namespace fs = std::filesystem;

// Where the preload library is: $XKBUS_DEVICE_LIBRARY, else where it is
// installed relative to this program, else where this build made it.
std::string deviceLibrary() {
    if (const char* explicitPath = std::getenv("XKBUS_DEVICE_LIBRARY"); explicitPath != nullptr) {
        return explicitPath;
    }
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path installed =
            (self.parent_path() / XKBUS_DEVICE_LIBRARY_FROM_BINDIR).lexically_normal();
        if (fs::exists(installed, ec)) {
            return installed.string();
        }
    }
    return XKBUS_DEVICE_LIBRARY_IN_BUILD;
}

// The ASan runtime must stay first in LD_PRELOAD, so ours goes last. In an
// ASan build the library is instrumented too, and most programs are not:
// the runtime is preloaded before it, and leaks are the program's business.
std::string preloadWith(const std::string& library) {
    std::string preload;
    if (const char* existing = std::getenv("LD_PRELOAD"); existing != nullptr) {
        preload = existing;
    }
#ifdef XKBUS_ASAN_RUNTIME
    if (preload.find("libasan") == std::string::npos) {
        preload = preload.empty() ? XKBUS_ASAN_RUNTIME : XKBUS_ASAN_RUNTIME ":" + preload;
        const char* options = std::getenv("ASAN_OPTIONS");
        ::setenv("ASAN_OPTIONS",
                 (std::string(options != nullptr ? options : "") + ":detect_leaks=0").c_str(), 1);
    }
#endif
    return preload.empty() ? library : preload + ":" + library;
}

} // namespace

void addRunCommand(CLI::App& app, RunCommand& run) {
    run.command = app.add_subcommand(
        "run", "run PROGRAM with /dev/kbusN and /proc/kbus served by xkbusd: xkbus run -- PROGRAM "
               "ARGS");
    run.command->fallthrough(); // the global options may come after `run` too
    run.command->add_option("program", run.program, "the program and its arguments, after --")
        ->required();
}

int runProgram(const RunCommand& run) {
    const std::string library = deviceLibrary();
    if (!fs::exists(library)) {
        fmt::print(stderr, "xkbus run: {} not found (set XKBUS_DEVICE_LIBRARY)\n", library);
        return 127;
    }
    ::setenv("LD_PRELOAD", preloadWith(library).c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& arg : run.program) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    fmt::print(stderr, "xkbus run: cannot run {}: {}\n", run.program[0], std::strerror(errno));
    return 127;
}

} // namespace xkbus::cli
