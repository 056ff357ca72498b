// The request-path fuzzer's oracle: checks every answer the executor delivers
// against the framing, the request it answers, and a model of PROTOCOL.md
// section 2 that follows the answers in delivery order.
//
// Per answer: one whole frame holding a Response; an id that was sent and not
// yet answered; an error or a reply (never both, never neither) of the
// request's op; INVALID_ARGUMENT exactly when a field is out of its limits.
// The model keeps each (tenant, scope, key) record as the answers describe it
// and requires every outcome to be the one the protocol gives in that state:
// no ACQUIRED while a lease is held, tokens rising and never 0, attempts
// counted, COMPLETE/RELEASE/RENEW_OK only for the current token, replays and
// lookups and scans showing exactly what was stored. `now` is the fake clock
// when the answer is delivered, which the driver keeps equal to the clock of
// the decision (it advances the clock only after draining pending answers).
//
// Any violation prints what was wrong and aborts. Not thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/idem.pb.h"
#include "storage/clock.h"
#include "storage/state_machine.h"

namespace idem::fuzz {

// Prints "request_path_fuzz: <what>" and aborts.
[[noreturn]] void Fail(const std::string& what);

class Oracle {
 public:
  // `max_token` is the highest token granted by the shared token source so
  // far (across runs); it must outlive the oracle.
  Oracle(const storage::Limits& limits, const Clock* clock, uint64_t* max_token);

  // `request` (its id the next in 1, 2, ...) is about to be handled for a
  // session of `tenant` in slot `session`.
  void OnRequest(const idem::v1::Request& request, const std::string& tenant, int session);
  // One frame the executor delivered to a session.
  void OnFrame(std::string_view frame);
  // The session in `slot` closed: its unanswered requests may stay so.
  void OnSessionClosed(int slot);
  // Every request not excused by a closed session was answered.
  void Finish() const;

  // The (index % count)-th token granted in this run, or 0 when none was.
  uint64_t GrantedToken(uint64_t index) const;

 private:
  struct Sent {
    idem::v1::Request request;
    std::string tenant;
    int session = 0;
    int answers = 0;
    bool excused = false;
  };
  struct Address {
    std::string tenant;
    std::string scope;
    std::string key;
    auto operator<=>(const Address&) const = default;
  };
  struct Record {
    uint64_t token = 0;
    uint32_t attempt = 0;
    std::string fingerprint;
    uint64_t lease_end = 0;
    uint64_t expires = 0;
    bool released = false;
    bool completed = false;
    int32_t status = 0;
    std::string body;
    uint64_t completed_ms = 0;
  };

  bool Valid(const idem::v1::Request& r) const;
  idem::v1::KeyState StateOf(const Address& a) const;
  Record* Find(const Address& a);
  void CheckError(const Sent& s, const idem::v1::Error& e);
  void CheckResult(const idem::v1::Result& got, const Record& want, const char* what) const;
  void OnReserve(const Sent& s, const idem::v1::ReserveReply& r);
  void OnAcquired(const Sent& s, const idem::v1::ReserveReply& r, const Address& a);
  void OnComplete(const Sent& s, const idem::v1::CompleteReply& r);
  void OnRelease(const Sent& s, const idem::v1::ReleaseReply& r);
  void OnRenew(const Sent& s, const idem::v1::RenewReply& r);
  void OnLookup(const Sent& s, const idem::v1::LookupReply& r);
  void OnPurge(const Sent& s, const idem::v1::PurgeReply& r);
  void OnScan(const Sent& s, const idem::v1::ScanReply& r);

  const storage::Limits limits_;
  const Clock* clock_;
  uint64_t* max_token_;
  std::vector<Sent> sent_;  // by id - 1
  std::map<Address, Record> records_;
  std::vector<uint64_t> granted_;
};

}  // namespace idem::fuzz
