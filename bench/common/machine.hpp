// Describes the machine a benchmark ran on (cores, CPU model, kernel), for the
// JSON results: figures from different machines must not be compared blindly.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/utsname.h>
#include <thread>

namespace xkbus::bench {

inline nlohmann::json describeMachine() {
    std::string model = "unknown";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    utsname u{};
    uname(&u);
    return {{"cores", std::thread::hardware_concurrency()},
            {"cpu_model", model},
            {"kernel", std::string(u.sysname) + " " + u.release}};
}

} // namespace xkbus::bench
