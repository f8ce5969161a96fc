// Tar archives: a written folder extracts whole; hostile entries are refused by name and
// leave nothing behind.
#include "core/tar.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

namespace acs {
namespace {

namespace fs = std::filesystem;

class TarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("acs_tar_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "in");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string File(const std::string& rel, const std::string& bytes) {
    const fs::path p = dir_ / "in" / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Write(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }
  // The header at `at` renamed (and retyped), its checksum made right again.
  static void Reheader(std::string& bytes, size_t at, const std::string& name, char type = '0') {
    std::memset(bytes.data() + at, 0, 100);
    std::memcpy(bytes.data() + at, name.data(), std::min<size_t>(name.size(), 100));
    bytes[at + 156] = type;
    std::memset(bytes.data() + at + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bytes[at + i]);
    std::snprintf(bytes.data() + at + 148, 8, "%06o", sum);
  }
  // An archive of one 5-byte file named `name` of `type`.
  std::string Forged(const std::string& name, char type = '0') {
    const std::string archive = (dir_ / "one.tar").string();
    EXPECT_TRUE(WriteTar({{"placeholder", File("p", "hello")}}, archive).ok());
    std::string bytes = Read(archive);
    Reheader(bytes, 0, name, type);
    return bytes;
  }
  fs::path dir_;
};

TEST_F(TarTest, AWrittenFolderExtractsWhole) {
  const std::string long_dir(120, 'd');
  std::vector<std::pair<std::string, std::string>> files = {
      {"coat/a.png", File("coat/a.png", "AAAA")},
      {"bag/nested/b.jpg", File("bag/nested/b.jpg", std::string(1500, 'b'))},
      {long_dir + "/c.png", File("c.png", "")},  // a path past 100 bytes uses the prefix field
  };
  const std::string archive = (dir_ / "folder.tar").string();
  ASSERT_TRUE(WriteTar(files, archive).ok());
  EXPECT_TRUE(IsTarFile(archive));
  EXPECT_EQ(fs::file_size(archive) % 512, 0u);
  ASSERT_TRUE(ExtractTar(archive, (dir_ / "out").string()).ok());
  EXPECT_EQ(Read(dir_ / "out" / "coat" / "a.png"), "AAAA");
  EXPECT_EQ(Read(dir_ / "out" / "bag" / "nested" / "b.jpg"), std::string(1500, 'b'));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "out" / long_dir / "c.png"));
  // The destination must not exist.
  EXPECT_EQ(ExtractTar(archive, (dir_ / "out").string()).code(), StatusCode::kFailedPrecondition);
  // Paths that are not plain and relative are not written.
  EXPECT_EQ(WriteTar({{"../x", files[0].second}}, archive).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteTar({{std::string(300, 'x'), files[0].second}}, archive).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsTarFile(files[0].second));
}

TEST_F(TarTest, HostileEntriesAreRefusedByNameAndLeaveNothing) {
  struct Case {
    std::string name;
    char type;
    std::string words;
  };
  const std::vector<Case> cases = {
      {"/etc/passwd", '0', "entry '/etc/passwd' points outside the archive"},
      {"a/../../x", '0', "entry 'a/../../x' points outside the archive"},
      {"link", '2', "entry 'link' is a link, device or FIFO (type '2')"},
      {"hard", '1', "entry 'hard' is a link"},
      {"dev", '3', "is a link, device or FIFO"},
  };
  for (const Case& c : cases) {
    const fs::path archive = dir_ / "hostile.tar";
    Write(archive, Forged(c.name, c.type));
    const fs::path out = dir_ / "out";
    Status s = ExtractTar(archive.string(), out.string());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(s.message().find(c.words), std::string::npos) << s.message();
    EXPECT_FALSE(fs::exists(out)) << c.name;
  }
  // A path twice (the second would overwrite the first), and a header broken on the way.
  const std::string p = File("p2", "x");
  const fs::path twice = dir_ / "twice.tar";
  EXPECT_EQ(WriteTar({{"a.png", p}, {"./a.png", p}}, twice.string()).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteTar({{"a.png", p}, {"b.png", p}}, twice.string()).ok());
  std::string bytes = Read(twice);
  Reheader(bytes, 1024, "./a.png");
  Write(twice, bytes);
  Status s = ExtractTar(twice.string(), (dir_ / "out").string());
  EXPECT_NE(s.message().find("entry './a.png' repeats a path"), std::string::npos) << s.message();
  bytes[1024] = 'b';
  Write(twice, bytes);
  s = ExtractTar(twice.string(), (dir_ / "out").string());
  EXPECT_NE(s.message().find("header 2 has a wrong checksum"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  // Cut short inside a file.
  bytes = Forged("ok.png");
  Write(dir_ / "cut.tar", bytes.substr(0, 512 + 3));
  s = ExtractTar((dir_ / "cut.tar").string(), (dir_ / "out").string());
  EXPECT_NE(s.message().find("cut short in entry 'ok.png'"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

// `tar -C DIR -cf x.tar .` writes the root "./" first; a pax path with a NUL byte would be
// cut there by the file system (here overwriting a.png past the check for repeated paths).
TEST_F(TarTest, TheRootEntryIsSkippedAndAPaxPathWithANulRefused) {
  const std::string archive = (dir_ / "root.tar").string();
  ASSERT_TRUE(WriteTar({{"root", File("empty", "")}, {"coat/x.png", File("x", "px")}}, archive).ok());
  std::string bytes = Read(archive);
  Reheader(bytes, 0, "./", '5');
  Write(archive, bytes);
  ASSERT_TRUE(ExtractTar(archive, (dir_ / "out").string()).ok());
  EXPECT_EQ(Read(dir_ / "out" / "coat" / "x.png"), "px");

  const std::string pax = (dir_ / "pax.tar").string();
  const std::string record("15 path=a.png\0\n", 15);
  ASSERT_TRUE(WriteTar({{"a.png", File("a", "1")}, {"pax", File("pax", record)}, {"b.png", File("b", "2")}}, pax).ok());
  bytes = Read(pax);
  Reheader(bytes, 1024, "pax", 'x');  // the second entry: a.png's header, one data block, then it
  Write(pax, bytes);
  const Status s = ExtractTar(pax, (dir_ / "out2").string());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("entry 'a.png' has a NUL byte in its path"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir_ / "out2"));
}

TEST_F(TarTest, LimitsOnEntriesAndBytes) {
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 5; ++i) {
    files.emplace_back(std::to_string(i) + ".png", File(std::to_string(i), std::string(100, 'x')));
  }
  const std::string archive = (dir_ / "five.tar").string();
  ASSERT_TRUE(WriteTar(files, archive).ok());
  TarLimits few;
  few.max_entries = 4;
  Status s = ExtractTar(archive, (dir_ / "out").string(), few);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("more than 4 entries"), std::string::npos) << s.message();
  TarLimits small;
  small.max_bytes = 450;
  s = ExtractTar(archive, (dir_ / "out").string(), small);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  EXPECT_TRUE(ExtractTar(archive, (dir_ / "out").string()).ok());
}

}  // namespace
}  // namespace acs
