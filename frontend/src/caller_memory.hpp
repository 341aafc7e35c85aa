// Copies from and to memory the application points at (a pointy message's
// name and data, an ioctl's argument), reporting a bad pointer as EFAULT, as
// the kernel's copy_from_user and copy_to_user did, instead of crashing
// inside the library.
#pragma once

#include <cstddef>

namespace xkbus::frontend {

// Returns 0, or -EFAULT if [from, from+len) is not readable. (Errc has no
// EFAULT: only this library's C side meets application pointers.)
int copyFromCaller(void* to, const void* from, size_t len) noexcept;
// The same the other way (the kernel's copy_to_user): -EFAULT if
// [to, to+len) is not writable.
int copyToCaller(void* to, const void* from, size_t len) noexcept;

} // namespace xkbus::frontend
