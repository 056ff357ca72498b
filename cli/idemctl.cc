// idemctl: the admin command line of idemd (in the style of redis-cli and
// etcdctl). Parses flags with CLI11 and runs one subcommand (cli/commands.h).
#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "protocol/async_connection.h"

namespace {

using namespace idem::cli;  // NOLINT: this file only wires idem::cli together

constexpr char kExitCodes[] =
    "Exit status:\n"
    "  0  success; a RESERVE_COMPLETED replay is a success too (the caller got\n"
    "     the stored result)\n"
    "  1  a negative outcome: RESERVE_IN_PROGRESS, RESERVE_MISMATCH, any\n"
    "     COMPLETE_/RELEASE_/RENEW_ outcome but OK, lookup KEY_ABSENT, purge of a\n"
    "     key that did not exist (the reply is still printed)\n"
    "  2  usage error (bad flag or argument)\n"
    "  3  connection, authentication or server error (printed on stderr)";

constexpr char kGlobalsHint[] =
    "Global flags (--endpoint, --token, -o, --timeout, --admin-endpoint) may come\n"
    "before or after the subcommand: see 'idemctl --help'.";

// CLI11 reads integers with base 0 ("010" is octal) and wraps "-1" into the
// largest uint64: accept plain decimal only.
CLI::Validator Decimal(bool allow_sign) {
  return CLI::Validator(
      [allow_sign](std::string& s) -> std::string {
        const size_t start = allow_sign && !s.empty() && s[0] == '-' ? 1 : 0;
        if (start == s.size() || s.find_first_not_of("0123456789", start) != std::string::npos) {
          return "expected a decimal integer, got '" + s + "'";
        }
        const size_t nonzero = s.find_first_not_of('0', start);
        s.erase(start, (nonzero == std::string::npos ? s.size() - 1 : nonzero) - start);
        return "";
      },
      "");
}

const CLI::Validator kUnsigned = Decimal(false);
const CLI::Validator kSigned = Decimal(true);

const CLI::Validator kEndpoint(
    [](std::string& s) -> std::string {
      std::string host;
      uint16_t port = 0;
      const idem::Status st = idem::client::ParseEndpoint(s, &host, &port);
      return st.ok() ? "" : st.message();
    },
    "");

// Every subcommand's options land here; the parsed one runs.
struct Cli {
  Globals g;
  ReserveArgs reserve;
  CompleteArgs complete;
  KeyArgs key;
  ScanArgs scan;
  std::string backup_dir;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
};

void AddGlobals(CLI::App& app, Globals* g) {
  app.add_option("--endpoint", g->endpoint, "idemd protocol address, HOST:PORT")
      ->envname("IDEM_ENDPOINT")
      ->check(kEndpoint)
      ->capture_default_str();
  app.add_option("--token", g->token, "authentication token (never printed)")
      ->envname("IDEM_TOKEN");
  app.add_option("-o,--output", g->output, "output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", g->timeout_ms, "connect and per-call timeout, ms")
      ->check(kUnsigned)
      ->check(CLI::Range(1u, 3600u * 1000u))
      ->capture_default_str();
  app.add_option("--admin-endpoint", g->admin_endpoint, "idemd admin HTTP address (backup)")
      ->check(kEndpoint)
      ->capture_default_str();
}

CLI::App* Add(Cli* cli, CLI::App& app, const std::string& name, const std::string& help,
              std::function<int()> run) {
  CLI::App* sub = app.add_subcommand(name, help);
  cli->commands.emplace_back(sub, std::move(run));
  return sub;
}

void AddScopeKey(CLI::App* sub, std::string* scope, std::string* key) {
  sub->add_option("SCOPE", *scope, "the caller's namespace (may be empty: \"\")")->required();
  sub->add_option("KEY", *key, "the idempotency key")->required();
}

void AddToken(CLI::App* sub, uint64_t* token) {
  sub->add_option("TOKEN", *token, "the fencing token from reserve")->required()->check(kUnsigned);
}

void AddReserve(Cli* cli, CLI::App& app) {
  ReserveArgs& a = cli->reserve;
  auto* sub = Add(cli, app, "reserve", "Reserve a key (acquire its lease, or see who holds it)",
                  [cli] { return RunReserve(cli->g, cli->reserve); });
  AddScopeKey(sub, &a.scope, &a.key);
  sub->add_option("--fingerprint", a.fingerprint, "e.g. a hash of the request's parameters");
  sub->add_option("--lease-ms", a.lease_ms, "lease length; 0: server default")->check(kUnsigned);
  sub->add_option("--retention-ms", a.retention_ms, "record retention; 0: server default")
      ->check(kUnsigned);
  sub->add_option("--wait-ms", a.wait_ms, "wait this long for an in-progress holder")
      ->check(kUnsigned);
  sub->footer(
      "Exit 0 on RESERVE_ACQUIRED and on RESERVE_COMPLETED (a replay: the stored\n"
      "result is printed, and the caller has its answer); 1 on RESERVE_IN_PROGRESS\n"
      "and RESERVE_MISMATCH; 3 on an error.");
}

void AddComplete(Cli* cli, CLI::App& app) {
  CompleteArgs& a = cli->complete;
  auto* sub = Add(cli, app, "complete", "Store the result of a reserved key",
                  [cli] { return RunComplete(cli->g, cli->complete); });
  AddScopeKey(sub, &a.scope, &a.key);
  AddToken(sub, &a.token);
  sub->add_option("--status", a.status, "the application's status, e.g. 201")->check(kSigned);
  auto* body = sub->add_option("--body", a.body, "the result body");
  sub->add_option("--body-file", a.body_file, "read the result body from FILE (any bytes)")
      ->excludes(body);
  sub->add_option("--retention-ms", a.retention_ms, "record retention; 0: server default")
      ->check(kUnsigned);
  sub->footer("Exit 0 on COMPLETE_OK, 1 on any other outcome, 3 on an error.");
}

void AddTokenOps(Cli* cli, CLI::App& app) {
  KeyArgs& a = cli->key;
  auto* release = Add(cli, app, "release", "Give a lease up without a result (retriable)",
                      [cli] { return RunRelease(cli->g, cli->key); });
  AddScopeKey(release, &a.scope, &a.key);
  AddToken(release, &a.token);
  release->footer("Exit 0 on RELEASE_OK, 1 on any other outcome, 3 on an error.");
  auto* renew = Add(cli, app, "renew", "Extend a held lease to now + --lease-ms",
                    [cli] { return RunRenew(cli->g, cli->key); });
  AddScopeKey(renew, &a.scope, &a.key);
  AddToken(renew, &a.token);
  renew->add_option("--lease-ms", a.lease_ms, "new lease length; 0: server default")
      ->check(kUnsigned);
  renew->footer("Exit 0 on RENEW_OK, 1 on any other outcome, 3 on an error.");
}

void AddKeyOps(Cli* cli, CLI::App& app) {
  KeyArgs& a = cli->key;
  auto* lookup = Add(cli, app, "lookup", "Show a key's state (never its token)",
                     [cli] { return RunLookup(cli->g, cli->key); });
  AddScopeKey(lookup, &a.scope, &a.key);
  lookup->footer("Exit 0 when the key exists, 1 on KEY_ABSENT, 3 on an error.");
  auto* purge = Add(cli, app, "purge", "Delete a key whatever its state (admin role)",
                    [cli] { return RunPurge(cli->g, cli->key); });
  AddScopeKey(purge, &a.scope, &a.key);
  purge->footer("Exit 0 when a record was deleted, 1 when there was none, 3 on an error.");
}

void AddScan(Cli* cli, CLI::App& app) {
  ScanArgs& a = cli->scan;
  auto* sub = Add(cli, app, "scan", "List live records in key order",
                  [cli] { return RunScan(cli->g, cli->scan); });
  auto* scope = sub->add_option("SCOPE", a.scope, "the scope to list (default: \"\")");
  sub->add_option("--prefix", a.prefix, "only keys starting with P");
  sub->add_option("--limit", a.limit, "entries per page; 0: server default (100), max 1000")
      ->check(kUnsigned);
  sub->add_option("--cursor", a.cursor, "resume from a next_cursor (base64) printed before");
  sub->add_flag("--all-scopes", a.all_scopes, "list every scope of the tenant")->excludes(scope);
  sub->add_flag("--all", a.all, "follow next_cursor to the end");
}

void AddServerOps(Cli* cli, CLI::App& app) {
  Add(cli, app, "ping", "Round-trip latency of one Ping", [cli] { return RunPing(cli->g); });
  Add(cli, app, "health", "Server version, uptime, latency, and who you are",
      [cli] { return RunHealth(cli->g); });
  Add(cli, app, "stats", "Server statistics and counters", [cli] { return RunStats(cli->g); });
  auto* backup = Add(cli, app, "backup", "Checkpoint the store into DIR (admin HTTP endpoint)",
                     [cli] { return RunBackup(cli->g, cli->backup_dir); });
  backup->add_option("DIR", cli->backup_dir, "a directory that does not exist yet")->required();
  backup->footer(
      "DIR is the daemon's: a relative DIR is resolved inside idemd's --backup-dir,\n"
      "an absolute one must lie inside it. Prints the checkpoint's absolute path.\n"
      "Exit 3 when the daemon refuses (its message on stderr) or cannot be reached;\n"
      "--timeout bounds the whole request.");
}

int OnParseError(const CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
    return app.exit(e);  // --help
  }
  return Fail(kExitUsage, e.what());
}

int Main(int argc, char** argv) {
  Cli cli;
  CLI::App app("idemctl: the admin command line of idemd, the idempotency-key store", "idemctl");
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(kExitCodes);
  AddGlobals(app, &cli.g);
  AddServerOps(&cli, app);
  AddReserve(&cli, app);
  AddComplete(&cli, app);
  AddTokenOps(&cli, app);
  AddKeyOps(&cli, app);
  AddScan(&cli, app);
  for (const auto& [sub, run] : cli.commands) {
    const std::string own = sub->get_footer();
    sub->footer((own.empty() ? "" : own + "\n") + kGlobalsHint);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return OnParseError(app, e);
  }
  for (const auto& [sub, run] : cli.commands) {
    if (sub->parsed()) return run();
  }
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {  // a bug or out of memory: never a usage error
    return Fail(kExitError, std::string("internal error: ") + e.what());
  }
}
