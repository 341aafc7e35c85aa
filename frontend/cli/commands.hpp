// The subcommands of `xkbus`, each a function of its options that returns
// the exit code (exit_codes.hpp). xkbus.cpp parses the command line.
#pragma once

#include "data_format.hpp"
#include "output.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace xkbus::cli {

struct Options {
    std::vector<uint32_t> buses; // --bus, in the order given; empty: bus 0
    OutputOptions output;
    Encoding inputEncoding = Encoding::TEXT;
    bool reconnect = false;
    double timeout = -1; // seconds; negative: none
    int count = 0;       // messages to handle; 0: no limit

    uint32_t bus() const { return buses.empty() ? 0 : buses.front(); }
    std::chrono::milliseconds timeoutMs() const {
        return std::chrono::milliseconds(timeout < 0 ? -1 : static_cast<int64_t>(timeout * 1000));
    }
};

int listen(const Options& o, const std::vector<std::string>& names);
int monitor(const Options& o, std::vector<std::string> names, bool allBuses, bool bindEvents);
int send(const Options& o, const std::string& name, const std::string& data, bool urgent);
int call(const Options& o, const std::string& name, const std::string& data);
int reply(const Options& o, const std::string& name, const std::string& data,
          const std::string& command, double commandTimeout);
int waitForDaemon(const Options& o, const std::string& replier);
int newBus(const Options& o);

int bindings(const Options& o);
int stats(const Options& o);
int buses(const Options& o);

// `which`: a domain id, or a running domain's name.
int xenProvision(const Options& o, const std::string& which, uint32_t slots);

} // namespace xkbus::cli
