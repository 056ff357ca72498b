// idemd's settings: PROTOCOL.md section 6 flags (CLI11), an optional TOML
// --config file, and IDEM_* environment variables. Precedence: flag >
// environment > config file > default.
#pragma once

#include <cstdint>
#include <string>

#include "storage/state_machine.h"
#include "util/status.h"

namespace idem::server {

enum class Durability { kSync, kAsync };
enum class LogFormat { kText, kJson };

struct Config {
  std::string listen = "127.0.0.1:7420";
  std::string admin_listen = "127.0.0.1:7421";  // "off" disables the admin port
  std::string data_dir = "./idem-data";
  // Root of POST /backup targets (admin port); created on demand.
  std::string backup_dir = "./idem-backups";
  Durability durability = Durability::kSync;
  std::string auth_file;  // empty: no authentication
  bool allow_insecure = false;
  std::string config_file;
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";  // trace, debug, info, warn, error

  // Record limits and time defaults (PROTOCOL.md section 2).
  storage::Limits limits;

  // Connection limits (PROTOCOL.md section 1).
  uint32_t max_frame_bytes = 512 * 1024;
  uint32_t preauth_max_frame_bytes = 4 * 1024;
  uint32_t max_inflight = 1024;
  uint32_t max_connections = 10'000;
  // Unsent answers per connection: at half of this the connection stops
  // taking requests until the client reads; above it the connection closes.
  uint64_t max_output_bytes = 32ull << 20;
  // A connection whose socket accepts none of its answers for this long (a
  // client that stopped reading) is closed.
  uint32_t write_timeout_ms = 30'000;
  uint32_t idle_timeout_ms = 300'000;
  uint32_t frame_timeout_ms = 10'000;
  uint32_t max_malformed_frames = 16;  // the 16th is answered, then the connection closes
  uint32_t max_failed_hellos = 3;

  // Waiters (PROTOCOL.md section 2).
  uint32_t max_waiters = 100'000;
  uint32_t max_waiters_per_key = 1'000;

  // Storage.
  uint64_t block_cache_bytes = 64ull << 20;
  uint64_t record_cache_bytes = 32ull << 20;
  uint64_t wal_prefill_bytes = 1ull << 20;
  uint64_t periodic_compaction_seconds = 24 * 3600;
  // How often idle SST files are checked for periodic (TTL) compaction.
  uint32_t compaction_check_interval_ms = 3'600'000;
};

// A host and port parsed from "HOST:PORT" or "[IPV6]:PORT".
struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// InvalidArgument naming `flag` when `text` is not HOST:PORT with a numeric
// port in 0..65535.
Status ParseHostPort(const std::string& flag, const std::string& text, HostPort* out);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

// What ParseConfig asks the caller to do.
enum class ParseAction {
  kRun,          // *config is complete and valid
  kPrintAndExit  // --help or --version: print *output, exit 0
};

// Parses flags, the --config file and the environment into *config and
// validates the result (ranges, the non-loopback-without-auth rule). On
// error returns InvalidArgument with one line naming the flag or setting.
Status ParseConfig(int argc, const char* const* argv, Config* config, ParseAction* action,
                   std::string* output);

}  // namespace idem::server
