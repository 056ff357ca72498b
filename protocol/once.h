// Once: the idempotency pattern as one call.
//
//   auto r = idem::client::Once(client, "payments", idempotency_key,
//                               {.fingerprint = Sha256(params)},
//                               [&]() -> idem::StatusOr<idem::client::OnceValue> {
//                                 auto charge = gateway.Charge(...);      // the side effect
//                                 if (!charge.ok()) return charge.status();  // retriable
//                                 return idem::client::OnceValue{201, charge->json()};
//                               });
//   if (r.ok()) respond(r->value.status, r->value.body);  // r->ran: did *we* run fn?
//
// Reserve (waiting up to wait_ms for a concurrent attempt); run `fn` only when
// the lease is acquired, renewing the lease from a helper thread while fn runs;
// Complete with fn's value, or Release when fn fails so a later caller may try
// again. A duplicate gets the stored value without running fn.
//
// fn runs at most once per acquisition: among concurrent Once calls on one
// key, one runs fn and the others wait (up to wait_ms) and get its value.
// The lease is renewed every lease/3 on a second connection (same Options)
// from a helper thread, so fn may run longer than lease_ms.
//
// Errors: InvalidArgument on a fingerprint mismatch (same key, different
// request); Unavailable when the key is still in progress after wait_ms; fn's
// own Status when it failed (the lease was released, so a later Once runs fn
// again; all of fn's failures are taken as retriable); Internal "lease lost"
// when fn ran but its value could not be stored because another holder took
// the key over (fn's side effect happened: reconcile); a Client error from
// Reserve (fn did not run), or from Complete with the context "fn ran but its
// result may not be stored" (fn's side effect happened; the key becomes
// reservable again when the lease runs out). Nothing is re-sent.
// Blocking (up to wait_ms + the client's call timeout, plus fn's time);
// `client` must not be used by another thread meanwhile. Thread-safe
// otherwise: concurrent Once calls each need their own Client.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "protocol/client.h"
#include "util/status.h"

namespace idem::client {

struct OnceValue {
  int32_t status = 0;
  std::string body;
};

struct OnceOptions {
  std::string fingerprint;
  uint32_t lease_ms = 30'000;
  uint64_t retention_ms = 0;  // server default
  uint32_t wait_ms = 30'000;  // how long a duplicate waits for the first attempt
};

struct OnceResult {
  bool ran = false;  // true: this call ran fn; false: a stored value replayed
  OnceValue value;
};

StatusOr<OnceResult> Once(Client& client, std::string_view scope, std::string_view key,
                          const OnceOptions& options,
                          const std::function<StatusOr<OnceValue>()>& fn);

}  // namespace idem::client
