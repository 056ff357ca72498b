// What the executor needs of a client connection: who it is, whether it is
// still there, and a way to hand it an answer. Connection implements it; unit
// tests can use a fake.
#pragma once

#include <string>
#include <vector>

#include "server/auth.h"

namespace idem::server {

class Session {
 public:
  virtual ~Session() = default;

  // Queues one encoded Response frame for the client and counts the request
  // as answered. A no-op after the session closed. io thread only.
  virtual void Deliver(std::string frame) = 0;
  virtual bool closed() const = 0;
  virtual const Principal& principal() const = 0;

  // Keys (encoded) this session has waiters on; the executor's bookkeeping,
  // so closing a session costs its own waiters, not everyone's.
  std::vector<std::string> waiting_keys;
};

}  // namespace idem::server
