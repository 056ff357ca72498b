#include "protocol/frame_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/idem.pb.h"

namespace idem::protocol {
namespace {

std::string Frame(std::string_view payload) {
  std::string out;
  AppendFrameHeader(&out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

// Feeds `chunks` one by one, draining frames after each; returns the payloads
// and the last result.
std::vector<std::string> DecodeAll(FrameDecoder* d, const std::vector<std::string_view>& chunks,
                                   FrameDecoder::Result* last) {
  std::vector<std::string> frames;
  for (std::string_view chunk : chunks) {
    d->Feed(chunk);
    std::string_view payload;
    while ((*last = d->Next(&payload)) == FrameDecoder::Result::kFrame) {
      frames.emplace_back(payload);
    }
  }
  return frames;
}

TEST(FrameCodecTest, EverySplitPointDecodesToTheSameFrames) {
  const std::vector<std::string> payloads = {"", "a", std::string("\0\x01\xff", 3),
                                             std::string(300, 'x'), "last"};
  std::string stream;
  for (const auto& p : payloads) stream += Frame(p);

  for (size_t i = 0; i <= stream.size(); ++i) {
    for (size_t j = i; j <= stream.size(); j += 7) {
      FrameDecoder d(kDefaultMaxFrameBytes);
      std::string_view s = stream;
      FrameDecoder::Result last{};
      auto frames = DecodeAll(&d, {s.substr(0, i), s.substr(i, j - i), s.substr(j)}, &last);
      ASSERT_EQ(frames, payloads) << "split at " << i << " and " << j;
      EXPECT_EQ(last, FrameDecoder::Result::kNeedMore);
      EXPECT_FALSE(d.InsideFrame());
    }
  }
}

TEST(FrameCodecTest, ByteByByte) {
  std::string stream = Frame("hello") + Frame("") + Frame("world");
  FrameDecoder d(kDefaultMaxFrameBytes);
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < stream.size(); ++i)
    chunks.push_back(std::string_view(stream).substr(i, 1));
  FrameDecoder::Result last{};
  EXPECT_EQ(DecodeAll(&d, chunks, &last), (std::vector<std::string>{"hello", "", "world"}));
}

TEST(FrameCodecTest, ZeroLengthFrame) {
  FrameDecoder d(16);
  d.Feed(std::string("\0\0\0\0", 4));
  std::string_view payload = "not empty";
  ASSERT_EQ(d.Next(&payload), FrameDecoder::Result::kFrame);
  EXPECT_TRUE(payload.empty());
  EXPECT_EQ(d.Next(&payload), FrameDecoder::Result::kNeedMore);
}

TEST(FrameCodecTest, MaximalLengthIsTooLargeAndSticky) {
  FrameDecoder d(kDefaultMaxFrameBytes);
  d.Feed(std::string("\xff\xff\xff\xff", 4));
  std::string_view payload;
  EXPECT_EQ(d.Next(&payload), FrameDecoder::Result::kTooLarge);
  EXPECT_EQ(d.rejected_length(), 0xFFFFFFFFu);
  d.Feed("more bytes");
  EXPECT_EQ(d.Next(&payload), FrameDecoder::Result::kTooLarge);
}

TEST(FrameCodecTest, ExactlyTheLimitAndOneMore) {
  constexpr uint32_t kLimit = 4096;
  {
    FrameDecoder d(kLimit);
    const std::string payload(kLimit, 'p');
    d.Feed(Frame(payload));
    std::string_view got;
    ASSERT_EQ(d.Next(&got), FrameDecoder::Result::kFrame);
    EXPECT_EQ(got.size(), kLimit);
  }
  {
    FrameDecoder d(kLimit);
    // Only the header is needed to refuse: the decoder never buffers the body.
    std::string header;
    AppendFrameHeader(&header, kLimit + 1);
    d.Feed(header);
    std::string_view got;
    EXPECT_EQ(d.Next(&got), FrameDecoder::Result::kTooLarge);
    EXPECT_EQ(d.rejected_length(), kLimit + 1);
  }
}

TEST(FrameCodecTest, RaisingTheLimitAppliesToLaterFrames) {
  FrameDecoder d(kPreAuthMaxFrameBytes);
  d.Feed(Frame(std::string(100, 'a')));
  std::string_view got;
  ASSERT_EQ(d.Next(&got), FrameDecoder::Result::kFrame);
  d.set_max_frame_bytes(kDefaultMaxFrameBytes);
  d.Feed(Frame(std::string(kPreAuthMaxFrameBytes + 1, 'b')));
  ASSERT_EQ(d.Next(&got), FrameDecoder::Result::kFrame);
  EXPECT_EQ(got.size(), kPreAuthMaxFrameBytes + 1);
}

TEST(FrameCodecTest, HeaderSplitIsNeedMore) {
  FrameDecoder d(16);
  d.Feed(std::string("\0\0", 2));
  std::string_view got;
  EXPECT_EQ(d.Next(&got), FrameDecoder::Result::kNeedMore);
  EXPECT_TRUE(d.InsideFrame());
  d.Feed(std::string("\0\x02", 2));
  EXPECT_EQ(d.Next(&got), FrameDecoder::Result::kNeedMore);
  d.Feed("ok");
  ASSERT_EQ(d.Next(&got), FrameDecoder::Result::kFrame);
  EXPECT_EQ(got, "ok");
}

TEST(FrameCodecTest, AppendFrameRoundTripsAMessage) {
  idem::v1::Request req;
  req.set_id(7);
  req.mutable_reserve()->set_key(std::string("k\0ey", 4));
  std::string stream;
  ASSERT_TRUE(AppendFrame(&stream, req));
  ASSERT_TRUE(AppendFrame(&stream, idem::v1::Request()));  // an empty request: length 0
  FrameDecoder d(kDefaultMaxFrameBytes);
  d.Feed(stream);
  std::string_view payload;
  ASSERT_EQ(d.Next(&payload), FrameDecoder::Result::kFrame);
  idem::v1::Request back;
  ASSERT_TRUE(back.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
  EXPECT_EQ(back.id(), 7u);
  EXPECT_EQ(back.reserve().key(), std::string("k\0ey", 4));
  ASSERT_EQ(d.Next(&payload), FrameDecoder::Result::kFrame);
  EXPECT_TRUE(payload.empty());
}

}  // namespace
}  // namespace idem::protocol
