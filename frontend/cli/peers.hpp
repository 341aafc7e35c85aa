// Who holds a Ksock, in words: the program and user of a local process, or
// the Xen domain. The daemon reports a domid and, for a local client, the
// pid the kernel gave it (SO_PEERCRED); /proc says the rest.
#pragma once

#include <cstdint>
#include <string>

namespace xkbus::cli {

struct Holder {
    std::string process; // "xkbus", "dom3", or "?" if gone or unknown
    std::string user;    // "root", "-" for a guest, "?" if unknown
};

// `procRoot` is where /proc is (a test may point elsewhere).
Holder describeHolder(uint32_t domid, uint32_t pid, const std::string& procRoot = "/proc");

} // namespace xkbus::cli
