// The real Executor driven in-process, without sockets: a fake client session
// that decodes every answer, and one "life" of a store + token source +
// executor whose io loop the test runs on its own thread. For tests that need
// to reach inside the storage stack (a file system that fails or loses data).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "protocol/idem.pb.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "server/session.h"
#include "storage/clock.h"
#include "storage/store.h"
#include "storage/token_source.h"

namespace rocksdb {
class Env;
}

namespace idem::testutil {

// A client connection as the executor sees it: decodes every answer (a test
// failure if it does not decode) and hands it on.
class FakeSession final : public server::Session {
 public:
  FakeSession(std::string tenant, std::function<void(const idem::v1::Response&)> on_answer);

  void Deliver(std::string frame) override;
  bool closed() const override { return closed_; }
  const server::Principal& principal() const override { return principal_; }
  void set_closed() { closed_ = true; }

 private:
  std::function<void(const idem::v1::Response&)> on_answer_;
  server::Principal principal_;
  bool closed_ = false;
};

// One run of the executor over a store at `path` (with `env`, may be null).
class ExecutorLife {
 public:
  ExecutorLife(const std::string& path, rocksdb::Env* env, const Clock* clock,
               server::Executor::Options options);
  ~ExecutorLife();

  // Whether the store and token source opened.
  const Status& status() const { return status_; }
  boost::asio::io_context& io() { return io_; }
  server::Executor& executor() { return *executor_; }
  storage::Store& store() { return *store_; }
  const server::Metrics& metrics() const { return metrics_; }

  // Runs the io loop until `done()` or `timeout`; returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // Shuts down as the daemon does: drain (a test failure if it does not
  // finish within 10 s); the destructor then closes the store (which syncs).
  void Drain();

 private:
  // Destroyed in reverse: executor (joins its sync thread), tokens, store
  // (a normal Close), metrics, io (its queued handlers are dropped unrun).
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  server::Metrics metrics_;
  Status status_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::TokenSource> tokens_;
  std::unique_ptr<server::Executor> executor_;
};

}  // namespace idem::testutil
