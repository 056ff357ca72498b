// POST /backup on the admin port of the real idemd: a checkpoint taken under
// load holds every answered write and serves as the data dir of a second
// daemon; targets outside the backup root are refused.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/server/daemon_fixture.h"

namespace idem::testutil {
namespace {

namespace fs = std::filesystem;
namespace v1 = idem::v1;

HttpReply PostBackup(uint16_t port, const std::string& target) {
  return Http(port, "POST", "/backup", target);
}

// Reserves and completes `key` in scope "s" with `body`; true on success.
bool Complete(Client* client, uint64_t* id, const std::string& key, const std::string& body) {
  v1::Response r = client->Call(ReserveReq((*id)++, "s", key, "fp"));
  if (r.reserve().outcome() != v1::RESERVE_ACQUIRED) return false;
  r = client->Call(CompleteReq((*id)++, "s", key, r.reserve().token(), 200, body));
  return r.complete().outcome() == v1::COMPLETE_OK;
}

class DaemonBackupTest : public DaemonTest {
 protected:
  std::vector<std::string> Flags() override { return {"--backup-dir", Root()}; }
  std::string Root() const { return dir_.Sub("backups"); }
};

TEST_F(DaemonBackupTest, BackupUnderLoadServesASecondDaemon) {
  std::vector<std::pair<std::string, std::string>> done;  // key, body
  for (int i = 0; i < 100; ++i) {
    const std::string key = "key-" + std::to_string(i);
    const std::string body = "{\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                             std::string(static_cast<size_t>(i), 'x') + "\"}";
    ASSERT_TRUE(Complete(&client_, &next_id_, key, body)) << key;
    done.emplace_back(key, body);
  }

  // The load: another connection completes keys until told to stop.
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> loaded;
  std::atomic<bool> stop{false};
  std::atomic<bool> load_failed{false};
  std::thread load([&] {
    Client c;
    if (!c.Connect(daemon_.port())) return load_failed.store(true);
    uint64_t id = 1;
    for (int n = 0; !stop; ++n) {
      const std::string key = "load-" + std::to_string(n);
      const std::string body = "load body " + std::to_string(n);
      if (!Complete(&c, &id, key, body)) return load_failed.store(true);
      std::lock_guard<std::mutex> lock(mu);
      loaded.emplace_back(key, body);
    }
  });
  auto loaded_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return loaded.size();
  };
  while (loaded_count() < 50 && !load_failed)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  {
    std::lock_guard<std::mutex> lock(mu);  // answered before the request is sent
    done.insert(done.end(), loaded.begin(), loaded.end());
  }
  const HttpReply backup = PostBackup(daemon_.admin_port(), "snap1");
  const size_t after = loaded_count();
  while (loaded_count() < after + 50 && !load_failed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  load.join();
  ASSERT_FALSE(load_failed);
  ASSERT_EQ(backup.status, 200) << backup.body << daemon_.Log();
  const std::string expected = Root() + "/snap1";
  EXPECT_EQ(backup.body, expected + "\n");
  ASSERT_TRUE(fs::path(expected).is_absolute());
  ASSERT_TRUE(fs::is_directory(expected));
  EXPECT_NE(daemon_.Log().find("backup " + expected + " written in"), std::string::npos)
      << daemon_.Log();

  Daemon second;
  std::string error;
  ASSERT_TRUE(second.Start(expected, {"--backup-dir", dir_.Sub("backups2")}, &error)) << error;
  Client c2;
  ASSERT_TRUE(c2.Connect(second.port()));
  uint64_t id = 1;
  for (const auto& [key, body] : done) {
    v1::Response r = c2.Call(ReserveReq(id++, "s", key, "fp"));
    ASSERT_EQ(r.reserve().outcome(), v1::RESERVE_COMPLETED) << key << ": " << r.DebugString();
    EXPECT_EQ(r.reserve().result().body(), body) << key;
  }
  // The first daemon is unaffected.
  std::string health;
  EXPECT_EQ(HttpGet(daemon_.admin_port(), "/health", &health), 200);
  EXPECT_EQ(second.Stop(), 0) << second.Log();
}

TEST_F(DaemonBackupTest, TargetsAreConfinedToTheBackupRoot) {
  ASSERT_TRUE(Complete(&client_, &next_id_, "k", "v"));
  const uint16_t admin = daemon_.admin_port();
  const HttpReply first = PostBackup(admin, "  snap1\n");  // whitespace is trimmed
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.body, Root() + "/snap1\n");

  HttpReply r = PostBackup(admin, "snap1");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("exists"), std::string::npos) << r.body;
  EXPECT_EQ(PostBackup(admin, Root() + "/snap1").status, 409);
  EXPECT_EQ(PostBackup(admin, ".").status, 409);  // the root itself

  r = PostBackup(admin, "/tmp/elsewhere");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_FALSE(fs::exists("/tmp/elsewhere"));
  EXPECT_EQ(PostBackup(admin, dir_.Sub("backups-sibling")).status, 403);

  const std::vector<std::string> bad_paths = {
      "../escape", "a/../../escape",       Root() + "/../escape",  "a/../b", "",
      " \n",       std::string(4097, 'a'), std::string("a\0b", 3), "a\tb"};
  for (const std::string& bad : bad_paths) {
    r = PostBackup(admin, bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(r.body.find('\n'), r.body.size() - 1) << r.body;  // one line
  }
  EXPECT_FALSE(fs::exists(dir_.Sub("escape")));

  // A symlink inside the root may not lead the backup outside it.
  ASSERT_TRUE(fs::create_directory(dir_.Sub("outside")));
  fs::create_directory_symlink(dir_.Sub("outside"), Root() + "/link");
  r = PostBackup(admin, "link/snap");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(PostBackup(admin, Root() + "/link/deeper/snap").status, 403);
  EXPECT_TRUE(fs::is_empty(dir_.Sub("outside")));
  // A symlink as the target, or as RocksDB's staging directory.
  fs::create_directory_symlink(dir_.Sub("outside"), Root() + "/snap2");
  EXPECT_EQ(PostBackup(admin, "snap2").status, 409);
  fs::create_directory_symlink(dir_.Sub("outside"), Root() + "/snap3.tmp");
  EXPECT_EQ(PostBackup(admin, "snap3").status, 409);

  // Nested and absolute targets inside the root are fine.
  r = PostBackup(admin, Root() + "/daily/./2024-01-01/");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, Root() + "/daily/2024-01-01\n");

  EXPECT_EQ(Http(admin, "GET", "/backup").status, 405);
  r = Http(admin, "PUT", "/backup", "snap9");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("Allow: POST"), std::string::npos) << r.head;
  std::string body;
  EXPECT_EQ(HttpGet(admin, "/backup", &body), 405);
  EXPECT_FALSE(fs::exists(Root() + "/snap9"));
  // Above the 8 KiB request limit: 413, or the connection reset before it is read.
  r = Http(admin, "POST", "/backup", std::string(9000, 'a'));
  EXPECT_TRUE(r.status == 413 || r.status == 0) << r.status;
}

TEST_F(DaemonBackupTest, ConcurrentBackupsRunOneAtATime) {
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(Complete(&client_, &next_id_, "k" + std::to_string(i), std::string(512, 'b')));
  }
  std::vector<HttpReply> replies(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < replies.size(); ++i) {
    threads.emplace_back(
        [&, i] { replies[i] = PostBackup(daemon_.admin_port(), "c" + std::to_string(i)); });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const HttpReply& r = replies[i];
    if (r.status == 200) {
      ++ok;
      EXPECT_TRUE(fs::is_directory(Root() + "/c" + std::to_string(i)));
    } else {
      EXPECT_EQ(r.status, 409) << r.body;
      EXPECT_EQ(r.body, "a backup is already running\n");
    }
  }
  EXPECT_GE(ok, 1);
}

TEST_F(DaemonBackupTest, ShutdownWaitsForARunningBackup) {
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(Complete(&client_, &next_id_, "k" + std::to_string(i), std::string(512, 'b')));
  }
  HttpReply reply;
  std::thread post([&] { reply = PostBackup(daemon_.admin_port(), "snap"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  client_.Close();
  EXPECT_EQ(daemon_.Stop(), 0) << daemon_.Log();  // a clean exit, whatever the timing
  post.join();
  // The shutdown either came first (503, or the connection dropped), or it
  // waited for the backup, which then completed and opens.
  const std::string log = daemon_.Log();
  const std::string target = Root() + "/snap";
  if (log.find("waiting for the backup in progress") != std::string::npos) {
    EXPECT_NE(log.find("backup " + target + " written in"), std::string::npos) << log;
  }
  if (reply.status != 200) {
    EXPECT_TRUE(reply.status == 0 || reply.status == 503) << reply.status << " " << reply.body;
  }
  if (fs::is_directory(target)) {
    Daemon second;
    std::string error;
    ASSERT_TRUE(second.Start(target, {"--backup-dir", dir_.Sub("b2")}, &error)) << error;
    Client c;
    ASSERT_TRUE(c.Connect(second.port()));
    EXPECT_EQ(c.Call(ReserveReq(1, "s", "k199", "fp")).reserve().outcome(), v1::RESERVE_COMPLETED);
  }
}

}  // namespace
}  // namespace idem::testutil
