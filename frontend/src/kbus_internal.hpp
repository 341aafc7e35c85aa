// The C API's Ksock calls that take a name by pointer and length, as the
// BIND, UNBIND and REPLIER ioctls did (the names need not be NUL-terminated),
// for the /dev/kbusN emulation. Each returns 0 or -errno and sets errno as
// the C API does.
#pragma once

#include <cstdint>
#include <string_view>

namespace xkbus::frontend {

int bindByName(int ksock, std::string_view name, bool replier);
int unbindByName(int ksock, std::string_view name, bool replier);
// *replier: the Ksock bound as replier to exactly this name, or 0.
int findReplierByName(int ksock, std::string_view name, uint32_t* replier);

// The bus a path names if it is /dev/kbus<N> as open() would find it (a
// relative path counts from `dir`, an absolute directory, if given, else
// from the working directory).
bool kbusDevicePath(const char* path, uint32_t& bus, const char* dir = nullptr);

} // namespace xkbus::frontend
