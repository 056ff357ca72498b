#include "bench/runner.h"

#include <boost/asio/post.hpp>

namespace idem::bench {

namespace {
using SteadyClock = std::chrono::steady_clock;
constexpr auto kTick = std::chrono::milliseconds(1);
}  // namespace

bool ParseWorkload(const std::string& name, Workload* out) {
  static const std::map<std::string, Workload> kNames = {
      {"reserve", Workload::kReserve},      {"flow", Workload::kFlow},
      {"replay", Workload::kReplay},        {"contention", Workload::kContention},
      {"lookup-hit", Workload::kLookupHit}, {"lookup-miss", Workload::kLookupMiss}};
  auto it = kNames.find(name);
  if (it == kNames.end()) return false;
  *out = it->second;
  return true;
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kAcquired: return "acquired";
    case Kind::kInProgress: return "in_progress";
    case Kind::kReplayed: return "replayed";
    case Kind::kMismatch: return "mismatch";
    case Kind::kCompleted: return "completed";
    case Kind::kNotCompleted: return "not_completed";
    case Kind::kFound: return "found";
    case Kind::kFoundInProgress: return "found_in_progress";
    case Kind::kAbsent: return "absent";
    case Kind::kError: return "error";
  }
  return "unknown";
}

void RunStats::Merge(const RunStats& other) {
  latency.Merge(other.latency);
  for (const auto& [name, n] : other.outcomes) outcomes[name] += n;
  ops += other.ops;
  requests += other.requests;
  wrong += other.wrong;
  errors += other.errors;
  if (first_problem.empty()) first_problem = other.first_problem;
}

Runner::Runner(const RunConfig& config, SharedCounters* shared, uint64_t seed)
    : config_(config), shared_(shared), rng_(seed) {
  conns_.resize(static_cast<size_t>(config_.connections));
  for (Conn& c : conns_) {
    c.target =
        config_.redis ? NewRedisTarget(io_, config_.target) : NewIdemTarget(io_, config_.target);
  }
}

Runner::~Runner() = default;

Status Runner::Connect() {
  Status first;
  int pending = static_cast<int>(conns_.size());
  for (Conn& c : conns_) {
    c.target->Connect([&](const Status& st) {
      if (!st.ok() && first.ok()) first = st;
      --pending;
    });
  }
  while (pending > 0 && io_.run_one() > 0) {
  }
  io_.restart();
  return first;
}

std::string Runner::FreshKey() {
  return config_.key_prefix + std::to_string(shared_->next_key.fetch_add(1));
}

std::string Runner::PopulatedKey() {
  std::uniform_int_distribution<uint64_t> pick(0, config_.populated_keys - 1);
  return config_.key_prefix + "pop-" + std::to_string(pick(rng_));
}

std::string Runner::Body(const std::string& key) const {
  std::string body = "{\"key\":\"" + key + "\"}";
  body.resize(config_.body_bytes, ' ');
  return body;
}

void Runner::Flow(Conn* c, const std::string& key, std::function<void(const Reply&, bool)> done) {
  c->target->Reserve(key, config_.lease_ms, 0, [this, c, key, done](const Reply& r) {
    ++stats_.requests;
    if (r.kind != Kind::kAcquired) return done(r, false);
    c->target->Complete(key, r.token, Body(key), [this, done](const Reply& r2) {
      ++stats_.requests;
      done(r2, r2.kind == Kind::kCompleted);
    });
  });
}

Status Runner::Populate(uint64_t first, uint64_t flows) {
  uint64_t next = first;
  const uint64_t end = first + flows;
  uint64_t inflight = 0;
  Status problem;
  std::function<void(Conn*)> issue = [&](Conn* c) {
    if (next >= end || !problem.ok()) return;
    const std::string key = config_.key_prefix + "pop-" + std::to_string(next++);
    ++inflight;
    Flow(c, key, [&, c](const Reply& r, bool ok) {
      --inflight;
      if (!ok && problem.ok()) {
        problem = Status::Internal(std::string("populate got ") + KindName(r.kind) + " " + r.error);
      }
      issue(c);
    });
  };
  for (Conn& c : conns_) {
    for (int d = 0; d < config_.depth; ++d) issue(&c);
  }
  while (inflight > 0 && io_.run_one() > 0) {
  }
  io_.restart();
  stats_ = RunStats();
  return problem;
}

void Runner::Run(TimePoint until) {
  start_ = SteadyClock::now();
  timer_.expires_at(until);
  timer_.async_wait([this](const boost::system::error_code&) {
    stopping_ = true;
    io_.stop();
  });
  if (config_.rate > 0) {
    Tick();
  } else {
    for (Conn& c : conns_) Fill(&c);
  }
  io_.run();
}

void Runner::Fill(Conn* c) {
  while (!stopping_ && c->inflight < config_.depth) StartOp(c, SteadyClock::now());
}

void Runner::Tick() {
  // Every op whose intended time has come goes to the next connection; a busy
  // connection queues it with its intended time.
  const auto now = SteadyClock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const auto due = static_cast<uint64_t>(elapsed * config_.rate);
  for (; scheduled_ < due; ++scheduled_) {
    const auto intended =
        start_ + std::chrono::nanoseconds(static_cast<int64_t>(scheduled_ * 1e9 / config_.rate));
    Conn* c = &conns_[next_conn_++ % conns_.size()];
    if (c->inflight < config_.depth) {
      StartOp(c, intended);
    } else {
      c->backlog.push_back(intended);
    }
  }
  auto* t = new boost::asio::steady_timer(io_, kTick);
  t->async_wait([this, t](const boost::system::error_code& ec) {
    delete t;
    if (!ec && !stopping_) Tick();
  });
}

void Runner::StartOp(Conn* c, TimePoint intended) {
  ++c->inflight;
  auto finish = [this, c, intended](const Reply& r, bool correct) {
    Finish(c, intended, r, correct);
  };
  switch (config_.workload) {
    case Workload::kReserve:
      c->target->Reserve(FreshKey(), config_.lease_ms, 0, [this, finish](const Reply& r) {
        ++stats_.requests;
        finish(r, r.kind == Kind::kAcquired);
      });
      return;
    case Workload::kFlow: return Flow(c, FreshKey(), finish);
    case Workload::kReplay:
      c->target->Reserve(PopulatedKey(), config_.lease_ms, 0, [this, finish](const Reply& r) {
        ++stats_.requests;
        finish(r, r.kind == Kind::kReplayed);
      });
      return;
    case Workload::kContention: {
      // `hot_keys` keys are contended at a time; each is retired once done.
      const uint64_t n = shared_->next_key.fetch_add(1);
      const std::string key = config_.key_prefix + "hot-" +
                              std::to_string(n / static_cast<uint64_t>(config_.connections)) + "-" +
                              std::to_string(n % static_cast<uint64_t>(config_.hot_keys));
      c->target->Reserve(
          key, config_.lease_ms, config_.wait_ms, [this, c, key, finish](const Reply& r) {
            ++stats_.requests;
            if (r.kind != Kind::kAcquired) {
              return finish(r, r.kind == Kind::kReplayed || r.kind == Kind::kInProgress);
            }
            c->target->Complete(key, r.token, Body(key), [this, finish](const Reply& r2) {
              ++stats_.requests;
              finish(r2, r2.kind == Kind::kCompleted);
            });
          });
      return;
    }
    case Workload::kLookupHit:
      c->target->Lookup(PopulatedKey(), [this, finish](const Reply& r) {
        ++stats_.requests;
        finish(r, r.kind == Kind::kFound);
      });
      return;
    case Workload::kLookupMiss:
      c->target->Lookup(config_.key_prefix + "miss-" + FreshKey(), [this, finish](const Reply& r) {
        ++stats_.requests;
        finish(r, r.kind == Kind::kAbsent);
      });
      return;
  }
}

void Runner::Finish(Conn* c, TimePoint intended, const Reply& last, bool correct) {
  --c->inflight;
  const auto now = SteadyClock::now();
  ++stats_.outcomes[KindName(last.kind)];
  if (last.kind == Kind::kError) {
    ++stats_.errors;
    if (stats_.first_problem.empty()) stats_.first_problem = "error: " + last.error;
    // A failing run is over: errors may come back synchronously, and
    // retrying them would only spin.
    stopping_ = true;
    io_.stop();
    return;
  } else if (!correct) {
    ++stats_.wrong;
    if (stats_.first_problem.empty()) {
      stats_.first_problem = std::string("unexpected answer: ") + KindName(last.kind);
    }
  } else {
    ++stats_.ops;
    stats_.latency.Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - intended).count()));
    const uint64_t done = shared_->done.fetch_add(1, std::memory_order_relaxed) + 1;
    if (config_.total_ops > 0 && done >= config_.total_ops) {
      stopping_ = true;
      io_.stop();
      return;
    }
  }
  if (stopping_) return;
  if (!c->backlog.empty()) {
    const TimePoint next = c->backlog.front();
    c->backlog.pop_front();
    return StartOp(c, next);
  }
  if (config_.rate <= 0) Fill(c);
}

}  // namespace idem::bench
