// The C API's Ksock calls that take a name by pointer and length, as the
// BIND, UNBIND and REPLIER ioctls did (the names need not be NUL-terminated).
// Each returns 0 or -errno and sets errno as the C API does.
#pragma once

#include <cstdint>
#include <string_view>

namespace xkbus::frontend {

int bindByName(int ksock, std::string_view name, bool replier);
int unbindByName(int ksock, std::string_view name, bool replier);
// *replier: the Ksock bound as replier to exactly this name, or 0.
int findReplierByName(int ksock, std::string_view name, uint32_t* replier);

} // namespace xkbus::frontend
