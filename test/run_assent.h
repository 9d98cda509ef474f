// Runs the `assent` binary under test to completion, from the source tree (tests' helper).
#ifndef ASSENT_TEST_RUN_ASSENT_H_
#define ASSENT_TEST_RUN_ASSENT_H_

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace assent::testing_cli {

struct RunResult {
  int code;         // the exit status (-1: killed)
  std::string out;  // stdout and stderr together
};

inline RunResult RunAssent(const std::string& args) {
  std::string cmd = "cd '" ASSENT_SOURCE_DIR "' && '" ASSENT_BINARY "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace assent::testing_cli

#endif  // ASSENT_TEST_RUN_ASSENT_H_
