// See peers.hpp.
#include "peers.hpp"

#include <fstream>
#include <pwd.h>
#include <sys/stat.h>

namespace xkbus::cli {

Holder describeHolder(uint32_t domid, uint32_t pid, const std::string& procRoot) {
    if (domid != 0) {
        return Holder{"dom" + std::to_string(domid), "-"};
    }
    Holder h{"?", "?"};
    if (pid == 0) {
        return h;
    }
    const std::string dir = procRoot + "/" + std::to_string(pid);
    std::ifstream comm(dir + "/comm");
    std::getline(comm, h.process);
    if (h.process.empty()) {
        h.process = "?";
    }
    // /proc/PID belongs to the process's effective user.
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        const passwd* pw = ::getpwuid(st.st_uid);
        h.user = pw != nullptr ? pw->pw_name : std::to_string(st.st_uid);
    }
    return h;
}

} // namespace xkbus::cli
