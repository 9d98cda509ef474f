// Bounds on what a terms document may ask of the YAML reader, checked on the parser's event
// stream before any node is built: a small file must not be able to cost minutes or gigabytes
// (a "billion laughs" of nested aliases), and a key given twice must not be read one way here
// and another way by the next tool.
#ifndef ASSENT_TERMS_YAML_GUARD_H_
#define ASSENT_TERMS_YAML_GUARD_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace assent {

struct YamlGuardLimits {
  size_t max_bytes = 16u << 20;     // a terms document of 16 MiB is far past any real one
  size_t max_nodes = 2'000'000;     // scalars, sequences and maps together
  size_t max_depth = 64;            // nesting of sequences and maps
};

// What is wrong with the document, at 1-based line and column, or an empty message.
struct YamlGuardProblem {
  int line = 0, column = 0;
  std::string message;  // empty: the document is within bounds
  std::string code;     // "yaml-alias", "yaml-duplicate-key", "yaml-too-large", "yaml-syntax"
};

// Scans `yaml` without building nodes. Refuses aliases (`*name`: a terms document has no use
// for them, and expanding them is how a small file becomes a huge one), duplicate keys in any
// mapping, more than one document, and anything past `limits`. Never throws.
YamlGuardProblem CheckYamlBounds(std::string_view yaml, const YamlGuardLimits& limits = {});

}  // namespace assent

#endif  // ASSENT_TERMS_YAML_GUARD_H_
