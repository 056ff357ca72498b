// Frame codec: splitting a byte stream into frames as it arrives in chunks of
// various sizes (1 byte: a trickling client; 64: small TCP segments; 4096: a
// typical socket read), and encoding frames.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "bench/bench_util.h"
#include "protocol/frame_codec.h"
#include "protocol/idem.pb.h"

namespace idem::protocol {
namespace {

constexpr int kFramesPerStream = 256;

// kFramesPerStream frames of `payload_bytes` each, back to back.
std::string MakeStream(size_t payload_bytes) {
  const std::string payload = bench::RandomBytes(payload_bytes, 1);
  std::string stream;
  for (int i = 0; i < kFramesPerStream; ++i) {
    AppendFrameHeader(&stream, static_cast<uint32_t>(payload.size()));
    stream += payload;
  }
  return stream;
}

// One long-lived decoder (as a connection has) fed the whole stream each
// iteration. Args: chunk bytes, payload bytes.
void BM_DecodeStream(benchmark::State& state) {
  const auto chunk = static_cast<size_t>(state.range(0));
  const std::string stream = MakeStream(static_cast<size_t>(state.range(1)));
  const std::string_view in(stream);
  FrameDecoder decoder(kDefaultMaxFrameBytes);
  for (auto _ : state) {
    int frames = 0;
    for (size_t pos = 0; pos < in.size(); pos += chunk) {
      decoder.Feed(in.substr(pos, chunk));
      std::string_view payload;
      while (decoder.Next(&payload) == FrameDecoder::Result::kFrame) {
        benchmark::DoNotOptimize(payload.data());
        ++frames;
      }
    }
    if (frames != kFramesPerStream || decoder.InsideFrame()) {
      state.SkipWithError("decoder lost frames");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kFramesPerStream);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_DecodeStream)
    ->ArgNames({"chunk", "payload"})
    ->ArgsProduct({{1, 64, 4096}, {100, 4096}});

// Framing alone: header + payload appended to a reused output buffer.
// Arg: payload bytes.
void BM_EncodeStream(benchmark::State& state) {
  const std::string payload = bench::RandomBytes(static_cast<size_t>(state.range(0)), 1);
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kFramesPerStream; ++i) {
      AppendFrameHeader(&out, static_cast<uint32_t>(payload.size()));
      out += payload;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kFramesPerStream);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_EncodeStream)->ArgName("payload")->Arg(100)->Arg(4096);

// AppendFrame as the server and client call it: size, header, serialize in
// place. A Reserve request of realistic size; see proto_bench for every op.
void BM_AppendFrameReserve(benchmark::State& state) {
  v1::Request req;
  req.set_id(123'456);
  v1::Reserve* r = req.mutable_reserve();
  r->set_scope(std::string(bench::kScope));
  r->set_key(bench::HexKey(1));
  r->set_fingerprint(bench::RandomBytes(bench::kFingerprintBytes, 2));
  r->set_lease_ms(30'000);
  r->set_wait_ms(5'000);
  std::string out;
  for (auto _ : state) {
    out.clear();
    if (!AppendFrame(&out, req)) {
      state.SkipWithError("AppendFrame failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_AppendFrameReserve);

}  // namespace
}  // namespace idem::protocol
