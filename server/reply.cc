#include "server/reply.h"

namespace idem::server {

namespace v1 = idem::v1;
using storage::Decision;
using storage::Outcome;

namespace {

v1::ReserveOutcome ReserveOutcomeOf(Outcome o) {
  switch (o) {
    case Outcome::kReserveAcquired: return v1::RESERVE_ACQUIRED;
    case Outcome::kReserveInProgress: return v1::RESERVE_IN_PROGRESS;
    case Outcome::kReserveCompleted: return v1::RESERVE_COMPLETED;
    case Outcome::kReserveMismatch: return v1::RESERVE_MISMATCH;
    default: return v1::RESERVE_UNSPECIFIED;
  }
}

v1::CompleteOutcome CompleteOutcomeOf(Outcome o) {
  switch (o) {
    case Outcome::kCompleteOk: return v1::COMPLETE_OK;
    case Outcome::kCompleteLeaseLost: return v1::COMPLETE_LEASE_LOST;
    case Outcome::kCompleteAlreadyCompleted: return v1::COMPLETE_ALREADY_COMPLETED;
    case Outcome::kCompleteNotFound: return v1::COMPLETE_NOT_FOUND;
    default: return v1::COMPLETE_UNSPECIFIED;
  }
}

v1::ReleaseOutcome ReleaseOutcomeOf(Outcome o) {
  switch (o) {
    case Outcome::kReleaseOk: return v1::RELEASE_OK;
    case Outcome::kReleaseLeaseLost: return v1::RELEASE_LEASE_LOST;
    case Outcome::kReleaseAlreadyCompleted: return v1::RELEASE_ALREADY_COMPLETED;
    case Outcome::kReleaseNotFound: return v1::RELEASE_NOT_FOUND;
    default: return v1::RELEASE_UNSPECIFIED;
  }
}

v1::RenewOutcome RenewOutcomeOf(Outcome o) {
  switch (o) {
    case Outcome::kRenewOk: return v1::RENEW_OK;
    case Outcome::kRenewLeaseLost: return v1::RENEW_LEASE_LOST;
    case Outcome::kRenewAlreadyCompleted: return v1::RENEW_ALREADY_COMPLETED;
    case Outcome::kRenewNotFound: return v1::RENEW_NOT_FOUND;
    default: return v1::RENEW_UNSPECIFIED;
  }
}

}  // namespace

void FillResult(const storage::Record& r, v1::Result* out) {
  out->set_status(r.status);
  out->set_body(r.body);
  out->set_completed_unix_ms(r.completed_unix_ms);
}

void FillReserveReply(const Decision& d, const storage::Record* current, uint64_t /*now_ms*/,
                      v1::ReserveReply* out) {
  out->set_outcome(ReserveOutcomeOf(d.outcome));
  if (d.outcome == Outcome::kReserveMismatch) return;
  out->set_expires_unix_ms(d.expires_unix_ms);
  if (d.outcome == Outcome::kReserveAcquired) out->set_token(d.token);
  if (d.outcome == Outcome::kReserveAcquired || d.outcome == Outcome::kReserveInProgress) {
    out->set_attempt(d.attempt);
    out->set_lease_expires_unix_ms(d.lease_expires_unix_ms);
    out->set_lease_remaining_ms(d.lease_remaining_ms);
  }
  if (d.has_result) FillResult(*d.Described(current), out->mutable_result());
}

void FillCompleteReply(const Decision& d, const storage::Record* current, v1::CompleteReply* out) {
  out->set_outcome(CompleteOutcomeOf(d.outcome));
  out->set_expires_unix_ms(d.expires_unix_ms);
  if (d.has_result) FillResult(*d.Described(current), out->mutable_result());
}

void FillReleaseReply(const Decision& d, v1::ReleaseReply* out) {
  out->set_outcome(ReleaseOutcomeOf(d.outcome));
}

void FillRenewReply(const Decision& d, v1::RenewReply* out) {
  out->set_outcome(RenewOutcomeOf(d.outcome));
  if (d.outcome != Outcome::kRenewOk) return;
  out->set_lease_expires_unix_ms(d.lease_expires_unix_ms);
  out->set_lease_remaining_ms(d.lease_remaining_ms);
}

void FillLookupReply(const Decision& d, const storage::Record* current, v1::LookupReply* out) {
  out->set_state(static_cast<v1::KeyState>(d.state));
  if (d.state == storage::KeyState::kAbsent) return;
  out->set_attempt(d.attempt);
  out->set_lease_expires_unix_ms(d.lease_expires_unix_ms);
  out->set_lease_remaining_ms(d.lease_remaining_ms);
  out->set_expires_unix_ms(d.expires_unix_ms);
  if (d.has_fingerprint) out->set_fingerprint(current->fingerprint);
  if (d.has_result) FillResult(*current, out->mutable_result());
}

void SetError(v1::Response* response, v1::ErrorCode code, std::string_view message,
              uint32_t retry_after_ms) {
  response->clear_reply();
  auto* error = response->mutable_error();
  error->set_code(code);
  error->set_message(std::string(message));
  if (retry_after_ms > 0) error->set_retry_after_ms(retry_after_ms);
}

v1::ErrorCode ErrorCodeFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument: return v1::ERROR_INVALID_ARGUMENT;
    case Status::Code::kResourceExhausted: return v1::ERROR_RESOURCE_EXHAUSTED;
    case Status::Code::kUnavailable:
    case Status::Code::kIOError: return v1::ERROR_UNAVAILABLE;
    default: return v1::ERROR_INTERNAL;
  }
}

}  // namespace idem::server
