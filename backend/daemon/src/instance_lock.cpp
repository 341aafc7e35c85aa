// See instance_lock.hpp.
#include "instance_lock.hpp"

#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <filesystem>
#include <string_view>
#include <sys/file.h>
#include <unistd.h>

namespace xkbus::daemon {

namespace {

Errc errcOf(int e) {
    switch (e) {
    case EACCES:
    case EPERM:
    case EROFS:
        return Errc::PERMISSION_DENIED;
    case ENAMETOOLONG:
        return Errc::NAME_TOO_LONG;
    case ENOENT:
    case ENOTDIR:
        return Errc::NO_SUCH_DEVICE;
    default:
        return Errc::INVALID;
    }
}

// The pid the holder wrote, or 0 if it has not written one yet.
pid_t readHolder(int fd) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    pid_t pid = 0;
    if (n > 0) {
        std::from_chars(text, text + n, pid);
    }
    return pid;
}

void writeHolder(int fd) {
    const std::string text = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) == 0) {
        (void)!::pwrite(fd, text.data(), text.size(), 0);
    }
}

} // namespace

Result<UniqueFd> lockInstance(const std::string& socketPath, pid_t& holder) {
    holder = 0;
    const auto dir = std::filesystem::path(socketPath).parent_path();
    if (!dir.empty()) {
        std::error_code ignored; // open() below reports what matters
        std::filesystem::create_directories(dir, ignored);
    }
    // Never unlinked: removing a lock file lets two daemons each lock a
    // different inode under the same name.
    UniqueFd fd(::open(lockPathFor(socketPath).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) {
        return fail(errcOf(errno));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            return fail(errcOf(errno));
        }
        holder = readHolder(fd.get());
        return fail(Errc::TRY_AGAIN);
    }
    writeHolder(fd.get());
    return fd;
}

} // namespace xkbus::daemon
