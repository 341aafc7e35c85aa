// Message-name validation for sending (docs/semantics.md, "Names").
#include "message_name.hpp"

namespace xkbus::frontend {

namespace {

// The kernel's isalnum(): ASCII letters and digits, and the Latin-1 letters.
bool isNameChar(unsigned char c) noexcept {
    const bool ascii = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    return ascii || (c >= 0xC0 && c != 0xD7 && c != 0xF7);
}

} // namespace

Result<void> checkSendName(std::string_view name) noexcept {
    if (name.empty()) {
        return fail(Errc::INVALID);
    }
    if (name.size() > MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    if (name.size() < 3 || !name.starts_with("$.") || name.back() == '*' || name.back() == '%') {
        return fail(Errc::BAD_NAME);
    }
    bool afterDot = true; // just after the "$."
    for (const char ch : name.substr(2)) {
        if (ch == '.') {
            if (afterDot) {
                return fail(Errc::BAD_NAME);
            }
            afterDot = true;
        } else if (isNameChar(static_cast<unsigned char>(ch))) {
            afterDot = false;
        } else {
            return fail(Errc::BAD_NAME);
        }
    }
    if (afterDot) {
        return fail(Errc::BAD_NAME);
    }
    return {};
}

} // namespace xkbus::frontend
