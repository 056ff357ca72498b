// Tenants and roles (PROTOCOL.md section 4): the --auth-file token table and
// which role may run which operation.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace idem::server {

// Numbers match the protocol's Role enum.
enum class Role : int { kRead = 1, kWrite = 2, kAdmin = 3 };

// The operations a role is checked against.
enum class OpKind {
  kHello,
  kPing,
  kReserve,
  kComplete,
  kRelease,
  kRenew,
  kLookup,
  kPurge,
  kScan,
  kStats
};

struct Principal {
  std::string tenant;
  Role role = Role::kRead;
};

// read: Lookup, Scan, Stats, Ping (and Hello); write: read + Reserve,
// Complete, Release, Renew; admin: write + Purge.
bool RoleAllows(Role role, OpKind op);
const char* RoleName(Role role);

// SHA-256 of `data`.
std::array<unsigned char, 32> Sha256(std::string_view data);

// The tokens of an --auth-file. Immutable after Load; thread-safe.
class AuthTable {
 public:
  // Reads a TOML file of [[tokens]] tables, each with token_sha256 (64 hex
  // digits), tenant (1..128 bytes) and role ("read", "write" or "admin").
  // InvalidArgument naming the file and the offending entry/field.
  static Status Load(const std::string& path, AuthTable* out);

  // For tests: adds an entry for a plain token.
  void AddForTest(std::string_view token, Principal principal);

  // The principal of `token`, or nullopt. Hashes the token once and compares
  // it with every entry in constant time (no early exit, CRYPTO_memcmp), so
  // timing reveals neither which entry matched nor how much of a hash did.
  std::optional<Principal> Verify(std::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> hash;
    Principal principal;
  };
  std::vector<Entry> entries_;
};

}  // namespace idem::server
