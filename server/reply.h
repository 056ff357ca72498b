// Maps the state machine's decisions to the protocol's reply messages, and
// builds error responses. Pure: no I/O.
#pragma once

#include <string_view>

#include "protocol/idem.pb.h"
#include "storage/state_machine.h"
#include "util/status.h"

namespace idem::server {

// Fills `out` for a decision about `current` (the record the decision read;
// nullptr when none). Each sets exactly the fields PROTOCOL.md section 5 lists
// for the outcome.
void FillReserveReply(const storage::Decision& d, const storage::Record* current, uint64_t now_ms,
                      idem::v1::ReserveReply* out);
void FillCompleteReply(const storage::Decision& d, const storage::Record* current,
                       idem::v1::CompleteReply* out);
void FillReleaseReply(const storage::Decision& d, idem::v1::ReleaseReply* out);
void FillRenewReply(const storage::Decision& d, idem::v1::RenewReply* out);
void FillLookupReply(const storage::Decision& d, const storage::Record* current,
                     idem::v1::LookupReply* out);
void FillResult(const storage::Record& r, idem::v1::Result* out);

// Response{id, error{code, message, retry_after_ms}}.
void SetError(idem::v1::Response* response, idem::v1::ErrorCode code, std::string_view message,
              uint32_t retry_after_ms = 0);
// The protocol error for a Status from validation or storage.
idem::v1::ErrorCode ErrorCodeFor(const Status& status);

}  // namespace idem::server
