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

namespace assent {
namespace {

constexpr size_t kBatch = 4096;
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

using Item = internal::ManifestItem;

// One line, parsed: blank, malformed (error set), or an item with its decision's index.
struct Parsed {
  bool blank = false;
  std::string error;
  Item item;
  size_t request = 0;
};

struct Batch {
  uint64_t first_line = 0;
  std::vector<std::string> lines;  // exactly as read, with the line's "\n" or "\r\n" if it had one
  std::vector<Parsed> items;
  std::vector<Result<Decision>> results;
};

}  // namespace

std::string internal::ParseManifestItem(simdjson::dom::parser& parser, const FilterOptions& o,
                                        std::string_view line, ManifestItem* it) {
  if (!ValidUtf8(line)) return "not valid UTF-8";
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(line.data(), line.size()).get(doc) || doc.get_object().get(obj)) {
    return "not a JSON object";
  }
  if (auto dup = DuplicateKey(obj)) {
    return "the key \"" + std::string(*dup) + "\" appears twice (readers disagree on which counts)";
  }
  std::string_view id, category;
  if (obj[o.id_field].get_string().get(id)) return "no string \"" + o.id_field + "\"";
  if (obj[o.category_field].get_string().get(category)) {
    return "no string \"" + o.category_field + "\"";
  }
  it->id.assign(id);
  it->category.assign(category);
  simdjson::dom::element acc;
  if (!obj[o.account_field].get(acc) && !acc.is_null()) {
    std::string_view a;
    if (acc.get_string().get(a)) return "\"" + o.account_field + "\" must be a string";
    if (BlankId(a)) return "\"" + o.account_field + "\" is empty or only whitespace";
    it->account.assign(a);
    it->has_account = true;
  }
  simdjson::dom::element subs;
  if (!obj[o.subjects_field].get(subs) && !subs.is_null()) {
    simdjson::dom::array arr;
    if (subs.get_array().get(arr)) return "\"" + o.subjects_field + "\" must be an array of strings";
    for (auto e : arr) {
      std::string_view sv;
      if (e.get_string().get(sv)) return "\"" + o.subjects_field + "\" must be an array of strings";
      if (BlankId(sv)) return "\"" + o.subjects_field + "\" holds an empty or blank id";
      it->subjects.emplace_back(sv);
    }
  }
  return "";
}

namespace {

// Parses and decides one batch (on a worker thread).
Batch Work(const Snapshot& snap, const FilterOptions& o, Timestamp now, Timestamp t,
           std::vector<std::string> lines, uint64_t first_line) {
  thread_local simdjson::dom::parser parser;
  Batch b;
  b.first_line = first_line;
  b.lines = std::move(lines);
  b.items.resize(b.lines.size());
  std::vector<DecisionRequest> requests;
  for (size_t i = 0; i < b.lines.size(); ++i) {
    Parsed& p = b.items[i];
    std::string_view text = b.lines[i];
    if (text.ends_with('\n')) text.remove_suffix(1);
    if (text.ends_with('\r')) text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string::npos) {
      p.blank = true;
      continue;
    }
    p.error = internal::ParseManifestItem(parser, o, text, &p.item);
    if (!p.error.empty()) continue;
    p.request = requests.size();
    Item& it = p.item;
    it.subject_views.assign(it.subjects.begin(), it.subjects.end());
    DecisionRequest q;
    q.category = it.category;
    q.purpose = o.purpose;
    q.subjects = it.subject_views;
    if (it.has_account) q.account = it.account;
    q.at = t;
    requests.push_back(q);
  }
  snap.DecideBatch(requests, now, &b.results);
  return b;
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
  if (terms.FindPurpose(o.purpose) < 0) {
    std::vector<std::string> names;
    for (const auto& p : terms.purposes()) names.push_back(p.name);
    return InvalidArgumentError("unknown purpose '" + o.purpose + "' in terms " + terms.label() +
                                DidYouMeanSuffix(o.purpose, names));
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
// every temporary removed on every failure path.
class Outputs {
 public:
  ~Outputs() {
    outs_.clear();  // closed before they are removed
    if (keep_) return;
    for (const auto& p : tmps_) std::remove(p.c_str());
    if (!report_tmp_.empty()) std::remove(report_tmp_.c_str());
  }

  Status Open(const FilterOptions& o) {
    if (o.shards == 0) {
      finals_.push_back(o.out_path);
    } else {
      for (int i = 0; i < o.shards; ++i) finals_.push_back(ShardFileName(o.out_path, i, o.shards));
    }
    for (const auto& f : finals_) ASSENT_RETURN_IF_ERROR(RefuseInputAsOutput(o.in_path, f, "--out"));
    if (!o.report_path.empty()) {
      ASSENT_RETURN_IF_ERROR(RefuseInputAsOutput(o.in_path, o.report_path, "--report"));
      RemoveStaleTemporaries(o.report_path);
      report_final_ = o.report_path;
      report_tmp_ = o.report_path + ".tmp-" + std::to_string(::getpid());
    }
    for (const auto& f : finals_) RemoveStaleTemporaries(f);
    for (const auto& f : finals_) tmps_.push_back(f + ".tmp-" + std::to_string(::getpid()));
    outs_.reserve(tmps_.size());
    for (const auto& t : tmps_) {
      outs_.emplace_back(t, std::ios::binary | std::ios::trunc);
      if (!outs_.back()) return MakeError(ErrorCode::kUnavailable, "cannot write '" + t + "'");
    }
    return OkStatus();
  }

  const std::vector<std::string>& finals() const { return finals_; }
  std::ofstream& out(size_t shard) { return outs_[shard]; }
  Status Good() const {
    for (const auto& out : outs_) {
      if (!out) return MakeError(ErrorCode::kUnavailable, "cannot write '" + tmps_.front() + "'");
    }
    return OkStatus();
  }

  // Closes the outputs, writes the report and renames everything into place.
  Status Commit(const std::string& report_json) {
    for (size_t i = 0; i < outs_.size(); ++i) {
      outs_[i].flush();
      outs_[i].close();
      if (!outs_[i]) return MakeError(ErrorCode::kUnavailable, "cannot write '" + tmps_[i] + "'");
    }
    if (!report_tmp_.empty()) {
      std::ofstream rep(report_tmp_, std::ios::binary | std::ios::trunc);
      rep << report_json << "\n";
      rep.close();
      if (!rep) {
        return MakeError(ErrorCode::kUnavailable, "cannot write the report to '" + report_tmp_ + "'");
      }
    }
    for (size_t i = 0; i < tmps_.size(); ++i) {  // everything is written: only renames are left
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
  std::vector<std::ofstream> outs_;
  bool keep_ = false;
};

// One run: batches of lines are parsed and decided on worker threads (each with its own
// parser); their results are taken in input order, so the output order and report never
// depend on the number of threads.
class FilterRun {
 public:
  FilterRun(const Snapshot& snap, Timestamp now, const FilterOptions& o, Timestamp t,
            FilterReport* report, Outputs* outputs)
      : snap_(snap), now_(now), o_(o), t_(t), report_(*report), outputs_(*outputs) {
    threads_ = std::max(1, o.threads);
    lines_.reserve(kBatch);
  }

  // Reads the manifest through; the outputs hold the kept lines when it returns OK.
  Status ReadAll(std::istream& in, uint64_t total) {
    Status failed = OkStatus();
    std::string line;
    while (failed && std::getline(in, line)) {
      ++line_no_;
      if (!in.eof()) line.push_back('\n');  // the line as it was: its ending kept for the output
      bytes_ += line.size();
      in_hash_.Update(line);
      lines_.push_back(std::move(line));
      if (lines_.size() == kBatch) {
        failed = Submit();
        if (o_.progress) o_.progress(bytes_, total);
      }
    }
    if (failed) failed = Submit();
    while (failed && !in_flight_.empty()) failed = DrainOne();
    while (!in_flight_.empty()) {  // a failure: wait for the workers, drop their results
      in_flight_.front().wait();
      in_flight_.pop_front();
    }
    ASSENT_RETURN_IF_ERROR(failed);
    if (in.bad()) return MakeError(ErrorCode::kUnavailable, "error reading '" + o_.in_path + "'");
    report_.input_sha256 = in_hash_.Hex();
    report_.output_sha256 = out_hash_.Hex();
    return OkStatus();
  }

 private:
  Status Submit() {
    if (lines_.empty()) return OkStatus();
    const uint64_t first = line_no_ - lines_.size() + 1;
    in_flight_.push_back(std::async(std::launch::async, [this, batch = std::move(lines_),
                                                         first]() mutable {
      return Work(snap_, o_, now_, t_, std::move(batch), first);
    }));
    lines_.clear();
    lines_.reserve(kBatch);
    while (in_flight_.size() >= static_cast<size_t>(threads_)) ASSENT_RETURN_IF_ERROR(DrainOne());
    return OkStatus();
  }

  Status DrainOne() {
    Batch b = in_flight_.front().get();
    in_flight_.pop_front();
    return Account(b);
  }

  Status Account(Batch& b) {
    for (size_t i = 0; i < b.items.size(); ++i) {
      const Parsed& p = b.items[i];
      if (p.blank) continue;
      ++report_.items;
      if (!p.error.empty()) {
        if (!o_.skip_malformed) {
          return InvalidArgumentError(o_.in_path + ":" + std::to_string(b.first_line + i) + ": " +
                                      p.error +
                                      " (use --skip-malformed to count such lines and go on)");
        }
        ++report_.malformed;
        ++report_.excluded;
        ++report_.excluded_by_reason["malformed"];
        continue;
      }
      CountId(p.item.id);
      const Result<Decision>& d = b.results[p.request];
      auto& counts = report_.by_category[p.item.category];
      if (d && d->allow) {
        Keep(p.item, b.lines[i]);
        ++counts.first;
      } else {
        ++report_.excluded;
        ++counts.second;
        ++report_.excluded_by_reason[d ? std::string(ReasonName(d->reason))
                                       : std::string("unknown-category")];
      }
    }
    return outputs_.Good();
  }

  void CountId(const std::string& id) {
    if (seen_ids_.size() < kMaxDuplicateTracking) {
      if (!seen_ids_.insert(Hash64(id)).second) ++report_.duplicate_ids;
    } else {
      report_.duplicates_checked_fully = false;
    }
  }

  // Byte for byte: the line with its own ending ("\r\n", "\n", or none at the end), into its
  // shard (by a stable hash of its first subject, else its account, else its id).
  void Keep(const Item& it, const std::string& line) {
    size_t shard = 0;
    if (o_.shards) {
      std::string_view key = !it.subjects.empty() ? std::string_view(it.subjects[0])
                             : it.has_account     ? std::string_view(it.account)
                                                  : std::string_view(it.id);
      shard = Hash64(key, 0x51a4d5) % static_cast<uint64_t>(o_.shards);
      auto& sh = report_.shards[shard];
      ++sh.items;
      if (o_.collect_parties) sh.subjects.insert(it.subjects.begin(), it.subjects.end());
    }
    if (o_.collect_parties) {
      report_.subjects.insert(it.subjects.begin(), it.subjects.end());
      if (it.has_account) report_.accounts.insert(it.account);
    }
    outputs_.out(shard).write(line.data(), static_cast<std::streamsize>(line.size()));
    out_hash_.Update(line);
    ++report_.kept;
  }

  const Snapshot& snap_;
  const Timestamp now_;
  const FilterOptions& o_;
  const Timestamp t_;
  FilterReport& report_;
  Outputs& outputs_;
  int threads_ = 1;
  Hasher in_hash_, out_hash_;
  std::unordered_set<uint64_t> seen_ids_;
  std::deque<std::future<Batch>> in_flight_;
  std::vector<std::string> lines_;
  uint64_t line_no_ = 0, bytes_ = 0;
};

}  // namespace

Result<FilterReport> RunFilter(const Snapshot& snap, Timestamp now, const FilterOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  FilterReport report;
  report.position = o.at ? snap.AnswerPositionAt(*o.at) : snap.position();
  const Timestamp t = o.at.value_or(now);
  ASSENT_RETURN_IF_ERROR(CheckRequest(snap, o, t, &report));
  std::ifstream in(o.in_path, std::ios::binary);
  if (!in) return NotFoundError("cannot read manifest '" + o.in_path + "'");
  in.seekg(0, std::ios::end);
  const uint64_t total = static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  in.seekg(0);
  Outputs outputs;
  ASSENT_RETURN_IF_ERROR(outputs.Open(o));
  if (o.shards) {
    report.shards.resize(o.shards);
    for (int i = 0; i < o.shards; ++i) report.shards[i].file = outputs.finals()[i];
  }
  FilterRun run(snap, now, o, t, &report, &outputs);
  ASSENT_RETURN_IF_ERROR(run.ReadAll(in, total));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSENT_RETURN_IF_ERROR(outputs.Commit(report.ToJson()));
  if (o.progress) o.progress(total, total);
  return report;
}

std::string FilterReport::ToJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("items").UInt(items).Key("kept").UInt(kept).Key("excluded").UInt(excluded);
  w.Key("excluded_by_reason").BeginObject();
  for (const auto& [r, c] : excluded_by_reason) w.Key(r).UInt(c);
  w.EndObject();
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
  w.EndObject();
  return w.Take();
}

std::string FilterReport::Summary() const {
  std::string s = "assent filter: kept " + std::to_string(kept) + " of " + std::to_string(items) +
                  " items (terms " + terms + ", ledger position " + std::to_string(position) + ")\n";
  for (const auto& [r, c] : excluded_by_reason) {
    s += "  excluded " + std::to_string(c) + " as " + r + "\n";
  }
  if (duplicate_ids) s += "  warning: " + std::to_string(duplicate_ids) + " duplicate ids\n";
  return s;
}

}  // namespace assent
