// Routing, authentication and the handlers of the /v1 API.
#include "server/api.h"

#include <openssl/rand.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <ostream>
#include <sstream>

#include "common/json_keys.h"
#include "common/json_writer.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "engine/events_jsonl.h"
#include "audit/audit.h"
#include "filter/impact.h"
#include "ledger/lineage.h"
#include "server/pages.h"
#include "server/problem.h"
#include "terms/diff.h"

namespace assent::server {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Error Invalid(std::string message) { return Error{ErrorCode::kInvalidArgument, std::move(message)}; }

HttpResponse Json(std::string body, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Parses a JSON request body into an object; 400 problems for anything else.
struct Body {
  simdjson::dom::parser parser;
  object obj;
};

std::optional<HttpResponse> ParseObject(const HttpRequest& req, Body* b,
                                        const std::vector<std::string>& allowed) {
  if (!ValidUtf8(req.body)) return BadRequest("the body is not valid UTF-8");
  element doc;
  auto err = b->parser.parse(req.body.data(), req.body.size()).get(doc);
  if (err) return BadRequest(std::string("the body is not valid JSON: ") + simdjson::error_message(err));
  if (doc.get_object().get(b->obj) != simdjson::SUCCESS) {
    return BadRequest("the body must be a JSON object");
  }
  if (auto dup = DuplicateKey(b->obj)) {
    return BadRequest("the field \"" + std::string(*dup) + "\" appears twice: give it once");
  }
  for (auto field : b->obj) {
    std::string_view k = field.key;
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return BadRequest("unknown field \"" + std::string(k) + "\"" + DidYouMeanSuffix(k, allowed));
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> GetString(object o, const char* key, std::string* out, bool required) {
  element v;
  if (o[key].get(v) != simdjson::SUCCESS) {
    if (required) return BadRequest(std::string("missing \"") + key + "\"");
    return std::nullopt;
  }
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return BadRequest(std::string("\"") + key + "\" must be a string");
  }
  *out = std::string(s);
  return std::nullopt;
}

std::optional<HttpResponse> GetStrings(object o, const char* key, std::vector<std::string>* out,
                                       bool required) {
  element v;
  if (o[key].get(v) != simdjson::SUCCESS) {
    if (required) return BadRequest(std::string("missing \"") + key + "\"");
    return std::nullopt;
  }
  simdjson::dom::array a;
  if (v.get_array().get(a) != simdjson::SUCCESS) {
    return BadRequest(std::string("\"") + key + "\" must be an array of strings");
  }
  for (element e : a) {
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) {
      return BadRequest(std::string("\"") + key + "\" must be an array of strings");
    }
    out->emplace_back(s);
  }
  return std::nullopt;
}

std::optional<HttpResponse> GetPosition(object o, uint64_t* out) {
  element v;
  if (o["min_position"].get(v) != simdjson::SUCCESS) return std::nullopt;
  if (v.get_uint64().get(*out) != simdjson::SUCCESS) {
    return BadRequest("\"min_position\" must be a non-negative integer");
  }
  return std::nullopt;
}

// A decision question read from one JSON object.
struct Question {
  std::string category, purpose, account;
  bool has_account = false;
  std::vector<std::string> subjects;
  std::vector<std::string_view> subject_views;
  std::optional<Timestamp> at;
  uint64_t min_position = 0;
};

const std::vector<std::string> kDecisionFields = {"category", "purpose", "subjects", "account",
                                                   "at",       "min_position"};

std::optional<HttpResponse> ReadQuestion(object o, Question* q) {
  if (auto dup = DuplicateKey(o)) {
    return BadRequest("the field \"" + std::string(*dup) + "\" appears twice: give it once");
  }
  for (auto field : o) {
    std::string_view k = field.key;
    if (std::find(kDecisionFields.begin(), kDecisionFields.end(), k) == kDecisionFields.end()) {
      return BadRequest("unknown field \"" + std::string(k) + "\"" +
                        DidYouMeanSuffix(k, kDecisionFields));
    }
  }
  if (auto p = GetString(o, "category", &q->category, true)) return p;
  if (auto p = GetString(o, "purpose", &q->purpose, true)) return p;
  if (auto p = GetStrings(o, "subjects", &q->subjects, false)) return p;
  element acc;
  if (o["account"].get(acc) == simdjson::SUCCESS && !acc.is_null()) {
    if (auto p = GetString(o, "account", &q->account, true)) return p;
    q->has_account = true;
  }
  std::string at;
  if (auto p = GetString(o, "at", &at, false)) return p;
  if (!at.empty()) {
    auto t = ParseTime(at);
    if (!t) return ProblemFor(t.error());
    q->at = *t;
  }
  if (auto p = GetPosition(o, &q->min_position)) return p;
  for (const auto& s : q->subjects) q->subject_views.push_back(s);
  return std::nullopt;
}

DecisionRequest ToRequest(const Question& q) {
  DecisionRequest r;
  r.category = q.category;
  r.purpose = q.purpose;
  r.subjects = q.subject_views;
  if (q.has_account) r.account = q.account;
  r.at = q.at;
  return r;
}

HttpResponse NotAtPosition(uint64_t wanted, uint64_t applied) {
  return ProblemFor(Error{ErrorCode::kUnavailable,
                          "this node has applied ledger position " + std::to_string(applied) +
                              ", not yet " + std::to_string(wanted) + "; retry"});
}

// ---- handlers -------------------------------------------------------------------------------

HttpResponse Healthz(RouteContext&) { return Json("{\"status\":\"ok\"}"); }

HttpResponse Readyz(RouteContext& ctx) {
  using AuditCheck = Api::AuditCheck;
  const uint64_t pos = ctx.api->ledger().position();
  const auto [check, detail] = ctx.api->audit_check();
  static constexpr const char* kNames[] = {"not_run", "running", "passed", "failed"};
  const bool ready = check != AuditCheck::kRunning && check != AuditCheck::kFailed;
  // A node that cannot reach a shared ledger still answers decisions from the state it has
  // applied (with its position), so it stays ready — "degraded": writes fail with 503 until
  // the database is back. Taking every node out of a load balancer would stop decisions too.
  const bool reachable = ctx.api->ledger().store_reachable();
  JsonWriter w;
  w.BeginObject();
  w.Key("status").String(!ready ? (check == AuditCheck::kRunning ? "verifying" : "audit_failed")
                         : reachable ? "ready"
                                     : "degraded");
  w.Key("position").UInt(pos);
  w.Key("audit").String(kNames[static_cast<int>(check)]);
  if (!detail.empty()) w.Key("audit_detail").String(detail);
  // Unauthenticated: what is wrong with the database is in the node's log, not here.
  w.Key("ledger").String(reachable ? "reachable" : "unreachable");
  if (!reachable) w.Key("ledger_detail").String("degraded: database unreachable");
  w.EndObject();
  return Json(w.Take(), ready ? 200 : 503);
}

HttpResponse MetricsRoute(RouteContext& ctx) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = ctx.api->metrics().Render(ctx.api->ledger().position());
  return r;
}

HttpResponse OpenApi(RouteContext&) { return Json(Api::OpenApiJson()); }

HttpResponse Decide(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, kDecisionFields)) return *p;
  Question q;
  if (auto p = ReadQuestion(b.obj, &q)) return *p;
  Engine& engine = ctx.api->ledger().engine();
  auto snap = engine.snapshot();
  if (q.min_position > snap->position()) {
    if (!ctx.waited) {
      ctx.wait_for = q.min_position;
      return {};
    }
    return NotAtPosition(q.min_position, snap->position());
  }
  auto d = snap->Decide(ToRequest(q), engine.Now());
  if (!d) return ProblemFor(d.error());
  ctx.api->metrics().Decision(d->reason);
  return Json(DecisionToJson(*d));
}

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
      pending_.push_back({std::nullopt, LineProblem(DetailOf(p->body))});
      return;
    }
    pending_.push_back({std::move(q), ""});
  }

  // `what` follows "line N": " is not ..." or ": detail".
  std::string LineProblem(const std::string& what) const {
    HttpResponse p = BadRequest("line " + std::to_string(line_no_) + what);
    return p.body;
  }
  static std::string DetailOf(const std::string& problem_json) {
    simdjson::dom::parser parser;
    std::string_view detail;
    if (parser.parse(problem_json).get_object()["detail"].get_string().get(detail)) {
      return ": malformed";
    }
    return ": " + std::string(detail);
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

HttpResponse DecideBatch(RouteContext& ctx) {
  constexpr size_t kMaxItems = 10000;
  Engine& engine = ctx.api->ledger().engine();
  const bool ndjson = ctx.request->Header("Content-Type").starts_with("application/x-ndjson");
  std::vector<Question> questions;
  uint64_t min_position = 0;
  simdjson::dom::parser parser;
  if (ndjson) {
    std::string_view body = ctx.request->body;
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
        return BadRequest("line " + std::to_string(line_no) + ": " + p->body);
      }
      min_position = std::max(min_position, q.min_position);
      questions.push_back(std::move(q));
    }
  } else {
    Body b;
    if (auto p = ParseObject(*ctx.request, &b, {"items", "min_position"})) return *p;
    if (auto p = GetPosition(b.obj, &min_position)) return *p;
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
      if (auto p = ReadQuestion(o, &q)) {
        return BadRequest("item " + std::to_string(i) + ": " + p->body);
      }
      questions.push_back(std::move(q));
      ++i;
    }
  }
  auto snap = engine.snapshot();
  if (min_position > snap->position()) {
    if (!ctx.waited) {
      ctx.wait_for = min_position;
      return {};
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

void WriteTerms(JsonWriter& w, const Terms& t) {
  w.BeginObject();
  w.Key("terms").String(t.id());
  w.Key("version").String(t.version());
  w.Key("effective").String(FormatTime(t.effective()));
  w.Key("clauses").BeginArray();
  for (const auto& c : t.clauses()) {
    w.BeginObject().Key("id").String(c.id).Key("title").String(c.title);
    w.Key("text").String(c.text).EndObject();
  }
  w.EndArray();
  for (bool cats : {true, false}) {
    w.Key(cats ? "categories" : "purposes").BeginArray();
    for (const auto& n : cats ? t.categories() : t.purposes()) {
      w.BeginObject().Key("name").String(n.name).Key("description").String(n.description);
      if (!cats && n.gpc) w.Key("gpc").Bool(true);
      if (!n.derived_from.empty()) {
        w.Key("derived_from").BeginArray();
        for (int32_t d : n.derived_from) w.String(t.categories()[d].name);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("rules").BeginArray();
  for (const auto& r : t.rules()) {
    w.BeginObject().Key("id").String(r.id).Key("basis").String(BasisName(r.basis));
    if (!r.summary.empty()) w.Key("summary").String(r.summary);
    if (r.basis == Basis::kConsent || r.basis == Basis::kObjectable) {
      w.Key("consent_from").String(ConsentFromName(r.consent_from));
    }
    if (r.consent_valid_for) w.Key("consent_valid_for").String(FormatDuration(*r.consent_valid_for));
    w.Key("categories").BeginArray();
    for (int32_t c : r.categories) w.String(t.categories()[c].name);
    w.EndArray().Key("purposes").BeginArray();
    for (int32_t p : r.purposes) w.String(t.purposes()[p].name);
    w.EndArray().Key("clauses").BeginArray();
    for (const auto& c : r.clause_ids) w.String(c);
    w.EndArray().EndObject();
  }
  w.EndArray();
  w.EndObject();
}

HttpResponse TermsCurrent(RouteContext& ctx) {
  Engine& engine = ctx.api->ledger().engine();
  auto snap = engine.snapshot();
  int32_t v = snap->terms().VersionAt(engine.Now());
  if (v < 0) return ProblemFor(Error{ErrorCode::kNotFound, "no terms are in effect now"});
  JsonWriter w;
  WriteTerms(w, snap->terms().version(v));
  return Json(w.Take());
}

HttpResponse TermsVersion(RouteContext& ctx) {
  auto snap = ctx.api->ledger().engine().snapshot();
  int32_t v = snap->terms().FindVersion(ctx.params[0]);
  if (v < 0) {
    return ProblemFor(Error{ErrorCode::kNotFound, "no terms version '" + ctx.params[0] + "'"});
  }
  JsonWriter w;
  WriteTerms(w, snap->terms().version(v));
  return Json(w.Take());
}

HttpResponse TermsPublish(RouteContext& ctx) {
  const std::string& yaml = ctx.request->body;
  LintResult lint = LintTerms(yaml, "request body");
  if (lint.has_errors()) {
    HttpResponse r = Problem(ProblemType::kTermsRefused,
                             "fix the diagnostics and publish again");
    JsonWriter w;
    w.BeginArray();
    for (const auto& d : lint.diagnostics) {
      w.BeginObject().Key("line").Int(d.line).Key("column").Int(d.column);
      w.Key("severity").String(d.severity == Severity::kError ? "error" : "warning");
      w.Key("message").String(d.message).Key("code").String(d.code).EndObject();
    }
    w.EndArray();
    r.body.pop_back();
    r.body += ",\"diagnostics\":" + w.Take() + "}";
    return r;
  }
  PublishOptions options;
  std::string flag;
  if (ctx.request->QueryParam("backfill", &flag)) {
    return ProblemFor(Invalid("backfilling terms (an effective time in the past) changes answers "
                              "already given; it is done only with `assent terms publish "
                              "--backfill` on the command line, never over HTTP"));
  }
  if (ctx.request->QueryParam("allow_loosening", &flag)) {
    if (flag != "true" && flag != "false") {
      return BadRequest("allow_loosening must be true or false");
    }
    options.allow_loosening = flag == "true";
  }
  auto start = std::chrono::steady_clock::now();
  auto p = ctx.api->ledger().PublishTerms(yaml, "request body", options);
  ctx.api->metrics().Append(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!p) return ProblemFor(p.error());
  JsonWriter w;
  w.BeginObject().Key("terms").String(p->terms->label()).Key("position").UInt(p->position);
  w.Key("already_published").Bool(p->already_published).EndObject();
  return Json(w.Take(), p->already_published ? 200 : 201);
}

HttpResponse TermsDiffRoute(RouteContext& ctx) {
  auto snap = ctx.api->ledger().engine().snapshot();
  int32_t a = snap->terms().FindVersion(ctx.params[0]);
  int32_t b = snap->terms().FindVersion(ctx.params[1]);
  if (a < 0 || b < 0) {
    return ProblemFor(Error{ErrorCode::kNotFound, "no terms version '" +
                                                      ctx.params[a < 0 ? 0 : 1] + "'"});
  }
  return Json(DiffJson(DiffTerms(snap->terms().version(a), snap->terms().version(b))).dump());
}

PartyKind KindOf(const RouteContext& ctx) {
  return ctx.request->Path().starts_with("/v1/accounts/") ? PartyKind::kAccount
                                                          : PartyKind::kSubject;
}

HttpResponse Consents(RouteContext& ctx) {
  const PartyKind kind = KindOf(ctx);
  const std::string& id = ctx.params[0];
  Engine& engine = ctx.api->ledger().engine();
  auto snap = engine.snapshot();
  const Timestamp now = engine.Now();
  int32_t v = snap->terms().VersionAt(now);
  if (v < 0) return ProblemFor(Error{ErrorCode::kNotFound, "no terms are in effect now"});
  const Terms& t = snap->terms().version(v);
  JsonWriter w;
  w.BeginObject();
  w.Key(PartyKindName(kind)).String(id);
  w.Key("terms").String(t.label());
  w.Key("position").UInt(snap->position());
  w.Key("rules").BeginArray();
  for (const Rule& rule : t.rules()) {
    const bool asks = rule.basis == Basis::kConsent || rule.basis == Basis::kObjectable;
    const bool for_me = kind == PartyKind::kAccount ? rule.consent_from != ConsentFrom::kSubjects
                                                    : rule.consent_from != ConsentFrom::kAccount;
    w.BeginObject();
    w.Key("rule").String(rule.id);
    w.Key("basis").String(BasisName(rule.basis));
    if (!rule.summary.empty()) w.Key("summary").String(rule.summary);
    if (asks) w.Key("consent_from").String(ConsentFromName(rule.consent_from));
    w.Key("categories").BeginArray();
    for (int32_t c : rule.categories) {
      w.BeginObject().Key("name").String(t.categories()[c].name);
      w.Key("description").String(t.categories()[c].description).EndObject();
    }
    w.EndArray().Key("purposes").BeginArray();
    for (int32_t p : rule.purposes) {
      w.BeginObject().Key("name").String(t.purposes()[p].name);
      w.Key("description").String(t.purposes()[p].description).EndObject();
    }
    w.EndArray().Key("clauses").BeginArray();
    for (int32_t c : rule.clauses) {
      w.BeginObject().Key("id").String(t.clauses()[c].id).Key("title").String(t.clauses()[c].title);
      w.Key("text").String(t.clauses()[c].text).EndObject();
    }
    w.EndArray();
    if (asks && for_me) {
      // The state over the rule's own pairs; the latest deciding event names "since".
      std::string state = "none";
      uint64_t event = 0;
      bool mixed = false, stale = false;
      for (int32_t c : rule.categories) {
        for (int32_t p : rule.purposes) {
          int32_t r = t.DecidingRule(c, p);
          if (r < 0 || &t.rules()[r] != &rule) continue;
          auto st = snap->PartyStateFor(kind, id, t.categories()[c].name, t.purposes()[p].name, now);
          if (!st) continue;
          std::string s(PartyStateName(st->state));
          stale |= st->state == PartyState::kStale;
          if (event == 0 && state == "none") {
            state = s;
            event = st->event;
          } else if (s != state) {
            mixed = true;
          }
          event = std::max(event, st->event);
        }
      }
      w.Key("state").String(mixed ? "mixed" : state);
      // A grant some of whose pairs changed meaning since it was given: ask again.
      w.Key("stale").Bool(stale);
      w.Key("event");
      if (event) {
        w.UInt(event);
      } else {
        w.Null();
      }
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(w.Take());
}

HttpResponse History(RouteContext& ctx) {
  const PartyKind kind = KindOf(ctx);
  auto snap = ctx.api->ledger().engine().snapshot();
  JsonWriter w;
  w.BeginObject();
  w.Key(PartyKindName(kind)).String(ctx.params[0]);
  w.Key("position").UInt(snap->position());
  w.Key("events").BeginArray();
  for (const auto& e : snap->EventsOf(kind, ctx.params[0])) {
    w.BeginObject();
    WriteHistoryEvent(w, e);
    // Who recorded it (a key, or a session and the key that minted its link) is in the entry.
    if (auto rc = ctx.api->ledger().ReceiptAt(e.position); rc && !rc->actor.empty()) {
      w.Key("actor").String(rc->actor);
    }
    if (auto h = ctx.api->ledger().EntryHash(e.position)) w.Key("hash").String(*h);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return Json(w.Take());
}

HttpResponse RecordConsent(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b,
                           {"rule", "categories", "purposes", "action", "at", "method"})) {
    return *p;
  }
  ConsentEvent e;
  e.party_kind = KindOf(ctx);
  e.party = ctx.params[0];
  std::string action, at, method;
  if (auto p = GetString(b.obj, "action", &action, true)) return *p;
  if (auto p = GetString(b.obj, "rule", &e.rule, false)) return *p;
  if (auto p = GetStrings(b.obj, "categories", &e.categories, false)) return *p;
  if (auto p = GetStrings(b.obj, "purposes", &e.purposes, false)) return *p;
  if (auto p = GetString(b.obj, "at", &at, false)) return *p;
  if (auto p = GetString(b.obj, "method", &method, false)) return *p;
  auto a = ParseAction(action);
  if (!a) return BadRequest("\"action\" must be \"grant\" or \"withdraw\"");
  e.action = *a;
  const bool session = ctx.caller->session.has_value();
  if (e.action == Action::kGrant && !session) {
    return Problem(ProblemType::kGrantNeedsThePerson,
                   "an API key may record withdrawals and objections, never grants: nobody "
                   "grants consent on another's behalf. Grants come from the person's own "
                   "settings session.");
  }
  if (e.rule.empty() && (e.categories.empty() || e.purposes.empty())) {
    return BadRequest("give \"rule\", or \"categories\" and \"purposes\"");
  }
  // The method follows from the caller: a session is the person's own settings page (or the
  // admin's page); a key is the API, or a Global Privacy Control signal it relays. A key can
  // never claim a person's or an admin's own click.
  e.method = Method::kApi;
  if (session) {
    e.method = ctx.caller->session->kind == PartyKind::kSubject ? Method::kSettings : Method::kAdmin;
    if (!method.empty() && method != MethodName(e.method)) {
      return BadRequest("\"method\" follows from the session (" +
                        std::string(MethodName(e.method)) + "); leave it out");
    }
  } else if (!method.empty()) {
    auto m = ParseMethod(method);
    if (!m || (*m != Method::kApi && *m != Method::kGpc)) {
      return BadRequest("\"method\" from an API key must be api or gpc (settings and admin "
                        "are recorded only from the person's or admin's own session)");
    }
    e.method = *m;
  }
  // A choice under a rule that asks nobody's choice has no effect: say so instead of 201.
  if (!e.rule.empty()) {
    auto snap = ctx.api->ledger().engine().snapshot();
    const int32_t v = snap->terms().VersionAt(ctx.api->ledger().engine().Now());
    if (v >= 0) {
      const Terms& t = snap->terms().version(v);
      const int32_t r = t.FindRule(e.rule);
      if (r >= 0 && t.rules()[r].basis != Basis::kConsent &&
          t.rules()[r].basis != Basis::kObjectable) {
        return ProblemFor(Invalid("rule '" + e.rule + "' is " +
                                  std::string(BasisName(t.rules()[r].basis)) +
                                  ": nobody's choice changes it, so there is nothing to record"));
      }
    }
  }
  if (!at.empty()) {
    // A live write is stamped by the server's clock. A client's time is only checked: one in
    // the future would hold every later event's time there (times never decrease), and
    // backdated history enters through `assent ledger import`, never the live API.
    auto t = ParseTime(at);
    if (!t) return ProblemFor(t.error());
    const Timestamp now = ctx.api->ledger().engine().Now();
    if (*t > now + kMaxClockSkew) {
      return ProblemFor(Invalid(
          "\"at\" " + FormatTime(*t) + " is in the future (the server's time is " +
          FormatTime(now) + "); leave \"at\" out: the server stamps every event"));
    }
    if (*t < now - kMaxClockSkew) {
      return ProblemFor(Invalid(
          "\"at\" " + FormatTime(*t) + " is in the past (the server's time is " +
          FormatTime(now) + "); the live API records choices as they are made; import older "
          "history with `assent ledger import`"));
    }
  }
  // Who wrote it: the key, or the session and the key that minted its sign-in link.
  e.actor = session ? "session minted by " + ctx.caller->session->minted_by
                    : "key:" + ctx.caller->key_name;
  // Idempotency-Key (as in the IETF httpapi draft): a retry after a lost connection gets the
  // first request's receipt instead of recording the event twice. Keys are scoped to the
  // caller; only their SHA-256 is stored.
  if (std::string_view key = ctx.request->Header("Idempotency-Key"); !key.empty()) {
    if (key.size() > 255 || !std::all_of(key.begin(), key.end(), [](char c) {
          return c >= 0x21 && c <= 0x7e;
        })) {
      return BadRequest("Idempotency-Key must be 1-255 printable ASCII characters, e.g. a UUID");
    }
    const std::string caller =
        session ? std::string(PartyKindName(ctx.caller->session->kind)) + ":" +
                      ctx.caller->session->party
                : "key:" + ctx.caller->key_name;
    const Sha256Digest digest = Sha256(caller + '\0' + std::string(key));
    e.idempotency_key.assign(reinterpret_cast<const char*>(digest.data()), digest.size());
  }
  auto start = std::chrono::steady_clock::now();
  auto r = ctx.api->ledger().RecordConsent(std::move(e));
  ctx.api->metrics().Append(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!r) return ProblemFor(r.error());
  HttpResponse out = Json(r->ToJson(), 201);
  if (ctx.api->auditor()) {  // the receipt carries its proof
    auto provable = ctx.api->auditor()->ProvableReceipt(ctx.api->ledger(), *r);
    if (provable) out = Json(*provable, 201);
  }
  if (r->replayed) out.headers.emplace_back("Idempotent-Replayed", "true");
  return out;
}

std::string B64(const audit::Hash& h) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32));
}

HttpResponse NoAuditor() {
  return ProblemFor(Error{ErrorCode::kFailedPrecondition, "this server keeps no audit log"});
}

HttpResponse AuditKey(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  HttpResponse r = Json(ctx.api->auditor()->VerifierKey() + "\n");
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

HttpResponse AuditCheckpoint(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  HttpResponse r = Json(ctx.api->auditor()->Checkpoint());
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

bool U64Param(const HttpRequest& req, const char* name, uint64_t* out) {
  std::string s;
  if (!req.QueryParam(name, &s) || s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

HttpResponse AuditInclusion(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  uint64_t position = 0, size = 0;
  if (!U64Param(*ctx.request, "position", &position) || !U64Param(*ctx.request, "size", &size)) {
    return BadRequest("give ?position=N&size=M (integers)");
  }
  auto proof = ctx.api->auditor()->InclusionProof(position, size);
  if (!proof) return ProblemFor(proof.error());
  JsonWriter w;
  w.BeginObject().Key("position").UInt(position).Key("size").UInt(size);
  w.Key("leaf_hash").String(ToHex(*ctx.api->auditor()->Leaf(position)));
  w.Key("proof").BeginArray();
  for (const auto& h : *proof) w.String(B64(h));
  w.EndArray().EndObject();
  return Json(w.Take());
}

HttpResponse AuditConsistency(RouteContext& ctx) {
  if (!ctx.api->auditor()) return NoAuditor();
  uint64_t from = 0, to = 0;
  if (!U64Param(*ctx.request, "from", &from) || !U64Param(*ctx.request, "to", &to)) {
    return BadRequest("give ?from=M&to=N (integers)");
  }
  auto proof = ctx.api->auditor()->ConsistencyProof(from, to);
  if (!proof) return ProblemFor(proof.error());
  JsonWriter w;
  w.BeginObject().Key("from").UInt(from).Key("to").UInt(to).Key("proof").BeginArray();
  for (const auto& h : *proof) w.String(B64(h));
  w.EndArray().EndObject();
  return Json(w.Take());
}

HttpResponse MintSession(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, {"subject", "account"})) return *p;
  std::string subject, account;
  if (auto p = GetString(b.obj, "subject", &subject, false)) return *p;
  if (auto p = GetString(b.obj, "account", &account, false)) return *p;
  if (subject.empty() == account.empty()) return BadRequest("give exactly one of \"subject\" or \"account\"");
  const bool person = !subject.empty();
  const Timestamp now = ctx.api->ledger().engine().Now();
  if (BlankId(person ? subject : account)) {
    return ProblemFor(Invalid("the id is empty or only whitespace: it names nobody"));
  }
  std::string token = ctx.api->sessions().MintLink(
      person ? PartyKind::kSubject : PartyKind::kAccount, person ? subject : account, now,
      "key:" + ctx.caller->key_name);
  JsonWriter w;
  w.BeginObject().Key("link").String("/session/" + token);
  w.Key("expires_at").String(FormatTime(now + Sessions::kLinkLifetime)).EndObject();
  return Json(w.Take(), 201);
}

HttpResponse RedeemSession(RouteContext& ctx) {
  const Timestamp now = ctx.api->ledger().engine().Now();
  auto sid = ctx.api->sessions().Redeem(ctx.params[0], now);
  if (!sid && sid.error().code != ErrorCode::kNotFound) return ProblemFor(sid.error());
  if (!sid) {
    return Problem(ProblemType::kLinkExpired,
                   "session links work once and for a few minutes; ask for a new one");
  }
  auto session = ctx.api->sessions().Find(*sid, now);
  HttpResponse r;
  r.status = 303;
  r.headers.emplace_back("Location",
                         session->kind == PartyKind::kSubject ? "/settings" : "/admin");
  r.headers.emplace_back("Set-Cookie", "assent_session=" + *sid +
                                           "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" +
                                           std::to_string(Sessions::kSessionLifetime /
                                                          kMicrosPerSecond));
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = "{\"status\":\"signed in\"}";
  return r;
}

// Global Privacy Control: a person's browser saying "do not sell or share". It records an
// objection (method gpc) under every objectable rule that covers a purpose marked `gpc: true`,
// scoped to those purposes; it never grants anything. Returns the rules it objected under.
std::vector<std::string> HonourGpc(RouteContext& ctx, const WebSession& s, bool* honoured) {
  std::vector<std::string> recorded;
  *honoured = false;
  if (s.kind != PartyKind::kSubject || ctx.request->Header("Sec-GPC") != "1") return recorded;
  *honoured = true;
  Ledger& ledger = ctx.api->ledger();
  auto snap = ledger.engine().snapshot();
  const Timestamp now = ledger.engine().Now();
  int32_t v = snap->terms().VersionAt(now);
  if (v < 0) return recorded;
  const Terms& t = snap->terms().version(v);
  for (const Rule& rule : t.rules()) {
    if (rule.basis != Basis::kObjectable || rule.consent_from == ConsentFrom::kAccount) continue;
    std::vector<std::string> purposes;
    for (int32_t g = 0; g < static_cast<int32_t>(t.purposes().size()); ++g) {
      if (!t.purposes()[g].gpc) continue;
      for (int32_t rp : rule.purposes) {
        if (t.PurposeCovers(rp, g)) purposes.push_back(t.purposes()[g].name);
        else if (t.PurposeCovers(g, rp)) purposes.push_back(t.purposes()[rp].name);
      }
    }
    if (purposes.empty()) continue;
    auto st = snap->PartyStateFor(PartyKind::kSubject, s.party,
                                  t.categories()[rule.categories[0]].name, purposes[0], now);
    if (st && st->state == PartyState::kWithdrawn) continue;  // already objected
    ConsentEvent e;
    e.party = s.party;
    e.action = Action::kWithdraw;
    for (int32_t c : rule.categories) e.categories.push_back(t.categories()[c].name);
    e.purposes = purposes;
    e.method = Method::kGpc;
    e.rule = rule.id;
    e.actor = "browser Sec-GPC, session minted by " + s.minted_by;
    if (ledger.RecordConsent(std::move(e))) recorded.push_back(rule.id);
  }
  return recorded;
}

// GET /v1/session: reads only. A GPC signal is reported ("signal":true); the page records it
// with POST /v1/session/gpc (a state change needs a POST and its CSRF token, never a GET).
HttpResponse SessionInfo(RouteContext& ctx) {
  const WebSession& s = *ctx.caller->session;
  JsonWriter w;
  w.BeginObject().Key(PartyKindName(s.kind)).String(s.party);
  w.Key("csrf_token").String(s.csrf).Key("expires_at").String(FormatTime(s.expires));
  if (s.kind == PartyKind::kSubject && ctx.request->Header("Sec-GPC") == "1") {
    w.Key("gpc").BeginObject().Key("signal").Bool(true).EndObject();
  }
  w.EndObject();
  HttpResponse r = Json(w.Take());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// POST /v1/session/gpc: records the browser's Sec-GPC: 1 as objections (HonourGpc).
HttpResponse SessionGpc(RouteContext& ctx) {
  const WebSession& s = *ctx.caller->session;
  bool honoured = false;
  std::vector<std::string> recorded = HonourGpc(ctx, s, &honoured);
  JsonWriter w;
  w.BeginObject().Key("honoured").Bool(honoured).Key("recorded").BeginArray();
  for (const auto& r : recorded) w.String(r);
  w.EndArray().EndObject();
  HttpResponse r = Json(w.Take());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// POST /v1/session/logout: ends the session on every node (recorded in the ledger) and clears
// the cookie. When the end cannot be recorded the answer says so (503) and the cookie stays.
HttpResponse SessionLogout(RouteContext& ctx) {
  auto st = ctx.api->sessions().End(ctx.caller->session_id, ctx.api->ledger().engine().Now());
  if (!st && st.error().code != ErrorCode::kNotFound) return ProblemFor(st.error());
  HttpResponse r = Json("{\"signed_out\":true}");
  r.headers.emplace_back("Set-Cookie",
                         "assent_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

void WriteKey(JsonWriter& w, const ApiKey& k) {
  w.BeginObject().Key("name").String(k.name).Key("role").String(RoleName(k.role));
  w.Key("position").UInt(k.position).Key("revoked").Bool(k.revoked).EndObject();
}

HttpResponse KeysList(RouteContext& ctx) {
  JsonWriter w;
  w.BeginObject().Key("keys").BeginArray();
  for (const auto& k : ctx.api->ledger().Keys()) WriteKey(w, k);
  w.EndArray().EndObject();
  return Json(w.Take());
}

HttpResponse KeysCreate(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, {"role", "name"})) return *p;
  std::string role, name;
  if (auto p = GetString(b.obj, "role", &role, true)) return *p;
  if (auto p = GetString(b.obj, "name", &name, true)) return *p;
  auto r = ParseRole(role);
  if (!r) return BadRequest("\"role\" must be operator, service, auditor or portal");
  auto secret = ctx.api->ledger().CreateKey(*r, name);
  if (!secret) return ProblemFor(secret.error());
  JsonWriter w;
  w.BeginObject().Key("name").String(name).Key("role").String(role);
  w.Key("key").String(*secret).Key("note").String("shown once; only its SHA-256 is stored");
  w.EndObject();
  HttpResponse res = Json(w.Take(), 201);
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

HttpResponse KeysRevoke(RouteContext& ctx) {
  if (ctx.caller && ctx.caller->key_name == ctx.params[0]) {
    return ProblemFor(Error{ErrorCode::kFailedPrecondition,
                            "a key cannot revoke itself; use another operator key"});
  }
  if (auto st = ctx.api->ledger().RevokeKey(ctx.params[0]); !st) return ProblemFor(st.error());
  return Json("{\"revoked\":true}");
}

// Crypto-shredding (DELETE /v1/{subjects,accounts}/{id}): the party's pseudonym secret and
// plain id are deleted; its entries stay in the log, unlinkable.
HttpResponse PartyErase(RouteContext& ctx, PartyKind kind) {
  const std::string& id = ctx.params[0];
  auto snap = ctx.api->ledger().engine().snapshot();
  const size_t events = snap->EventsOf(kind, id).size();
  auto pseudonym = ctx.api->ledger().PseudonymOf(kind, id);
  ErasureReport report;
  auto position = ctx.api->ledger().EraseParty(kind, id, &report);
  if (!position) return ProblemFor(position.error());
  JsonWriter w;
  w.BeginObject().Key(PartyKindName(kind)).String(id).Key("erased").Bool(true);
  w.Key("pseudonym").String(pseudonym ? *pseudonym : "").Key("events").UInt(events);
  w.Key("position").UInt(*position);
  w.Key("retrain").BeginObject();
  for (auto [key, list] : {std::pair{"datasets", &report.datasets}, {"shards", &report.shards},
                           {"models", &report.models}}) {
    w.Key(key).BeginArray();
    for (const auto& x : *list) w.String(x);
    w.EndArray();
  }
  w.EndObject().EndObject();
  return Json(w.Take());
}
HttpResponse SubjectErase(RouteContext& ctx) { return PartyErase(ctx, PartyKind::kSubject); }
HttpResponse AccountErase(RouteContext& ctx) { return PartyErase(ctx, PartyKind::kAccount); }

void WriteDataset(JsonWriter& w, const DatasetInfo& d, bool full) {
  w.BeginObject().Key("name").String(d.name).Key("purpose").String(d.purpose);
  w.Key("terms").String(d.terms).Key("ledger_position").UInt(d.ledger_position);
  w.Key("position").UInt(d.position).Key("recorded_at").String(FormatTime(d.recorded_at));
  w.Key("items").UInt(d.items).Key("subjects").UInt(d.subjects.cardinality());
  w.Key("accounts").UInt(d.accounts.cardinality());
  if (full) {
    w.Key("input_sha256").String(d.input_sha256).Key("output_sha256").String(d.output_sha256);
    w.Key("snapshot_sha256").String(d.snapshot_sha256);
    w.Key("shards").BeginArray();
    for (const auto& s : d.shards) {
      w.BeginObject().Key("file").String(s.file).Key("items").UInt(s.items);
      w.Key("subjects").UInt(s.subjects.cardinality()).EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

HttpResponse DatasetsList(RouteContext& ctx) {
  JsonWriter w;
  w.BeginObject().Key("datasets").BeginArray();
  ctx.api->ledger().WithLineage([&](const Lineage& l) {
    for (const auto& d : l.datasets) WriteDataset(w, d, false);
  });
  w.EndArray().Key("models").BeginArray();
  ctx.api->ledger().WithLineage([&](const Lineage& l) {
    for (const auto& m : l.models) {
      w.BeginObject().Key("name").String(m.name).Key("datasets").BeginArray();
      for (const auto& d : m.datasets) w.String(d);
      w.EndArray().Key("position").UInt(m.position).EndObject();
    }
  });
  w.EndArray().EndObject();
  return Json(w.Take());
}

HttpResponse DatasetGet(RouteContext& ctx) {
  JsonWriter w;
  bool found = false;
  ctx.api->ledger().WithLineage([&](const Lineage& l) {
    if (const DatasetInfo* d = l.FindDataset(ctx.params[0])) {
      WriteDataset(w, *d, true);
      found = true;
    }
  });
  if (!found) return ProblemFor(Error{ErrorCode::kNotFound, "no dataset '" + ctx.params[0] + "'"});
  return Json(w.Take());
}

// Registers a dataset filtered elsewhere (e.g. by workers from a snapshot).
HttpResponse DatasetRegister(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b,
                           {"name", "purpose", "terms", "ledger_position", "items", "input_sha256",
                            "output_sha256", "snapshot_sha256", "subjects", "accounts",
                            "shards"})) {
    return *p;
  }
  DatasetRegistration d;
  std::vector<std::string> subjects, accounts;
  if (auto p = GetString(b.obj, "name", &d.name, true)) return *p;
  if (auto p = GetString(b.obj, "purpose", &d.purpose, true)) return *p;
  if (auto p = GetString(b.obj, "terms", &d.terms, false)) return *p;
  if (auto p = GetString(b.obj, "input_sha256", &d.input_sha256, false)) return *p;
  if (auto p = GetString(b.obj, "output_sha256", &d.output_sha256, false)) return *p;
  if (auto p = GetString(b.obj, "snapshot_sha256", &d.snapshot_sha256, false)) return *p;
  if (auto p = GetStrings(b.obj, "subjects", &subjects, true)) return *p;
  if (auto p = GetStrings(b.obj, "accounts", &accounts, false)) return *p;
  element v;
  if (!b.obj["ledger_position"].get(v) && v.get_uint64().get(d.ledger_position)) {
    return BadRequest("\"ledger_position\" must be a non-negative integer");
  }
  if (!b.obj["items"].get(v) && v.get_uint64().get(d.items)) {
    return BadRequest("\"items\" must be a non-negative integer");
  }
  d.subjects.insert(subjects.begin(), subjects.end());
  d.accounts.insert(accounts.begin(), accounts.end());
  simdjson::dom::array shards;
  if (!b.obj["shards"].get(v)) {
    if (v.get_array().get(shards)) return BadRequest("\"shards\" must be an array");
    for (element s : shards) {
      object so;
      if (s.get_object().get(so)) return BadRequest("each shard must be an object");
      DatasetRegistration::Shard sh;
      std::vector<std::string> ss;
      if (auto p = GetString(so, "file", &sh.file, true)) return *p;
      if (auto p = GetStrings(so, "subjects", &ss, true)) return *p;
      element n;
      if (!so["items"].get(n) && n.get_uint64().get(sh.items)) return BadRequest("bad shard items");
      sh.subjects.insert(ss.begin(), ss.end());
      d.shards.push_back(std::move(sh));
    }
  }
  if (d.terms.empty()) {
    Engine& e = ctx.api->ledger().engine();
    auto snap = e.snapshot();
    int32_t ver = snap->terms().VersionAt(e.Now());
    if (ver >= 0) d.terms = snap->terms().version(ver).label();
  }
  auto pos = ctx.api->ledger().RegisterDataset(d);
  if (!pos) return ProblemFor(pos.error());
  return Json("{\"name\":" + [&] { std::string q; AppendJsonString(q, d.name); return q; }() +
                  ",\"position\":" + std::to_string(*pos) + "}",
              201);
}

HttpResponse ModelRegister(RouteContext& ctx) {
  Body b;
  if (auto p = ParseObject(*ctx.request, &b, {"name", "datasets"})) return *p;
  std::string name;
  std::vector<std::string> datasets;
  if (auto p = GetString(b.obj, "name", &name, true)) return *p;
  if (auto p = GetStrings(b.obj, "datasets", &datasets, true)) return *p;
  auto pos = ctx.api->ledger().RegisterModel(name, datasets);
  if (!pos) return ProblemFor(pos.error());
  return Json("{\"position\":" + std::to_string(*pos) + "}", 201);
}

HttpResponse ImpactRoute(RouteContext& ctx) {
  std::string subject, account, purpose;
  const bool s = ctx.request->QueryParam("subject", &subject);
  const bool a = ctx.request->QueryParam("account", &account);
  if (s == a || (s ? subject : account).empty()) {
    return BadRequest("give exactly one of ?subject= or ?account=");
  }
  std::optional<std::string> p;
  if (ctx.request->QueryParam("purpose", &purpose) && !purpose.empty()) p = purpose;
  return Json(ImpactJson(ctx.api->ledger(), s ? PartyKind::kSubject : PartyKind::kAccount,
                         s ? subject : account, p));
}

HttpResponse Usage(RouteContext& ctx) {
  return Json(ImpactJson(ctx.api->ledger(), PartyKind::kSubject, ctx.params[0], std::nullopt));
}

HttpResponse LedgerExport(RouteContext& ctx) {
  uint64_t since = 0;
  std::string s;
  if (ctx.request->QueryParam("since", &s)) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), since);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
      return BadRequest("\"since\" must be a non-negative integer");
    }
  }
  std::ostringstream out;
  if (auto st = ctx.api->ledger().Export(since, out); !st) return ProblemFor(st.error());
  HttpResponse r = Json(out.str());
  r.content_type = "application/x-ndjson";
  return r;
}

}  // namespace

const std::vector<Route>& Api::Routes() {
  static const std::vector<Route> routes = {
      {"GET", "/healthz", kPublic, "Liveness", Healthz},
      {"GET", "/readyz", kPublic, "Readiness: the ledger is loaded and its audit log verified", Readyz},
      {"GET", "/metrics", kPublic, "Prometheus metrics", MetricsRoute},
      {"GET", "/openapi.json", kPublic, "This API's OpenAPI 3.1 document", OpenApi},
      {"POST", "/v1/decisions", kOperator | kService, "Decide one use of data", Decide},
      {"POST", "/v1/decisions:batch", kOperator | kService,
       "Decide many uses (JSON up to 10,000 items, or NDJSON streams)", DecideBatch},
      {"GET", "/v1/terms", kAnyRole | kPerson | kAccountAdmin, "The terms in effect now",
       TermsCurrent},
      {"POST", "/v1/terms", kOperator, "Publish a terms version (YAML body)", TermsPublish},
      {"GET", "/v1/terms/{version}", kAnyRole | kPerson | kAccountAdmin, "One terms version",
       TermsVersion},
      {"GET", "/v1/terms/{a}/diff/{b}", kAnyRole | kPerson | kAccountAdmin,
       "What changed between two versions", TermsDiffRoute},
      {"GET", "/v1/subjects/{id}/consents", kAnyRole | kPerson, "A person's choices per rule",
       Consents},
      {"POST", "/v1/subjects/{id}/consents", kOperator | kService | kPerson,
       "Record a choice: keys record withdrawals only; the person's session also grants",
       RecordConsent},
      {"GET", "/v1/subjects/{id}/history", kAnyRole | kPerson, "A person's consent events",
       History},
      {"DELETE", "/v1/subjects/{id}", kOperator,
       "Erase a person: delete their pseudonym secret and id (crypto-shredding)", SubjectErase},
      {"DELETE", "/v1/accounts/{id}", kOperator,
       "Erase an account: delete its pseudonym secret and id (crypto-shredding)", AccountErase},
      {"GET", "/v1/accounts/{id}/consents", kAnyRole | kAccountAdmin,
       "An account's choices per rule", Consents},
      {"POST", "/v1/accounts/{id}/consents", kOperator | kService | kAccountAdmin,
       "Record an account's choice: keys withdraw only; the admin's session also grants",
       RecordConsent},
      {"GET", "/v1/accounts/{id}/history", kAnyRole | kAccountAdmin,
       "An account's consent events", History},
      {"POST", "/v1/sessions", kPortal,
       "Mint a one-time sign-in link for a person ({subject}) or an account admin ({account})",
       MintSession},
      {"GET", "/session/{token}", kPublic, "Exchange a one-time link for a session cookie",
       RedeemSession},
      {"GET", "/v1/session", kPerson | kAccountAdmin, "The current session and its CSRF token",
       SessionInfo},
      {"POST", "/v1/session/logout", kPerson | kAccountAdmin,
       "Sign out: end this session (CSRF token needed)", SessionLogout},
      {"POST", "/v1/session/gpc", kPerson,
       "Record the browser's Global Privacy Control signal (Sec-GPC: 1) as objections",
       SessionGpc},
      {"GET", "/v1/ledger", kOperator | kAuditor, "Export the ledger (NDJSON)", LedgerExport},
      {"GET", "/v1/datasets", kAnyRole, "Recorded datasets and models", DatasetsList},
      {"POST", "/v1/datasets", kOperator | kService,
       "Record a dataset filtered elsewhere (subjects, accounts, shards)", DatasetRegister},
      {"GET", "/v1/datasets/{name}", kAnyRole, "One dataset", DatasetGet},
      {"POST", "/v1/models", kOperator | kService, "Record a model and its datasets",
       ModelRegister},
      {"GET", "/v1/impact", kAnyRole,
       "Datasets, shards and models holding a party (?subject= or ?account=)", ImpactRoute},
      {"GET", "/v1/subjects/{id}/usage", kAnyRole | kPerson,
       "Where a person's data was used (recorded datasets)", Usage},
      {"GET", "/v1/keys", kOperator, "API keys: names and roles, never secrets", KeysList},
      {"POST", "/v1/keys", kOperator, "Create an API key {role, name}; its secret is shown once",
       KeysCreate},
      {"POST", "/v1/keys/{name}/revoke", kOperator, "Revoke an API key", KeysRevoke},
      {"GET", "/settings", kPublic, "A person's settings page", SettingsPage},
      {"GET", "/admin", kPublic, "The account-admin and operator page", AdminPage},
      {"GET", "/assets/{file}", kPublic, "The pages' CSS and JavaScript", Asset},
      {"GET", "/v1/audit/key", kPublic, "The log's verifier key (Ed25519, C2SP note format)",
       AuditKey},
      {"GET", "/v1/audit/checkpoint", kPublic, "A checkpoint of the whole log, signed now",
       AuditCheckpoint},
      {"GET", "/v1/audit/proof/inclusion", kPublic,
       "Inclusion proof of the entry at ?position=N in the tree of ?size=M", AuditInclusion},
      {"GET", "/v1/audit/proof/consistency", kPublic,
       "Consistency proof between trees of ?from=M and ?to=N entries", AuditConsistency},
  };
  return routes;
}

namespace {

// Matches `path` against a pattern; fills the decoded {params}.
bool Match(std::string_view pattern, std::string_view path, std::vector<std::string>* params) {
  params->clear();
  while (!pattern.empty() || !path.empty()) {
    size_t brace = pattern.find('{');
    if (brace == std::string_view::npos) return pattern == path;
    if (path.substr(0, brace) != pattern.substr(0, brace)) return false;
    path.remove_prefix(brace);
    pattern.remove_prefix(pattern.find('}') + 1);
    size_t end = path.find('/');
    std::string_view raw = path.substr(0, end);
    if (raw.empty()) return false;
    std::string decoded;
    for (size_t i = 0; i < raw.size(); ++i) {
      auto hex = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                               : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      };
      if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
        decoded.push_back(static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2])));
        i += 2;
      } else {
        decoded.push_back(raw[i]);
      }
    }
    params->push_back(std::move(decoded));
    path = end == std::string_view::npos ? std::string_view() : path.substr(end);
  }
  return true;
}

}  // namespace

Api::Api(Ledger* ledger, std::ostream* access_log, audit::Auditor* auditor)
    : ledger_(ledger), access_log_(access_log), auditor_(auditor), sessions_(ledger) {}

std::optional<Caller> Api::Authenticate(const HttpRequest& req, const Route& route,
                                        const std::vector<std::string>& params,
                                        HttpResponse* denied) {
  const std::string route_name = route.method + " " + route.pattern;
  std::string_view auth = req.Header("Authorization");
  if (auth.starts_with("Bearer ")) {
    std::optional<ApiKey> key = ledger_->Authenticate(auth.substr(7));
    if (!key) {
      *denied = Problem(ProblemType::kUnauthenticated, "the API key is unknown or revoked");
      return std::nullopt;
    }
    if (!(route.roles & (1u << static_cast<unsigned>(key->role)))) {
      *denied = Problem(ProblemType::kForbidden,
                        "role " + std::string(RoleName(key->role)) + " may not " + route_name);
      denied->key_name = key->name;
      return std::nullopt;
    }
    return Caller{key->name, key->role, std::nullopt, ""};
  }
  // A browser session: the cookie, its kind, the party it is for, and the CSRF token.
  std::string sid;
  std::string_view cookies = req.Header("Cookie");
  for (size_t at = 0; at < cookies.size();) {
    size_t end = cookies.find(';', at);
    std::string_view c = cookies.substr(at, end == std::string_view::npos ? end : end - at);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    if (c.starts_with("assent_session=")) sid = std::string(c.substr(15));
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  std::optional<WebSession> session;
  if (!sid.empty()) session = sessions_.Find(sid, ledger_->engine().Now());
  if (!session) {
    *denied = Problem(ProblemType::kUnauthenticated,
                      "send Authorization: Bearer <key> with a live API key (assent keys "
                      "create), or sign in through a session link");
    return std::nullopt;
  }
  const bool person = session->kind == PartyKind::kSubject;
  if (!(route.roles & (person ? kPerson : kAccountAdmin))) {
    *denied = Problem(ProblemType::kForbidden, "a session may not " + route_name);
    return std::nullopt;
  }
  const bool subjects_route = route.pattern.starts_with("/v1/subjects/");
  const bool accounts_route = route.pattern.starts_with("/v1/accounts/");
  if ((subjects_route || accounts_route) &&
      (subjects_route != person || params.empty() || params[0] != session->party)) {
    *denied = Problem(ProblemType::kNotYours,
                      "a session reads and changes only its own " +
                          std::string(person ? "subject" : "account"));
    return std::nullopt;
  }
  if (req.method != "GET" && req.method != "HEAD" &&
      Sha256(req.Header("X-CSRF-Token")) != Sha256(session->csrf)) {  // no early exit on a prefix
    *denied = Problem(ProblemType::kCsrf,
                      "a change from a session needs its X-CSRF-Token header (GET /v1/session)");
    return std::nullopt;
  }
  return Caller{"session", Role::kService, std::move(session), sid};
}

uint64_t Api::AppliedPosition() const { return ledger_->position(); }

const Route* Api::Admission(const HttpRequest& req, RouteContext* ctx, size_t* route_index,
                            HttpResponse* denied) {
  const auto& routes = Routes();
  bool path_known = false;
  const Route* route = nullptr;
  // HEAD is GET without the body (RFC 9110 §9.3.2); the listener sends the headers only.
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : req.method;
  for (size_t i = 0; i < routes.size(); ++i) {
    if (!Match(routes[i].pattern, req.Path(), &ctx->params)) continue;
    path_known = true;
    if (routes[i].method == method) {
      route = &routes[i];
      *route_index = i;
      break;
    }
  }
  if (!route) {
    *denied = path_known ? Problem(ProblemType::kMethodNotAllowed,
                                   req.method + " is not allowed on " + std::string(req.Path()))
                         : Problem(ProblemType::kNotFound,
                                   "no route " + std::string(req.Path()) + "; see /openapi.json");
    denied->route = "unmatched";
    return nullptr;
  }
  if (route->pattern.find("{id}") != std::string::npos &&
      std::any_of(ctx->params.begin(), ctx->params.end(),
                  [](const std::string& p) { return BlankId(p); })) {
    *denied = ProblemFor(
        Invalid("the id in the path is empty or only whitespace: it names nobody"));
    denied->route = route->method + " " + route->pattern;
    return nullptr;
  }
  // A node whose audit of the log has not passed (running in the background, or failed) writes
  // nothing: its state may be built on a changed log. Decisions (reads) are still answered.
  if (const auto [check, detail] = audit_check();
      (check == AuditCheck::kRunning || check == AuditCheck::kFailed) && route->writes()) {
    *denied = ProblemFor(Error{ErrorCode::kUnavailable,
                               check == AuditCheck::kRunning
                                   ? "the audit of the log is still running; writes are refused "
                                     "until it passes (see /readyz)"
                                   : "the audit of the log failed (" + detail +
                                         "); this node refuses every write"});
    denied->route = route->method + " " + route->pattern;
    return nullptr;
  }
  if (route->roles != kPublic) {
    auto caller = Authenticate(req, *route, ctx->params, denied);
    if (!caller) {
      denied->route = route->method + " " + route->pattern;
      return nullptr;
    }
    ctx->caller = std::move(*caller);
  }
  return route;
}

std::unique_ptr<BodyStream> Api::OpenStream(const HttpRequest& req) {
  if (req.method == "POST" && req.Path() == "/v1/decisions:batch" &&
      req.Header("Content-Type").starts_with("application/x-ndjson")) {
    return std::make_unique<DecisionStream>(this);
  }
  return nullptr;
}

std::optional<HttpResponse> Api::Admit(const HttpRequest& req) {
  RouteContext ctx{this, &req, {}, std::nullopt, false, 0};
  size_t route_index = Metrics::kMaxRoutes - 1;
  HttpResponse denied;
  if (Admission(req, &ctx, &route_index, &denied)) return std::nullopt;
  metrics_.Request(route_index, denied.status, 0);
  return denied;
}

HandlerResult Api::Handle(const HttpRequest& req, bool waited) {
  const auto start = std::chrono::steady_clock::now();
  HandlerResult result;
  RouteContext ctx{this, &req, {}, std::nullopt, waited, 0};
  size_t route_index = Metrics::kMaxRoutes - 1;
  HttpResponse& r = result.response;
  // Admission runs again although Admit passed: a body may take minutes to arrive and a
  // consistency wait up to two seconds, and a key revoked (or a session ended, or an audit
  // failed) meanwhile must not be honoured. It costs a hash and a map look-up.
  if (const Route* route = Admission(req, &ctx, &route_index, &r)) {
    r = route->handle(ctx);
    r.route = route->method + " " + route->pattern;
    if (ctx.caller) r.key_name = ctx.caller->key_name;
    if (ctx.wait_for) {
      result.wait_for_position = ctx.wait_for;
      result.wait_bound = std::chrono::milliseconds(2000);
    }
  }
  if (!result.wait_for_position) {
    metrics_.Request(route_index, r.status,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return result;
}

void Api::Log(const HttpRequest& req, const HttpResponse& res, double ms) {
  if (!access_log_) return;
  JsonWriter w;
  w.BeginObject();
  w.Key("time").String(FormatTime(ledger_->engine().Now()));
  w.Key("remote").String(req.remote);
  w.Key("method").String(ValidUtf8(req.method) ? req.method : "?");
  w.Key("route").String(res.route.empty() ? "unmatched" : res.route);
  w.Key("status").Int(res.status);
  w.Key("ms").Int(static_cast<int64_t>(ms * 1000) / 1000);
  if (!res.key_name.empty()) w.Key("key").String(res.key_name);
  w.EndObject();
  static std::mutex mu;
  std::lock_guard lock(mu);
  *access_log_ << w.str() << "\n";
  access_log_->flush();
}

std::string Api::OpenApiJson() {
  JsonWriter w;
  w.BeginObject();
  w.Key("openapi").String("3.1.0");
  w.Key("info").BeginObject().Key("title").String("Assent API").Key("version").String("1");
  w.Key("description").String("Consent-gated data use: decisions, consents, terms, ledger.");
  w.EndObject();
  w.Key("components").BeginObject().Key("securitySchemes").BeginObject();
  w.Key("bearer").BeginObject().Key("type").String("http").Key("scheme").String("bearer");
  w.EndObject().EndObject().EndObject();
  w.Key("paths").BeginObject();
  const auto& routes = Routes();
  std::vector<std::string> seen;
  for (const auto& r : routes) {
    if (std::find(seen.begin(), seen.end(), r.pattern) != seen.end()) continue;
    seen.push_back(r.pattern);
    w.Key(r.pattern).BeginObject();
    for (const auto& m : routes) {
      if (m.pattern != r.pattern) continue;
      std::string method = m.method;
      std::transform(method.begin(), method.end(), method.begin(), ::tolower);
      w.Key(method).BeginObject();
      w.Key("summary").String(m.summary);
      if (m.roles != kPublic) {
        w.Key("security").BeginArray().BeginObject().Key("bearer").BeginArray().EndArray();
        w.EndObject().EndArray();
        std::string roles;
        for (auto [bit, name] : {std::pair{kOperator, "operator"}, {kService, "service"},
                                 {kAuditor, "auditor"}, {kPortal, "portal"}}) {
          if (m.roles & bit) roles += (roles.empty() ? "" : ", ") + std::string(name);
        }
        w.Key("description").String("Roles: " + roles + ".");
      }
      std::vector<std::string> params;
      for (size_t at = 0; (at = m.pattern.find('{', at)) != std::string::npos; ++at) {
        params.push_back(m.pattern.substr(at + 1, m.pattern.find('}', at) - at - 1));
      }
      if (!params.empty()) {
        w.Key("parameters").BeginArray();
        for (const auto& p : params) {
          w.BeginObject().Key("name").String(p).Key("in").String("path");
          w.Key("required").Bool(true).Key("schema").BeginObject().Key("type").String("string");
          w.EndObject().EndObject();
        }
        w.EndArray();
      }
      w.Key("responses").BeginObject().Key("default").BeginObject();
      w.Key("description").String("JSON, or application/problem+json on error");
      w.EndObject().EndObject();
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return w.Take();
}

}  // namespace assent::server
