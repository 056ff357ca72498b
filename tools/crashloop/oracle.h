// The crash loop's oracle: everything idemd acknowledged, and the checks that
// what it acknowledged survived every SIGKILL (PROTOCOL.md section 2:
// durability, fencing tokens, leases).
//
// Only acknowledged answers are recorded as facts. Operations whose answer was
// lost (the daemon died first) are "unknown": they may or may not have happened
// and never count against the daemon, except where noted.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "protocol/idem.pb.h"

namespace idem::crashloop {

// An acknowledged RESERVE_ACQUIRED.
struct Acquisition {
  uint64_t token = 0;
  uint32_t attempt = 0;
  uint64_t lease_expires_unix_ms = 0;  // as reported by the server
  uint32_t lease_ms = 0;               // requested; inside [1, 1 h] so not clamped
  uint64_t send_seq = 0;               // Oracle::NextSeq() just before sending
  uint64_t ack_seq = 0;                // Oracle::NextSeq() just after the answer
  int cycle = 0;
  // The server's clock when it granted the lease.
  uint64_t grant_unix_ms() const { return lease_expires_unix_ms - lease_ms; }
};

// An acknowledged COMPLETE_OK.
struct Completion {
  uint64_t token = 0;
  int32_t status = 0;
  std::string body;
  uint64_t ack_seq = 0;
  int cycle = 0;
};

// A stored result the server showed (RESERVE_COMPLETED, COMPLETE_ALREADY_COMPLETED).
struct Replay {
  int32_t status = 0;
  std::string body;
  int cycle = 0;
  std::string how;
};

struct KeyHistory {
  bool shared = false;                    // contended by many clients
  std::vector<Acquisition> acquisitions;  // acknowledged, in acknowledgment order
  std::vector<Completion> completions;    // acknowledged
  std::set<uint64_t> released;            // tokens with an acknowledged RELEASE_OK
  std::set<uint64_t> release_unknown;     // tokens whose Release was sent, answer lost
  std::map<uint64_t, int32_t> attempted;  // token -> status of every Complete sent
  std::vector<Replay> replays;
};

struct Violation {
  std::string kind;  // e.g. "lost-complete", "token-reuse", "lease-overlap"
  std::string key;
  std::string detail;
  std::string ToString() const { return kind + " key=" + key + ": " + detail; }
};

// What a check covered.
struct CheckCounts {
  uint64_t keys = 0;
  uint64_t completes = 0;     // acknowledged COMPLETE_OKs verified against the server
  uint64_t acquisitions = 0;  // acknowledged ACQUIREDs whose key was verified present
};

// The result the workload sends with Complete for (key, token): a function of
// both, with NUL and high bytes, a few of them large.
std::string ResultBody(const std::string& key, uint64_t token);
int32_t ResultStatus(const std::string& key, uint64_t token);
// The fingerprint the workload sends with every Reserve of `key`.
std::string FingerprintFor(const std::string& key, bool shared);
// Bytes as printable text (\xNN escapes), cut after `max` bytes.
std::string Printable(const std::string& bytes, size_t max = 48);

// Thread-safe recorder. The check functions and histories() must only be used
// while no worker records (between cycles).
class Oracle {
 public:
  // A global order of client events consistent with real time.
  uint64_t NextSeq() { return seq_.fetch_add(1) + 1; }

  void RecordAcquired(const std::string& key, bool shared, const Acquisition& a);
  void RecordCompleteSent(const std::string& key, uint64_t token, int32_t status);
  void RecordCompleteOk(const std::string& key, const Completion& c);
  void RecordReleaseSent(const std::string& key, uint64_t token);
  // `released`: RELEASE_OK. Otherwise a definite answer that it did not happen.
  void RecordReleaseAnswered(const std::string& key, uint64_t token, bool released);
  void RecordReplay(const std::string& key, const Replay& r);
  // Something a worker saw that the protocol forbids.
  void RecordViolation(Violation v);

  // Test hooks: a corrupted expectation (an acknowledgment that never happened).
  void InjectFakeCompleteOk(const std::string& key, uint64_t token, int32_t status,
                            const std::string& body, int cycle);
  void InjectFakeAcquired(const std::string& key, const Acquisition& a);

  // Offline checks over every acknowledged operation of every cycle: tokens
  // strictly rising, no overlapping unexpired leases, one result per key.
  std::vector<Violation> CheckHistory() const;
  // Violations recorded by workers so far.
  std::vector<Violation> TakeRecordedViolations();

  // Fresh keys acquired (acknowledged) but never acknowledged completed:
  // (key, token) pairs the next cycle completes with the same token.
  std::vector<std::pair<std::string, uint64_t>> UnfinishedFreshFlows() const;

  const std::map<std::string, KeyHistory>& histories() const { return keys_; }
  uint64_t acknowledged_acquisitions() const;
  uint64_t acknowledged_completions() const;

 private:
  KeyHistory& At(const std::string& key);  // mu_ held

  std::atomic<uint64_t> seq_{0};
  mutable std::mutex mu_;
  std::map<std::string, KeyHistory> keys_;
  std::vector<Violation> recorded_;
};

// Offline checks of one key's history (see Oracle::CheckHistory).
void CheckKeyHistory(const std::string& key, const KeyHistory& h, std::vector<Violation>* out);

// Compares the server's current view of `key` (a Lookup after a restart) with
// its history: every acknowledged COMPLETE_OK readable byte for byte, every
// acknowledged ACQUIRED key present, no result the workload never sent.
void VerifyLookup(const std::string& key, const KeyHistory& h, const idem::v1::LookupReply& now,
                  int check_cycle, std::vector<Violation>* out, CheckCounts* counts);

}  // namespace idem::crashloop
