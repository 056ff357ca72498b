// How (tenant, scope, key) becomes one RocksDB key.
//
//   record key = kRecordTag | Escaped(tenant) | Escaped(scope) | key
//   meta key   = kMetaTag | name
//
// Escaped(s) writes s with each 0x00 byte doubled as 0x00 0xFF and ends with
// the terminator 0x00 0x01. The escaping is order-preserving, so:
//  - the encoding is unambiguous for arbitrary bytes: ("a", "|b") and
//    ("a|", "b") differ, and a 0x00 inside a part cannot end it early;
//  - one tenant's records, and one scope's within it, are contiguous;
//  - records sort by (tenant, scope, key) in plain byte order, which is what
//    Scan needs (within one scope and across a tenant's scopes).
// The key is the last part, so it is stored raw.
#pragma once

#include <string>
#include <string_view>

namespace idem::storage {

inline constexpr char kMetaTag = '\x00';
inline constexpr char kRecordTag = '\x01';

std::string EncodeRecordKey(std::string_view tenant, std::string_view scope, std::string_view key);
// The same into *out (replacing its contents), reusing its capacity.
void EncodeRecordKeyTo(std::string_view tenant, std::string_view scope, std::string_view key,
                       std::string* out);

// The prefix shared by every record of `tenant`.
std::string TenantPrefix(std::string_view tenant);
// The prefix shared by every record of (`tenant`, `scope`).
std::string ScopePrefix(std::string_view tenant, std::string_view scope);

// Appends Escaped(part) to *dst.
void AppendEscaped(std::string* dst, std::string_view part);
// Reads one Escaped part from the front of *in. False if it is malformed.
bool ConsumeEscaped(std::string_view* in, std::string* part);

// Splits a record key. False for meta keys and malformed input.
bool DecodeRecordKey(std::string_view encoded, std::string* tenant, std::string* scope,
                     std::string* key);

std::string MetaKey(std::string_view name);

}  // namespace idem::storage
