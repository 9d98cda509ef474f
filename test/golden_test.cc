// Golden tests: the real `assent` binary run on the example terms; its output and exit code
// must match test/golden/NAME.txt. Set ASSENT_UPDATE_GOLDEN=1 to rewrite the files after an
// intended change, then review the diff.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct Golden {
  const char* name;
  const char* args;
  int exit_code;
  const char* env = "";  // VAR=value ... for the command
};

const std::string kV1 = "examples/terms/example-meetings-2023-03-31.yaml";
const std::string kV2 = "examples/terms/example-meetings-2023-08-07.yaml";
const std::string kV3 = "examples/terms/example-meetings-2023-08-11.yaml";

std::string Expand(std::string s) {
  for (auto [k, v] : {std::pair{"$V1", kV1}, {"$V2", kV2}, {"$V3", kV3}}) {
    for (size_t at; (at = s.find(k)) != std::string::npos;) s.replace(at, 3, v);
  }
  return s;
}

const Golden kGoldens[] = {
    {"lint_all", "terms lint $V1 $V2 $V3", 1},
    {"lint_v3", "terms lint $V3", 0},
    {"lint_json_v1", "terms lint --json $V1", 1},
    {"lint_unreadable", "terms lint /nonexistent.yaml", 2},
    {"show_v3", "terms show $V3", 0},
    {"show_json_v2", "terms show --json $V2", 0},
    {"diff_v1_v2", "terms diff $V1 $V2", 0},
    {"diff_v2_v3", "terms diff $V2 $V3", 0},
    {"diff_v3_v2_loosened", "terms diff $V3 $V2", 1},
    {"diff_json_v2_v3", "terms diff --json $V2 $V3", 0},
    {"check_allow", "check --terms $V2 --terms $V3 --events test/golden/events.jsonl "
                    "--category service_generated.telemetry --purpose ai_training.first_party "
                    "--subject u2 --at 2023-09-01T00:00:00Z", 0},
    {"check_deny_json", "check --terms $V2 --terms $V3 --events test/golden/events.jsonl "
                        "--category content.audio --purpose product_development.quality_review "
                        "--account a1 --subject u1 --at 2023-09-01T00:00:00Z --json", 1},
    {"check_past_json", "check --terms $V2 --terms $V3 --events test/golden/events.jsonl "
                        "--category content.chat --purpose ai_training.first_party --subject u1 "
                        "--at 2023-08-09T00:00:00Z --json", 0},
    {"check_objected", "check --terms $V2 --terms $V3 --events test/golden/events.jsonl "
                       "--category service_generated.product_usage --purpose marketing "
                       "--subject u1 --at 2023-09-01T00:00:00Z", 1},
    {"check_unknown_category", "check --terms $V3 --category content.screen "
                               "--purpose service.delivery --subject u1", 2},
    {"check_bad_events", "check --terms $V3 --events test/golden/bad_events.jsonl "
                         "--category content.chat --purpose service.delivery", 2},
    {"check_no_terms_in_effect", "check --terms $V3 --category content.chat "
                                 "--purpose service.delivery --at 2020-01-01T00:00:00Z", 2},
    {"check_missing_flag", "check --terms $V3 --category content.chat", 2},
    // Colours only when asked for (a terminal, or CLICOLOR_FORCE); NO_COLOR wins over a terminal.
    {"lint_color", "terms lint $V1", 1, "CLICOLOR_FORCE=1"},
    {"lint_no_color", "terms lint $V1", 1, "NO_COLOR=1"},
};

class GoldenTest : public testing::TestWithParam<Golden> {};

TEST_P(GoldenTest, MatchesFile) {
  const Golden& g = GetParam();
  const std::string env = *g.env ? std::string(g.env) + " " : "";
  std::string cmd = "cd '" ASSENT_SOURCE_DIR "' && " + env + "'" ASSENT_BINARY "' " +
                    Expand(g.args) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), g.exit_code) << out;
  std::string actual = "$ " + env + "assent " + Expand(g.args) + "\n" + out + "[exit " +
                       std::to_string(WEXITSTATUS(status)) + "]\n";
  fs::path file = fs::path(ASSENT_SOURCE_DIR) / "test" / "golden" / (std::string(g.name) + ".txt");
  if (std::getenv("ASSENT_UPDATE_GOLDEN")) {
    std::ofstream(file) << actual;
    return;
  }
  std::ifstream in(file);
  ASSERT_TRUE(in) << "missing " << file << "; run with ASSENT_UPDATE_GOLDEN=1";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str());
}

INSTANTIATE_TEST_SUITE_P(Cli, GoldenTest, testing::ValuesIn(kGoldens),
                         [](const testing::TestParamInfo<Golden>& i) { return i.param.name; });

}  // namespace
