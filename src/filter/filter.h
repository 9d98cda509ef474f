// The training-data gate: reads a manifest (JSON Lines of items), keeps the items whose use
// for one purpose is allowed, writes them byte for byte, and reports why the others were not
// kept (DESIGN.md "Training-data gate and lineage").
#ifndef ASSENT_FILTER_FILTER_H_
#define ASSENT_FILTER_FILTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <vector>
#include <string>
#include <string_view>

#include "assent/engine.h"

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom
#include "assent/result.h"

namespace assent {

// Hashes a plain manifest file from its start on a thread of its own while the caller prepares
// the run (opens the ledger, which takes a while): the run then hashes only what this had not
// reached. Null for standard input, a compressed or an unreadable file.
class InputHashAhead {
 public:
  static std::unique_ptr<InputHashAhead> Start(const std::string& path);
  ~InputHashAhead();  // stops and waits for the thread
  struct State;
  State& state() { return *state_; }

 private:
  explicit InputHashAhead(std::unique_ptr<State> s);
  std::unique_ptr<State> state_;
};

// How a run's error begins when its outputs were renamed into place before it failed (the
// report's rename, or syncing their directories): the caller must not say nothing was written.
inline constexpr std::string_view kOutputsInPlace = "the outputs are in place";

struct FilterOptions {
  std::string purpose;
  std::string in_path, out_path;
  // Where to write the report (JSON), or empty. Written to a temporary file with the outputs
  // and renamed into place only once every output is complete.
  std::string report_path;
  std::optional<Timestamp> at;  // default: now
  bool skip_malformed = false;
  std::string id_field = "id", category_field = "category", account_field = "account",
              subjects_field = "subjects";
  // Fields holding a publisher's machine-readable opt-out (docs/formats/manifest.md), honoured
  // for purposes under ai_training: IETF AIPREF Content-Usage ("train-ai=n"), Content-Signal
  // ("ai-train=no"), W3C TDMRep (tdm-reservation 1), C2PA/CAWG training-and-mining
  // assertions. An empty name turns that signal off.
  std::string content_usage_field = "content_usage", content_signal_field = "content_signal",
              tdm_field = "tdm_reservation", c2pa_field = "c2pa_training";
  // Set by RunFilter: whether the purpose is one the signals speak of.
  bool read_signals = false;
  // Bytes read per block (each block is parsed and decided on one thread); small in tests, so
  // that lines cross block boundaries.
  size_t block_bytes = 2 << 20;
  // Write N shard files OUT.00-of-N ... instead of OUT, each item placed by a stable hash of
  // its first subject (else its account, else its id): SISA-style training.
  int shards = 0;
  // Threads the run takes: reading, hashing, parsing, deciding and writing are shared among
  // them (the output order never depends on it).
  int threads = 1;
  // Hash the input and the output (SHA-256, the report's input_sha256 and output_sha256, what a
  // dataset records). Off, a run does not read its bytes twice, and the report's hashes are
  // empty: for a run whose report nobody will see or record.
  bool hash = true;
  // The input's hash begun ahead (for in_path), or null.
  InputHashAhead* hash_ahead = nullptr;
  // Collect the subjects and accounts of kept items (for dataset registration).
  bool collect_parties = false;
  // The outputs and the report reach the disk (fsync) before they are renamed into place, and
  // the renames before the run returns: a dataset's record in the ledger never names files a
  // crash could leave empty or missing.
  bool durable = false;
  // Called now and then with (bytes read, total bytes) for a progress line.
  std::function<void(uint64_t, uint64_t)> progress;
  // For callers filtering in memory (the Python package): one byte per input line, blank ones
  // included, 1 when the line is kept. With an empty out_path nothing is written.
  std::vector<uint8_t>* kept_lines = nullptr;
};

struct FilterReport {
  uint64_t items = 0, kept = 0, excluded = 0, malformed = 0, duplicate_ids = 0;
  bool duplicates_checked_fully = true;
  std::map<std::string, uint64_t> excluded_by_reason;  // reason -> count
  std::map<std::string, uint64_t> excluded_by_signal;  // signal -> items it opted out
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_category;  // category -> kept, excluded
  uint64_t position = 0;
  std::string terms;
  std::string input_sha256, output_sha256;
  double seconds = 0;
  std::set<std::string> subjects, accounts;  // of kept items, when collected
  struct Shard {
    std::string file;
    uint64_t items = 0;
    std::set<std::string> subjects;
  };
  std::vector<Shard> shards;
  // Likely mistakes, said on standard error and in the report: a field no item carries while
  // a similar one is common, a category the terms do not define.
  std::vector<std::string> warnings;

  std::string ToJson() const;
  std::string Summary() const;  // a few lines for stderr
};

namespace internal {
// One manifest item's fields as the gate reads them.
struct ManifestItem {
  std::string id, category, account;
  bool has_account = false;
  std::vector<std::string> subjects;
  std::vector<std::string_view> subject_views;  // views of `subjects`, filled by the caller
};
// Reads one manifest line (without its line ending) into `*item`, which must be fresh; returns
// why the line is malformed (not UTF-8 or JSON, a key given twice, a missing or mistyped field,
// an empty or blank id), or "" when it is an item. Exposed for the fuzzer.
std::string ParseManifestItem(simdjson::dom::parser& parser, const FilterOptions& o,
                              std::string_view line, ManifestItem* item);
}  // namespace internal

// The shard files' names: OUT.00-of-N, ...
std::string ShardFileName(const std::string& out, int index, int count);

// Filters with one pinned snapshot (every item decided at the same ledger position).
// The output is written to a temporary file beside --out and renamed only on success; on any
// error nothing is left at --out. Temporary files that an earlier, killed run left beside the
// outputs are removed first. Errors: kInvalidArgument for an unknown purpose, a malformed line
// (naming it) without skip_malformed, or an output or report that is the input itself (the
// same file, also through a symlink or hard link); kNotFound / kUnavailable for files.
Result<FilterReport> RunFilter(const Snapshot& snapshot, Timestamp now, const FilterOptions& o);

// The same over a manifest held in memory (`o.in_path` only names it in messages): what a
// DataFrame partition or a batch of a data loader is turned into, so that every front end
// keeps exactly what the CLI keeps. Set `o.kept_lines` to learn which lines were kept.
Result<FilterReport> FilterBuffer(const Snapshot& snapshot, Timestamp now, const FilterOptions& o,
                                  std::string_view manifest);

}  // namespace assent

#endif  // ASSENT_FILTER_FILTER_H_
