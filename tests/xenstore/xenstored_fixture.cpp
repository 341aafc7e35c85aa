// RealXenstored: see xenstored_fixture.hpp. Waits on the shim's readiness
// pipe (poll with a timeout), never on sleeps.
#include "xenstored_fixture.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>
#include <xkbus/xenstore/xs_store.hpp>

extern "C" {
#include <xenstore.h>
}

namespace xkbus::xenstore::testing {

namespace {

constexpr int READY_TIMEOUT_MS = 10000;
constexpr uint32_t FAKEXEN_VIRQ_PORT = 1000; // fakexen.cpp

const char* xenstoredBinary() {
    const char* custom = std::getenv("XKBUS_XENSTORED");
    return custom && *custom ? custom : "/usr/lib/xen-4.17/bin/xenstored";
}

bool writeFile(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    return static_cast<bool>(out);
}

} // namespace

std::string RealXenstored::skipReason() {
    if (::access(xenstoredBinary(), X_OK) != 0) {
        return std::string(xenstoredBinary()) + " not installed (Debian xen-utils-4.17)";
    }
    return {};
}

std::string RealXenstored::start() {
    char dirTemplate[] = "/tmp/xkbus-xenstored-XXXXXX";
    if (!::mkdtemp(dirTemplate)) {
        return "mkdtemp failed";
    }
    m_dir = dirTemplate;
    m_socket = m_dir + "/socket";
    m_fifo = m_dir + "/evtchn";
    if (!writeFile(m_dir + "/xsd_port", "1") ||
        !writeFile(m_dir + "/xsd_kva", std::string(4096, '\0')) ||
        ::mkfifo(m_fifo.c_str(), 0600) != 0 || ::mkdir((m_dir + "/dying").c_str(), 0700) != 0) {
        return "cannot prepare " + m_dir;
    }
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
        return "pipe failed";
    }
    const std::string readyFd = std::to_string(ready[1]);
    std::vector<std::string> envStrings = {
        "XENSTORED_RUNDIR=" + m_dir,
        "XENSTORED_PATH=" + m_socket,
        "LD_PRELOAD=" XKBUS_FAKEXEN_PATH,
        "FAKEXEN_XSD_PORT=" + m_dir + "/xsd_port",
        "FAKEXEN_XSD_KVA=" + m_dir + "/xsd_kva",
        "FAKEXEN_EVTCHN_FIFO=" + m_fifo,
        "FAKEXEN_DYING_DIR=" + m_dir + "/dying",
        "FAKEXEN_READY_FD=" + readyFd,
    };
    const std::string pidFile = m_dir + "/pid";
    const std::string logFile = m_dir + "/log";
    m_pid = ::fork();
    if (m_pid == 0) {
        // Child: only async-signal-safe calls from here to exec.
        ::close(ready[0]);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a crashed test
        ::fcntl(ready[1], F_SETFD, 0);      // the shim writes to it
        int log = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(log, 1);
        ::dup2(log, 2);
        std::vector<char*> envp;
        for (auto& s : envStrings) {
            envp.push_back(s.data());
        }
        envp.push_back(nullptr);
        const char* argv[] = {xenstoredBinary(), "-N", "-F", pidFile.c_str(), nullptr};
        ::execve(argv[0], const_cast<char* const*>(argv), envp.data());
        ::_exit(127);
    }
    ::close(ready[1]);
    if (m_pid < 0) {
        ::close(ready[0]);
        return "fork failed";
    }
    pollfd fd{ready[0], POLLIN, 0};
    int polled = ::poll(&fd, 1, READY_TIMEOUT_MS);
    char buf[8] = {};
    ssize_t got = polled > 0 ? ::read(ready[0], buf, sizeof buf) : -1;
    ::close(ready[0]);
    if (got != 5) {
        return "xenstored did not come up: " + log();
    }
    ::setenv("XENSTORED_PATH", m_socket.c_str(), 1);
    m_toolstack = xs_open(0);
    if (!m_toolstack) {
        return "cannot connect to xenstored: " + log();
    }
    return {};
}

RealXenstored::~RealXenstored() {
    if (m_toolstack) {
        xs_close(m_toolstack);
    }
    if (m_pid > 0) {
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, nullptr, 0);
    }
    ::unsetenv("XENSTORED_PATH");
    if (!m_dir.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(m_dir, ignored);
    }
}

std::string RealXenstored::log() const {
    std::ifstream in(m_dir + "/log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool RealXenstored::running() const {
    return m_pid > 0 && ::waitpid(m_pid, nullptr, WNOHANG) == 0;
}

std::unique_ptr<Store> RealXenstored::connect() const {
    auto store = openXsStore();
    return store ? std::move(*store) : nullptr;
}

bool RealXenstored::introduceDomain(DomId domid) {
    const std::string home = "/local/domain/" + std::to_string(domid);
    xs_permissions perms[] = {{0, XS_PERM_NONE}, {domid, XS_PERM_READ}};
    return xs_mkdir(m_toolstack, XBT_NULL, home.c_str()) &&
           xs_set_permissions(m_toolstack, XBT_NULL, home.c_str(), perms, 2) &&
           xs_write(m_toolstack, XBT_NULL, (home + "/domid").c_str(), std::to_string(domid).c_str(),
                    static_cast<unsigned>(std::to_string(domid).size())) &&
           xs_introduce_domain(m_toolstack, domid, 0, 1);
}

bool RealXenstored::releaseDomain(DomId domid) {
    return xs_release_domain(m_toolstack, domid);
}

bool RealXenstored::killDomain(DomId domid) {
    if (!writeFile(m_dir + "/dying/" + std::to_string(domid), "")) {
        return false;
    }
    int fd = ::open(m_fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    uint32_t port = FAKEXEN_VIRQ_PORT;
    bool ok = ::write(fd, &port, sizeof port) == static_cast<ssize_t>(sizeof port);
    ::close(fd);
    return ok;
}

} // namespace xkbus::xenstore::testing
