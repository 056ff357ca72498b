#include "util/status.h"

namespace idem {

namespace {

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kResourceExhausted: return "ResourceExhausted";
    case Status::Code::kUnavailable: return "Unavailable";
    case Status::Code::kNotSupported: return "NotSupported";
    case Status::Code::kInternal: return "Internal";
    case Status::Code::kRemote: return "Remote";
  }
  return "Unknown";
}

}  // namespace

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = CodeName(code_);
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  Status out(code_, msg);
  out.remote_code_ = remote_code_;
  out.retry_after_ms_ = retry_after_ms_;
  return out;
}

}  // namespace idem
