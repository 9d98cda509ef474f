// The manifest filter: streaming, each item decided as it is read through the lean verdict
// path (GateVerdicts), on exactly --threads threads; output renamed into place only on success.
#include "filter/filter.h"

#include <openssl/evp.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/hash.h"
#include "common/file_mapping.h"
#include "common/huge_memory.h"
#include "common/json_keys.h"
#include "common/json_writer.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "engine/gate_verdicts.h"
#include "filter/manifest.h"
#include "filter/streams.h"

namespace assent {
namespace {

constexpr size_t kMaxDuplicateTracking = 4'000'000;  // ids remembered: bounded memory
constexpr int kMaxThreads = 256;  // each holds a parser and its remembered judgements
// Distinct category names the terms do not define, counted by name in the report; the rest
// together under kMoreUnknownCategories.
constexpr size_t kMaxUnknownCategories = 1000;
constexpr const char* kMoreUnknownCategories = "(other unknown categories)";

// A streaming SHA-256.
class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Swap(Hasher& other) { std::swap(ctx_, other.ctx_); }
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

}  // namespace

struct InputHashAhead::State {
  std::jthread thread;
  std::atomic<bool> stop{false};
  Hasher hash;
  uint64_t hashed = 0;  // bytes hashed; read once the thread has ended
  std::atomic<bool> shrank{false};  // the file lost pages while they were hashed
  std::string path;
  struct stat before{};
};

InputHashAhead::InputHashAhead(std::unique_ptr<State> s) : state_(std::move(s)) {}
InputHashAhead::~InputHashAhead() {
  state_->stop = true;
  if (state_->thread.joinable()) state_->thread.join();  // before the hash it updates is freed
}

std::unique_ptr<InputHashAhead> InputHashAhead::Start(const std::string& path) {
  if (path.empty() || path == "-") return nullptr;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  auto s = std::make_unique<State>();
  char head[4] = {};
  const ssize_t got = ::pread(fd, head, sizeof head, 0);
  const bool plain = ::fstat(fd, &s->before) == 0 && S_ISREG(s->before.st_mode) && got >= 0 &&
                     internal::FormatOf(std::string_view(head, static_cast<size_t>(got))) == "plain";
  if (!plain) {
    ::close(fd);
    return nullptr;
  }
  s->path = path;
  State* state = s.get();
  s->thread = std::jthread([state, fd] {
    // The file as it was when looked at, mapped 1 MiB at a time (not copied); a page truncated
    // away meanwhile reads as zeros and sets `shrank`, and the hash is then not used.
    constexpr uint64_t kWindow = 1 << 20;
    const uint64_t size = static_cast<uint64_t>(state->before.st_size);
    while (!state->stop.load(std::memory_order_relaxed) && state->hashed < size) {
      const size_t n = static_cast<size_t>(std::min(kWindow, size - state->hashed));
      FileMapping window(fd, state->hashed, n, &state->shrank);
      if (!window) break;
      state->hash.Update(std::string_view(window.data(), n));
      state->hashed += n;
    }
    ::close(fd);
  });
  return std::unique_ptr<InputHashAhead>(new InputHashAhead(std::move(s)));
}

namespace {

// What a worker makes of one block: the kept lines (per shard, in input order) and the counts.
struct BlockResult {
  std::vector<HugeBytes> out;  // per shard (one without shards)
  HugeBytes ordered;               // with shards: every kept line in input order (for the hash)
  uint64_t items = 0, kept = 0, excluded = 0, malformed = 0;
  // Counted per block without a string per item: reasons by enum, categories by their index
  // in the terms (unknown ones by name), turned into names when the results are merged.
  std::array<uint64_t, 32> by_reason{};  // Reason, then the gate's own (kMalformed...)
  std::array<uint64_t, 4> by_signal{};
  std::vector<std::pair<uint64_t, uint64_t>> by_category;  // kept, excluded; by category
  // Categories the terms do not define, in the order they first appear (so that which ones
  // the report names never depends on where blocks end), and where each is.
  std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> unknown_categories;
  std::unordered_map<std::string, size_t> unknown_index;
  std::pair<uint64_t, uint64_t>& Unknown(std::string_view name) {
    auto [at, added] = unknown_index.try_emplace(std::string(name), unknown_categories.size());
    if (added) unknown_categories.emplace_back(at->first, std::pair<uint64_t, uint64_t>{});
    return unknown_categories[at->second].second;
  }
  std::vector<uint64_t> id_hashes;
  std::vector<uint64_t> shard_items;
  std::vector<std::set<std::string>> shard_subjects;
  std::set<std::string> subjects, accounts;
  std::string error;  // the first malformed line's, when malformed lines fail the run
  size_t error_line = 0;  // its index in the block
  uint64_t lines = 0;     // lines in the block
  internal::BlockItems::FieldStats stats;
  std::vector<uint8_t> kept_lines;  // per line, when FilterOptions::kept_lines asks

  // Empty again, keeping the buffers' memory.
  void Clear(const FilterOptions& o, size_t categories) {
    const size_t shards = std::max(1, o.shards);
    out.resize(shards);
    for (auto& b : out) b.clear();
    ordered.clear();
    items = kept = excluded = malformed = 0;
    by_reason.fill(0);
    by_signal.fill(0);
    by_category.assign(categories, {0, 0});
    unknown_categories.clear();
    unknown_index.clear();
    id_hashes.clear();
    shard_items.assign(o.shards, 0);
    shard_subjects.clear();
    if (o.collect_parties) shard_subjects.resize(o.shards);
    subjects.clear();
    accounts.clear();
    error.clear();
    error_line = 0;
    lines = 0;
    stats = internal::BlockItems::FieldStats{};
    kept_lines.clear();
  }
};

// An input block: bytes up to a line end (or the input's end), then padding for simdjson (at
// least SIMDJSON_PADDING readable bytes, whatever they are). Its bytes are a mapping of the
// manifest's file, or read into `data`.
struct Block {
  HugeBytes data;
  FileMapping mapped;
  size_t size = 0;
  uint64_t offset = 0;  // of its first byte in the manifest
  const char* bytes() const { return mapped ? mapped.data() : data.data(); }
};

constexpr std::pair<uint8_t, const char*> kSignalNames[] = {
    {internal::kSignalContentUsage, "content-usage"},
    {internal::kSignalContentSignal, "content-signal"},
    {internal::kSignalTdmRep, "tdmrep"},
    {internal::kSignalC2pa, "c2pa"}};

// The gate's own exclusion reasons, counted after the engine's (Reason).
constexpr size_t kMalformedSlot = 29, kUnknownCategorySlot = 30, kSignalSlot = 31;

std::string ReasonSlotName(size_t slot) {
  if (slot == kMalformedSlot) return "malformed";
  if (slot == kUnknownCategorySlot) return "unknown-category";
  if (slot == kSignalSlot) return "signal-opt-out";
  return std::string(ReasonName(static_cast<Reason>(slot)));
}

// One thread's tools, kept for the whole run: a parser, the lean verdicts, scratch space.
struct WorkerContext {
  simdjson::dom::parser parser;
  std::unique_ptr<GateVerdicts> verdicts;
  internal::BlockItems items;
};

// Decides each item as the reader meets it (its views live only that long) and sorts the line:
// kept bytes to their shard, or counted under why not.
class BlockSink final : public internal::ItemSink {
 public:
  BlockSink(const FilterOptions& o, GateVerdicts& verdicts, const char* block,
            const internal::BlockItems& items, BlockResult* r)
      : o_(o), verdicts_(verdicts), block_(block), items_(items), r_(*r) {}

  void Item(uint32_t line, const internal::ItemView& it,
            std::span<const std::string_view> subjects) override {
    r_.id_hashes.push_back(Hash64(it.id));
    const int32_t c = verdicts_.Category(it.category);
    GateVerdicts::Verdict v{false, Reason::kUnlisted};
    if (c >= 0) v = verdicts_.Judge(c, it.has_account ? &it.account : nullptr, subjects);
    auto& counts = c >= 0 ? r_.by_category[c] : r_.Unknown(it.category);
    if (v.allow && it.signals == 0) {
      ++counts.first;
      Keep(line, it, subjects);
      return;
    }
    ++r_.excluded;
    ++counts.second;
    if (c < 0) {
      ++r_.by_reason[kUnknownCategorySlot];
    } else if (v.allow) {  // consent allows; the publisher's signal does not
      ++r_.by_reason[kSignalSlot];
      for (size_t k = 0; k < std::size(kSignalNames); ++k) {
        if (it.signals & kSignalNames[k].first) ++r_.by_signal[k];
      }
    } else {
      ++r_.by_reason[static_cast<size_t>(v.reason)];
    }
  }

  void Restart() override { r_.Clear(o_, static_cast<size_t>(verdicts_.categories())); }

 private:
  // A kept line, byte for byte (with its own "\r\n", "\n", or none at the end), into its shard
  // (by a stable hash of its first subject, else its account, else its id).
  void Keep(uint32_t line, const internal::ItemView& it, std::span<const std::string_view> subjects) {
    ++r_.kept;
    if (o_.kept_lines) {
      if (r_.kept_lines.size() <= line) r_.kept_lines.resize(items_.lines.size(), 0);
      r_.kept_lines[line] = 1;
    }
    if (o_.collect_parties) {
      for (std::string_view s : subjects) r_.subjects.emplace(s);
      if (it.has_account) r_.accounts.emplace(it.account);
    }
    if (o_.out_path.empty()) return;
    const internal::BlockItems::Line& l = items_.lines[line];
    const std::string_view bytes(block_ + l.begin, l.end - l.begin);
    size_t shard = 0;
    if (o_.shards) {
      const std::string_view key = !subjects.empty() ? subjects[0]
                                   : it.has_account  ? it.account
                                                     : it.id;
      shard = Hash64(key, 0x51a4d5) % static_cast<uint64_t>(o_.shards);
      ++r_.shard_items[shard];
      if (o_.collect_parties) {
        for (std::string_view s : subjects) r_.shard_subjects[shard].emplace(s);
      }
      if (o_.hash) r_.ordered.append(bytes);  // the output's hash is of every kept line in order
    }
    r_.out[shard].append(bytes);
  }

  const FilterOptions& o_;
  GateVerdicts& verdicts_;
  const char* block_;
  const internal::BlockItems& items_;
  BlockResult& r_;
};

// Parses, decides and sorts one block (on any of the run's threads).
void Work(WorkerContext& ctx, const FilterOptions& o, const Block& block, BlockResult* r) {
  r->Clear(o, static_cast<size_t>(ctx.verdicts->categories()));
  BlockSink sink(o, *ctx.verdicts, block.bytes(), ctx.items, r);
  internal::ReadBlock(ctx.parser, o, block.bytes(), block.size, &ctx.items, &sink);
  const internal::BlockItems& items = ctx.items;
  for (size_t l = 0; l < items.lines.size(); ++l) {
    const internal::BlockItems::Line& line = items.lines[l];
    if (line.kind == internal::BlockItems::Line::Kind::kBlank) continue;
    ++r->items;
    if (line.kind != internal::BlockItems::Line::Kind::kMalformed) continue;
    if (!o.skip_malformed && r->error.empty()) {
      r->error_line = l;
      r->error = items.Error(line) + " (use --skip-malformed to count such lines and go on)";
    }
    ++r->malformed;
    ++r->excluded;
    ++r->by_reason[kMalformedSlot];
  }
  if (o.kept_lines) r->kept_lines.resize(items.lines.size(), 0);
  r->lines = items.lines.size();
  r->stats = items.stats;
}

// Whether a file looked at twice is the same file with the same bytes, as far as its metadata
// tells: device, inode, size and modification time.
bool SameFileState(const struct stat& then, const struct stat& now) {
  return now.st_dev == then.st_dev && now.st_ino == then.st_ino && now.st_size == then.st_size &&
         now.st_mtim.tv_sec == then.st_mtim.tv_sec && now.st_mtim.tv_nsec == then.st_mtim.tv_nsec;
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

// The directories holding `paths`, each fsynced once: renames into them reach the disk.
Status SyncDirectoriesOf(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::set<std::string> dirs;
  for (const auto& p : paths) {
    if (p == "-") continue;
    const fs::path parent = fs::path(p).parent_path();
    dirs.insert(parent.empty() ? std::string(".") : parent.string());
  }
  for (const auto& d : dirs) {
    // A directory this user may write to but not read, or a file system that cannot sync
    // directories (EINVAL), is left as it is, as SQLite does: the files themselves were synced.
    const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) continue;
    const bool ok = fd >= 0 && (::fsync(fd) == 0 || errno == EINVAL || errno == ENOTSUP);
    const int e = errno;
    if (fd >= 0) ::close(fd);
    if (!ok) {
      return MakeError(ErrorCode::kUnavailable, std::string(kOutputsInPlace) + " but the directory '" +
                                                    d + "' could not be synced to the disk: " +
                                                    std::strerror(e));
    }
  }
  return OkStatus();
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
    durable_ = o.durable;
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

  // Closes the outputs, writes the report and renames everything into place (durable: each
  // file on the disk before its rename, and the renames before returning).
  Status Commit(const std::string& report_json) {
    for (auto& out : outs_) ASSENT_RETURN_IF_ERROR(out->Close(durable_));
    if (!report_tmp_.empty()) {
      ASSENT_ASSIGN_OR_RETURN(auto rep, internal::OutputStream::Open(report_tmp_, report_tmp_));
      ASSENT_RETURN_IF_ERROR(rep->Write(report_json + "\n"));
      if (auto st = rep->Close(durable_); !st) {
        return MakeError(ErrorCode::kUnavailable,
                         "cannot write the report to '" + report_tmp_ + "': " + st.error().message);
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
                       std::string(kOutputsInPlace) + " but the report could not be renamed from '" +
                           report_tmp_ + "' to '" + report_final_ + "'");
    }
    keep_ = true;
    if (durable_) {
      std::vector<std::string> finals = finals_;
      if (!report_final_.empty()) finals.push_back(report_final_);
      ASSENT_RETURN_IF_ERROR(SyncDirectoriesOf(finals));
    }
    return OkStatus();
  }

 private:
  std::vector<std::string> finals_, tmps_;
  std::string report_final_, report_tmp_;
  std::vector<std::unique_ptr<internal::OutputStream>> outs_;
  bool keep_ = false;
  bool durable_ = false;
};

// Fast membership for 64-bit id hashes (open addressing; 0 stands for empty), at most
// kMaxDuplicateTracking of them.
class IdSet {
 public:
  IdSet() : slots_(1 << 16) {}
  // Room for about `items` ids without growing (at most kMaxDuplicateTracking).
  void Reserve(uint64_t items) {
    size_t want = slots_.size();
    while (want < 2 * std::min<uint64_t>(items, kMaxDuplicateTracking)) want <<= 1;
    if (want > slots_.size() && size_ == 0) HugeArray<uint64_t>(want).swap(slots_);
  }
  // Counts the hashes already there in `*duplicates`; once the set is full, says so in
  // `*complete` and ignores the rest.
  void InsertAll(std::span<const uint64_t> hashes, uint64_t* duplicates, bool* complete) {
    constexpr size_t kAhead = 32;  // slots looked up ahead, so their cache misses overlap
    for (size_t i = 0; i < hashes.size(); ++i) {
      if (size_ >= kMaxDuplicateTracking) {
        *complete = false;
        return;
      }
      if ((size_ + 1) * 2 > slots_.size()) Grow();
      if (i + kAhead < hashes.size()) {
        __builtin_prefetch(&slots_[Key(hashes[i + kAhead]) & (slots_.size() - 1)]);
      }
      if (!Insert(Key(hashes[i]))) ++*duplicates;
    }
  }

 private:
  static uint64_t Key(uint64_t h) { return h == 0 ? 1 : h; }
  // False when `h` was there already.
  bool Insert(uint64_t h) {
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
  void Grow() {
    HugeArray<uint64_t> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (uint64_t h : old) {
      if (h) Insert(h);
    }
  }
  HugeArray<uint64_t> slots_;  // random probes: on huge pages, a TLB miss is rare
  size_t size_ = 0;
};

// One run over `threads` threads (the calling one and threads - 1 more), so that --threads
// is what the run may take of the machine. The work of each block: reading it and hashing it
// (each in input order, one thread at a time), parsing, deciding and sorting it (any thread,
// many blocks at once), and accounting, writing and hashing its kept lines (in input order).
// Every thread takes whatever is ready, most urgent first — writing frees memory, hashing is
// the longest chain, reading feeds the rest — so the serial chains overlap each other and the
// parsing. Results are taken in input order: the output and report never depend on threads.
class FilterRun {
 public:
  FilterRun(const Snapshot& snap, const FilterOptions& o, Timestamp t, FilterReport* report,
            Outputs* outputs)
      : snap_(snap), o_(o), t_(t), report_(*report), outputs_(*outputs) {
    threads_ = std::max(1, o.threads);
    // Two blocks a thread keep every thread busy; the blocks in flight hold about 32 MB in all
    // however many threads there are (smaller blocks for many threads).
    max_in_flight_ = std::min<size_t>(2 * static_cast<size_t>(threads_) + 2, 256);
    block_bytes_ = std::clamp<size_t>(o_.block_bytes, 64, 64 << 20);
    block_bytes_ = std::min(block_bytes_, std::max<size_t>(128 << 10, (32 << 20) / max_in_flight_));
    const Terms& terms = snap.terms().version(snap.terms().VersionAt(t));
    for (const auto& c : terms.categories()) category_names_.push_back(c.name);
  }

  const internal::BlockItems::FieldStats& stats() const { return stats_; }
  // Bytes of the manifest read (decompressed), once ReadAll has returned.
  uint64_t bytes_read() const { return emitted_; }

  // Reads the manifest through; the outputs hold the kept lines when it returns OK.
  Status ReadAll(internal::InputStream& in) {
    // Enough remembered judgements for the manifest's subjects, no more: a data loader's batch
    // in memory needs few.
    const size_t expected = in.size() ? in.size() / 64 : SIZE_MAX;
    TakeHashAhead(in);
    // A plain manifest in a regular file is mapped block by block rather than copied out of
    // the page cache; whether it changed meanwhile is checked when the run ends.
    if (const int fd = in.RegularFileFd(); fd >= 0 && ::fstat(fd, &mapped_stat_) == 0 &&
                                           S_ISREG(mapped_stat_.st_mode)) {
      map_fd_ = fd;
    }
    // Sized for lines of about 150 bytes, the id set rarely grows (and rehashes) more than once.
    if (in.size() && in.format() == "plain") ids_.Reserve(in.size() / 150);
    std::vector<std::unique_ptr<WorkerContext>> contexts;
    for (int i = 0; i < threads_; ++i) {
      auto ctx = std::make_unique<WorkerContext>();
      // Many threads share the remembered judgements' memory (about 15 MB in all beyond 8).
      const size_t share = threads_ > 8 ? (size_t{1} << 18) / static_cast<size_t>(threads_) : SIZE_MAX;
      ASSENT_ASSIGN_OR_RETURN(ctx->verdicts,
                              GateVerdicts::Make(snap_, o_.purpose, t_, std::min(expected, share)));
      contexts.push_back(std::move(ctx));
    }
    {
      std::vector<std::jthread> helpers;
      for (int i = 1; i < threads_; ++i) {
        helpers.emplace_back([this, &in, ctx = contexts[i].get()] { Serve(*ctx, in); });
      }
      Serve(*contexts[0], in);
    }  // the helpers are joined: every task has ended
    // A file changed underneath explains any other failure (its lost pages read as zeros,
    // which are no JSON).
    ASSENT_RETURN_IF_ERROR(CheckMappedInputUnchanged());
    ASSENT_RETURN_IF_ERROR(failed_);
    if (o_.hash) {
      report_.input_sha256 = in_hash_.Hex();
      report_.output_sha256 = out_hash_.Hex();
    }
    return OkStatus();
  }

 private:
  static constexpr size_t kMaxLineBytes = 64 << 20;

  // Continues from the input's hash begun ahead, if it is this file's, unchanged since.
  void TakeHashAhead(const internal::InputStream& in) {
    if (!o_.hash_ahead || !o_.hash) return;
    InputHashAhead::State& ahead = o_.hash_ahead->state();
    ahead.stop = true;
    if (ahead.thread.joinable()) ahead.thread.join();
    struct stat now {};
    const struct stat& then = ahead.before;
    if (ahead.path != o_.in_path || in.format() != "plain" || emitted_ != 0 || ahead.shrank.load() ||
        ::stat(o_.in_path.c_str(), &now) != 0 || !SameFileState(then, now)) {
      return;
    }
    in_hash_.Swap(ahead.hash);
    hashed_ahead_ = ahead.hashed;
    ahead.hashed = 0;
  }

  // What was mapped must still be what the file holds: the hash and the parse each read the
  // mapping when they came to it, so a file changed in the meantime may have given them
  // different bytes. A change of size or modification time (or a page the file no longer
  // reached) fails the run.
  Status CheckMappedInputUnchanged() {
    if (map_fd_ < 0) return OkStatus();
    struct stat now {};
    const struct stat& then = mapped_stat_;
    if (!shrank_.load() && ::fstat(map_fd_, &now) == 0 && SameFileState(then, now)) {
      return OkStatus();
    }
    return InvalidArgumentError(o_.in_path + ": the manifest changed while it was read (its size "
                                "or modification time is not what it was when the run began): "
                                "run again once nothing writes to it");
  }

  // A block between being read and being written.
  struct InFlight {
    Block block;
    BlockResult result;
    bool hashed = false, parsing = false, parsed = false, written = false;
  };

  // One thread's part: takes ready tasks until the input is through or the run failed.
  void Serve(WorkerContext& ctx, internal::InputStream& in) {
    std::unique_lock lock(mu_);
    for (;;) {
      while (!slots_.empty() && slots_.front()->hashed && slots_.front()->written) {
        slots_.front()->block.mapped.Unmap();
        spare_.push_back(std::move(slots_.front()));
        slots_.pop_front();
        ++base_;
      }
      if (!failed_ || (eof_ && slots_.empty() && !reading_)) break;
      InFlight* w = Slot(next_write_);
      if (!writing_ && w && w->parsed) {
        writing_ = true;
        lock.unlock();
        Status s = Account(w->result);
        lock.lock();
        writing_ = false;
        w->written = true;
        ++next_write_;
        Fail(s);
        continue;
      }
      InFlight* h = o_.hash ? Slot(next_hash_) : nullptr;
      if (!hashing_ && h) {
        hashing_ = true;
        lock.unlock();
        // What the hash begun ahead covered already is not hashed again.
        const uint64_t skip = std::min<uint64_t>(h->block.size, hashed_ahead_ > h->block.offset
                                                                     ? hashed_ahead_ - h->block.offset
                                                                     : 0);
        in_hash_.Update(std::string_view(h->block.bytes() + skip, h->block.size - skip));
        lock.lock();
        hashing_ = false;
        h->hashed = true;
        ++next_hash_;
        cv_.notify_all();
        continue;
      }
      if (!reading_ && !eof_ && slots_.size() < max_in_flight_) {
        reading_ = true;
        std::unique_ptr<InFlight> next;
        if (!spare_.empty()) {
          next = std::move(spare_.back());
          spare_.pop_back();
        } else {
          next = std::make_unique<InFlight>();
        }
        lock.unlock();
        Result<bool> got = ReadBlock(in, next->block);
        lock.lock();
        reading_ = false;
        if (!got) {
          Fail(std::unexpected(got.error()));
        } else if (*got) {
          next->parsing = next->parsed = next->written = false;
          next->hashed = !o_.hash;  // nothing to hash: the block is through once written
          slots_.push_back(std::move(next));
        } else {
          eof_ = true;
        }
        cv_.notify_all();
        continue;
      }
      InFlight* p = nullptr;
      for (size_t i = next_write_ - base_; i < slots_.size() && !p; ++i) {
        if (!slots_[i]->parsing) p = slots_[i].get();
      }
      if (p) {
        p->parsing = true;
        lock.unlock();
        Work(ctx, o_, p->block, &p->result);
        lock.lock();
        p->parsed = true;
        cv_.notify_all();
        continue;
      }
      cv_.wait(lock);
    }
    cv_.notify_all();
  }

  InFlight* Slot(uint64_t seq) {
    return seq - base_ < slots_.size() ? slots_[seq - base_].get() : nullptr;
  }

  void Fail(const Status& s) {  // under mu_
    if (!s && failed_) failed_ = s;
    cv_.notify_all();
  }

  // Up to `n` bytes of the manifest: from the stream, or, for a mapped file, at read_at_.
  Result<size_t> Read(internal::InputStream& in, char* buf, size_t n) {
    if (map_fd_ < 0) return in.Read(buf, n);
    for (;;) {
      const ssize_t r = ::pread(map_fd_, buf, n, static_cast<off_t>(read_at_));
      if (r >= 0) {
        read_at_ += static_cast<uint64_t>(r);
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) {
        return MakeError(ErrorCode::kUnavailable,
                         "error reading '" + o_.in_path + "': " + std::strerror(errno));
      }
    }
  }

  // The next block: bytes up to its last newline (or the input's end), padded. False at the
  // input's end. Only one thread reads at a time (reading_).
  Result<bool> ReadBlock(internal::InputStream& in, Block& b) {
    b.mapped.Unmap();
    if (map_fd_ >= 0 && carry_.empty() && !input_done_) {
      // A window of the file up to block_bytes_, cut after its last newline; the bytes after
      // the cut, in the file, are the padding. Near the file's end, and for a line longer than
      // a block, the bytes are read instead.
      constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;
      const uint64_t at = read_at_;
      if (at + block_bytes_ + kPadding <= static_cast<uint64_t>(mapped_stat_.st_size)) {
        FileMapping m(map_fd_, at, block_bytes_ + kPadding, &shrank_);
        const char* nl = m ? static_cast<const char*>(::memrchr(m.data(), '\n', block_bytes_)) : nullptr;
        if (nl) {
          b.mapped = std::move(m);
          b.size = static_cast<size_t>(nl - b.mapped.data()) + 1;
          b.offset = emitted_;
          emitted_ += b.size;
          read_at_ = emitted_;
          if (o_.progress) o_.progress(read_at_, static_cast<uint64_t>(mapped_stat_.st_size));
          return true;
        }
      }
    }
    for (;;) {
      if (input_done_) return false;
      // The line carried over, the bytes read after it and the padding fill block_bytes_ (for
      // the default 2 MiB, one huge page), unless the carried line takes half of it or more.
      constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;
      const size_t fresh = carry_.size() + kPadding < block_bytes_ / 2
                               ? block_bytes_ - kPadding - carry_.size()
                               : block_bytes_;
      const size_t want = carry_.size() + fresh;
      b.data.resize(want + kPadding);
      std::memcpy(b.data.data(), carry_.data(), carry_.size());
      size_t size = carry_.size();
      bool end = false;
      while (size < want) {
        ASSENT_ASSIGN_OR_RETURN(size_t n, Read(in, b.data.data() + size, want - size));
        if (n == 0) {
          end = true;
          break;
        }
        size += n;
      }
      // The block ends at its last newline (or, at the input's end, where the input does); a
      // line longer than a block is carried on until it ends, up to kMaxLineBytes.
      size_t cut = size;
      if (!end) {
        const char* nl = static_cast<const char*>(::memrchr(b.data.data(), '\n', size));
        cut = nl ? static_cast<size_t>(nl - b.data.data()) + 1 : 0;
      }
      carry_.assign(b.data.data() + cut, size - cut);
      input_done_ = end;
      if (map_fd_ >= 0 && !end && cut > 0) {
        // Mapped input: the line begun is read again in the next window (which is mapped). A
        // line longer than the block (cut 0) is carried on as for any input.
        read_at_ -= carry_.size();
        carry_.clear();
      }
      if (o_.progress) {
        if (map_fd_ >= 0) {
          o_.progress(read_at_, static_cast<uint64_t>(mapped_stat_.st_size));
        } else {
          o_.progress(in.consumed(), in.size());
        }
      }
      if (cut == 0) {
        if (end) return false;
        if (carry_.size() > kMaxLineBytes) {
          return InvalidArgumentError(
              o_.in_path + ": a line is longer than " + std::to_string(kMaxLineBytes >> 20) +
              " MiB: not a manifest item (is the file JSON Lines?)");
        }
        continue;
      }
      b.size = cut;
      b.offset = emitted_;
      emitted_ += cut;
      std::memset(b.data.data() + cut, ' ', std::min(b.data.size() - cut, kPadding));
      return true;
    }
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
    auto add = [&](const std::string& name, const std::pair<uint64_t, uint64_t>& v, bool known) {
      auto at = report_.by_category.find(name);
      if (at == report_.by_category.end()) {
        // Unknown names are the manifest's to choose: their number in the report is bounded.
        if (!known && unknown_names_ >= kMaxUnknownCategories) {
          at = report_.by_category.try_emplace(kMoreUnknownCategories).first;
        } else {
          at = report_.by_category.try_emplace(name).first;
          unknown_names_ += !known;
        }
      }
      at->second.first += v.first;
      at->second.second += v.second;
    };
    for (size_t c = 0; c < r.by_category.size(); ++c) {
      if (r.by_category[c].first || r.by_category[c].second) {
        add(category_names_[c], r.by_category[c], true);
      }
    }
    for (const auto& [name, v] : r.unknown_categories) add(name, v, false);
    ids_.InsertAll(r.id_hashes, &report_.duplicate_ids, &report_.duplicates_checked_fully);
    for (size_t s = 0; s < r.out.size(); ++s) {
      ASSENT_RETURN_IF_ERROR(outputs_.Write(s, r.out[s]));
      if (!o_.shards && o_.hash) out_hash_.Update(r.out[s]);
    }
    if (o_.shards) {
      if (o_.hash) out_hash_.Update(r.ordered);
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
  const FilterOptions& o_;
  const Timestamp t_;
  FilterReport& report_;
  Outputs& outputs_;
  int threads_ = 1;
  size_t max_in_flight_ = 4, block_bytes_ = 2 << 20;
  std::vector<std::string> category_names_;  // the terms', by local index
  size_t unknown_names_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<InFlight>> slots_;  // in input order: block base_ first
  std::vector<std::unique_ptr<InFlight>> spare_;
  uint64_t base_ = 0, next_hash_ = 0, next_write_ = 0;
  bool reading_ = false, hashing_ = false, writing_ = false, eof_ = false;
  Status failed_ = OkStatus();

  // The reading chain's own (reading_).
  int map_fd_ = -1;  // a plain manifest's regular file, mapped (then read_at_ is where)
  struct stat mapped_stat_ {};
  uint64_t read_at_ = 0;
  std::atomic<bool> shrank_{false};  // a mapped page the file no longer reached was touched
  std::string carry_;  // a line begun in the last block
  bool input_done_ = false;
  uint64_t emitted_ = 0;  // bytes in the blocks read so far
  Hasher in_hash_;  // the hashing chain's own (hashing_)
  uint64_t hashed_ahead_ = 0;  // bytes in_hash_ took from an InputHashAhead
  // The writing chain's own (writing_).
  Hasher out_hash_;
  IdSet ids_;
  internal::BlockItems::FieldStats stats_;
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
    if (category == kMoreUnknownCategories) {
      report->warnings.push_back(std::to_string(counts.first + counts.second) + " items have one of "
                                 "more than " + std::to_string(kMaxUnknownCategories) +
                                 " other categories that terms " + terms.label() +
                                 " do not define (counted together)");
      continue;
    }
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
  FilterRun run(snap, options, t, &report, &outputs);
  ASSENT_RETURN_IF_ERROR(run.ReadAll(*in));
  Warn(snap.terms().version(snap.terms().VersionAt(t)), o, run.stats(), &report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSENT_RETURN_IF_ERROR(outputs.Commit(report.ToJson()));
  if (o.progress) {  // as the run counted: the mapped file's bytes, else the stream's
    const uint64_t done = in->RegularFileFd() >= 0 ? run.bytes_read() : in->consumed();
    o.progress(done, done);
  }
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
