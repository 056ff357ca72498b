#include "server/auth.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/testutil/temp_dir.h"

namespace idem::server {
namespace {

std::string Hex(const std::array<unsigned char, 32>& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

std::string Entry(const std::string& hex, const std::string& tenant, const std::string& role) {
  return "[[tokens]]\ntoken_sha256 = \"" + hex + "\"\ntenant = \"" + tenant + "\"\nrole = \"" +
         role + "\"\n";
}

class AuthTest : public ::testing::Test {
 protected:
  std::string WriteFile(const std::string& text) {
    std::string path = dir_.Sub("auth.toml");
    std::ofstream(path) << text;
    return path;
  }

  // Expects Load to fail with InvalidArgument naming the file and `expected`,
  // and never quoting the hash it was given.
  void ExpectLoadError(const std::string& text, const std::string& expected) {
    SCOPED_TRACE(text);
    const std::string path = WriteFile(text);
    AuthTable table;
    Status s = AuthTable::Load(path, &table);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.message().find("auth file " + path), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(expected), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find(read_hash_), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  }

  testutil::TempDir dir_;
  const std::string read_hash_ = Hex(Sha256("token-read"));
};

TEST_F(AuthTest, Sha256KnownVectors) {
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(AuthTest, LoadsTokensAndVerifiesThem) {
  std::string upper = Hex(Sha256("token-admin"));
  for (char& c : upper) c = static_cast<char>(toupper(c));
  const std::string path = WriteFile(Entry(read_hash_, "alpha", "read") +
                                     Entry(Hex(Sha256("token-write")), "beta", "write") +
                                     Entry(upper, "gamma", "admin"));
  AuthTable table;
  ASSERT_TRUE(AuthTable::Load(path, &table).ok());
  EXPECT_EQ(table.size(), 3u);
  struct Case {
    const char* token;
    const char* tenant;
    Role role;
  };
  for (const Case& c :
       {Case{"token-read", "alpha", Role::kRead}, Case{"token-write", "beta", Role::kWrite},
        Case{"token-admin", "gamma", Role::kAdmin}}) {
    std::optional<Principal> p = table.Verify(c.token);
    ASSERT_TRUE(p.has_value()) << c.token;
    EXPECT_EQ(p->tenant, c.tenant);
    EXPECT_EQ(p->role, c.role);
  }
  EXPECT_FALSE(table.Verify("token-wrong").has_value());
  EXPECT_FALSE(table.Verify("").has_value());
  EXPECT_FALSE(table.Verify(read_hash_).has_value());  // the hash is not the token
}

TEST_F(AuthTest, EmptyTableVerifiesNothing) {
  AuthTable table;
  EXPECT_FALSE(table.Verify("anything").has_value());
}

TEST_F(AuthTest, AddForTestAddsAPlainToken) {
  AuthTable table;
  table.AddForTest("secret", Principal{"t1", Role::kWrite});
  table.AddForTest("other", Principal{"t2", Role::kAdmin});
  ASSERT_TRUE(table.Verify("secret").has_value());
  EXPECT_EQ(table.Verify("secret")->tenant, "t1");
  EXPECT_EQ(table.Verify("other")->role, Role::kAdmin);
  EXPECT_FALSE(table.Verify("secre").has_value());
}

TEST_F(AuthTest, MalformedFilesNameTheField) {
  const std::string good = Entry(Hex(Sha256("token-write")), "beta", "write");
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {Entry(std::string(63, 'a') + "g", "a", "read"), "tokens[0].token_sha256"},
      {Entry(read_hash_.substr(0, 62), "a", "read"), "tokens[0].token_sha256"},
      {Entry(read_hash_ + "00", "a", "read"), "tokens[0].token_sha256"},
      {good + Entry(read_hash_, "a", "root"),
       "tokens[1].role is \"root\"; it must be read, write or admin"},
      {good + Entry(read_hash_, "", "read"), "tokens[1].tenant"},
      {good + Entry(read_hash_, std::string(129, 't'), "read"), "tokens[1].tenant"},
      {"[[tokens]]\ntenant = \"a\"\nrole = \"read\"\n", "tokens[0].token_sha256 is missing"},
      {"[[tokens]]\ntoken_sha256 = \"" + read_hash_ + "\"\nrole = \"read\"\n",
       "tokens[0].tenant is missing"},
      {"[[tokens]]\ntoken_sha256 = \"" + read_hash_ + "\"\ntenant = \"a\"\n",
       "tokens[0].role is missing"},
      {"[[tokens]]\ntoken_sha256 = \"" + read_hash_ + "\"\ntenant = 5\nrole = \"read\"\n",
       "tokens[0].tenant must be a string"},
      {Entry(read_hash_, "a", "read") + "tennant = \"b\"\n", "tokens[0] has an unknown field"},
      {"", "no [[tokens]]"},
      {"tokens = []\n", "no [[tokens]]"},
      {"tokens = 3\n", "tokens must be an array"},
      {"tokens = [1]\n", "tokens[0] is not a table"},
      {"other = 1\n" + good, "unknown key \"other\""},
      {Entry(read_hash_, "a", "read") + good + Entry(read_hash_, "b", "admin"),
       "tokens[2].token_sha256 is the same as tokens[0]'s"},
      {"[[tokens]\n", "line 1"},
  };
  for (const Case& c : cases) ExpectLoadError(c.text, c.expected);
}

TEST_F(AuthTest, DuplicateIsCaseInsensitive) {
  std::string upper = read_hash_;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  ExpectLoadError(Entry(read_hash_, "a", "read") + Entry(upper, "b", "read"),
                  "tokens[1].token_sha256");
}

TEST_F(AuthTest, MissingFileIsAnError) {
  const std::string path = dir_.Sub("absent.toml");
  AuthTable table;
  Status s = AuthTable::Load(path, &table);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("auth file " + path), std::string::npos) << s.message();
}

TEST_F(AuthTest, FailedLoadLeavesTableUntouched) {
  AuthTable table;
  table.AddForTest("kept", Principal{"t", Role::kRead});
  ASSERT_FALSE(AuthTable::Load(WriteFile(Entry(read_hash_, "a", "root")), &table).ok());
  EXPECT_EQ(table.size(), 1u);
  EXPECT_TRUE(table.Verify("kept").has_value());
}

TEST_F(AuthTest, RoleAllowsMatrix) {
  struct Row {
    OpKind op;
    bool read;
    bool write;
    bool admin;
  };
  const Row rows[] = {
      {OpKind::kHello, true, true, true},     {OpKind::kPing, true, true, true},
      {OpKind::kLookup, true, true, true},    {OpKind::kScan, true, true, true},
      {OpKind::kStats, true, true, true},     {OpKind::kReserve, false, true, true},
      {OpKind::kComplete, false, true, true}, {OpKind::kRelease, false, true, true},
      {OpKind::kRenew, false, true, true},    {OpKind::kPurge, false, false, true},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(static_cast<int>(r.op));
    EXPECT_EQ(RoleAllows(Role::kRead, r.op), r.read);
    EXPECT_EQ(RoleAllows(Role::kWrite, r.op), r.write);
    EXPECT_EQ(RoleAllows(Role::kAdmin, r.op), r.admin);
    EXPECT_FALSE(RoleAllows(static_cast<Role>(0), r.op));
  }
}

TEST_F(AuthTest, RoleNames) {
  EXPECT_STREQ(RoleName(Role::kRead), "read");
  EXPECT_STREQ(RoleName(Role::kWrite), "write");
  EXPECT_STREQ(RoleName(Role::kAdmin), "admin");
}

}  // namespace
}  // namespace idem::server
