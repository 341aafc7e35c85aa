// `xkbus run -- PROGRAM ARGS`: runs a program that opens /dev/kbusN itself
// (as KBUS's Python module, cppkbus and jkbus do) with libkbus-device.so
// preloaded, so its device is a Ksock of xkbusd. Kept apart from the other
// subcommands: main() only adds it and calls it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace xkbus::cli {

struct RunCommand {
    CLI::App* command = nullptr;
    std::vector<std::string> program; // PROGRAM and its arguments
};

// The daemon's socket is the global --socket (main sets XKBUS_SOCKET).
void addRunCommand(CLI::App& app, RunCommand& run);
// Replaces this process with the program; returns only on failure (127).
int runProgram(const RunCommand& run);

} // namespace xkbus::cli
