// What idem-bench drives: one connection to a system under test, with the
// three steps every workload is made of. Two implementations: idemd over the
// idem protocol, and Redis over RESP with the equivalent commands
// (reserve = SET k v NX PX lease; complete = SET k result XX PX retention;
// lookup = GET k). Callbacks run on the connection's io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "util/status.h"

namespace idem::bench {

// What an answer said, in the vocabulary of both systems.
enum class Kind {
  kAcquired,         // idem RESERVE_ACQUIRED / Redis SET NX -> OK
  kInProgress,       // idem RESERVE_IN_PROGRESS
  kReplayed,         // idem RESERVE_COMPLETED / Redis SET NX -> nil (key exists)
  kMismatch,         // idem RESERVE_MISMATCH
  kCompleted,        // idem COMPLETE_OK / Redis SET XX -> OK
  kNotCompleted,     // idem other complete outcomes / Redis SET XX -> nil
  kFound,            // idem lookup COMPLETED / Redis GET -> value
  kFoundInProgress,  // idem lookup IN_PROGRESS or LEASE_EXPIRED
  kAbsent,           // idem lookup ABSENT / Redis GET -> nil
  kError,            // an error answer or a failed call
};
const char* KindName(Kind kind);

struct Reply {
  Kind kind = Kind::kError;
  uint64_t token = 0;  // idem ACQUIRED
  std::string error;   // kError
};

using ReplyFn = std::function<void(const Reply&)>;

class Target {
 public:
  virtual ~Target() = default;
  virtual void Connect(std::function<void(const Status&)> done) = 0;
  virtual void Reserve(const std::string& key, uint32_t lease_ms, uint32_t wait_ms,
                       ReplyFn done) = 0;
  virtual void Complete(const std::string& key, uint64_t token, const std::string& body,
                        ReplyFn done) = 0;
  virtual void Lookup(const std::string& key, ReplyFn done) = 0;
};

struct TargetOptions {
  std::string endpoint;
  std::string token;            // idem auth token
  std::string scope = "bench";  // idem scope
  uint64_t retention_ms = 3'600'000;
};

std::unique_ptr<Target> NewIdemTarget(boost::asio::io_context& io, const TargetOptions& options);
std::unique_ptr<Target> NewRedisTarget(boost::asio::io_context& io, const TargetOptions& options);

}  // namespace idem::bench
