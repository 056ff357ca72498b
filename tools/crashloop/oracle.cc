#include "tools/crashloop/oracle.h"

#include <algorithm>
#include <sstream>

namespace idem::crashloop {

namespace v1 = idem::v1;

namespace {

uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string StateName(v1::KeyState s) { return std::string(v1::KeyState_Name(s)); }

std::string Describe(const Acquisition& a) {
  std::ostringstream o;
  o << "token " << a.token << " (attempt " << a.attempt << ", acknowledged in cycle " << a.cycle
    << ", granted at " << a.grant_unix_ms() << " with lease_ms " << a.lease_ms << ", lease until "
    << a.lease_expires_unix_ms << ")";
  return o.str();
}

}  // namespace

std::string ResultBody(const std::string& key, uint64_t token) {
  uint64_t state = Fnv1a(key) ^ (token * 0x9e3779b97f4a7c15ull);
  std::string body = "{\"key\":\"" + key + "\",\"token\":" + std::to_string(token) + "}";
  body.push_back('\0');
  const uint64_t r = SplitMix(&state);
  size_t extra = r % 160;
  if (r % 50 == 0) extra = 8192 + (r >> 8) % 24576;  // now and then a large one
  for (size_t i = 0; i < extra; i += 8) {
    const uint64_t w = SplitMix(&state);
    for (size_t j = 0; j < 8 && i + j < extra; ++j) body.push_back(static_cast<char>(w >> (8 * j)));
  }
  return body;
}

int32_t ResultStatus(const std::string& key, uint64_t token) {
  return 200 + static_cast<int32_t>((Fnv1a(key) + token) % 5);
}

std::string FingerprintFor(const std::string& key, bool shared) {
  return shared ? std::string("shared") : "fp:" + std::to_string(Fnv1a(key));
}

std::string Printable(const std::string& bytes, size_t max) {
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (bytes.size() > max) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return "\"" + out + "\"";
}

KeyHistory& Oracle::At(const std::string& key) { return keys_[key]; }

void Oracle::RecordAcquired(const std::string& key, bool shared, const Acquisition& a) {
  std::lock_guard<std::mutex> lock(mu_);
  KeyHistory& h = At(key);
  h.shared = shared;
  h.acquisitions.push_back(a);
}

void Oracle::RecordCompleteSent(const std::string& key, uint64_t token, int32_t status) {
  std::lock_guard<std::mutex> lock(mu_);
  At(key).attempted[token] = status;
}

void Oracle::RecordCompleteOk(const std::string& key, const Completion& c) {
  std::lock_guard<std::mutex> lock(mu_);
  At(key).completions.push_back(c);
}

void Oracle::RecordReleaseSent(const std::string& key, uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  At(key).release_unknown.insert(token);
}

void Oracle::RecordReleaseAnswered(const std::string& key, uint64_t token, bool released) {
  std::lock_guard<std::mutex> lock(mu_);
  KeyHistory& h = At(key);
  h.release_unknown.erase(token);
  if (released) h.released.insert(token);
}

void Oracle::RecordReplay(const std::string& key, const Replay& r) {
  std::lock_guard<std::mutex> lock(mu_);
  At(key).replays.push_back(r);
}

void Oracle::RecordViolation(Violation v) {
  std::lock_guard<std::mutex> lock(mu_);
  recorded_.push_back(std::move(v));
}

void Oracle::InjectFakeCompleteOk(const std::string& key, uint64_t token, int32_t status,
                                  const std::string& body, int cycle) {
  Completion c;
  c.token = token;
  c.status = status;
  c.body = body;
  c.ack_seq = NextSeq();
  c.cycle = cycle;
  RecordCompleteOk(key, c);
}

void Oracle::InjectFakeAcquired(const std::string& key, const Acquisition& a) {
  RecordAcquired(key, /*shared=*/true, a);
}

std::vector<Violation> Oracle::TakeRecordedViolations() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Violation> out;
  out.swap(recorded_);
  return out;
}

std::vector<Violation> Oracle::CheckHistory() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Violation> out;
  for (const auto& [key, h] : keys_) CheckKeyHistory(key, h, &out);
  return out;
}

std::vector<std::pair<std::string, uint64_t>> Oracle::UnfinishedFreshFlows() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& [key, h] : keys_) {
    if (h.shared || h.acquisitions.empty() || !h.completions.empty()) continue;
    out.emplace_back(key, h.acquisitions.back().token);
  }
  return out;
}

uint64_t Oracle::acknowledged_acquisitions() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& [key, h] : keys_) n += h.acquisitions.size();
  return n;
}

uint64_t Oracle::acknowledged_completions() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& [key, h] : keys_) n += h.completions.size();
  return n;
}

void CheckKeyHistory(const std::string& key, const KeyHistory& h, std::vector<Violation>* out) {
  auto add = [&](const char* kind, const std::string& detail) {
    out->push_back({kind, key, detail});
  };
  const auto& acq = h.acquisitions;

  // Tokens: never 0, one per acquisition, and an acquisition sent after
  // another was acknowledged has a higher token (and attempt: records of the
  // crash loop are never purged nor expire).
  std::vector<const Acquisition*> by_ack;
  for (const auto& a : acq) {
    if (a.token == 0) add("zero-token", Describe(a));
    by_ack.push_back(&a);
  }
  std::sort(by_ack.begin(), by_ack.end(),
            [](const Acquisition* x, const Acquisition* y) { return x->ack_seq < y->ack_seq; });
  std::vector<const Acquisition*> max_token(by_ack.size());
  std::vector<const Acquisition*> max_attempt(by_ack.size());
  for (size_t i = 0; i < by_ack.size(); ++i) {
    max_token[i] = by_ack[i];
    max_attempt[i] = by_ack[i];
    if (i > 0 && max_token[i - 1]->token > by_ack[i]->token) max_token[i] = max_token[i - 1];
    if (i > 0 && max_attempt[i - 1]->attempt > by_ack[i]->attempt) {
      max_attempt[i] = max_attempt[i - 1];
    }
  }
  for (const auto& b : acq) {
    // The acquisitions acknowledged before `b` was sent.
    const auto it =
        std::lower_bound(by_ack.begin(), by_ack.end(), b.send_seq,
                         [](const Acquisition* a, uint64_t seq) { return a->ack_seq < seq; });
    const size_t n = static_cast<size_t>(it - by_ack.begin());
    if (n == 0) continue;
    if (max_token[n - 1]->token >= b.token) {
      add("token-not-rising", Describe(b) + " was requested after " + Describe(*max_token[n - 1]) +
                                  " was acknowledged");
    }
    if (max_attempt[n - 1]->attempt >= b.attempt) {
      add("attempt-not-rising", Describe(b) + " was requested after " +
                                    Describe(*max_attempt[n - 1]) + " was acknowledged");
    }
  }

  // Leases, in token (grant) order: a lease is granted only once every
  // earlier lease has ended, unless that one was released (or its release's
  // answer was lost) or completed.
  std::set<uint64_t> completed_tokens;
  for (const auto& c : h.completions) completed_tokens.insert(c.token);
  std::vector<const Acquisition*> by_token;
  for (const auto& a : acq) by_token.push_back(&a);
  std::sort(by_token.begin(), by_token.end(),
            [](const Acquisition* x, const Acquisition* y) { return x->token < y->token; });
  const Acquisition* holder = nullptr;  // the latest-ending earlier lease not given up
  for (size_t i = 0; i < by_token.size(); ++i) {
    const Acquisition& b = *by_token[i];
    if (i > 0 && by_token[i - 1]->token == b.token) {
      add("token-reuse", "two acknowledged acquisitions share " + Describe(*by_token[i - 1]) +
                             " and " + Describe(b));
    }
    if (holder != nullptr && b.grant_unix_ms() < holder->lease_expires_unix_ms) {
      add("lease-overlap", Describe(b) + " was granted while " + Describe(*holder) +
                               " had not ended and was neither released nor completed");
    }
    const bool given_up = h.released.count(b.token) > 0 || h.release_unknown.count(b.token) > 0 ||
                          completed_tokens.count(b.token) > 0;
    if (!given_up &&
        (holder == nullptr || b.lease_expires_unix_ms > holder->lease_expires_unix_ms)) {
      holder = &b;
    }
  }

  // Results: one completing token per key; nothing acquired after it; every
  // result shown equals the acknowledged one, or one the workload sent.
  if (completed_tokens.size() > 1) {
    std::string tokens;
    for (uint64_t t : completed_tokens) tokens += " " + std::to_string(t);
    add("two-results", "COMPLETE_OK acknowledged for different tokens:" + tokens);
  }
  if (!h.completions.empty()) {
    const Completion& c = h.completions.front();
    for (const auto& a : acq) {
      if (a.token > c.token) {
        add("acquired-after-complete", Describe(a) + " after COMPLETE_OK of token " +
                                           std::to_string(c.token) + " (cycle " +
                                           std::to_string(c.cycle) + ")");
      }
    }
  }
  for (const auto& r : h.replays) {
    bool known = false;
    if (!h.completions.empty()) {
      const Completion& c = h.completions.front();
      known = r.status == c.status && r.body == c.body;
    } else {
      for (const auto& [token, status] : h.attempted) {
        if (r.status == status && r.body == ResultBody(key, token)) known = true;
      }
    }
    if (!known) {
      add("wrong-replay",
          r.how + " in cycle " + std::to_string(r.cycle) + " returned status " +
              std::to_string(r.status) + " body " + Printable(r.body) +
              (h.completions.empty()
                   ? std::string(", not a result the workload sent")
                   : ", acknowledged was status " + std::to_string(h.completions.front().status) +
                         " body " + Printable(h.completions.front().body)));
    }
  }
}

void VerifyLookup(const std::string& key, const KeyHistory& h, const v1::LookupReply& now,
                  int check_cycle, std::vector<Violation>* out, CheckCounts* counts) {
  auto add = [&](const char* kind, const std::string& detail) {
    out->push_back({kind, key, "after restart " + std::to_string(check_cycle) + ": " + detail});
  };
  ++counts->keys;
  if (!h.completions.empty()) {
    const Completion& c = h.completions.front();
    counts->completes += h.completions.size();
    if (now.state() != v1::KEY_COMPLETED) {
      add("lost-complete", "COMPLETE_OK of token " + std::to_string(c.token) +
                               " was acknowledged in cycle " + std::to_string(c.cycle) +
                               ", Lookup says " + StateName(now.state()));
    } else if (now.result().body() != c.body || now.result().status() != c.status) {
      add("wrong-result", "acknowledged status " + std::to_string(c.status) + " body " +
                              Printable(c.body) + " (token " + std::to_string(c.token) +
                              ", cycle " + std::to_string(c.cycle) + "), Lookup returned status " +
                              std::to_string(now.result().status()) + " body " +
                              Printable(now.result().body()));
    }
  }
  if (!h.acquisitions.empty()) {
    counts->acquisitions += h.acquisitions.size();
    const auto last = std::max_element(
        h.acquisitions.begin(), h.acquisitions.end(),
        [](const Acquisition& x, const Acquisition& y) { return x.attempt < y.attempt; });
    if (now.state() == v1::KEY_ABSENT) {
      add("lost-acquire", "ACQUIRED " + Describe(*last) + " was acknowledged, Lookup says " +
                              StateName(now.state()));
    } else if (now.attempt() < last->attempt) {
      add("attempt-regressed", "ACQUIRED " + Describe(*last) +
                                   " was acknowledged, Lookup reports attempt " +
                                   std::to_string(now.attempt()));
    }
  }
  if (now.state() == v1::KEY_COMPLETED && h.completions.empty()) {
    bool known = false;
    for (const auto& [token, status] : h.attempted) {
      if (now.result().status() == status && now.result().body() == ResultBody(key, token)) {
        known = true;
      }
    }
    if (!known) {
      add("unknown-result", "COMPLETED with status " + std::to_string(now.result().status()) +
                                " body " + Printable(now.result().body()) +
                                ", a result no Complete sent");
    }
  }
}

}  // namespace idem::crashloop
