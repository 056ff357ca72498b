#include "tests/testutil/executor_harness.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "protocol/frame_codec.h"

namespace idem::testutil {

FakeSession::FakeSession(std::string tenant,
                         std::function<void(const idem::v1::Response&)> on_answer)
    : on_answer_(std::move(on_answer)) {
  principal_.tenant = std::move(tenant);
  principal_.role = server::Role::kWrite;
}

void FakeSession::Deliver(std::string frame) {
  protocol::FrameDecoder decoder(UINT32_MAX);
  decoder.Feed(frame);
  std::string_view payload;
  ASSERT_EQ(decoder.Next(&payload), protocol::FrameDecoder::Result::kFrame);
  idem::v1::Response response;
  ASSERT_TRUE(response.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
  on_answer_(response);
}

ExecutorLife::ExecutorLife(const std::string& path, rocksdb::Env* env, const Clock* clock,
                           server::Executor::Options options) {
  storage::StoreOptions so;
  so.path = path;
  so.env = env;
  status_ = storage::Store::Open(so, clock, &store_);
  if (status_.ok()) status_ = storage::TokenSource::Open(store_.get(), &tokens_);
  if (!status_.ok()) return;
  executor_ = std::make_unique<server::Executor>(io_, store_.get(), tokens_.get(), clock, &metrics_,
                                                 std::move(options));
}

ExecutorLife::~ExecutorLife() = default;

bool ExecutorLife::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io_.run_one_for(std::chrono::milliseconds(20));
  }
  return done();
}

void ExecutorLife::Drain() {
  bool done = false;
  executor_->Drain([&done] { done = true; });
  EXPECT_TRUE(RunUntil([&done] { return done; }, std::chrono::seconds(10)))
      << "drain did not finish";
}

}  // namespace idem::testutil
