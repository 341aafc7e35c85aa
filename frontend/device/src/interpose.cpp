// libkbus-device.so: preloaded (xkbus run), it stands in for the C library's
// open, read, write, ioctl, close and dup families, so that a program which
// opens /dev/kbusN and uses it as KBUS's kernel module allowed gets a Ksock of
// xkbusd instead, and /proc/kbus/{bindings,stats} read as the module wrote
// them. Every other file goes straight to the C library. poll, select and
// epoll need nothing: the application's descriptor is a duplicate of the
// Ksock's pollable one. See docs/c-api.md, "Programs that open /dev/kbusN".
#include "device_ops.hpp"
#include "device_table.hpp"
#include "kbus_internal.hpp"
#include "real_libc.hpp"

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <pthread.h>
#include <string>
#include <string_view>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xkbus/kbus.h>

#define EXPORTED extern "C" __attribute__((visibility("default")))

// The C library's _FORTIFY_SOURCE entry points, which no header declares.
EXPORTED int __open_2(const char* path, int flags);
EXPORTED int __open64_2(const char* path, int flags);
EXPORTED int __openat_2(int dirfd, const char* path, int flags);
EXPORTED int __openat64_2(int dirfd, const char* path, int flags);
EXPORTED ssize_t __read_chk(int fd, void* buf, size_t count, size_t buflen);

namespace xkbus::device {

namespace {

bool namesProcFile(std::string_view path) {
    return path == "/proc/kbus/bindings" || path == "/proc/kbus/stats";
}

// The directory a relative openat() path counts from, when not the working
// directory.
std::optional<std::string> directoryOf(int dirfd) {
    char link[64];
    char target[PATH_MAX];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    const ssize_t n = ::readlink(link, target, sizeof target - 1);
    if (n <= 0) {
        return std::nullopt;
    }
    return std::string(target, static_cast<size_t>(n));
}

// A descriptor for `path` if it is a KBUS device or /proc/kbus file; nullopt
// for every other path, which the C library then opens.
std::optional<int> openSpecial(int dirfd, const char* path, int flags) {
    if (path == nullptr || std::strstr(path, "kbus") == nullptr) {
        return std::nullopt; // the common case, decided at once
    }
    if (namesProcFile(path)) {
        return openProcFile(path, flags);
    }
    std::optional<std::string> dir;
    if (path[0] != '/' && dirfd != AT_FDCWD) {
        dir = directoryOf(dirfd);
        if (!dir) {
            return std::nullopt;
        }
    }
    uint32_t bus = 0;
    if (!frontend::kbusDevicePath(path, bus, dir ? dir->c_str() : nullptr)) {
        return std::nullopt;
    }
    return openDevice(bus, flags);
}

bool takesMode(int flags) {
    return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

std::shared_ptr<Device> deviceOf(int fd) {
    auto& table = DeviceTable::instance();
    return table.maybeDevice(fd) ? table.find(fd) : nullptr;
}

// Forgets fd as a device descriptor; closes the Ksock with its last one (in
// a forked child, kbus_ksock_close only lets go of the parent's Ksock).
void forget(int fd) {
    auto& table = DeviceTable::instance();
    if (!table.maybeDevice(fd)) {
        return;
    }
    if (auto last = table.remove(fd)) {
        const int saved = errno;
        kbus_ksock_close(last->ksock);
        errno = saved;
    }
}

// Forgets every device descriptor `closing` picks (close_range, closefrom).
template <class Pick>
void forgetWhere(Pick&& closing) {
    for (int fd : DeviceTable::instance().descriptors()) {
        if (closing(static_cast<unsigned>(fd))) {
            forget(fd);
        }
    }
}

// A new descriptor from dup and friends: if `from` is a device, so is `to`.
int duplicated(int from, int to) {
    if (to >= 0) {
        if (auto device = deviceOf(from)) {
            DeviceTable::instance().add(to, device);
        }
    }
    return to;
}

int fcntlDup(int fd, int cmd, void* arg, int (*realFcntl)(int, int, ...)) {
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
        return duplicated(fd,
                          realFcntl(fd, cmd, static_cast<int>(reinterpret_cast<intptr_t>(arg))));
    }
    return realFcntl(fd, cmd, arg);
}

ssize_t readInto(int fd, void* buf, size_t count) {
    if (auto device = deviceOf(fd)) {
        return deviceRead(*device, buf, count);
    }
    return real().read(fd, buf, count);
}

ssize_t writeFrom(int fd, const void* buf, size_t count) {
    if (auto device = deviceOf(fd)) {
        return deviceWrite(*device, buf, count);
    }
    return real().write(fd, buf, count);
}

void forkPrepare() {
    DeviceTable::instance().lockForFork();
}
void forkDone() {
    DeviceTable::instance().unlockAfterFork();
}

__attribute__((constructor)) void registerForkHandlers() {
    ::pthread_atfork(forkPrepare, forkDone, forkDone);
}

} // namespace

} // namespace xkbus::device

using namespace xkbus::device;

#define MODE_ARGUMENT(flags)                                                                       \
    mode_t mode = 0;                                                                               \
    if (takesMode(flags)) {                                                                        \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = static_cast<mode_t>(va_arg(ap, unsigned));                                          \
        va_end(ap);                                                                                \
    }

EXPORTED int open(const char* path, int flags, ...) {
    MODE_ARGUMENT(flags)
    auto special = openSpecial(AT_FDCWD, path, flags);
    return special ? *special : real().open(path, flags, mode);
}

EXPORTED int open64(const char* path, int flags, ...) {
    MODE_ARGUMENT(flags)
    auto special = openSpecial(AT_FDCWD, path, flags);
    return special ? *special : real().open64(path, flags, mode);
}

EXPORTED int openat(int dirfd, const char* path, int flags, ...) {
    MODE_ARGUMENT(flags)
    auto special = openSpecial(dirfd, path, flags);
    return special ? *special : real().openat(dirfd, path, flags, mode);
}

EXPORTED int openat64(int dirfd, const char* path, int flags, ...) {
    MODE_ARGUMENT(flags)
    auto special = openSpecial(dirfd, path, flags);
    return special ? *special : real().openat64(dirfd, path, flags, mode);
}

// What _FORTIFY_SOURCE builds call for open() without a mode.
EXPORTED int __open_2(const char* path, int flags) {
    return open(path, flags);
}
EXPORTED int __open64_2(const char* path, int flags) {
    return open64(path, flags);
}
EXPORTED int __openat_2(int dirfd, const char* path, int flags) {
    return openat(dirfd, path, flags);
}
EXPORTED int __openat64_2(int dirfd, const char* path, int flags) {
    return openat64(dirfd, path, flags);
}

// stdio opens with the C library's internal open, which nothing can replace.
EXPORTED FILE* fopen(const char* path, const char* mode) {
    const int flags = mode != nullptr && std::strchr(mode, '+') != nullptr ? O_RDWR
                      : mode != nullptr && mode[0] != 'r'                  ? O_WRONLY
                                                                           : O_RDONLY;
    auto special = openSpecial(AT_FDCWD, path, flags);
    if (!special) {
        return real().fopen(path, mode);
    }
    if (*special < 0) {
        return nullptr;
    }
    FILE* stream = ::fdopen(*special, mode);
    if (stream == nullptr) {
        const int saved = errno;
        close(*special);
        errno = saved;
    }
    return stream;
}

EXPORTED FILE* fopen64(const char* path, const char* mode) {
    return fopen(path, mode);
}

EXPORTED int close(int fd) {
    forget(fd);
    return real().close(fd);
}

EXPORTED int close_range(unsigned first, unsigned last, int flags) {
    if (real().close_range == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    const int rv = real().close_range(first, last, flags);
    if (rv == 0 && (static_cast<unsigned>(flags) & CLOSE_RANGE_CLOEXEC) == 0) {
        forgetWhere([&](unsigned fd) { return fd >= first && fd <= last; });
    }
    return rv;
}

EXPORTED void closefrom(int lowest) {
    forgetWhere([&](unsigned fd) { return static_cast<int>(fd) >= lowest; });
    if (real().closefrom != nullptr) {
        real().closefrom(lowest);
    }
}

EXPORTED ssize_t read(int fd, void* buf, size_t count) {
    return readInto(fd, buf, count);
}

// What _FORTIFY_SOURCE builds call for read() into a buffer of known size.
EXPORTED ssize_t __read_chk(int fd, void* buf, size_t count, size_t buflen) {
    if (count > buflen) {
        std::abort(); // the C library's __chk_fail: a buffer overflow
    }
    return readInto(fd, buf, count);
}

EXPORTED ssize_t write(int fd, const void* buf, size_t count) {
    return writeFrom(fd, buf, count);
}

// As the kernel's readv on a device with only read(): one read per buffer,
// stopping at the first short one.
EXPORTED ssize_t readv(int fd, const struct iovec* iov, int iovcnt) {
    if (!deviceOf(fd)) {
        return real().readv(fd, iov, iovcnt);
    }
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; ++i) {
        const ssize_t got = readInto(fd, iov[i].iov_base, iov[i].iov_len);
        if (got < 0) {
            return total > 0 ? total : got;
        }
        total += got;
        if (static_cast<size_t>(got) < iov[i].iov_len) {
            break;
        }
    }
    return total;
}

EXPORTED ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
    if (!deviceOf(fd)) {
        return real().writev(fd, iov, iovcnt);
    }
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; ++i) {
        const ssize_t put = writeFrom(fd, iov[i].iov_base, iov[i].iov_len);
        if (put < 0) {
            return total > 0 ? total : put;
        }
        total += put;
    }
    return total;
}

EXPORTED int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (auto device = deviceOf(fd)) {
        return deviceIoctl(*device, request, arg);
    }
    return real().ioctl(fd, request, arg);
}

EXPORTED int dup(int fd) {
    return duplicated(fd, real().dup(fd));
}

EXPORTED int dup2(int fd, int to) {
    if (fd == to) {
        return real().dup2(fd, to);
    }
    const int rv = real().dup2(fd, to);
    if (rv >= 0) {
        forget(to); // dup2 closed what `to` was
        duplicated(fd, rv);
    }
    return rv;
}

EXPORTED int dup3(int fd, int to, int flags) {
    const int rv = real().dup3(fd, to, flags);
    if (rv >= 0) {
        forget(to);
        duplicated(fd, rv);
    }
    return rv;
}

EXPORTED int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return fcntlDup(fd, cmd, arg, real().fcntl);
}

EXPORTED int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return fcntlDup(fd, cmd, arg, real().fcntl64);
}
