// The example terms (examples/terms/*.yaml), built into the binary (cmake/embed_examples.cmake)
// so that `assent serve --demo` runs from any directory.
#ifndef ASSENT_CLI_EXAMPLE_TERMS_H_
#define ASSENT_CLI_EXAMPLE_TERMS_H_

#include <string_view>
#include <vector>

namespace assent::cli {

struct ExampleTerms {
  std::string_view file;  // "example-meetings-2023-08-11.yaml"
  std::string_view yaml;
};
// In file-name order (so in publication order).
const std::vector<ExampleTerms>& EmbeddedExampleTerms();

}  // namespace assent::cli

#endif  // ASSENT_CLI_EXAMPLE_TERMS_H_
