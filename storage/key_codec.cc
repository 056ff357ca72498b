#include "storage/key_codec.h"

namespace idem::storage {

namespace {
constexpr char kEscape = '\x00';
constexpr char kEscapedZero = '\xff';
constexpr char kTerminator = '\x01';
}  // namespace

void AppendEscaped(std::string* dst, std::string_view part) {
  // Runs without a zero byte are copied whole (keys are on every request's path).
  for (size_t start = 0;;) {
    const size_t zero = part.find(kEscape, start);
    if (zero == std::string_view::npos) {
      dst->append(part.data() + start, part.size() - start);
      break;
    }
    dst->append(part.data() + start, zero + 1 - start);
    dst->push_back(kEscapedZero);
    start = zero + 1;
  }
  dst->push_back(kEscape);
  dst->push_back(kTerminator);
}

bool ConsumeEscaped(std::string_view* in, std::string* part) {
  part->clear();
  for (size_t i = 0; i < in->size(); ++i) {
    const char c = (*in)[i];
    if (c != kEscape) {
      part->push_back(c);
      continue;
    }
    if (i + 1 >= in->size()) return false;
    const char next = (*in)[i + 1];
    if (next == kTerminator) {
      in->remove_prefix(i + 2);
      return true;
    }
    if (next != kEscapedZero) return false;
    part->push_back(kEscape);
    ++i;
  }
  return false;  // no terminator
}

std::string TenantPrefix(std::string_view tenant) {
  std::string out(1, kRecordTag);
  AppendEscaped(&out, tenant);
  return out;
}

std::string ScopePrefix(std::string_view tenant, std::string_view scope) {
  std::string out = TenantPrefix(tenant);
  AppendEscaped(&out, scope);
  return out;
}

std::string EncodeRecordKey(std::string_view tenant, std::string_view scope, std::string_view key) {
  std::string out;
  EncodeRecordKeyTo(tenant, scope, key, &out);
  return out;
}

void EncodeRecordKeyTo(std::string_view tenant, std::string_view scope, std::string_view key,
                       std::string* out) {
  out->clear();
  // One allocation at most unless tenant or scope hold zero bytes.
  out->reserve(1 + tenant.size() + 2 + scope.size() + 2 + key.size());
  out->push_back(kRecordTag);
  AppendEscaped(out, tenant);
  AppendEscaped(out, scope);
  out->append(key.data(), key.size());
}

bool DecodeRecordKey(std::string_view encoded, std::string* tenant, std::string* scope,
                     std::string* key) {
  if (encoded.empty() || encoded[0] != kRecordTag) return false;
  encoded.remove_prefix(1);
  if (!ConsumeEscaped(&encoded, tenant) || !ConsumeEscaped(&encoded, scope)) return false;
  key->assign(encoded.data(), encoded.size());
  return true;
}

std::string MetaKey(std::string_view name) {
  std::string out(1, kMetaTag);
  out.append(name.data(), name.size());
  return out;
}

}  // namespace idem::storage
