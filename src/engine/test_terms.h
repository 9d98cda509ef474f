// Terms shared by the engine's unit and property tests: the DESIGN.md example.
#ifndef ASSENT_ENGINE_TEST_TERMS_H_
#define ASSENT_ENGINE_TEST_TERMS_H_

#include <fstream>
#include <sstream>
#include <string>

#include "assent/terms.h"

namespace assent::testing_terms {

inline std::shared_ptr<const TermsSet> BaseTerms() {
  std::ifstream in(std::string(ASSENT_SOURCE_DIR) + "/test/cases/terms/base.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = CompileTerms(ss.str(), "base.yaml");
  return *TermsSet::Create({*t});
}

}  // namespace assent::testing_terms

#endif  // ASSENT_ENGINE_TEST_TERMS_H_
