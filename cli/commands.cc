#include "cli/commands.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/format.h"
#include "protocol/client.h"

namespace idem::cli {

namespace {

namespace v1 = idem::v1;
using Clock = std::chrono::steady_clock;

client::Options MakeOptions(const Globals& g) {
  client::Options o;
  o.endpoint = g.endpoint;
  o.token = g.token;
  o.client_name = "idemctl";
  o.connect_timeout = std::chrono::milliseconds(g.timeout_ms);
  o.call_timeout = std::chrono::milliseconds(g.timeout_ms);
  return o;
}

// "ERROR_PERMISSION_DENIED: role read may not reserve" for a server error,
// "IOError: connecting to ...: Connection refused" otherwise.
std::string Describe(const Status& s) {
  if (!s.IsRemote()) return s.ToString();
  std::string name = v1::ErrorCode_Name(static_cast<v1::ErrorCode>(s.remote_code()));
  if (name.empty()) name = "ERROR_" + std::to_string(s.remote_code());
  std::string out = name + ": " + s.message();
  if (s.retry_after_ms() > 0) out += " (retry after " + std::to_string(s.retry_after_ms()) + " ms)";
  return out;
}

int FailStatus(const Status& s) { return Fail(kExitError, Describe(s)); }

// Prints `reply` in the chosen format; returns `code`.
int Emit(const Globals& g, const google::protobuf::Message& reply, int code) {
  if (g.json()) {
    std::cout << DumpJson(ToJson(reply)) << "\n";
  } else {
    std::cout << FormatLines(ToLines(reply));
  }
  return code;
}

// Prints a flat object (string and number values) in the chosen format.
int EmitObject(const Globals& g, const Json& object, int code) {
  if (g.json()) {
    std::cout << DumpJson(object) << "\n";
    return code;
  }
  Lines lines;
  for (const auto& [name, value] : object.items()) {
    lines.emplace_back(name, value.is_string() ? Escape(value.get<std::string>()) : value.dump());
  }
  std::cout << FormatLines(lines);
  return code;
}

// Prints the reply, exiting 0 when `ok(reply)`, else 1; or the error, exit 3.
template <typename T, typename Pred>
int Finish(const Globals& g, const StatusOr<T>& r, Pred ok) {
  if (!r.ok()) return FailStatus(r.status());
  return Emit(g, *r, ok(*r) ? kExitOk : kExitNegative);
}

// Round-trip time of one Ping on an established connection, in ms.
StatusOr<double> MeasurePing(client::Client* c) {
  const auto start = Clock::now();
  auto r = c->Ping();
  if (!r.ok()) return r.status();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return static_cast<double>(us.count()) / 1000.0;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

std::vector<std::string> ScanRow(const v1::ScanEntry& e) {
  auto bytes = [](const std::string& s) { return s.empty() ? std::string("\"\"") : Escape(s); };
  return {bytes(e.scope()),
          bytes(e.key()),
          v1::KeyState_Name(e.state()),
          std::to_string(e.attempt()),
          std::to_string(e.status()),
          std::to_string(e.body_bytes()),
          std::to_string(e.lease_expires_unix_ms()),
          std::to_string(e.expires_unix_ms())};
}

void PrintScanTable(const v1::ScanReply& reply) {
  std::vector<std::vector<std::string>> rows = {{"SCOPE", "KEY", "STATE", "ATTEMPT", "STATUS",
                                                 "BODY_BYTES", "LEASE_EXPIRES_UNIX_MS",
                                                 "EXPIRES_UNIX_MS"}};
  for (const auto& e : reply.entries()) rows.push_back(ScanRow(e));
  std::cout << FormatColumns(rows);
  if (!reply.next_cursor().empty()) {
    std::cout << "next_cursor: " << Base64Encode(reply.next_cursor()) << "\n";
  }
}

void PrintStatsTable(const v1::StatsReply& reply) {
  std::cout << FormatLines(ToLines(reply));
  const std::map<std::string, uint64_t> sorted(reply.counters().begin(), reply.counters().end());
  std::vector<std::vector<std::string>> rows = {{"COUNTER", "VALUE"}};
  for (const auto& [name, value] : sorted) rows.push_back({Escape(name), std::to_string(value)});
  std::cout << "\n" << FormatColumns(rows);
}

}  // namespace

int Fail(int code, const std::string& message) {
  std::cerr << "idemctl: " << Escape(message) << "\n";
  if (code == kExitUsage) std::cerr << kUsageHint << "\n";
  return code;
}

int RunPing(const Globals& g) {
  client::Client c(MakeOptions(g));
  if (Status s = c.Connect(); !s.ok()) return FailStatus(s);
  auto latency = MeasurePing(&c);
  if (!latency.ok()) return FailStatus(latency.status());
  return EmitObject(g, {{"latency_ms", *latency}}, kExitOk);
}

int RunHealth(const Globals& g) {
  client::Client c(MakeOptions(g));
  if (Status s = c.Connect(); !s.ok()) return FailStatus(s);
  auto latency = MeasurePing(&c);
  if (!latency.ok()) return FailStatus(latency.status());
  auto stats = c.Stats();
  if (!stats.ok()) return FailStatus(stats.status());
  return EmitObject(g,
                    {{"server_version", stats->server_version()},
                     {"uptime_ms", stats->uptime_ms()},
                     {"latency_ms", *latency},
                     {"tenant", c.hello().tenant()},
                     {"role", v1::Role_Name(c.hello().role())}},
                    kExitOk);
}

int RunReserve(const Globals& g, const ReserveArgs& a) {
  client::Client c(MakeOptions(g));
  auto r = c.Reserve(a.scope, a.key,
                     {.fingerprint = a.fingerprint,
                      .lease_ms = a.lease_ms,
                      .retention_ms = a.retention_ms,
                      .wait_ms = a.wait_ms});
  // A replay (RESERVE_COMPLETED) is a success: the caller got the stored result.
  return Finish(g, r, [](const v1::ReserveReply& x) {
    return x.outcome() == v1::RESERVE_ACQUIRED || x.outcome() == v1::RESERVE_COMPLETED;
  });
}

int RunComplete(const Globals& g, const CompleteArgs& a) {
  std::string body = a.body;
  if (!a.body_file.empty() && !ReadFile(a.body_file, &body)) {
    return Fail(kExitUsage, "cannot read --body-file " + a.body_file);
  }
  client::Client c(MakeOptions(g));
  auto r = c.Complete(a.scope, a.key, a.token, a.status, body, a.retention_ms);
  return Finish(g, r, [](const v1::CompleteReply& x) { return x.outcome() == v1::COMPLETE_OK; });
}

int RunRelease(const Globals& g, const KeyArgs& a) {
  client::Client c(MakeOptions(g));
  auto r = c.Release(a.scope, a.key, a.token);
  return Finish(g, r, [](const v1::ReleaseReply& x) { return x.outcome() == v1::RELEASE_OK; });
}

int RunRenew(const Globals& g, const KeyArgs& a) {
  client::Client c(MakeOptions(g));
  auto r = c.Renew(a.scope, a.key, a.token, a.lease_ms);
  return Finish(g, r, [](const v1::RenewReply& x) { return x.outcome() == v1::RENEW_OK; });
}

int RunLookup(const Globals& g, const KeyArgs& a) {
  client::Client c(MakeOptions(g));
  auto r = c.Lookup(a.scope, a.key);
  return Finish(g, r, [](const v1::LookupReply& x) {
    return x.state() != v1::KEY_ABSENT && x.state() != v1::KEY_STATE_UNSPECIFIED;
  });
}

int RunPurge(const Globals& g, const KeyArgs& a) {
  client::Client c(MakeOptions(g));
  auto r = c.Purge(a.scope, a.key);
  return Finish(g, r, [](const v1::PurgeReply& x) { return x.existed(); });
}

int RunScan(const Globals& g, const ScanArgs& a) {
  v1::Scan req;
  req.set_scope(a.scope);
  req.set_prefix(a.prefix);
  req.set_limit(a.limit);
  req.set_all_scopes(a.all_scopes);
  if (!Base64Decode(a.cursor, req.mutable_cursor())) {
    return Fail(kExitUsage, "--cursor is not base64: " + a.cursor);
  }
  client::Client c(MakeOptions(g));
  v1::ScanReply all;
  while (true) {
    auto page = c.Scan(req);
    if (!page.ok()) return FailStatus(page.status());
    for (auto& e : *page->mutable_entries()) *all.add_entries() = std::move(e);
    all.set_next_cursor(page->next_cursor());
    if (!a.all || page->next_cursor().empty()) break;
    if (page->next_cursor() == req.cursor()) {
      return Fail(kExitError, "the server answered the same scan cursor twice");
    }
    req.set_cursor(page->next_cursor());
  }
  if (g.json()) return Emit(g, all, kExitOk);
  PrintScanTable(all);
  return kExitOk;
}

int RunStats(const Globals& g) {
  client::Client c(MakeOptions(g));
  auto r = c.Stats();
  if (!r.ok()) return FailStatus(r.status());
  if (g.json()) return Emit(g, *r, kExitOk);
  PrintStatsTable(*r);
  return kExitOk;
}

}  // namespace idem::cli
