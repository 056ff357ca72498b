// idemctl's subcommands. Each Run* function talks to the daemon, prints the
// answer on stdout (table or JSON) or the failure on stderr, and returns the
// process exit code.
#pragma once

#include <cstdint>
#include <string>

namespace idem::cli {

// Exit codes (documented in `idemctl --help`).
enum ExitCode : int {
  kExitOk = 0,        // success, including a RESERVE_COMPLETED replay
  kExitNegative = 1,  // a normal but negative outcome (IN_PROGRESS, LEASE_LOST...)
  kExitUsage = 2,     // bad flags or arguments
  kExitError = 3,     // connection, authentication or server error
};

// Flags shared by every subcommand.
struct Globals {
  std::string endpoint = "127.0.0.1:7420";
  std::string token;  // never printed
  std::string output = "table";
  uint32_t timeout_ms = 5000;
  std::string admin_endpoint = "127.0.0.1:7421";

  bool json() const { return output == "json"; }
};

struct ReserveArgs {
  std::string scope, key, fingerprint;
  uint32_t lease_ms = 0;
  uint64_t retention_ms = 0;
  uint32_t wait_ms = 0;
};

struct CompleteArgs {
  std::string scope, key;
  uint64_t token = 0;
  int32_t status = 0;
  std::string body;
  std::string body_file;
  uint64_t retention_ms = 0;
};

// Release, Renew (lease_ms), Lookup and Purge (scope and key only).
struct KeyArgs {
  std::string scope, key;
  uint64_t token = 0;
  uint32_t lease_ms = 0;
};

struct ScanArgs {
  std::string scope, prefix;
  std::string cursor;  // base64, as printed by a previous scan
  uint32_t limit = 0;
  bool all_scopes = false;
  bool all = false;  // follow next_cursor to the end
};

int RunPing(const Globals& g);
int RunHealth(const Globals& g);
int RunReserve(const Globals& g, const ReserveArgs& a);
int RunComplete(const Globals& g, const CompleteArgs& a);
int RunRelease(const Globals& g, const KeyArgs& a);
int RunRenew(const Globals& g, const KeyArgs& a);
int RunLookup(const Globals& g, const KeyArgs& a);
int RunPurge(const Globals& g, const KeyArgs& a);
int RunScan(const Globals& g, const ScanArgs& a);
int RunStats(const Globals& g);
// POST /backup to g.admin_endpoint with `dir` (made absolute) as the body.
int RunBackup(const Globals& g, const std::string& dir);

// The second line of every usage error.
inline constexpr char kUsageHint[] = "Run 'idemctl --help' or 'idemctl COMMAND --help' for usage.";

// Prints "idemctl: <message>" on stderr (plus kUsageHint for kExitUsage);
// returns `code`.
int Fail(int code, const std::string& message);

}  // namespace idem::cli
