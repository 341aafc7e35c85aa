// Small helpers the Xen harness programs share: a libxenstore handle, and a
// strict parser for the decimal values a guest writes (guest bytes are
// hostile: bounded reads, digits only, no sign, no leading zeros, in range).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

extern "C" {
#include <xenstore.h> // the Xen 4.17 headers have no extern "C" guards
}

namespace xkbus::xentest {

// Decimal in [min, max]: digits only, no sign, spaces or leading zeros.
inline std::optional<uint32_t> parseDecimal(std::string_view text, uint32_t min, uint32_t max) {
    if (text.empty() || text.size() > 10 || (text.size() > 1 && text[0] == '0')) {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value < min || value > max) {
        return std::nullopt;
    }
    return static_cast<uint32_t>(value);
}

class Xenstore {
public:
    Xenstore() : m_handle(xs_open(0)) {}
    ~Xenstore() {
        if (m_handle != nullptr) {
            xs_close(m_handle);
        }
    }
    Xenstore(const Xenstore&) = delete;
    Xenstore& operator=(const Xenstore&) = delete;

    bool ok() const noexcept { return m_handle != nullptr; }

    bool write(const std::string& path, std::string_view value) {
        return xs_write(m_handle, XBT_NULL, path.c_str(), value.data(),
                        static_cast<unsigned int>(value.size()));
    }

    // At most `maxBytes` of the node's value; nullopt if it is absent or longer.
    std::optional<std::string> read(const std::string& path, size_t maxBytes = 64) {
        unsigned int length = 0;
        void* raw = xs_read(m_handle, XBT_NULL, path.c_str(), &length);
        if (raw == nullptr) {
            return std::nullopt;
        }
        std::optional<std::string> value;
        if (length <= maxBytes) {
            value.emplace(static_cast<const char*>(raw), length);
        }
        std::free(raw);
        return value;
    }

    // Polls until the node exists (or the timeout passes).
    std::optional<std::string> waitFor(const std::string& path, std::chrono::milliseconds timeout,
                                       size_t maxBytes = 64) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto value = read(path, maxBytes)) {
                return value;
            }
            if (std::chrono::steady_clock::now() >= deadline) {
                return std::nullopt;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

private:
    xs_handle* m_handle;
};

} // namespace xkbus::xentest
