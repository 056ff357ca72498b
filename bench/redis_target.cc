// idem-bench's Redis driver: RESP2 over one pipelined TCP connection; Redis
// answers in order, so callbacks wait in a FIFO.
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <deque>

#include "bench/target.h"
#include "protocol/async_connection.h"

namespace idem::bench {

namespace {

using boost::asio::ip::tcp;
using boost::system::error_code;

// One parsed RESP reply (the subset Redis sends for SET and GET).
struct RespValue {
  enum class Type { kSimple, kError, kInteger, kBulk, kNil } type = Type::kNil;
  std::string text;
};

// Parses one reply from the front of `in`; returns bytes used, 0 if incomplete.
size_t ParseResp(std::string_view in, RespValue* out) {
  const size_t eol = in.find("\r\n");
  if (eol == std::string_view::npos || in.empty()) return 0;
  const std::string_view line = in.substr(1, eol - 1);
  switch (in[0]) {
    case '+': out->type = RespValue::Type::kSimple; break;
    case '-': out->type = RespValue::Type::kError; break;
    case ':': out->type = RespValue::Type::kInteger; break;
    case '$': {
      const long len = std::stol(std::string(line));
      if (len < 0) {
        out->type = RespValue::Type::kNil;
        return eol + 2;
      }
      const size_t need = eol + 2 + static_cast<size_t>(len) + 2;
      if (in.size() < need) return 0;
      out->type = RespValue::Type::kBulk;
      out->text.assign(in.substr(eol + 2, static_cast<size_t>(len)));
      return need;
    }
    default:
      out->type = RespValue::Type::kError;
      out->text = "unexpected RESP type";
      return in.size();
  }
  out->text.assign(line);
  return eol + 2;
}

void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  *out += "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    *out += "$" + std::to_string(a.size()) + "\r\n";
    out->append(a.data(), a.size());
    *out += "\r\n";
  }
}

class RedisTarget final : public Target {
 public:
  RedisTarget(boost::asio::io_context& io, const TargetOptions& o)
      : io_(io), options_(o), socket_(io) {}

  void Connect(std::function<void(const Status&)> done) override {
    std::string host;
    uint16_t port = 0;
    Status st = client::ParseEndpoint(options_.endpoint, &host, &port);
    if (!st.ok()) return done(st);
    tcp::resolver resolver(io_);
    error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return done(Status::IOError("resolving " + options_.endpoint + ": " + ec.message()));
    boost::asio::async_connect(
        socket_, endpoints, [this, done](const error_code& e, const tcp::endpoint&) {
          if (e) {
            return done(
                Status::IOError("connecting to redis " + options_.endpoint + ": " + e.message()));
          }
          socket_.set_option(tcp::no_delay(true));
          DoRead();
          done(Status::OK());
        });
  }

  void Reserve(const std::string& key, uint32_t lease_ms, uint32_t /*wait_ms*/,
               ReplyFn done) override {
    AppendCommand(&out_, {"SET", key, "1", "NX", "PX", std::to_string(lease_ms)});
    Expect(RespValue::Type::kSimple, Kind::kAcquired, Kind::kReplayed, std::move(done));
  }

  void Complete(const std::string& key, uint64_t /*token*/, const std::string& body,
                ReplyFn done) override {
    AppendCommand(&out_, {"SET", key, body, "XX", "PX", std::to_string(options_.retention_ms)});
    Expect(RespValue::Type::kSimple, Kind::kCompleted, Kind::kNotCompleted, std::move(done));
  }

  void Lookup(const std::string& key, ReplyFn done) override {
    AppendCommand(&out_, {"GET", key});
    Expect(RespValue::Type::kBulk, Kind::kFound, Kind::kAbsent, std::move(done));
  }

 private:
  // Queues the reply of the command just appended: `hit` when it is of type
  // `hit_type` (SET's OK, GET's bulk string), `nil` on a nil (the NX/XX
  // condition failed, or no value), else an error.
  void Expect(RespValue::Type hit_type, Kind hit, Kind nil, ReplyFn done) {
    Enqueue([=, done = std::move(done)](const RespValue& v) {
      Reply r;
      r.kind = v.type == hit_type ? hit : v.type == RespValue::Type::kNil ? nil : Kind::kError;
      r.error = v.text;
      done(r);
    });
  }

  void Enqueue(std::function<void(const RespValue&)> fn) {
    waiting_.push_back(std::move(fn));
    if (!write_posted_ && !writing_) {
      write_posted_ = true;
      boost::asio::post(io_, [this] {
        write_posted_ = false;
        StartWrite();
      });
    }
  }

  void StartWrite() {
    if (writing_ || out_.empty()) return;
    sending_.swap(out_);
    out_.clear();
    writing_ = true;
    boost::asio::async_write(socket_, boost::asio::buffer(sending_),
                             [this](const error_code& ec, size_t) {
                               writing_ = false;
                               sending_.clear();
                               if (ec) return Fail("write: " + ec.message());
                               StartWrite();
                             });
  }

  void DoRead() {
    socket_.async_read_some(boost::asio::buffer(buf_), [this](const error_code& ec, size_t n) {
      if (ec) return Fail("read: " + ec.message());
      in_.append(buf_.data(), n);
      size_t pos = 0;
      while (!waiting_.empty()) {
        RespValue v;
        const size_t used = ParseResp(std::string_view(in_).substr(pos), &v);
        if (used == 0) break;
        pos += used;
        auto fn = std::move(waiting_.front());
        waiting_.pop_front();
        fn(v);
      }
      in_.erase(0, pos);
      DoRead();
    });
  }

  void Fail(const std::string& why) {
    error_code ignored;
    socket_.close(ignored);
    auto waiting = std::move(waiting_);
    waiting_.clear();
    RespValue v;
    v.type = RespValue::Type::kError;
    v.text = why;
    for (auto& fn : waiting) fn(v);
  }

  boost::asio::io_context& io_;
  TargetOptions options_;
  tcp::socket socket_;
  std::array<char, 64 * 1024> buf_;
  std::string in_, out_, sending_;
  bool writing_ = false;
  bool write_posted_ = false;
  std::deque<std::function<void(const RespValue&)>> waiting_;
};

}  // namespace

std::unique_ptr<Target> NewRedisTarget(boost::asio::io_context& io, const TargetOptions& options) {
  return std::make_unique<RedisTarget>(io, options);
}

}  // namespace idem::bench
