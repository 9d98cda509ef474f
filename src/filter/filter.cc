// The manifest filter: streaming, batched through Snapshot::DecideBatch, output renamed into
// place only on success.
#include "filter/filter.h"

#include <openssl/evp.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <fstream>
#include <deque>
#include <future>
#include <thread>
#include <unordered_set>

#include "common/hash.h"
#include "common/json_keys.h"
#include "common/json_writer.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "filter/manifest.h"
#include "filter/streams.h"

namespace assent {
namespace {

constexpr size_t kMaxDuplicateTracking = 4'000'000;  // ids remembered: bounded memory
constexpr int kMaxThreads = 256;  // each holds a batch of kBatch lines in flight

// A streaming SHA-256.
class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  void Update(std::string_view s) { EVP_DigestUpdate(ctx_, s.data(), s.size()); }
  std::string Hex() {
    unsigned char d[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, d, &n);
    return ToHex(d, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// What a worker makes of one block: the kept lines (per shard, in input order) and the counts.
struct BlockResult {
  uint64_t first_line = 0;
  std::string block_data;  // the block's buffer, handed back for the next block
  std::vector<std::string> out;  // per shard (one without shards)
  std::string ordered;           // with shards: every kept line in input order (for the hash)
  uint64_t items = 0, kept = 0, excluded = 0, malformed = 0;
  // Counted per block without a string per item: reasons by enum, categories by the view
  // (few distinct ones a block), turned into names when the results are merged.
  std::array<uint64_t, 32> by_reason{};  // Reason, then the gate's own (kMalformed...)
  std::array<uint64_t, 4> by_signal{};
  std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> by_category;
  std::vector<uint64_t> id_hashes;
  std::vector<uint64_t> shard_items;
  std::vector<std::set<std::string>> shard_subjects;
  std::set<std::string> subjects, accounts;
  std::string error;  // the first malformed line's, when malformed lines fail the run
  size_t error_line = 0;  // its index in the block
  uint64_t lines = 0;     // lines in the block
  internal::BlockItems::FieldStats stats;
  std::vector<uint8_t> kept_lines;  // per line, when FilterOptions::kept_lines asks
};

// An input block: bytes up to a line end (or the input's end), then padding for simdjson.
struct Block {
  std::string data;
  size_t size = 0;
  uint64_t first_line = 0;
  std::vector<std::string> spare_out;  // buffers of an earlier result, for this one's output
};

constexpr std::pair<uint8_t, const char*> kSignalNames[] = {
    {internal::kSignalContentUsage, "content-usage"},
    {internal::kSignalContentSignal, "content-signal"},
    {internal::kSignalTdmRep, "tdmrep"},
    {internal::kSignalC2pa, "c2pa"}};

// A kept line, byte for byte (with its own "\r\n", "\n", or none at the end), into its shard
// (by a stable hash of its first subject, else its account, else its id).
void KeepLine(const FilterOptions& o, const internal::BlockItems& items,
              const internal::ItemView& it, std::string_view bytes, BlockResult* r) {
  size_t shard = 0;
  const std::span<const std::string_view> subjects(items.subjects.data() + it.first_subject,
                                                   it.subject_count);
  if (o.shards) {
    const std::string_view key = !subjects.empty() ? subjects[0]
                                 : it.has_account  ? it.account
                                                   : it.id;
    shard = Hash64(key, 0x51a4d5) % static_cast<uint64_t>(o.shards);
    ++r->shard_items[shard];
    if (o.collect_parties) r->shard_subjects[shard].insert(subjects.begin(), subjects.end());
    r->ordered.append(bytes);
  }
  if (o.collect_parties) {
    r->subjects.insert(subjects.begin(), subjects.end());
    if (it.has_account) r->accounts.insert(std::string(it.account));
  }
  r->out[shard].append(bytes);
  ++r->kept;
}

// The gate's own exclusion reasons, counted after the engine's (Reason).
constexpr size_t kMalformedSlot = 29, kUnknownCategorySlot = 30, kSignalSlot = 31;

std::string ReasonSlotName(size_t slot) {
  if (slot == kMalformedSlot) return "malformed";
  if (slot == kUnknownCategorySlot) return "unknown-category";
  if (slot == kSignalSlot) return "signal-opt-out";
  return std::string(ReasonName(static_cast<Reason>(slot)));
}

// The counts of a category in this block (linear: a block has a handful of categories).
std::pair<uint64_t, uint64_t>& CategoryCounts(BlockResult* r, std::string_view category) {
  for (auto& [name, counts] : r->by_category) {
    if (name == category) return counts;
  }
  return r->by_category.emplace_back(std::string(category), std::pair<uint64_t, uint64_t>{}).second;
}

// Parses, decides and sorts one block (on a worker thread).
BlockResult Work(const Snapshot& snap, const FilterOptions& o, Timestamp now, Timestamp t,
                 Block& block) {
  thread_local simdjson::dom::parser parser;
  thread_local internal::BlockItems items;
  thread_local std::vector<DecisionRequest> requests;
  thread_local std::vector<Result<Decision>> results;
  internal::ReadBlock(parser, o, block.data.data(), block.size, &items);
  requests.resize(items.items.size());
  for (size_t i = 0; i < items.items.size(); ++i) {
    const internal::ItemView& it = items.items[i];
    DecisionRequest& q = requests[i];
    q.category = it.category;
    q.purpose = o.purpose;
    q.subjects = std::span<const std::string_view>(items.subjects.data() + it.first_subject,
                                                   it.subject_count);
    q.account = it.has_account ? std::optional<std::string_view>(it.account) : std::nullopt;
    q.at = o.at ? std::optional<Timestamp>(t) : std::nullopt;
  }
  snap.DecideBatch(requests, now, &results, /*with_parties=*/false);
  BlockResult r;
  r.first_line = block.first_line;
  const size_t shards = std::max(1, o.shards);
  r.out = std::move(block.spare_out);
  r.out.resize(shards);
  for (auto& out : r.out) out.clear();
  if (o.shards) {
    r.shard_items.resize(shards);
    if (o.collect_parties) r.shard_subjects.resize(shards);
  }
  if (o.kept_lines) r.kept_lines.assign(items.lines.size(), 0);
  for (size_t l = 0; l < items.lines.size(); ++l) {
    const internal::BlockItems::Line& line = items.lines[l];
    if (line.kind == internal::BlockItems::Line::Kind::kBlank) continue;
    ++r.items;
    if (line.kind == internal::BlockItems::Line::Kind::kMalformed) {
      if (!o.skip_malformed && r.error.empty()) {
        r.error_line = l;
        r.error = line.error + " (use --skip-malformed to count such lines and go on)";
      }
      ++r.malformed;
      ++r.excluded;
      ++r.by_reason[kMalformedSlot];
      continue;
    }
    const internal::ItemView& it = items.items[line.item];
    r.id_hashes.push_back(Hash64(it.id));
    const Result<Decision>& d = results[line.item];
    auto& counts = CategoryCounts(&r, it.category);
    if (d && d->allow && it.signals == 0) {
      const std::string_view bytes(block.data.data() + line.begin, line.end - line.begin);
      KeepLine(o, items, it, o.out_path.empty() ? std::string_view() : bytes, &r);
      if (o.kept_lines) r.kept_lines[l] = 1;
      ++counts.first;
      continue;
    }
    ++r.excluded;
    ++counts.second;
    if (d && d->allow) {  // consent allows; the publisher's signal does not
      ++r.by_reason[kSignalSlot];
      for (size_t k = 0; k < std::size(kSignalNames); ++k) {
        if (it.signals & kSignalNames[k].first) ++r.by_signal[k];
      }
    } else {
      ++r.by_reason[d ? static_cast<size_t>(d->reason) : kUnknownCategorySlot];
    }
  }
  r.lines = items.lines.size();
  r.stats = std::move(items.stats);
  r.block_data = std::move(block.data);
  return r;
}

// kInvalidArgument when writing `out` would replace the input file (the same file under
// another name, a symlink or a hard link to it).
Status RefuseInputAsOutput(const std::string& in, const std::string& out, const char* what) {
  struct stat si, so;
  if (::stat(in.c_str(), &si) != 0 || ::stat(out.c_str(), &so) != 0) return OkStatus();
  if (si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
    return InvalidArgumentError(std::string(what) + " '" + out + "' is the input '" + in +
                                "' itself (the same file): writing it would destroy the "
                                "manifest; choose another path");
  }
  return OkStatus();
}

// Removes FINAL.tmp-PID files left by runs that were killed (their process no longer exists).
void RemoveStaleTemporaries(const std::string& final_path) {
  namespace fs = std::filesystem;
  const fs::path p(final_path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || name.size() == prefix.size() || name.size() > prefix.size() + 9) {
      continue;
    }
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

}  // namespace

std::string internal::ParseManifestItem(simdjson::dom::parser& parser, const FilterOptions& o,
                                        std::string_view line, ManifestItem* item) {
  if (!ValidUtf8(line)) return "not valid UTF-8";
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(line.data(), line.size()).get(doc) || doc.get_object().get(obj)) {
    return "not a JSON object";
  }
  ItemView it;
  std::vector<std::string_view> subjects;
  std::string error = ReadItem(obj, o, &it, &subjects, nullptr);
  if (!error.empty()) return error;
  item->id.assign(it.id);
  item->category.assign(it.category);
  item->account.assign(it.account);
  item->has_account = it.has_account;
  item->subjects.assign(subjects.begin(), subjects.end());
  return "";
}

std::string ShardFileName(const std::string& out, int index, int count) {
  int width = std::max<int>(2, static_cast<int>(std::to_string(count - 1).size()));
  std::string i = std::to_string(index);
  return out + "." + std::string(width - std::min<int>(width, i.size()), '0') + i + "-of-" +
         std::to_string(count);
}

namespace {

// Checks what can be checked before anything is read or written: terms in effect, a known
// purpose, a readable manifest, and limits (shards against open files, threads).
Status CheckRequest(const Snapshot& snap, const FilterOptions& o, Timestamp t,
                    FilterReport* report) {
  const int32_t v = snap.terms().VersionAt(t);
  if (v < 0) return FailedPreconditionError("no terms are in effect at " + FormatTime(t));
  const Terms& terms = snap.terms().version(v);
  report->terms = terms.label();
  const int32_t purpose = terms.FindPurpose(o.purpose);
  if (purpose < 0) {
    std::vector<std::string> names;
    for (const auto& p : terms.purposes()) names.push_back(p.name);
    return InvalidArgumentError("unknown purpose '" + o.purpose + "' in terms " + terms.label() +
                                DidYouMeanSuffix(o.purpose, names));
  }
  // A dataset is built for one use: a purpose with sub-purposes names several, whose rules
  // differ (first-party training is not third-party training).
  if (!terms.purposes()[purpose].leaf()) {
    std::string leaves;
    std::vector<int32_t> todo = terms.purposes()[purpose].children;
    for (size_t k = 0; k < todo.size(); ++k) {
      const TaxonomyNode& n = terms.purposes()[todo[k]];
      if (!n.leaf()) {
        todo.insert(todo.end(), n.children.begin(), n.children.end());
        continue;
      }
      leaves += (leaves.empty() ? "" : " or ") + n.name;
    }
    return InvalidArgumentError("purpose '" + o.purpose + "' has sub-purposes, whose rules may "
                                "differ: filter for one of them — did you mean " + leaves + "?");
  }
  if (o.shards < 0 || o.shards > 4096) return InvalidArgumentError("--shards must be 1-4096");
  if (o.threads > kMaxThreads) {
    return InvalidArgumentError("--threads is at most " + std::to_string(kMaxThreads) +
                                " (each buffers a batch of lines; this machine has " +
                                std::to_string(std::thread::hardware_concurrency()) + " cores)");
  }
  if (o.shards > 0) {  // every shard holds a file open: check before creating any
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        static_cast<rlim_t>(o.shards) + 32 > rl.rlim_cur) {
      return InvalidArgumentError("--shards " + std::to_string(o.shards) + " needs as many open "
                                  "files, and this process may open " +
                                  std::to_string(rl.rlim_cur) +
                                  " (ulimit -n): raise the limit or use fewer shards");
    }
  }
  return OkStatus();
}

// The outputs of one run: one file, or one per shard, and the report; each written to a
// temporary file (FINAL.tmp-PID), all renamed into place only once every one is complete, and
// every temporary removed on every failure path. "-" is standard output, written as it comes.
class Outputs {
 public:
  ~Outputs() {
    outs_.clear();  // closed before they are removed
    if (keep_) return;
    for (const auto& p : tmps_) {
      if (p != "-") std::remove(p.c_str());
    }
    if (!report_tmp_.empty()) std::remove(report_tmp_.c_str());
  }

  Status Open(const FilterOptions& o) {
    if (o.out_path.empty() && o.shards == 0) {
      // In memory (FilterBuffer): only the report is wanted.
    } else if (o.shards == 0) {
      finals_.push_back(o.out_path);
    } else {
      if (o.out_path == "-") return InvalidArgumentError("--shards needs --out FILE, not '-'");
      for (int i = 0; i < o.shards; ++i) finals_.push_back(ShardFileName(o.out_path, i, o.shards));
    }
    for (const auto& f : finals_) {
      if (f != "-" && o.in_path != "-") ASSENT_RETURN_IF_ERROR(RefuseInputAsOutput(o.in_path, f, "--out"));
    }
    if (!o.report_path.empty()) {
      if (o.in_path != "-") ASSENT_RETURN_IF_ERROR(RefuseInputAsOutput(o.in_path, o.report_path, "--report"));
      RemoveStaleTemporaries(o.report_path);
      report_final_ = o.report_path;
      report_tmp_ = o.report_path + ".tmp-" + std::to_string(::getpid());
    }
    for (const auto& f : finals_) {
      if (f == "-") {
        tmps_.push_back("-");
        continue;
      }
      RemoveStaleTemporaries(f);
      tmps_.push_back(f + ".tmp-" + std::to_string(::getpid()));
    }
    for (size_t i = 0; i < tmps_.size(); ++i) {
      ASSENT_ASSIGN_OR_RETURN(auto out, internal::OutputStream::Open(tmps_[i], finals_[i]));
      outs_.push_back(std::move(out));
    }
    return OkStatus();
  }

  const std::vector<std::string>& finals() const { return finals_; }
  Status Write(size_t shard, std::string_view bytes) {
    return shard < outs_.size() ? outs_[shard]->Write(bytes) : OkStatus();
  }

  // Closes the outputs, writes the report and renames everything into place.
  Status Commit(const std::string& report_json) {
    for (auto& out : outs_) ASSENT_RETURN_IF_ERROR(out->Close());
    if (!report_tmp_.empty()) {
      std::ofstream rep(report_tmp_, std::ios::binary | std::ios::trunc);
      rep << report_json << "\n";
      rep.close();
      if (!rep) {
        return MakeError(ErrorCode::kUnavailable, "cannot write the report to '" + report_tmp_ + "'");
      }
    }
    for (size_t i = 0; i < tmps_.size(); ++i) {  // everything is written: only renames are left
      if (tmps_[i] == "-") continue;
      if (std::rename(tmps_[i].c_str(), finals_[i].c_str()) != 0) {
        return MakeError(ErrorCode::kUnavailable,
                         "cannot rename '" + tmps_[i] + "' to '" + finals_[i] + "'");
      }
    }
    tmps_.clear();  // renamed: nothing of them to remove
    if (!report_tmp_.empty() && std::rename(report_tmp_.c_str(), report_final_.c_str()) != 0) {
      return MakeError(ErrorCode::kUnavailable,
                       "the outputs were written but the report could not be renamed from '" +
                           report_tmp_ + "' to '" + report_final_ + "'");
    }
    keep_ = true;
    return OkStatus();
  }

 private:
  std::vector<std::string> finals_, tmps_;
  std::string report_final_, report_tmp_;
  std::vector<std::unique_ptr<internal::OutputStream>> outs_;
  bool keep_ = false;
};

// Fast membership for 64-bit id hashes (open addressing; 0 stands for empty).
class IdSet {
 public:
  IdSet() : slots_(1 << 16, 0) {}
  size_t size() const { return size_; }
  // False when `h` was there already.
  bool Insert(uint64_t h) {
    if (h == 0) h = 1;
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    while (slots_[i] != 0) {
      if (slots_[i] == h) return false;
      i = (i + 1) & mask;
    }
    slots_[i] = h;
    ++size_;
    return true;
  }

 private:
  void Grow() {
    std::vector<uint64_t> old(slots_.size() * 2, 0);
    old.swap(slots_);
    size_ = 0;
    for (uint64_t h : old) {
      if (h) Insert(h);
    }
  }
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

// One run: blocks of the manifest are parsed, decided and sorted on worker threads (each with
// its own parser); their results are taken in input order, so the output order and report
// never depend on the number of threads. This thread reads, hashes the input, writes and
// hashes the output.
class FilterRun {
 public:
  FilterRun(const Snapshot& snap, Timestamp now, const FilterOptions& o, Timestamp t,
            FilterReport* report, Outputs* outputs)
      : snap_(snap), now_(now), o_(o), t_(t), report_(*report), outputs_(*outputs) {
    threads_ = std::max(1, o.threads);
  }

  const internal::BlockItems::FieldStats& stats() const { return stats_; }

  // Reads the manifest through; the outputs hold the kept lines when it returns OK.
  Status ReadAll(internal::InputStream& in) {
    const size_t kBlockBytes = std::clamp<size_t>(o_.block_bytes, 64, 64 << 20);
    Status failed = OkStatus();
    std::string carry;  // a line begun in the last block
    for (bool end = false; failed && !end;) {
      Block b;
      if (!free_blocks_.empty()) {
        b.data = std::move(free_blocks_.back());
        free_blocks_.pop_back();
      }
      if (!free_outs_.empty()) {
        b.spare_out = std::move(free_outs_.back());
        free_outs_.pop_back();
      }
      b.data.resize(kBlockBytes + carry.size() + simdjson::SIMDJSON_PADDING);
      std::memcpy(b.data.data(), carry.data(), carry.size());
      size_t size = carry.size();
      while (size < carry.size() + kBlockBytes) {
        auto r = in.Read(b.data.data() + size, carry.size() + kBlockBytes - size);
        if (!r) {
          failed = std::unexpected(r.error());
          break;
        }
        if (*r == 0) {
          end = true;
          break;
        }
        size += *r;
      }
      if (!failed) break;
      // The block ends at its last newline (or, at the input's end, where the input does); a
      // line longer than a block is carried on until it ends, up to kMaxLineBytes.
      size_t cut = size;
      if (!end) {
        const char* nl = static_cast<const char*>(::memrchr(b.data.data(), '\n', size));
        cut = nl ? static_cast<size_t>(nl - b.data.data()) + 1 : 0;
      }
      carry.assign(b.data.data() + cut, size - cut);
      if (cut == 0 && !end) {
        if (carry.size() > kMaxLineBytes) {
          failed = InvalidArgumentError(
              o_.in_path + ": a line is longer than " + std::to_string(kMaxLineBytes >> 20) +
              " MiB: not a manifest item (is the file JSON Lines?)");
        }
        free_blocks_.push_back(std::move(b.data));
        free_outs_.push_back(std::move(b.spare_out));
        continue;
      }
      b.size = cut;
      std::memset(b.data.data() + cut, ' ', std::min(b.data.size() - cut, size_t{simdjson::SIMDJSON_PADDING}));
      in_hash_.Update(std::string_view(b.data.data(), b.size));
      if (b.size > 0) failed = Submit(std::move(b));
      if (o_.progress) o_.progress(in.consumed(), in.size());
    }
    if (failed) failed = Drain(0);
    while (!in_flight_.empty()) {  // a failure: wait for the workers, drop their results
      in_flight_.front().wait();
      in_flight_.pop_front();
    }
    ASSENT_RETURN_IF_ERROR(failed);
    report_.input_sha256 = in_hash_.Hex();
    report_.output_sha256 = out_hash_.Hex();
    return OkStatus();
  }

 private:
  static constexpr size_t kMaxLineBytes = 64 << 20;

  Status Submit(Block b) {
    in_flight_.push_back(std::async(std::launch::async, [this, b = std::move(b)]() mutable {
      return Work(snap_, o_, now_, t_, b);
    }));
    return Drain(static_cast<size_t>(threads_));
  }

  // Takes results in order until at most `keep` blocks are in flight.
  Status Drain(size_t keep) {
    while (in_flight_.size() > keep) {
      BlockResult r = in_flight_.front().get();
      in_flight_.pop_front();
      ASSENT_RETURN_IF_ERROR(Account(r));
      free_blocks_.push_back(std::move(r.block_data));
      free_outs_.push_back(std::move(r.out));
    }
    return OkStatus();
  }

  Status Account(BlockResult& r) {
    if (!r.error.empty()) {
      return InvalidArgumentError(o_.in_path + ":" + std::to_string(line_no_ + r.error_line + 1) +
                                  ": " + r.error);
    }
    line_no_ += r.lines;
    if (o_.kept_lines) o_.kept_lines->insert(o_.kept_lines->end(), r.kept_lines.begin(), r.kept_lines.end());
    stats_.with_subjects += r.stats.with_subjects;
    stats_.with_account += r.stats.with_account;
    for (const auto& [k, n] : r.stats.other_keys) stats_.Other(k, n);
    report_.items += r.items;
    report_.kept += r.kept;
    report_.excluded += r.excluded;
    report_.malformed += r.malformed;
    for (size_t k = 0; k < r.by_reason.size(); ++k) {
      if (r.by_reason[k]) report_.excluded_by_reason[ReasonSlotName(k)] += r.by_reason[k];
    }
    for (size_t k = 0; k < r.by_signal.size(); ++k) {
      if (r.by_signal[k]) report_.excluded_by_signal[kSignalNames[k].second] += r.by_signal[k];
    }
    for (const auto& [k, v] : r.by_category) {
      auto& c = report_.by_category[k];
      c.first += v.first;
      c.second += v.second;
    }
    for (uint64_t h : r.id_hashes) {
      if (ids_.size() >= kMaxDuplicateTracking) {
        report_.duplicates_checked_fully = false;
        break;
      }
      if (!ids_.Insert(h)) ++report_.duplicate_ids;
    }
    for (size_t s = 0; s < r.out.size(); ++s) {
      ASSENT_RETURN_IF_ERROR(outputs_.Write(s, r.out[s]));
      if (!o_.shards) out_hash_.Update(r.out[s]);
    }
    if (o_.shards) {
      out_hash_.Update(r.ordered);
      for (size_t s = 0; s < r.shard_items.size(); ++s) {
        report_.shards[s].items += r.shard_items[s];
        if (o_.collect_parties) report_.shards[s].subjects.merge(r.shard_subjects[s]);
      }
    }
    if (o_.collect_parties) {
      report_.subjects.merge(r.subjects);
      report_.accounts.merge(r.accounts);
    }
    return OkStatus();
  }

  const Snapshot& snap_;
  const Timestamp now_;
  const FilterOptions& o_;
  const Timestamp t_;
  FilterReport& report_;
  Outputs& outputs_;
  int threads_ = 1;
  Hasher in_hash_, out_hash_;
  IdSet ids_;
  internal::BlockItems::FieldStats stats_;  // over every block
  std::deque<std::future<BlockResult>> in_flight_;
  std::vector<std::string> free_blocks_;  // buffers to read the next blocks into
  std::vector<std::vector<std::string>> free_outs_;
  uint64_t line_no_ = 0;
};

}  // namespace

namespace {

// The report's warnings: a field no item carries while a similar one is common (a misspelt
// --subjects-field or --account-field), and categories the terms do not define.
void Warn(const Terms& terms, const FilterOptions& o, const internal::BlockItems::FieldStats& stats,
          FilterReport* report) {
  std::vector<std::string> others;
  for (const auto& [k, n] : stats.other_keys) others.push_back(k);
  auto field = [&](uint64_t with, const std::string& name, const char* flag) {
    if (with > 0 || report->items == 0) return;
    const std::string like = DidYouMean(name, others);
    if (like.empty()) return;
    uint64_t count = 0;
    for (const auto& [k, n] : stats.other_keys) count += k == like ? n : 0;
    report->warnings.push_back("no item has '" + name + "'; " + std::to_string(count) +
                               " have '" + like + "' — " + flag + " " + like + "?");
  };
  field(stats.with_subjects, o.subjects_field, "--subjects-field");
  field(stats.with_account, o.account_field, "--account-field");
  std::vector<std::string> known;
  for (const auto& c : terms.categories()) known.push_back(c.name);
  for (const auto& [category, counts] : report->by_category) {
    if (terms.FindCategory(category) >= 0) continue;
    report->warnings.push_back("category '" + category + "' (" +
                               std::to_string(counts.first + counts.second) +
                               " items) is not in terms " + terms.label() +
                               DidYouMeanSuffix(category, known));
  }
}

}  // namespace

namespace {

Result<FilterReport> Filter(const Snapshot& snap, Timestamp now, const FilterOptions& o,
                            const std::optional<std::string_view>& memory) {
  const auto start = std::chrono::steady_clock::now();
  FilterReport report;
  report.position = o.at ? snap.AnswerPositionAt(*o.at) : snap.position();
  const Timestamp t = o.at.value_or(now);
  ASSENT_RETURN_IF_ERROR(CheckRequest(snap, o, t, &report));
  std::unique_ptr<internal::InputStream> in;
  if (memory) {
    if (o.shards) return InvalidArgumentError("shards need an output file");
    in = internal::InputStream::FromMemory(*memory);
  } else {
    ASSENT_ASSIGN_OR_RETURN(in, internal::InputStream::Open(o.in_path));
  }
  FilterOptions options = o;
  options.read_signals = o.purpose == "ai_training" || o.purpose.starts_with("ai_training.");
  if (memory) options.in_path = o.in_path.empty() ? "manifest" : o.in_path;
  if (o.kept_lines) o.kept_lines->clear();
  Outputs outputs;
  ASSENT_RETURN_IF_ERROR(outputs.Open(memory ? options : o));
  if (o.shards) {
    report.shards.resize(o.shards);
    for (int i = 0; i < o.shards; ++i) report.shards[i].file = outputs.finals()[i];
  }
  FilterRun run(snap, now, options, t, &report, &outputs);
  ASSENT_RETURN_IF_ERROR(run.ReadAll(*in));
  Warn(snap.terms().version(snap.terms().VersionAt(t)), o, run.stats(), &report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSENT_RETURN_IF_ERROR(outputs.Commit(report.ToJson()));
  if (o.progress) o.progress(in->consumed(), in->consumed());
  return report;
}

}  // namespace

Result<FilterReport> RunFilter(const Snapshot& snap, Timestamp now, const FilterOptions& o) {
  return Filter(snap, now, o, std::nullopt);
}

Result<FilterReport> FilterBuffer(const Snapshot& snap, Timestamp now, const FilterOptions& o,
                                  std::string_view manifest) {
  FilterOptions options = o;
  options.out_path.clear();
  options.report_path.clear();
  return Filter(snap, now, options, manifest);
}

std::string FilterReport::ToJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("items").UInt(items).Key("kept").UInt(kept).Key("excluded").UInt(excluded);
  w.Key("excluded_by_reason").BeginObject();
  for (const auto& [r, c] : excluded_by_reason) w.Key(r).UInt(c);
  w.EndObject();
  if (!excluded_by_signal.empty()) {
    w.Key("excluded_by_signal").BeginObject();
    for (const auto& [r, c] : excluded_by_signal) w.Key(r).UInt(c);
    w.EndObject();
  }
  w.Key("by_category").BeginObject();
  for (const auto& [c, kx] : by_category) {
    w.Key(c).BeginObject().Key("kept").UInt(kx.first).Key("excluded").UInt(kx.second).EndObject();
  }
  w.EndObject();
  if (!shards.empty()) {
    w.Key("shards").BeginArray();
    for (const auto& sh : shards) {
      w.BeginObject().Key("file").String(sh.file).Key("items").UInt(sh.items).EndObject();
    }
    w.EndArray();
  }
  w.Key("malformed").UInt(malformed);
  w.Key("duplicate_ids").UInt(duplicate_ids);
  if (!duplicates_checked_fully) w.Key("duplicate_ids_checked").String("first 4000000 items");
  w.Key("position").UInt(position).Key("terms").String(terms);
  w.Key("input_sha256").String(input_sha256).Key("output_sha256").String(output_sha256);
  w.Key("seconds").Int(static_cast<int64_t>(seconds * 1000) / 1000);
  if (!warnings.empty()) {
    w.Key("warnings").BeginArray();
    for (const auto& x : warnings) w.String(x);
    w.EndArray();
  }
  w.EndObject();
  return w.Take();
}

std::string FilterReport::Summary() const {
  std::string s = "assent filter: kept " + std::to_string(kept) + " of " + std::to_string(items) +
                  " items (terms " + terms + ", ledger position " + std::to_string(position) + ")\n";
  for (const auto& [r, c] : excluded_by_reason) {
    s += "  excluded " + std::to_string(c) + " as " + r + "\n";
  }
  for (const auto& [r, c] : excluded_by_signal) {
    s += "    " + std::to_string(c) + " opted out by " + r + "\n";
  }
  if (duplicate_ids) s += "  warning: " + std::to_string(duplicate_ids) + " duplicate ids\n";
  for (const auto& x : warnings) s += "  warning: " + x + "\n";
  return s;
}

}  // namespace assent
