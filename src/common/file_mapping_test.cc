// FileMapping: a mapped file read at any offset, and a file truncated underneath its mapping
// gives zeros and says so instead of killing the process; a SIGBUS elsewhere still does.
#include "common/file_mapping.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace assent {
namespace {

class FileMappingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("assent-mapping-" + std::to_string(::getpid()) + ".bin")).string();
    for (int i = 0; i < 300'000; ++i) bytes_.push_back(static_cast<char>('a' + i % 26));
    const int fd = ::open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, bytes_.data(), bytes_.size()), static_cast<ssize_t>(bytes_.size()));
    ::close(fd);
    fd_ = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  std::string path_, bytes_;
  int fd_ = -1;
};

TEST_F(FileMappingTest, ReadsTheFileFromAnyOffset) {
  std::atomic<bool> shrank{false};
  for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{4095}, uint64_t{4096}, uint64_t{123'457}}) {
    FileMapping m(fd_, offset, 70'000, &shrank);
    ASSERT_TRUE(m) << offset;
    EXPECT_EQ(std::string_view(m.data(), 70'000), std::string_view(bytes_).substr(offset, 70'000));
  }
  FileMapping moved;
  {
    FileMapping m(fd_, 10, 100, &shrank);
    moved = std::move(m);
  }
  EXPECT_EQ(std::string_view(moved.data(), 100), std::string_view(bytes_).substr(10, 100));
  moved.Unmap();
  EXPECT_FALSE(moved);
  EXPECT_FALSE(shrank.load());
}

TEST_F(FileMappingTest, ATruncatedFileReadsAsZerosAndSaysSo) {
  std::atomic<bool> shrank{false}, other{false};
  FileMapping m(fd_, 5'000, 250'000, &shrank);
  FileMapping untouched(fd_, 0, 1'000, &other);
  ASSERT_TRUE(m);
  ASSERT_EQ(::ftruncate(fd_, 100'000), 0);  // what the mapping holds from 95,000 on is gone
  size_t zeros = 0;
  for (size_t i = 0; i < 250'000; ++i) zeros += m.data()[i] == 0;  // no SIGBUS kills this
  EXPECT_TRUE(shrank.load());
  EXPECT_FALSE(other.load()) << "only the mapping that was touched beyond the end is told";
  EXPECT_GE(zeros, 250'000u - 95'000u - 4096u);
  EXPECT_EQ(std::string_view(m.data(), 1000), std::string_view(bytes_).substr(5'000, 1000));
}

TEST(FileMappingDeathTest, ASigbusAnywhereElseStillEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::atomic<bool> shrank{false};
        const int fd = ::open("/proc/self/exe", O_RDONLY);
        FileMapping m(fd, 0, 64, &shrank);  // installs the handler
        ::raise(SIGBUS);
        std::exit(0);
      },
      // Killed by the signal, or ended by the handler from before (a sanitizer's reports it).
      [](int status) { return !WIFEXITED(status) || WEXITSTATUS(status) != 0; }, "");
}

}  // namespace
}  // namespace assent
