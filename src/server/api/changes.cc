// GET /v1/changes?after=N[&follow=false]: the change feed. Every ledger entry after N as one NDJSON line (the
// export's: position, kind, hash and the entry; consent events name the party by id for
// operator and service keys, by pseudonym only for auditors), then each new entry as this node
// applies it — every node's entries, in position order, without gaps (follow=false: end at the
// node's head instead). A client resumes from the last position it processed.
#include <charconv>
#include <deque>
#include <mutex>

#include "server/api/handlers.h"
#include "server/problem.h"

namespace assent::server {

// The last entries read for any feed, as lines (one list with party ids, one with pseudonyms
// only): subscribers at the head take a new entry from here instead of each reading it from
// the store. Only a page that reached the head enters, so the lists stay contiguous up to the
// applied position; an erasure clears the list with ids (its lines may name the erased party).
class FeedCache {
 public:
  // Appends to *out the cached lines after `after` up to `up_to` (about max_bytes); false
  // when the cache does not hold the entry after `after`.
  bool Read(bool with_ids, uint64_t after, uint64_t up_to, size_t max_bytes, std::string* out,
            uint64_t* last) {
    std::lock_guard lock(mu_);
    const auto& lines = lines_[with_ids];
    if (lines.empty() || lines.front().position > after + 1 || lines.back().position <= after) {
      return false;
    }
    // Lines with ids are served only while the list reaches the head: every entry up to it
    // went through Add, so an erasure among them would have cleared the list.
    if (with_ids && lines.back().position < up_to) return false;
    for (size_t i = after + 1 - lines.front().position; i < lines.size(); ++i) {
      if (lines[i].position > up_to || (!out->empty() && out->size() >= max_bytes)) break;
      out->append(lines[i].text);
      *last = lines[i].position;
    }
    return true;
  }

  // A page read from the store (lines after `after`), which reached the head.
  void Add(bool with_ids, uint64_t after, std::string_view page) {
    std::lock_guard lock(mu_);
    auto& lines = lines_[with_ids];
    if (!lines.empty() && lines.back().position != after) lines.clear();  // not contiguous
    for (size_t start = 0; start < page.size();) {
      size_t end = page.find('\n', start);
      if (end == std::string_view::npos) break;
      const std::string_view line = page.substr(start, end + 1 - start);
      start = end + 1;
      uint64_t position = 0;
      constexpr std::string_view kField = "{\"position\":";
      if (!line.starts_with(kField)) continue;
      std::from_chars(line.data() + kField.size(), line.data() + line.size(), position);
      if (!lines.empty() && position != lines.back().position + 1) lines.clear();
      lines.push_back({position, std::string(line)});
      if (line.substr(0, 48).find("\"kind\":\"erasure\"") != std::string_view::npos) {
        lines_[true].clear();
      }
    }
    while (lines.size() > kKeep) lines.pop_front();
  }

 private:
  static constexpr size_t kKeep = 4096;
  struct Line {
    uint64_t position;
    std::string text;
  };
  std::mutex mu_;
  std::deque<Line> lines_[2];
};

std::shared_ptr<FeedCache> MakeFeedCache() { return std::make_shared<FeedCache>(); }

namespace {

class LedgerFeed : public FeedStream {
 public:
  LedgerFeed(const Ledger& ledger, std::shared_ptr<FeedCache> cache, uint64_t after,
             bool with_ids, bool follow)
      : ledger_(ledger), cache_(std::move(cache)), position_(after), with_ids_(with_ids),
        follow_(follow) {}

  bool Next(uint64_t applied, size_t max_bytes, std::string* out) override {
    uint64_t last = position_;
    if (applied > position_ && cache_->Read(with_ids_, position_, applied, max_bytes, out, &last)) {
      position_ = last;
      return follow_ || position_ < applied;
    }
    const size_t before = out->size();
    if (auto st = ledger_.ExportPage(position_, applied, max_bytes, with_ids_, out, &last); !st) {
      out->append(Line(ProblemType::kUnavailable, "the ledger could not be read: " +
                                                      st.error().message));
      return false;
    }
    if (last == applied && last > position_) {
      cache_->Add(with_ids_, position_, std::string_view(*out).substr(before));
    }
    position_ = last;
    // Without ?follow, the feed ends once it delivered what the node had applied.
    return follow_ || position_ < applied;
  }
  uint64_t position() const override { return position_; }
  std::string SlowConsumerLine() const override {
    return Line(ProblemType::kSlowConsumer,
                "more than the limit of this feed was left unread; reconnect with ?after=" +
                    std::to_string(position_));
  }
  std::string route() const override { return "GET /v1/changes"; }

 private:
  // A problem as the feed's last line, naming where to resume.
  std::string Line(ProblemType type, const std::string& detail) const {
    std::string body = Problem(type, detail).body;
    body.pop_back();  // the closing brace
    return body + ",\"resume_from\":" + std::to_string(position_) + "}\n";
  }

  const Ledger& ledger_;
  std::shared_ptr<FeedCache> cache_;
  uint64_t position_;
  const bool with_ids_;
  const bool follow_;
};

}  // namespace

HandlerOutcome Changes(RouteContext& ctx) {
  uint64_t after = 0;
  std::string s;
  if (ctx.request->QueryParam("after", &s)) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), after);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
      return BadRequest("\"after\" must be a non-negative integer: the last position processed");
    }
  }
  std::string follow = "true";
  ctx.request->QueryParam("follow", &follow);
  if (follow != "true" && follow != "false") {
    return BadRequest("\"follow\" must be true (the default: stay open) or false (end at the head)");
  }
  const KeyCaller* key = ctx.caller ? ctx.caller->key() : nullptr;
  const bool with_ids = key && (key->role == Role::kOperator || key->role == Role::kService);
  return std::shared_ptr<FeedStream>(std::make_shared<LedgerFeed>(ctx.api->ledger(), ctx.api->feed_cache(), after, with_ids,
                                                                follow == "true"));
}

}  // namespace assent::server
