// Message data in and out of the CLI. In: an argument, standard input ("-")
// or a file ("@FILE"), as text, hex or base64. Out: text when a person can
// read it, otherwise hex or base64; in JSON always, with its encoding named.
#pragma once

#include <cstddef>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <xkbus/common/result.hpp>

namespace xkbus::cli {

enum class Encoding { TEXT, HEX, BASE64 };
// AUTO: text if it is printable UTF-8 (newlines and tabs included), else hex.
enum class DataFormat { AUTO, TEXT, HEX, BASE64 };

// The bytes `spec` names: "-" standard input, "@FILE" the file's contents,
// anything else itself. NO_SUCH_DEVICE if the file cannot be read.
Result<std::string> readDataSource(const std::string& spec);
// `input` decoded from `encoding`; INVALID if it is not well formed (odd
// hex digits, a character outside the alphabet). Whitespace is ignored in
// hex and base64, so `xxd -p` and `base64` output can be pasted.
Result<std::string> decodeData(std::string_view input, Encoding encoding);
// readDataSource then decodeData: what --data and the data argument mean.
Result<std::string> loadData(const std::string& spec, Encoding encoding);

std::string toHex(std::string_view bytes);
std::string toBase64(std::string_view bytes);
// Valid UTF-8 with no control characters but newline, tab and carriage return.
bool isPrintableText(std::string_view bytes);

// One token for a line a person reads: "\"text\"" (C escapes for newlines
// and the like), "hex:..." or "base64:...".
std::string renderForLine(std::string_view bytes, DataFormat format);
// Adds "data" and "data_encoding" ("utf-8", "hex" or "base64") to `out`:
// with AUTO, printable text as a string and anything else as base64.
void addToJson(nlohmann::json& out, std::string_view bytes, DataFormat format);

} // namespace xkbus::cli
