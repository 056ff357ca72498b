#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

namespace idem::server {
namespace {

constexpr size_t kMaxTenantBytes = 128;

// The lowest role allowed each op: read < write < admin.
Role MinimumRole(OpKind op) {
  switch (op) {
    case OpKind::kHello:
    case OpKind::kPing:
    case OpKind::kLookup:
    case OpKind::kScan:
    case OpKind::kStats: return Role::kRead;
    case OpKind::kReserve:
    case OpKind::kComplete:
    case OpKind::kRelease:
    case OpKind::kRenew: return Role::kWrite;
    case OpKind::kPurge: return Role::kAdmin;
  }
  return Role::kAdmin;
}

bool IsRole(Role role) {
  return role == Role::kRead || role == Role::kWrite || role == Role::kAdmin;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 64 hex digits, either case, into 32 bytes.
bool DecodeHash(std::string_view hex, std::array<unsigned char, 32>* out) {
  if (hex.size() != 2 * out->size()) return false;
  for (size_t i = 0; i < out->size(); ++i) {
    const int hi = HexDigit(hex[2 * i]);
    const int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

bool ParseRole(std::string_view name, Role* role) {
  for (Role r : {Role::kRead, Role::kWrite, Role::kAdmin}) {
    if (name == RoleName(r)) {
      *role = r;
      return true;
    }
  }
  return false;
}

// Field `name` of an entry as a string; `field` is "tokens[i].name" for errors.
Status GetString(const toml::table& entry, const char* name, const std::string& field,
                 std::string* out) {
  const toml::node* node = entry.get(name);
  if (node == nullptr) return Status::InvalidArgument(field + " is missing");
  const auto* value = node->as_string();
  if (value == nullptr) return Status::InvalidArgument(field + " must be a string");
  *out = value->get();
  return Status::OK();
}

// An unknown field is most likely a misspelt one ("tennant"); refusing it beats
// silently ignoring what the operator meant.
Status CheckFields(const toml::table& entry, const std::string& where) {
  static const std::set<std::string_view> kFields = {"token_sha256", "tenant", "role"};
  for (auto&& [key, node] : entry) {
    if (kFields.count(key.str()) == 0) {
      return Status::InvalidArgument(where + " has an unknown field \"" + std::string(key.str()) +
                                     "\"");
    }
  }
  return Status::OK();
}

// One [[tokens]] table. The hash's value never appears in a message.
Status ParseEntry(const toml::table& entry, const std::string& where,
                  std::array<unsigned char, 32>* hash, Principal* principal) {
  IDEM_RETURN_IF_ERROR(CheckFields(entry, where));
  std::string hex, role;
  IDEM_RETURN_IF_ERROR(GetString(entry, "token_sha256", where + ".token_sha256", &hex));
  if (!DecodeHash(hex, hash)) {
    return Status::InvalidArgument(
        where + ".token_sha256 must be 64 hex digits (the SHA-256 of the token)");
  }
  IDEM_RETURN_IF_ERROR(GetString(entry, "tenant", where + ".tenant", &principal->tenant));
  if (principal->tenant.empty() || principal->tenant.size() > kMaxTenantBytes) {
    return Status::InvalidArgument(where + ".tenant is " +
                                   std::to_string(principal->tenant.size()) +
                                   " bytes; it must be 1 to 128");
  }
  IDEM_RETURN_IF_ERROR(GetString(entry, "role", where + ".role", &role));
  if (!ParseRole(role, &principal->role)) {
    return Status::InvalidArgument(where + ".role is \"" + role +
                                   "\"; it must be read, write or admin");
  }
  return Status::OK();
}

// The [[tokens]] array of the file; an auth file that admits nobody is a mistake.
Status GetTokens(const toml::table& doc, const toml::array** tokens) {
  for (auto&& [key, node] : doc) {
    if (key.str() != "tokens") {
      return Status::InvalidArgument("unknown key \"" + std::string(key.str()) + "\"");
    }
  }
  const toml::node* node = doc.get("tokens");
  *tokens = node == nullptr ? nullptr : node->as_array();
  if (node != nullptr && *tokens == nullptr) {
    return Status::InvalidArgument("tokens must be an array of tables ([[tokens]])");
  }
  if (*tokens == nullptr || (*tokens)->empty()) {
    return Status::InvalidArgument("no [[tokens]] entries; nobody could authenticate");
  }
  return Status::OK();
}

// toml++ reports by exception; idem by Status. One line, with the line
// number when the error is inside the file rather than about opening it.
Status ParseTomlFile(const std::string& path, toml::table* doc) {
  try {
    *doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::string msg(e.description());
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    const auto line = e.source().begin.line;
    if (line > 0) msg += " (line " + std::to_string(line) + ")";
    return Status::InvalidArgument(msg);
  }
  return Status::OK();
}

}  // namespace

bool RoleAllows(Role role, OpKind op) {
  return IsRole(role) && static_cast<int>(role) >= static_cast<int>(MinimumRole(op));
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kWrite: return "write";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> digest;
  unsigned int size = 0;
  // Fails only when OpenSSL itself is broken; no caller could recover, and
  // going on with a wrong digest could admit a wrong token.
  if (EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != digest.size()) {
    std::abort();
  }
  return digest;
}

Status AuthTable::Load(const std::string& path, AuthTable* out) {
  const std::string file = "auth file " + path;
  toml::table doc;
  IDEM_RETURN_IF_ERROR(ParseTomlFile(path, &doc).WithContext(file));
  const toml::array* tokens = nullptr;
  IDEM_RETURN_IF_ERROR(GetTokens(doc, &tokens).WithContext(file));
  AuthTable table;
  std::map<std::array<unsigned char, 32>, size_t> first_index;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string where = "tokens[" + std::to_string(i) + "]";
    const toml::table* entry = tokens->get(i)->as_table();
    if (entry == nullptr) {
      return Status::InvalidArgument(where + " is not a table").WithContext(file);
    }
    Entry e;
    IDEM_RETURN_IF_ERROR(ParseEntry(*entry, where, &e.hash, &e.principal).WithContext(file));
    const auto [it, inserted] = first_index.emplace(e.hash, i);
    if (!inserted) {
      std::string msg = where;
      msg += ".token_sha256 is the same as tokens[" + std::to_string(it->second) + "]'s";
      return Status::InvalidArgument(msg).WithContext(file);
    }
    table.entries_.push_back(std::move(e));
  }
  *out = std::move(table);
  return Status::OK();
}

void AuthTable::AddForTest(std::string_view token, Principal principal) {
  entries_.push_back({Sha256(token), std::move(principal)});
}

std::optional<Principal> AuthTable::Verify(std::string_view token) const {
  const std::array<unsigned char, 32> hash = Sha256(token);
  // Every entry is compared and the match is picked with masks, not a branch
  // or a break, so the time taken does not depend on which entry matched.
  size_t match = 0;
  size_t found = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const size_t equal =
        static_cast<size_t>(CRYPTO_memcmp(entries_[i].hash.data(), hash.data(), hash.size()) == 0);
    const size_t mask = 0 - equal;
    match = (match & ~mask) | (i & mask);
    found |= equal;
  }
  if (found == 0) return std::nullopt;
  return entries_[match].principal;
}

}  // namespace idem::server
