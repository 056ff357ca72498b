#include "util/status.h"

#include <gtest/gtest.h>

namespace idem {
namespace {

TEST(StatusTest, OkIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(s.WithContext("ignored").ok());
}

TEST(StatusTest, ErrorsCarryCodeAndMessage) {
  Status s = Status::Corruption("record value truncated");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_FALSE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "Corruption: record value truncated");
  EXPECT_EQ(s.WithContext("opening").ToString(), "Corruption: opening: record value truncated");
  EXPECT_TRUE(Status::InvalidArgument("x").IsInvalidArgument());
  EXPECT_TRUE(Status::IOError("x").IsIOError());
  EXPECT_TRUE(Status::ResourceExhausted("x").IsResourceExhausted());
  EXPECT_TRUE(Status::Unavailable("x").IsUnavailable());
}

Status FailsThenNot(bool fail) {
  IDEM_RETURN_IF_ERROR(fail ? Status::NotFound("gone") : Status::OK());
  return Status::Internal("reached the end");
}

TEST(StatusTest, ReturnIfErrorReturnsEarly) {
  EXPECT_TRUE(FailsThenNot(true).IsNotFound());
  EXPECT_EQ(FailsThenNot(false).code(), Status::Code::kInternal);
}

TEST(StatusOrTest, HoldsValueOrStatus) {
  StatusOr<int> v(42);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  StatusOr<int> e(Status::NotFound("no"));
  EXPECT_FALSE(e.ok());
  EXPECT_TRUE(e.status().IsNotFound());
}

}  // namespace
}  // namespace idem
