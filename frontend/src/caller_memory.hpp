// Copies from memory the application points at (a pointy message's name and
// data), reporting a bad pointer as EFAULT, as the kernel's copy_from_user did,
// instead of crashing inside the library.
#pragma once

#include <cstddef>

namespace xkbus::frontend {

// Returns 0, or -EFAULT if [from, from+len) is not readable. (Errc has no
// EFAULT: only this library's C side meets application pointers.)
int copyFromCaller(void* to, const void* from, size_t len) noexcept;

} // namespace xkbus::frontend
