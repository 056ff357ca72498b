#include "server/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <sstream>
#include <string_view>

namespace idem::server {
namespace {

constexpr char kVersion[] = "idemd 0.1.0";
constexpr char kDescription[] = "idemd: the idem idempotency-key server";
constexpr char kFooter[] =
    "Every flag can also be set by the environment (IDEM_ and the flag name in capitals, dashes\n"
    "as underscores) or by a key of the --config file (the flag name, dashes or underscores).\n"
    "A flag beats the environment, which beats the file.";

// Bounds beyond "not zero". A protobuf message must stay under 2 GiB, and a
// pre-auth frame must still hold a Hello with its token.
constexpr uint64_t kMinFrameBytes = 1024;
constexpr uint64_t kMaxFrameBytes = 1ull << 30;
constexpr uint64_t kMinPreauthFrameBytes = 64;
// 100 years: keeps now + retention far from overflowing Unix milliseconds.
constexpr uint64_t kMaxRetentionMs = 100ull * 365 * 24 * 3600 * 1000;

// The enum settings travel as text through all three sources and are parsed
// once at the end, so a bad value gets the same message whichever source gave it.
struct EnumText {
  std::string durability = "sync";
  std::string log_format = "text";
};

std::string Flag(std::string_view name) { return "--" + std::string(name); }

// "max-key-bytes" -> "IDEM_MAX_KEY_BYTES".
std::string EnvName(std::string_view name) {
  std::string env = "IDEM_";
  for (char c : name) {
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

// Registers one setting, the single mechanism behind all three sources: flag
// --name and variable IDEM_NAME through CLI11, key `name` of the --config file
// through ApplyConfigFile. Only settings get an envname; ApplyConfigFile
// relies on that to tell them from --help and --version.
template <typename T>
void Add(CLI::App* app, std::string_view name, T* field, const char* help) {
  CLI::Option* opt;
  if constexpr (std::is_same_v<T, bool>) {
    opt = app->add_flag(Flag(name), *field, help);
  } else {
    opt = app->add_option(Flag(name), *field, help);
  }
  opt->envname(EnvName(name))->capture_default_str();
}

void AddServerSettings(CLI::App* app, Config* c, EnumText* e) {
  Add(app, "listen", &c->listen, "Protocol port, HOST:PORT; port 0 picks a free one");
  Add(app, "admin-listen", &c->admin_listen, "HTTP /metrics and /health, HOST:PORT or off");
  Add(app, "data-dir", &c->data_dir, "Database directory, created if missing");
  Add(app, "backup-dir", &c->backup_dir,
      "Root of online backups (POST /backup on the admin port), created on demand. A backup\n"
      "goes only below it: a relative target is resolved inside it, an absolute one must lie\n"
      "inside it; \"..\" is refused and symbolic links may not lead outside it");
  Add(app, "durability", &e->durability, "sync (fdatasync before answering) or async");
  Add(app, "auth-file", &c->auth_file, "TOML table of [[tokens]]; none: no authentication");
  Add(app, "allow-insecure", &c->allow_insecure, "Allow non-loopback ports without protection");
  Add(app, "config", &c->config_file, "TOML file of these settings");
  Add(app, "log-format", &e->log_format, "text or json");
  Add(app, "log-level", &c->log_level, "trace, debug, info, warn or error");
}

void AddRecordLimits(CLI::App* app, storage::Limits* l) {
  Add(app, "max-scope-bytes", &l->max_scope_bytes, "Longest scope");
  Add(app, "max-key-bytes", &l->max_key_bytes, "Longest key");
  Add(app, "max-fingerprint-bytes", &l->max_fingerprint_bytes, "Longest fingerprint");
  Add(app, "max-body-bytes", &l->max_body_bytes, "Largest stored result");
  Add(app, "default-lease-ms", &l->default_lease_ms, "Lease when a Reserve gives 0");
  Add(app, "max-lease-ms", &l->max_lease_ms, "Longer leases are clamped to this");
  Add(app, "default-retention-ms", &l->default_retention_ms, "Retention when a request gives 0");
  Add(app, "max-retention-ms", &l->max_retention_ms, "Longer retentions are clamped to this");
  Add(app, "max-wait-ms", &l->max_wait_ms, "Longest wait_ms of a Reserve");
}

void AddConnectionLimits(CLI::App* app, Config* c) {
  Add(app, "max-frame-bytes", &c->max_frame_bytes, "Largest request frame");
  Add(app, "preauth-max-frame-bytes", &c->preauth_max_frame_bytes,
      "Largest frame before a successful Hello (with --auth-file)");
  Add(app, "max-inflight", &c->max_inflight,
      "Unanswered requests per connection before reading stops");
  Add(app, "max-connections", &c->max_connections, "Open connections at most");
  Add(app, "max-output-bytes", &c->max_output_bytes,
      "Unsent answers per connection: reading pauses at half, the connection closes above");
  Add(app, "write-timeout-ms", &c->write_timeout_ms,
      "Close a connection that accepts none of its answers for this long");
  Add(app, "idle-timeout-ms", &c->idle_timeout_ms, "Close a connection silent this long");
  Add(app, "frame-timeout-ms", &c->frame_timeout_ms, "Close a connection stalled inside a frame");
  Add(app, "max-malformed-frames", &c->max_malformed_frames,
      "Close after this many malformed frames");
  Add(app, "max-failed-hellos", &c->max_failed_hellos, "Close after this many failed Hellos");
}

void AddResourceSettings(CLI::App* app, Config* c) {
  Add(app, "max-waiters", &c->max_waiters, "Waiting Reserves in all");
  Add(app, "max-waiters-per-key", &c->max_waiters_per_key, "Waiting Reserves per key");
  Add(app, "block-cache-bytes", &c->block_cache_bytes, "RocksDB block cache size");
  Add(app, "record-cache-bytes", &c->record_cache_bytes,
      "Cache of durable records (result bodies up to 4 KiB) in front of RocksDB reads; 0: off");
  Add(app, "wal-prefill-bytes", &c->wal_prefill_bytes,
      "Fill each write-ahead log with zeros this far ahead, so commits overwrite, not append; 0: "
      "off");
  Add(app, "periodic-compaction-seconds", &c->periodic_compaction_seconds,
      "Compact files older than this, dropping expired records (0: never)");
  Add(app, "compaction-check-interval-ms", &c->compaction_check_interval_ms,
      "How often files are checked for periodic compaction");
}

std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// A TOML scalar as the text a flag would carry.
bool TomlScalar(const toml::node& node, std::string* out) {
  if (const auto* s = node.as_string()) {
    *out = s->get();
  } else if (const auto* i = node.as_integer()) {
    *out = std::to_string(i->get());
  } else if (const auto* b = node.as_boolean()) {
    *out = b->get() ? "true" : "false";
  } else {
    return false;
  }
  return true;
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

// Feeds one key of the --config file into its option, unless a flag or the
// environment already set that option (they win).
Status ApplyFileSetting(CLI::App* app, const std::string& key, const toml::node& node,
                        std::set<std::string>* seen) {
  std::string name = key;
  std::replace(name.begin(), name.end(), '_', '-');
  if (name == "config") return Status::InvalidArgument("\"config\" cannot be set in a config file");
  CLI::Option* opt = app->get_option_no_throw(Flag(name));
  if (opt == nullptr || opt->get_envname().empty()) {
    return Status::InvalidArgument("unknown setting \"" + key + "\"");
  }
  if (!seen->insert(name).second) {
    return Status::InvalidArgument("\"" + key +
                                   "\" is set twice (once with dashes, once with underscores)");
  }
  std::string value;
  if (!TomlScalar(node, &value)) {
    return Status::InvalidArgument("\"" + key + "\" must be a string, an integer or a boolean");
  }
  if (opt->count() > 0) return Status::OK();
  opt->add_result(value);
  try {
    opt->run_callback();
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(OneLine(e.what()));
  }
  return Status::OK();
}

Status ApplyConfigFile(CLI::App* app, const std::string& path) {
  if (path.empty()) return Status::OK();
  const std::string where = "config file " + path;
  toml::table doc;
  IDEM_RETURN_IF_ERROR(ParseTomlFile(path, &doc).WithContext(where));
  std::set<std::string> seen;
  for (auto&& [key, node] : doc) {
    IDEM_RETURN_IF_ERROR(
        ApplyFileSetting(app, std::string(key.str()), node, &seen).WithContext(where));
  }
  return Status::OK();
}

Status ParseEnums(const EnumText& text, Config* c) {
  if (text.durability == "sync" || text.durability == "async") {
    c->durability = text.durability == "sync" ? Durability::kSync : Durability::kAsync;
  } else {
    return Status::InvalidArgument("--durability \"" + text.durability +
                                   "\" must be sync or async");
  }
  if (text.log_format == "text" || text.log_format == "json") {
    c->log_format = text.log_format == "text" ? LogFormat::kText : LogFormat::kJson;
  } else {
    return Status::InvalidArgument("--log-format \"" + text.log_format + "\" must be text or json");
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (kLevels.count(c->log_level) == 0) {
    return Status::InvalidArgument("--log-level \"" + c->log_level +
                                   "\" must be trace, debug, info, warn or error");
  }
  return Status::OK();
}

// A numeric setting and its allowed range.
struct Range {
  const char* name;
  uint64_t value;
  uint64_t min;
  uint64_t max;
};

Status CheckRanges(std::initializer_list<Range> ranges) {
  for (const Range& r : ranges) {
    if (r.value >= r.min && r.value <= r.max) continue;
    std::string msg =
        "--" + std::string(r.name) + " " + std::to_string(r.value) + " is out of range; ";
    msg += r.max == UINT64_MAX
               ? "it must be at least " + std::to_string(r.min)
               : "it must be from " + std::to_string(r.min) + " to " + std::to_string(r.max);
    return Status::InvalidArgument(msg);
  }
  return Status::OK();
}

// "--default-lease-ms 5000 is above --max-lease-ms 1000".
Status CheckNotAbove(const char* name, uint64_t value, const char* max_name, uint64_t max) {
  if (value <= max) return Status::OK();
  return Status::InvalidArgument("--" + std::string(name) + " " + std::to_string(value) +
                                 " is above --" + max_name + " " + std::to_string(max));
}

Status CheckNumbers(const Config& c) {
  const storage::Limits& l = c.limits;
  constexpr uint64_t kAny = UINT64_MAX;
  IDEM_RETURN_IF_ERROR(CheckRanges({
      {"max-key-bytes", l.max_key_bytes, 1, kAny},
      {"max-lease-ms", l.max_lease_ms, 1, kAny},
      {"default-lease-ms", l.default_lease_ms, 1, kAny},
      {"max-retention-ms", l.max_retention_ms, storage::kMinRetentionMs, kMaxRetentionMs},
      {"default-retention-ms", l.default_retention_ms, storage::kMinRetentionMs, kAny},
      {"max-frame-bytes", c.max_frame_bytes, kMinFrameBytes, kMaxFrameBytes},
      {"preauth-max-frame-bytes", c.preauth_max_frame_bytes, kMinPreauthFrameBytes, kMaxFrameBytes},
      {"max-inflight", c.max_inflight, 1, kAny},
      {"max-connections", c.max_connections, 1, kAny},
      {"max-output-bytes", c.max_output_bytes, 1, kAny},
      {"idle-timeout-ms", c.idle_timeout_ms, 1, kAny},
      {"frame-timeout-ms", c.frame_timeout_ms, 1, kAny},
      {"write-timeout-ms", c.write_timeout_ms, 1, kAny},
      {"max-malformed-frames", c.max_malformed_frames, 1, kAny},
      {"max-failed-hellos", c.max_failed_hellos, 1, kAny},
      {"compaction-check-interval-ms", c.compaction_check_interval_ms, 1, kAny},
  }));
  // 0 turns the WAL pre-fill off; a tiny step would fill on almost every commit.
  if (c.wal_prefill_bytes != 0) {
    IDEM_RETURN_IF_ERROR(
        CheckRanges({{"wal-prefill-bytes", c.wal_prefill_bytes, 64 << 10, 1ull << 30}}));
  }
  IDEM_RETURN_IF_ERROR(
      CheckNotAbove("default-lease-ms", l.default_lease_ms, "max-lease-ms", l.max_lease_ms));
  // max-waiters-per-key above max-waiters is fine: the global cap bites first.
  return CheckNotAbove("default-retention-ms", l.default_retention_ms, "max-retention-ms",
                       l.max_retention_ms);
}

// PROTOCOL.md section 4: without --auth-file nothing may listen beyond
// loopback, and the admin port, which never authenticates, never may;
// --allow-insecure lifts both.
Status CheckAddresses(const Config& c) {
  HostPort listen;
  IDEM_RETURN_IF_ERROR(ParseHostPort("--listen", c.listen, &listen));
  if (!IsLoopbackHost(listen.host) && c.auth_file.empty() && !c.allow_insecure) {
    return Status::InvalidArgument(
        "--listen " + c.listen + " is not a loopback address; use --auth-file or --allow-insecure");
  }
  if (c.admin_listen == "off") return Status::OK();
  HostPort admin;
  IDEM_RETURN_IF_ERROR(ParseHostPort("--admin-listen", c.admin_listen, &admin));
  if (!IsLoopbackHost(admin.host) && !c.allow_insecure) {
    return Status::InvalidArgument(
        "--admin-listen " + c.admin_listen +
        " is not a loopback address and the admin port has no authentication; use"
        " --admin-listen off or --allow-insecure");
  }
  return Status::OK();
}

Status Validate(const EnumText& text, Config* c) {
  IDEM_RETURN_IF_ERROR(ParseEnums(text, c));
  if (c->data_dir.empty()) return Status::InvalidArgument("--data-dir is empty");
  if (c->backup_dir.empty()) return Status::InvalidArgument("--backup-dir is empty");
  IDEM_RETURN_IF_ERROR(CheckNumbers(*c));
  return CheckAddresses(*c);
}

// Splits "HOST:PORT" or "[HOST]:PORT". Returns what is wrong, or nullptr.
const char* SplitHostPort(const std::string& text, std::string* host, std::string* port) {
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) return "missing ']'";
    *host = text.substr(1, close - 1);
    colon = close + 1;
    if (colon >= text.size() || text[colon] != ':') return "missing :PORT";
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos) return "missing :PORT";
    *host = text.substr(0, colon);
    if (host->find(':') != std::string::npos) {
      return "an IPv6 address needs brackets, as in [::1]:7420";
    }
  }
  *port = text.substr(colon + 1);
  return nullptr;
}

bool ParsePort(const std::string& text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  uint32_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

Status ParseHostPort(const std::string& flag, const std::string& text, HostPort* out) {
  std::string host, port;
  const char* why = SplitHostPort(text, &host, &port);
  if (why == nullptr && host.empty()) why = "the host is empty";
  if (why == nullptr && !ParsePort(port, &out->port))
    why = "the port must be a number from 0 to 65535";
  if (why != nullptr) {
    return Status::InvalidArgument(flag + " \"" + text + "\" is not HOST:PORT: " + why);
  }
  out->host = std::move(host);
  return Status::OK();
}

bool IsLoopbackHost(const std::string& host) {
  // inet_pton stops at a NUL; such a host is no address at all.
  if (host.find('\0') != std::string::npos) return false;
  if (strcasecmp(host.c_str(), "localhost") == 0) return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  // ::1, or ::ffff:127.x.y.z (IPv4 loopback seen through an IPv6 socket).
  return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

Status ParseConfig(int argc, const char* const* argv, Config* config, ParseAction* action,
                   std::string* output) {
  *action = ParseAction::kRun;
  output->clear();
  Config parsed;
  EnumText text;
  CLI::App app(kDescription, "idemd");
  app.footer(kFooter);
  // A repeated flag replaces the earlier one, as wrapper scripts expect.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  AddServerSettings(&app, &parsed, &text);
  AddRecordLimits(&app, &parsed.limits);
  AddConnectionLimits(&app, &parsed);
  AddResourceSettings(&app, &parsed);
  app.set_version_flag("--version", kVersion);
  try {
    app.parse(argc, argv);
    IDEM_RETURN_IF_ERROR(ApplyConfigFile(&app, parsed.config_file));
  } catch (const CLI::Success& e) {
    std::ostringstream out;
    app.exit(e, out, out);
    *output = out.str();
    *action = ParseAction::kPrintAndExit;
    return Status::OK();
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(OneLine(e.what()));
  }
  IDEM_RETURN_IF_ERROR(Validate(text, &parsed));
  *config = std::move(parsed);
  return Status::OK();
}

}  // namespace idem::server
