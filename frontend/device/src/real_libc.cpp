// dlsym(RTLD_NEXT): the next definition after this library's, libc's.
#include "real_libc.hpp"

#include <dlfcn.h>

namespace xkbus::device {

namespace {

template <class F>
void find(F& slot, const char* name) noexcept {
    slot = reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

RealLibc lookUp() noexcept {
    RealLibc r{};
    find(r.open, "open");
    find(r.open64, "open64");
    find(r.openat, "openat");
    find(r.openat64, "openat64");
    find(r.fopen, "fopen");
    find(r.fopen64, "fopen64");
    find(r.close, "close");
    find(r.close_range, "close_range"); // glibc 2.34 and later
    find(r.closefrom, "closefrom");     // glibc 2.34 and later
    find(r.read, "read");
    find(r.write, "write");
    find(r.readv, "readv");
    find(r.writev, "writev");
    find(r.ioctl, "ioctl");
    find(r.dup, "dup");
    find(r.dup2, "dup2");
    find(r.dup3, "dup3");
    find(r.fcntl, "fcntl");
    find(r.fcntl64, "fcntl64");
    if (r.fcntl64 == nullptr) {
        r.fcntl64 = r.fcntl;
    }
    return r;
}

} // namespace

const RealLibc& real() noexcept {
    static const RealLibc functions = lookUp();
    return functions;
}

} // namespace xkbus::device
