// See data_format.hpp. Base64 is OpenSSL's (libcrypto is already linked for
// the Limpets); UTF-8 is checked by nlohmann-json's strict serializer.
#include "data_format.hpp"

#include <cctype>
#include <charconv>
#include <fmt/core.h>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <sstream>

namespace xkbus::cli {

namespace {

std::string withoutSpace(std::string_view input) {
    std::string out;
    out.reserve(input.size());
    for (char c : input) {
        if (std::isspace(static_cast<unsigned char>(c)) == 0) {
            out += c;
        }
    }
    return out;
}

Result<std::string> fromHex(std::string_view input) {
    const std::string digits = withoutSpace(input);
    if (digits.size() % 2 != 0) {
        return fail(Errc::INVALID);
    }
    std::string out(digits.size() / 2, '\0');
    for (size_t i = 0; i < out.size(); ++i) {
        unsigned value = 0;
        const char* first = digits.data() + 2 * i;
        auto [end, ec] = std::from_chars(first, first + 2, value, 16);
        if (ec != std::errc() || end != first + 2) {
            return fail(Errc::INVALID);
        }
        out[i] = static_cast<char>(value);
    }
    return out;
}

Result<std::string> fromBase64(std::string_view input) {
    const std::string text = withoutSpace(input);
    if (text.size() % 4 != 0) {
        return fail(Errc::INVALID);
    }
    std::string out(text.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0) {
        return fail(Errc::INVALID);
    }
    // EVP_DecodeBlock counts the bytes that padding stands for as zeros.
    size_t padding = 0;
    for (auto it = text.rbegin(); it != text.rend() && *it == '=' && padding < 2; ++it) {
        ++padding;
    }
    out.resize(static_cast<size_t>(n) - padding);
    return out;
}

// C-style escapes for what a terminal would not show as itself.
std::string escaped(std::string_view text) {
    std::string out;
    for (char ch : text) {
        switch (ch) {
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        default: {
            const auto c = static_cast<unsigned char>(ch);
            out += c < 0x20 || c == 0x7F ? fmt::format("\\x{:02x}", c) : std::string(1, ch);
        }
        }
    }
    return out;
}

Encoding resolve(std::string_view bytes, DataFormat format) {
    switch (format) {
    case DataFormat::HEX:
        return Encoding::HEX;
    case DataFormat::BASE64:
        return Encoding::BASE64;
    case DataFormat::TEXT:
        return Encoding::TEXT;
    case DataFormat::AUTO:
        break;
    }
    return isPrintableText(bytes) ? Encoding::TEXT : Encoding::HEX;
}

bool isUtf8(std::string_view bytes) {
    try {
        (void)nlohmann::json(std::string(bytes)).dump();
        return true;
    } catch (const nlohmann::json::type_error&) {
        return false;
    }
}

} // namespace

Result<std::string> readDataSource(const std::string& spec) {
    if (spec == "-") {
        return std::string(std::istreambuf_iterator<char>(std::cin), {});
    }
    if (spec.starts_with('@')) {
        std::ifstream in(spec.substr(1), std::ios::binary);
        if (!in) {
            return fail(Errc::NO_SUCH_DEVICE);
        }
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }
    return spec;
}

Result<std::string> decodeData(std::string_view input, Encoding encoding) {
    switch (encoding) {
    case Encoding::HEX:
        return fromHex(input);
    case Encoding::BASE64:
        return fromBase64(input);
    case Encoding::TEXT:
        break;
    }
    return std::string(input);
}

Result<std::string> loadData(const std::string& spec, Encoding encoding) {
    auto raw = readDataSource(spec);
    if (!raw) {
        return raw;
    }
    return decodeData(*raw, encoding);
}

std::string toHex(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) {
        out += fmt::format("{:02x}", static_cast<unsigned char>(c));
    }
    return out;
}

std::string toBase64(std::string_view bytes) {
    std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

bool isPrintableText(std::string_view bytes) {
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7F) {
            return false;
        }
    }
    return isUtf8(bytes);
}

std::string renderForLine(std::string_view bytes, DataFormat format) {
    switch (resolve(bytes, format)) {
    case Encoding::HEX:
        return "hex:" + toHex(bytes);
    case Encoding::BASE64:
        return "base64:" + toBase64(bytes);
    case Encoding::TEXT:
        break;
    }
    return "\"" + escaped(bytes) + "\"";
}

void addToJson(nlohmann::json& out, std::string_view bytes, DataFormat format) {
    // Text as a string, as on a line; anything else as base64, which every
    // language decodes. A JSON string cannot hold bytes that are not UTF-8.
    Encoding encoding = resolve(bytes, format);
    const bool autoBinary = format == DataFormat::AUTO && encoding != Encoding::TEXT;
    if (autoBinary || (encoding == Encoding::TEXT && !isUtf8(bytes))) {
        encoding = Encoding::BASE64;
    }
    switch (encoding) {
    case Encoding::HEX:
        out["data"] = toHex(bytes);
        out["data_encoding"] = "hex";
        return;
    case Encoding::BASE64:
        out["data"] = toBase64(bytes);
        out["data_encoding"] = "base64";
        return;
    case Encoding::TEXT:
        break;
    }
    out["data"] = std::string(bytes);
    out["data_encoding"] = "utf-8";
}

} // namespace xkbus::cli
