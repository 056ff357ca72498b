// Byte-level encoding helpers: fixed-width big-endian integers and LEB128
// varints. Decoders take a std::string_view cursor and advance it; they return
// false (and leave the value unspecified) when the input is too short or an
// encoding is invalid, never reading past the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace idem {

void PutFixed32BE(std::string* dst, uint32_t v);
void PutFixed64BE(std::string* dst, uint64_t v);
void PutVarint32(std::string* dst, uint32_t v);
void PutVarint64(std::string* dst, uint64_t v);
// A varint length, then the bytes.
void PutLengthPrefixed(std::string* dst, std::string_view bytes);

uint32_t DecodeFixed32BE(const char* p);
uint64_t DecodeFixed64BE(const char* p);

bool GetFixed64BE(std::string_view* in, uint64_t* v);
bool GetVarint32(std::string_view* in, uint32_t* v);
bool GetVarint64(std::string_view* in, uint64_t* v);
bool GetLengthPrefixed(std::string_view* in, std::string_view* bytes);

// Zig-zag maps signed to unsigned so small negative numbers stay short.
inline uint32_t ZigZagEncode32(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}
inline int32_t ZigZagDecode32(uint32_t v) {
  return static_cast<int32_t>((v >> 1) ^ (~(v & 1) + 1));
}

}  // namespace idem
