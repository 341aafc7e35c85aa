// See client_spin.hpp.
#include "client_spin.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string_view>

namespace xkbus::frontend {

// The most a client may ask for: a second of polling per wait would only
// burn a CPU that the peer it waits for may need.
constexpr long MAX_SPIN_US = 10000;

ring::SpinPolicy clientSpin() {
    ring::SpinPolicy policy;
    const char* env = std::getenv("XKBUS_SPIN_US");
    if (env == nullptr || *env == '\0') {
        return policy;
    }
    const std::string_view text(env);
    long us = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), us);
    if (ec == std::errc() && end == text.data() + text.size() && us >= 0) {
        policy.maxSpin = std::chrono::microseconds(std::min(us, MAX_SPIN_US));
    }
    return policy; // a malformed value keeps the default rather than failing the open
}

} // namespace xkbus::frontend
