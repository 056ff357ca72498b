#include "storage/token_source.h"

#include <string>

#include "util/coding.h"

namespace idem::storage {

namespace {
constexpr char kEpochName[] = "token_epoch";
constexpr uint64_t kMaxEpoch = UINT32_MAX;
}  // namespace

Status TokenSource::Open(Store* store, std::unique_ptr<TokenSource>* out) {
  std::unique_ptr<TokenSource> source(new TokenSource(store));
  std::string value;
  bool found = false;
  IDEM_RETURN_IF_ERROR(store->GetMeta(kEpochName, &value, &found));
  if (found) {
    std::string_view in = value;
    if (!GetFixed64BE(&in, &source->epoch_) || !in.empty()) {
      return Status::Corruption("the token epoch meta value is malformed");
    }
  }
  IDEM_RETURN_IF_ERROR(source->BumpEpoch());
  *out = std::move(source);
  return Status::OK();
}

Status TokenSource::BumpEpoch() {
  if (epoch_ >= kMaxEpoch) return Status::Internal("the token epoch is exhausted");
  std::string value;
  PutFixed64BE(&value, epoch_ + 1);
  IDEM_RETURN_IF_ERROR(store_->PutMetaSync(kEpochName, value));
  ++epoch_;
  counter_ = 0;
  return Status::OK();
}

Status TokenSource::Consume() {
  ++counter_;
  if (counter_ == UINT32_MAX) return BumpEpoch();
  return Status::OK();
}

}  // namespace idem::storage
