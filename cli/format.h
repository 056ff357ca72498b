// idemctl's output formatting: terminal-safe text, base64, and protobuf
// replies rendered as aligned `field: value` lines, columns, or JSON.
//
// Table mode never writes a raw control byte: every value goes through
// Escape(). JSON mode keeps the exact bytes: bytes fields are base64.
#pragma once

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idem::cli {

// Printable ASCII and valid UTF-8 (beyond C1 controls and bidi overrides) pass
// through; `\` becomes `\\` and every other byte `\xNN`.
std::string Escape(std::string_view bytes);

// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view bytes);
// Strict inverse of Base64Encode (padding required, no whitespace). False on
// malformed input, leaving *out unspecified.
bool Base64Decode(std::string_view text, std::string* out);

// JSON objects keep their members in insertion (protobuf field) order.
using Json = nlohmann::ordered_json;

// Every field of `message`, by its protobuf name, in field order: enums as
// value names, bytes as base64, 64-bit integers as numbers, maps as objects,
// repeated fields as arrays, an unset sub-message as null.
Json ToJson(const google::protobuf::Message& message);

// One compact line; invalid UTF-8 in string fields is replaced, never thrown.
std::string DumpJson(const Json& json);

using Lines = std::vector<std::pair<std::string, std::string>>;

// The singular fields of `message` as (name, escaped value) pairs, for
// people: the first field always, the others when not zero or empty; a set
// sub-message in full, flattened with dotted names ("result.status").
// Repeated and map fields are left out.
Lines ToLines(const google::protobuf::Message& message);

// "name:  value" lines, values aligned in one column.
std::string FormatLines(const Lines& lines);

// Rows under a header, each column as wide as its widest cell, two spaces
// apart. Cells must be escaped already.
std::string FormatColumns(const std::vector<std::vector<std::string>>& rows);

}  // namespace idem::cli
