// The file operations of /dev/kbusN over the libkbus C API: each ioctl with
// its argument copied in and out as the kernel's copy_from_user and
// copy_to_user did (a bad pointer is EFAULT, not a crash), read and write
// through kbus_ksock_read and kbus_ksock_write.
#include "device_ops.hpp"

#include "caller_memory.hpp"
#include "device_table.hpp"
#include "kbus_internal.hpp"
#include "real_libc.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/kbus.h>

namespace xkbus::device {

namespace {

using frontend::copyFromCaller;
using frontend::copyToCaller;

int failed(int error) {
    errno = error;
    return -1;
}

// A C API result (its value, or -errno) as a system call's.
int fromC(int rv) {
    return rv < 0 ? failed(-rv) : rv;
}

template <class T>
bool copyIn(T& to, const void* arg) {
    return copyFromCaller(&to, arg, sizeof to) == 0;
}

template <class T>
bool copyOut(void* arg, const T& from) {
    return copyToCaller(arg, &from, sizeof from) == 0;
}

// The name a BIND, UNBIND or REPLIER argument points at.
bool copyName(std::string& name, const char* from, uint32_t length) {
    name.assign(length, '\0');
    return copyFromCaller(name.data(), from, length) == 0;
}

int bind(const Device& d, void* arg, bool unbind) {
    kbus_bind_request request{};
    if (!copyIn(request, arg)) {
        return failed(EFAULT);
    }
    if (request.name_len == 0) {
        return failed(EBADMSG);
    }
    if (request.name_len > KBUS_MAX_NAME_LEN) {
        return failed(ENAMETOOLONG);
    }
    std::string name;
    if (!copyName(name, request.name, request.name_len)) {
        return failed(EFAULT);
    }
    const bool replier = request.is_replier != 0;
    return fromC(unbind ? frontend::unbindByName(d.ksock, name, replier)
                        : frontend::bindByName(d.ksock, name, replier));
}

// Returns 1 when a replier is bound, 0 when not, as the kernel did.
int replier(const Device& d, void* arg) {
    kbus_bind_query query{};
    if (!copyIn(query, arg)) {
        return failed(EFAULT);
    }
    if (query.name_len == 0 || query.name_len > KBUS_MAX_NAME_LEN) {
        return failed(ENAMETOOLONG);
    }
    std::string name;
    if (!copyName(name, query.name, query.name_len)) {
        return failed(EFAULT);
    }
    uint32_t found = 0;
    if (const int rv = frontend::findReplierByName(d.ksock, name, &found); rv < 0) {
        return failed(-rv);
    }
    query.return_id = found;
    return copyOut(arg, query) ? (found != 0 ? 1 : 0) : failed(EFAULT);
}

// An ioctl whose argument is a __u32 the call fills (and, if `in`, reads
// first); returns what the call returned.
template <class Call>
int u32Argument(void* arg, bool in, Call&& call) {
    uint32_t value = 0;
    if (in && !copyIn(value, arg)) {
        return failed(EFAULT);
    }
    const int rv = call(&value);
    if (rv < 0) {
        return failed(-rv);
    }
    return copyOut(arg, value) ? rv : failed(EFAULT);
}

// MSGONLYONCE, VERBOSE, REPORTREPLIERBINDS: in 0, 1 or 0xFFFFFFFF, out the
// previous state.
template <class Call>
int switchArgument(void* arg, Call&& call) {
    return u32Argument(arg, true, [&](uint32_t* value) {
        const int previous = call(*value);
        if (previous >= 0) {
            *value = static_cast<uint32_t>(previous);
        }
        return previous < 0 ? previous : 0;
    });
}

// SEND gives the id on success and also when an ALL_OR_WAIT send blocks.
int send(const Device& d, void* arg) {
    kbus_msg_id_t id{};
    const int rv = kbus_ksock_send(d.ksock, &id);
    if ((rv == 0 || rv == -EAGAIN) && !copyOut(arg, id)) {
        return failed(EFAULT);
    }
    return fromC(rv);
}

int lastSent(const Device& d, void* arg) {
    kbus_msg_id_t id{};
    const int rv = kbus_ksock_last_msg_id(d.ksock, &id);
    if (rv < 0) {
        return failed(-rv);
    }
    return copyOut(arg, id) ? 0 : failed(EFAULT);
}

} // namespace

int openDevice(uint32_t bus, int flags) {
    const int ksock = kbus_ksock_open(bus, flags & O_ACCMODE);
    if (ksock < 0) {
        return failed(-ksock);
    }
    // The application gets a descriptor of its own for the same socket, so
    // poll() sees what the Ksock's does, and closing it is ours to notice.
    const int user = real().fcntl(ksock, (flags & O_CLOEXEC) != 0 ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (user < 0) {
        const int error = errno;
        kbus_ksock_close(ksock);
        return failed(error);
    }
    auto device = std::make_shared<Device>();
    device->ksock = ksock;
    device->bus = bus;
    DeviceTable::instance().add(user, device);
    return user;
}

int openProcFile(const char* which, int flags) {
    if ((flags & O_ACCMODE) != O_RDONLY) {
        return failed(EACCES); // the kernel's /proc/kbus files are read-only
    }
    char* text = nullptr;
    if (const int rv = kbus_read_proc(which, &text); rv < 0) {
        return failed(-rv);
    }
    const std::string content(text);
    std::free(text);
    const unsigned memfdFlags = MFD_ALLOW_SEALING | ((flags & O_CLOEXEC) != 0 ? MFD_CLOEXEC : 0u);
    const int fd = ::memfd_create("kbus-proc", memfdFlags);
    if (fd < 0) {
        return -1;
    }
    const ssize_t put = real().write(fd, content.data(), content.size());
    if (put != static_cast<ssize_t>(content.size()) || ::lseek(fd, 0, SEEK_SET) != 0) {
        const int error = put < 0 ? errno : EIO;
        real().close(fd);
        return failed(error);
    }
    (void)real().fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
    return fd;
}

ssize_t deviceRead(const Device& d, void* buf, size_t count) {
    uint32_t left = 0;
    (void)kbus_ksock_len_left(d.ksock, &left);
    std::vector<std::byte> bytes(std::min<size_t>(count, left));
    const ssize_t got = kbus_ksock_read(d.ksock, bytes.data(), bytes.size());
    if (got < 0) {
        return failed(static_cast<int>(-got));
    }
    if (copyToCaller(buf, bytes.data(), static_cast<size_t>(got)) != 0) {
        return failed(EFAULT);
    }
    return got;
}

ssize_t deviceWrite(const Device& d, const void* buf, size_t count) {
    // No message is longer than this: a longer write fails (EMSGSIZE at the
    // latest) within its first bytes, so only those are copied in.
    const size_t taken = std::min<size_t>(count, DEFAULT_MAX_MESSAGE_SIZE + 1);
    std::vector<std::byte> bytes(taken);
    if (copyFromCaller(bytes.data(), buf, taken) != 0) {
        return failed(EFAULT);
    }
    const ssize_t put = kbus_ksock_write(d.ksock, bytes.data(), taken);
    if (put < 0) {
        return failed(static_cast<int>(-put));
    }
    return static_cast<ssize_t>(count);
}

int deviceIoctl(const Device& d, unsigned long request, void* arg) {
    const int k = d.ksock;
    switch (request) {
    case KBUS_IOC_RESET:
        return 0;
    case KBUS_IOC_BIND:
        return bind(d, arg, false);
    case KBUS_IOC_UNBIND:
        return bind(d, arg, true);
    case KBUS_IOC_KSOCKID:
        return u32Argument(arg, false, [&](uint32_t* v) { return kbus_ksock_id(k, v); });
    case KBUS_IOC_REPLIER:
        return replier(d, arg);
    case KBUS_IOC_NEXTMSG: // 1 when there is a message
        return u32Argument(arg, false, [&](uint32_t* v) { return kbus_ksock_next_msg(k, v); });
    case KBUS_IOC_LENLEFT:
        return u32Argument(arg, false, [&](uint32_t* v) { return kbus_ksock_len_left(k, v); });
    case KBUS_IOC_SEND:
        return send(d, arg);
    case KBUS_IOC_DISCARD:
        return fromC(kbus_ksock_discard(k));
    case KBUS_IOC_LASTSENT:
        return lastSent(d, arg);
    case KBUS_IOC_MAXMSGS:
        return u32Argument(arg, true, [&](uint32_t* v) { return kbus_ksock_max_messages(k, v); });
    case KBUS_IOC_NUMMSGS:
        return u32Argument(arg, false, [&](uint32_t* v) { return kbus_ksock_num_messages(k, v); });
    case KBUS_IOC_UNREPLIEDTO:
        return u32Argument(arg, false,
                           [&](uint32_t* v) { return kbus_ksock_num_unreplied_to(k, v); });
    case KBUS_IOC_MSGONLYONCE:
        return switchArgument(arg, [&](uint32_t r) { return kbus_ksock_only_once(k, r); });
    case KBUS_IOC_VERBOSE:
        return switchArgument(arg,
                              [&](uint32_t r) { return kbus_ksock_kernel_module_verbose(k, r); });
    case KBUS_IOC_NEWDEVICE:
        return u32Argument(arg, false, [&](uint32_t* v) { return kbus_ksock_new_device(k, v); });
    case KBUS_IOC_REPORTREPLIERBINDS:
        return switchArgument(arg,
                              [&](uint32_t r) { return kbus_ksock_report_replier_binds(k, r); });
    case KBUS_IOC_MAXMSGSIZE:
        return u32Argument(arg, true,
                           [&](uint32_t* v) { return kbus_ksock_max_message_size(k, v); });
    default:
        return failed(ENOTTY); // another magic, number or size, as the kernel said
    }
}

} // namespace xkbus::device
