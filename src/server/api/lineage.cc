// Datasets, models, and what holds a party (impact, usage).
#include "server/api/handlers.h"

#include "filter/impact.h"
#include "ledger/lineage.h"
#include "common/json_writer.h"
#include "server/problem.h"
#include "server/request_json.h"

namespace assent::server {

using simdjson::dom::element;
using simdjson::dom::object;
namespace {

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

}  // namespace

HandlerOutcome DatasetsList(RouteContext& ctx) {
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

HandlerOutcome DatasetGet(RouteContext& ctx) {
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
HandlerOutcome DatasetRegister(RouteContext& ctx) {
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

HandlerOutcome ModelRegister(RouteContext& ctx) {
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

HandlerOutcome ImpactRoute(RouteContext& ctx) {
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

HandlerOutcome Usage(RouteContext& ctx) {
  return Json(ImpactJson(ctx.api->ledger(), PartyKind::kSubject, ctx.params[0], std::nullopt));
}

}  // namespace assent::server
