// The event-stream check of terms YAML (yaml_guard.h): yaml-cpp's Parser calls a handler per
// event; the handler keeps one frame per open collection and stops the parse by throwing.
#include "terms/yaml_guard.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <set>
#include <sstream>
#include <vector>

namespace assent {
namespace {

struct Stop {
  YamlGuardProblem problem;
};

class GuardHandler : public YAML::EventHandler {
 public:
  explicit GuardHandler(const YamlGuardLimits& limits) : limits_(limits) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) Fail(mark, "a terms file holds one YAML document", "yaml-syntax");
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Value(mark, nullptr); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    Fail(mark, "YAML aliases (*name) are not allowed in terms: write the text out", "yaml-alias");
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string& value) override {
    Value(mark, &value);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Open(mark, false);
  }
  void OnSequenceEnd() override { frames_.pop_back(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Open(mark, true);
  }
  void OnMapEnd() override { frames_.pop_back(); }

 private:
  struct Frame {
    bool map = false;
    bool expecting_key = true;
    std::set<std::string> keys;
  };

  [[noreturn]] static void Fail(const YAML::Mark& mark, std::string message, std::string code) {
    throw Stop{{mark.line + 1, mark.column + 1, std::move(message), std::move(code)}};
  }

  void Count(const YAML::Mark& mark) {
    if (++nodes_ > limits_.max_nodes) {
      Fail(mark, "more than " + std::to_string(limits_.max_nodes) + " YAML nodes",
           "yaml-too-large");
    }
  }

  // A scalar (or null) where a key or a value goes.
  void Value(const YAML::Mark& mark, const std::string* text) {
    Count(mark);
    if (frames_.empty() || !frames_.back().map) return;
    Frame& f = frames_.back();
    if (f.expecting_key) {
      const std::string key = text ? *text : std::string("~");
      if (!f.keys.insert(key).second) {
        Fail(mark, "the key '" + key + "' appears twice in this mapping: give it once",
             "yaml-duplicate-key");
      }
    }
    f.expecting_key = !f.expecting_key;
  }

  void Open(const YAML::Mark& mark, bool map) {
    Count(mark);
    if (!frames_.empty() && frames_.back().map) {
      frames_.back().expecting_key = !frames_.back().expecting_key;  // a key or a value
    }
    if (frames_.size() >= limits_.max_depth) {
      Fail(mark, "nested deeper than " + std::to_string(limits_.max_depth) + " levels",
           "yaml-too-large");
    }
    frames_.push_back(Frame{map, true, {}});
  }

  const YamlGuardLimits& limits_;
  std::vector<Frame> frames_;
  size_t nodes_ = 0;
  int documents_ = 0;
};

}  // namespace

YamlGuardProblem CheckYamlBounds(std::string_view yaml, const YamlGuardLimits& limits) {
  if (yaml.size() > limits.max_bytes) {
    return {1, 1,
            "the document is " + std::to_string(yaml.size()) + " bytes; terms are limited to " +
                std::to_string(limits.max_bytes),
            "yaml-too-large"};
  }
  try {
    std::istringstream in{std::string(yaml)};
    YAML::Parser parser(in);
    GuardHandler handler(limits);
    while (parser.HandleNextDocument(handler)) {
    }
  } catch (const Stop& s) {
    return s.problem;
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return {1, 1, "YAML syntax: " + e.msg, "yaml-syntax"};
    return {e.mark.line + 1, e.mark.column + 1, "YAML syntax: " + e.msg, "yaml-syntax"};
  } catch (const std::exception& e) {
    return {1, 1, std::string("could not read the document: ") + e.what(), "yaml-syntax"};
  }
  return {};
}

}  // namespace assent
