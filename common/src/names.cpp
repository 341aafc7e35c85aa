// Message-name validation and matching, following kbus_bad_message_name() and
// kbus_message_name_matches() in the KBUS kernel module.
#include <xkbus/common/kbus_types.hpp>
#include <xkbus/common/names.hpp>

namespace xkbus {
namespace {

// The kernel's isalnum() is Latin-1 aware: 0xC0-0xFF pass, except the
// multiplication and division signs.
bool isNameChar(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) {
        return true;
    }
    return u >= 0xC0 && u != 0xD7 && u != 0xF7;
}

// "word.word.word": non-empty words of name characters, single dots between.
bool isWordList(std::string_view s) noexcept {
    if (s.empty() || s.front() == '.' || s.back() == '.') {
        return false;
    }
    char previous = '\0';
    for (char c : s) {
        if (c == '.') {
            if (previous == '.') {
                return false;
            }
        } else if (!isNameChar(c)) {
            return false;
        }
        previous = c;
    }
    return true;
}

bool isValidName(std::string_view name) noexcept {
    if (name.size() < 3 || !name.starts_with("$.")) {
        return false;
    }
    if (wildKindOf(name) != WildKind::NONE) {
        const std::string_view base = name.substr(0, name.size() - 2);
        return base == "$" || (base.starts_with("$.") && isWordList(base.substr(2)));
    }
    return isWordList(name.substr(2));
}

} // namespace

WildKind wildKindOf(std::string_view name) noexcept {
    if (name.size() < 2 || name[name.size() - 2] != '.') {
        return WildKind::NONE;
    }
    switch (name.back()) {
    case '*':
        return WildKind::STAR;
    case '%':
        return WildKind::PERCENT;
    default:
        return WildKind::NONE;
    }
}

Result<void> checkBindName(std::string_view name) noexcept {
    if (name.empty()) {
        return fail(Errc::BAD_NAME);
    }
    if (name.size() > MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    if (!isValidName(name)) {
        return fail(Errc::BAD_NAME);
    }
    return {};
}

Result<void> checkMessageName(std::string_view name) noexcept {
    if (name.empty()) {
        return fail(Errc::INVALID);
    }
    if (name.size() > MAX_NAME_LEN) {
        return fail(Errc::NAME_TOO_LONG);
    }
    if (!isValidName(name) || wildKindOf(name) != WildKind::NONE) {
        return fail(Errc::BAD_NAME);
    }
    return {};
}

bool nameMatches(std::string_view bindName, std::string_view messageName) noexcept {
    const WildKind kind = wildKindOf(bindName);
    if (kind == WildKind::NONE) {
        return bindName == messageName;
    }
    const std::string_view prefix = bindName.substr(0, bindName.size() - 1); // keeps the dot
    if (messageName.size() <= prefix.size() || !messageName.starts_with(prefix)) {
        return false;
    }
    return kind == WildKind::STAR || messageName.find('.', prefix.size()) == std::string_view::npos;
}

} // namespace xkbus
