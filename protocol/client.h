// The synchronous idem client: one connection, a blocking call per operation.
//
//   idem::client::Client c(options);
//   auto r = c.Reserve("payments", "a1b2", {.fingerprint = fp, .wait_ms = 5000});
//   if (!r.ok()) ...                       // transport, auth or server error
//   switch (r->outcome()) { case idem::v1::RESERVE_ACQUIRED: ... }
//
// Contract:
//  - Outcomes (IN_PROGRESS, LEASE_LOST, NOT_FOUND, MISMATCH...) are values in
//    the reply; a non-OK Status means the call failed as a whole: Remote (the
//    server's Response.error, its code in remote_code(), e.g.
//    ERROR_INVALID_ARGUMENT naming the field, ERROR_PERMISSION_DENIED),
//    IOError (could not connect, or the connection broke: the operation may
//    or may not have happened), Unavailable (timed out: the operation may or
//    may not have happened) or InvalidArgument (the request is larger than
//    the server's frame limit; not sent).
//  - A broken connection is re-established by the *next* call, before it
//    sends (a close noticed only then, e.g. the server restarted while the
//    client was idle, also reconnects). A call is never re-sent silently: a
//    call that fails with IOError or Unavailable is the caller's to retry.
//  - Blocking: each call blocks the calling thread until its answer or its
//    timeout (Options::call_timeout, plus wait_ms for a waiting Reserve);
//    connecting (on the first call, or after a break) is bounded by
//    Options::connect_timeout.
//  - Not thread-safe: one Client per thread, or a ClientPool. A Client may be
//    handed from one thread to another between calls.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/async_connection.h"
#include "protocol/idem.pb.h"
#include "util/status.h"

namespace idem::client {

struct ReserveOptions {
  std::string fingerprint;    // e.g. SHA-256 of the request's parameters
  uint32_t lease_ms = 0;      // 0: the server's default
  uint64_t retention_ms = 0;  // 0: the server's default
  uint32_t wait_ms = 0;       // >0: wait that long for an in-progress holder
};

class Client {
 public:
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects now, closing any current connection (calls connect lazily
  // otherwise). OK, IOError naming the endpoint (refused, timed out), or the
  // server's Hello error as Remote (ERROR_UNAUTHENTICATED for a bad token).
  Status Connect();
  // True while a connection is established (as last observed: a server that
  // went away is noticed by the next call).
  bool connected() const;
  // The server's HelloReply on the current connection (tenant, role, limits);
  // empty before the first successful connect or with Options::hello false.
  const idem::v1::HelloReply& hello() const;

  // One call per operation of PROTOCOL.md section 2; see its outcomes there.

  StatusOr<idem::v1::ReserveReply> Reserve(std::string_view scope, std::string_view key,
                                           const ReserveOptions& options = {});
  StatusOr<idem::v1::CompleteReply> Complete(std::string_view scope, std::string_view key,
                                             uint64_t token, int32_t status, std::string_view body,
                                             uint64_t retention_ms = 0);
  StatusOr<idem::v1::ReleaseReply> Release(std::string_view scope, std::string_view key,
                                           uint64_t token);
  StatusOr<idem::v1::RenewReply> Renew(std::string_view scope, std::string_view key, uint64_t token,
                                       uint32_t lease_ms = 0);
  StatusOr<idem::v1::LookupReply> Lookup(std::string_view scope, std::string_view key);
  StatusOr<idem::v1::PurgeReply> Purge(std::string_view scope, std::string_view key);
  StatusOr<idem::v1::ScanReply> Scan(const idem::v1::Scan& scan);
  StatusOr<idem::v1::StatsReply> Stats();
  StatusOr<idem::v1::PingReply> Ping(std::string_view payload = "");

  // Any request (its id is assigned here); Response.error becomes
  // Status::Remote. Hello is said by Connect: do not send it here.
  StatusOr<idem::v1::Response> Call(idem::v1::Request request);

  const Options& options() const { return options_; }

 private:
  Options options_;
  boost::asio::io_context io_;
  std::shared_ptr<AsyncConnection> conn_;
};

// A small pool of Clients for multi-threaded callers: at most max_clients
// Clients (so connections) exist, created lazily and reused. Thread-safe.
// Every Lease must be destroyed before the pool.
class ClientPool {
 public:
  ClientPool(Options options, size_t max_clients);
  ~ClientPool();

  // A Client for this thread's exclusive use until the Lease is destroyed.
  // Blocks (without a bound) while all max_clients are leased. A Client that
  // lost its connection is returned as is and reconnects on its next call.
  class Lease {
   public:
    Lease(ClientPool* pool, std::unique_ptr<Client> client)
        : pool_(pool), client_(std::move(client)) {}
    Lease(Lease&&) = default;
    ~Lease();
    Client* operator->() { return client_.get(); }
    Client& operator*() { return *client_; }

   private:
    ClientPool* pool_;
    std::unique_ptr<Client> client_;
  };
  Lease Acquire();

 private:
  void Return(std::unique_ptr<Client> client);

  Options options_;
  size_t max_clients_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Client>> idle_;  // GUARDED_BY(mu_)
  size_t created_ = 0;                         // GUARDED_BY(mu_)
};

}  // namespace idem::client
