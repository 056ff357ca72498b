// Guards the wire schema against accidental renumbering: PROTOCOL.md section 5
// is normative, so a few names and numbers are pinned here.
#include <gtest/gtest.h>

#include "protocol/idem.pb.h"

namespace idem::v1 {
namespace {

int FieldNumber(const google::protobuf::Descriptor* d, const char* name) {
  const auto* f = d->FindFieldByName(name);
  return f == nullptr ? -1 : f->number();
}

TEST(ProtoSchemaTest, PackageAndOpNumbers) {
  const auto* req = Request::descriptor();
  EXPECT_EQ(req->full_name(), "idem.v1.Request");
  EXPECT_EQ(FieldNumber(req, "id"), 1);
  const char* ops[] = {"hello", "ping",   "reserve", "complete", "release",
                       "renew", "lookup", "purge",   "scan",     "stats"};
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(FieldNumber(req, ops[i]), 10 + i) << ops[i];
    EXPECT_EQ(FieldNumber(Response::descriptor(), ops[i]), 10 + i) << ops[i];
  }
  EXPECT_EQ(FieldNumber(Response::descriptor(), "error"), 2);
}

TEST(ProtoSchemaTest, EnumValues) {
  EXPECT_EQ(ERROR_INTERNAL, 9);
  EXPECT_EQ(ERROR_MALFORMED, 7);
  EXPECT_EQ(RESERVE_MISMATCH, 4);
  EXPECT_EQ(COMPLETE_NOT_FOUND, 4);
  EXPECT_EQ(KEY_COMPLETED, 4);
  EXPECT_EQ(ROLE_ADMIN, 3);
  EXPECT_EQ(FieldNumber(ReserveReply::descriptor(), "expires_unix_ms"), 7);
  EXPECT_EQ(FieldNumber(Limits::descriptor(), "max_inflight"), 11);
  EXPECT_EQ(FieldNumber(Scan::descriptor(), "all_scopes"), 5);
  EXPECT_EQ(FieldNumber(StatsReply::descriptor(), "counters"), 6);
}

TEST(ProtoSchemaTest, GarbageDoesNotParseAsRequest) {
  Request r;
  // A field with wire type 7 does not exist: the payload is malformed.
  const std::string garbage("\x0f\xff\xff", 3);
  EXPECT_FALSE(r.ParseFromString(garbage));
}

}  // namespace
}  // namespace idem::v1
