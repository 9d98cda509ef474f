// Decisions: one, a JSON batch, or an NDJSON stream answered as it arrives.
#include "server/api/handlers.h"

#include <chrono>

#include "common/json_writer.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;



// An NDJSON batch answered as it arrives: each complete line is one decision request, each
// answer line one decision or problem, in the order of the requests. A line that is not a
// request gets a problem line naming it (the stream goes on); a line asking for a ledger
// position this node has not applied waits for it (bounded by the listener), then gets 503.
class DecisionStream : public BodyStream {
 public:
  explicit DecisionStream(Api* api) : api_(api) {}

  Output Feed(std::string_view part, bool last, bool waited) override {
    Output out;
    ReadLines(part, last);
    Engine& engine = api_->ledger().engine();
    auto snap = engine.snapshot();
    uint64_t wanted = 0;
    for (const auto& p : pending_) {
      if (p.question) wanted = std::max(wanted, p.question->min_position);
    }
    if (wanted > snap->position() && !waited) {
      out.wait_for_position = wanted;
      return out;
    }
    Answer(*snap, engine.Now(), &out.bytes);
    return out;
  }
  std::string content_type() const override { return "application/x-ndjson"; }
  std::string route() const override { return "POST /v1/decisions:batch"; }

 private:
  static constexpr size_t kMaxLine = 1 << 20;
  struct Pending {
    std::optional<Question> question;
    std::string problem;  // the answer line when the request line was malformed
  };

  // Splits complete lines off `carry_ + part` into pending_ (a partial last line is kept for
  // the next part, at most kMaxLine bytes of it).
  void ReadLines(std::string_view part, bool last) {
    carry_.append(part);
    size_t start = 0;
    for (size_t nl; (nl = carry_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Take(std::string_view(carry_).substr(start, nl - start));
    }
    if (last && start < carry_.size()) {
      Take(std::string_view(carry_).substr(start));
      start = carry_.size();
    }
    carry_.erase(0, start);
    if (carry_.size() > kMaxLine) {  // a line too long to be a request: answered, then skipped
      if (!skipping_) {
        ++line_no_;
        pending_.push_back({std::nullopt, LineProblem(" is longer than 1 MiB")});
      }
      carry_.clear();
      skipping_ = true;
    }
  }

  void Take(std::string_view line) {
    if (skipping_) {  // the rest of a line already answered as too long
      skipping_ = false;
      return;
    }
    ++line_no_;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    element doc;
    object o;
    if (parser_.parse(line.data(), line.size()).get(doc) || doc.get_object().get(o)) {
      pending_.push_back({std::nullopt, LineProblem(" is not a JSON object")});
      return;
    }
    Question q;
    if (auto p = ReadQuestion(o, &q)) {
      pending_.push_back({std::nullopt, LineProblem(": " + p->detail)});
      return;
    }
    pending_.push_back({std::move(q), ""});
  }

  // `what` follows "line N": " is not ..." or ": detail".
  std::string LineProblem(const std::string& what) const {
    HttpResponse p = BadRequest("line " + std::to_string(line_no_) + what);
    return p.body;
  }
  void Answer(const Snapshot& snap, Timestamp now, std::string* out) {
    std::vector<DecisionRequest> requests;
    for (const auto& p : pending_) {
      if (p.question && p.question->min_position <= snap.position()) {
        requests.push_back(ToRequest(*p.question));
      }
    }
    std::vector<Result<Decision>> results;
    snap.DecideBatch(requests, now, &results);
    size_t next = 0;
    for (const auto& p : pending_) {
      if (!p.question) {
        *out += p.problem;
      } else if (p.question->min_position > snap.position()) {
        *out += NotAtPosition(p.question->min_position, snap.position()).body;
      } else if (const auto& r = results[next++]; r) {
        api_->metrics().Decision(r->reason);
        *out += DecisionToJson(*r);
      } else {
        *out += ProblemFor(r.error()).body;
      }
      *out += '\n';
    }
    pending_.clear();
  }

  Api* api_;
  simdjson::dom::parser parser_;
  std::string carry_;
  std::vector<Pending> pending_;
  uint64_t line_no_ = 0;
  bool skipping_ = false;
};

}  // namespace

HttpResponse NotAtPosition(uint64_t wanted, uint64_t applied) {
  return ProblemFor(Error{ErrorCode::kUnavailable,
                          "this node has applied ledger position " + std::to_string(applied) +
                              ", not yet " + std::to_string(wanted) + "; retry"});
}

HandlerOutcome Decide(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, kDecisionFields)) return *p;
  Question q;
  if (auto p = ReadQuestion(b.obj, &q)) return *p;
  Engine& engine = ctx.api->ledger().engine();
  auto snap = engine.snapshot();
  if (q.min_position > snap->position()) {
    if (!ctx.waited) {
      return WaitForPosition{q.min_position};
    }
    return NotAtPosition(q.min_position, snap->position());
  }
  auto d = snap->Decide(ToRequest(q), engine.Now());
  if (!d) return ProblemFor(d.error());
  ctx.api->metrics().Decision(d->reason);
  return Json(DecisionToJson(*d));
}

namespace {

constexpr size_t kMaxItems = 10000;

// A whole NDJSON body (not streamed): one question per non-blank line.
std::optional<HttpResponse> ReadNdjson(std::string_view body, simdjson::dom::parser& parser,
                                       std::vector<Question>* questions, uint64_t* min_position) {
  size_t line_no = 0;
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    element doc;
    object o;
    if (parser.parse(line.data(), line.size()).get(doc) || doc.get_object().get(o)) {
      return BadRequest("line " + std::to_string(line_no) + " is not a JSON object");
    }
    Question q;
    if (auto p = ReadQuestion(o, &q)) {
      return BadRequest("line " + std::to_string(line_no) + ": " + p->detail);
    }
    *min_position = std::max(*min_position, q.min_position);
    questions->push_back(std::move(q));
  }
  return std::nullopt;
}

// {"items":[...],"min_position":N}, at most kMaxItems items.
std::optional<HttpResponse> ReadItems(const HttpRequest& req, std::vector<Question>* questions,
                                      uint64_t* min_position) {
  Body b;
  if (auto p = ParseObject(req, &b, {"items", "min_position"})) return *p;
  if (auto p = GetU64(b.obj, "min_position", min_position)) return *p;
  simdjson::dom::array items;
  if (b.obj["items"].get_array().get(items) != simdjson::SUCCESS) {
    return BadRequest("\"items\" must be an array of decision requests");
  }
  if (items.size() > kMaxItems) {
    return Problem(ProblemType::kTooManyItems,
                   "a batch holds at most " + std::to_string(kMaxItems) +
                       " items; send more with Content-Type: application/x-ndjson");
  }
  size_t i = 0;
  for (element e : items) {
    object o;
    if (e.get_object().get(o)) return BadRequest("item " + std::to_string(i) + " is not an object");
    Question q;
    if (auto p = ReadQuestion(o, &q)) return BadRequest("item " + std::to_string(i) + ": " + p->detail);
    questions->push_back(std::move(q));
    ++i;
  }
  return std::nullopt;
}

}  // namespace

HandlerOutcome DecideBatch(RouteContext& ctx) {
  Engine& engine = ctx.api->ledger().engine();
  const bool ndjson = ctx.request->Header("Content-Type").starts_with("application/x-ndjson");
  std::vector<Question> questions;
  uint64_t min_position = 0;
  simdjson::dom::parser parser;
  if (auto p = ndjson ? ReadNdjson(ctx.request->body, parser, &questions, &min_position)
                      : ReadItems(*ctx.request, &questions, &min_position)) {
    return *p;
  }
  auto snap = engine.snapshot();
  if (min_position > snap->position()) {
    if (!ctx.waited) {
      return WaitForPosition{min_position};
    }
    return NotAtPosition(min_position, snap->position());
  }
  std::vector<DecisionRequest> requests;
  requests.reserve(questions.size());
  for (const auto& q : questions) requests.push_back(ToRequest(q));
  std::vector<Result<Decision>> results;
  snap->DecideBatch(requests, engine.Now(), &results);
  std::string out;
  if (!ndjson) out = "{\"decisions\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    if (!ndjson && i) out += ",";
    if (results[i]) {
      ctx.api->metrics().Decision(results[i]->reason);
      out += DecisionToJson(*results[i]);
    } else {
      out += ProblemFor(results[i].error()).body;
    }
    if (ndjson) out += "\n";
  }
  if (!ndjson) out += "]}";
  HttpResponse r = Json(std::move(out));
  if (ndjson) r.content_type = "application/x-ndjson";
  return r;
}


std::unique_ptr<BodyStream> NewDecisionStream(Api* api) {
  return std::make_unique<DecisionStream>(api);
}

}  // namespace assent::server
