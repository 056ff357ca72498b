#include "cli/format.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace idem::cli {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr char kBase64Chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Code points a terminal may act on although they are valid UTF-8: C1
// controls, and the bidi overrides that can make text read differently.
bool IsUnsafeCodePoint(uint32_t cp) {
  return cp < 0xA0 || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

// Length of the valid, safe UTF-8 sequence at the start of `s`; 0 if none.
size_t SafeUtf8Length(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t n = 0;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr std::array<uint32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return IsUnsafeCodePoint(cp) ? 0 : n;
}

int Base64Value(char c) {
  const char* p = std::char_traits<char>::find(kBase64Chars, 64, c);
  return p == nullptr ? -1 : static_cast<int>(p - kBase64Chars);
}

Json ScalarToJson(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int v = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      const auto* value = f->enum_type()->FindValueByNumber(v);
      return value != nullptr ? Json(value->name()) : Json(v);
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      return f->type() == FieldDescriptor::TYPE_BYTES ? Base64Encode(s) : s;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ToJson(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
  }
  return nullptr;
}

// A map field: entries are messages with `key` (field 1) and `value` (2).
Json MapToJson(const Message& m, const FieldDescriptor* f) {
  Json out = Json::object();
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < r->FieldSize(m, f); ++i) {
    const Message& entry = r->GetRepeatedMessage(m, f, i);
    const auto* key_field = entry.GetDescriptor()->field(0);
    const Json key = ScalarToJson(entry, key_field, 0);
    out[key.is_string() ? key.get<std::string>() : key.dump()] =
        ScalarToJson(entry, entry.GetDescriptor()->field(1), 0);
  }
  return out;
}

std::string ScalarToText(const Message& m, const FieldDescriptor* f) {
  const Json v = ScalarToJson(m, f, 0);
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return Escape(m.GetReflection()->GetString(m, f));
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// `all`: print zero and empty fields too (inside a sub-message).
void AppendLines(const Message& m, const std::string& prefix, bool all, Lines* out) {
  const auto* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (r->HasField(m, f)) AppendLines(r->GetMessage(m, f), prefix + f->name() + ".", true, out);
    } else if (all || i == 0 || r->HasField(m, f)) {  // proto3: HasField means non-zero
      out->emplace_back(prefix + f->name(), ScalarToText(m, f));
    }
  }
}

}  // namespace

std::string Escape(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (const size_t n = c >= 0x80 ? SafeUtf8Length(bytes.substr(i)) : 0; n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
      continue;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
    ++i;
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64Chars[(v >> 18) & 63];
    out += kBase64Chars[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kBase64Chars[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kBase64Chars[v & 63] : '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (pad == 1 && text[i + 2] == '=') return false;  // "x=y=" style
    uint32_t v = 0;
    for (int j = 0; j < 4 - pad; ++j) {
      const int d = Base64Value(text[i + j]);
      if (d < 0) return false;
      v |= static_cast<uint32_t>(d) << (18 - 6 * j);
    }
    out->push_back(static_cast<char>(v >> 16));
    if (pad < 2) out->push_back(static_cast<char>((v >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(v & 0xFF));
  }
  return true;
}

Json ToJson(const google::protobuf::Message& message) {
  Json out = Json::object();
  const auto* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) {
      out[f->name()] = MapToJson(message, f);
    } else if (f->is_repeated()) {
      Json items = Json::array();
      for (int j = 0; j < r->FieldSize(message, f); ++j) {
        items.push_back(ScalarToJson(message, f, j));
      }
      out[f->name()] = std::move(items);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !r->HasField(message, f)) {
      out[f->name()] = nullptr;
    } else {
      out[f->name()] = ScalarToJson(message, f, 0);
    }
  }
  return out;
}

std::string DumpJson(const Json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Lines ToLines(const google::protobuf::Message& message) {
  Lines out;
  AppendLines(message, "", false, &out);
  return out;
}

std::string FormatLines(const Lines& lines) {
  size_t width = 0;
  for (const auto& [name, value] : lines) width = std::max(width, name.size() + 1);
  std::string out;
  for (const auto& [name, value] : lines) {
    out += name + ":";
    out.append(width - name.size() - 1 + 1, ' ');
    out += value + "\n";
  }
  return out;
}

std::string FormatColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out.append(widths[c] - row[c].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

}  // namespace idem::cli
