// GET /v1/changes?after=N[&follow=false]: the change feed. Every ledger entry after N as one NDJSON line (the
// export's: position, kind, hash and the entry; consent events name the party by id for
// operator and service keys, by pseudonym only for auditors), then each new entry as this node
// applies it — every node's entries, in position order, without gaps (follow=false: end at the
// node's head instead). A client resumes from the last position it processed.
#include <charconv>

#include "server/api/handlers.h"
#include "server/problem.h"

namespace assent::server {
namespace {

class LedgerFeed : public FeedStream {
 public:
  LedgerFeed(const Ledger& ledger, uint64_t after, bool with_ids, bool follow)
      : ledger_(ledger), position_(after), with_ids_(with_ids), follow_(follow) {}

  bool Next(uint64_t applied, size_t max_bytes, std::string* out) override {
    uint64_t last = position_;
    if (auto st = ledger_.ExportPage(position_, applied, max_bytes, with_ids_, out, &last); !st) {
      out->append(Line(ProblemType::kUnavailable, "the ledger could not be read: " +
                                                      st.error().message));
      return false;
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
  return std::shared_ptr<FeedStream>(std::make_shared<LedgerFeed>(ctx.api->ledger(), after, with_ids,
                                                                follow == "true"));
}

}  // namespace assent::server
